"""classroom_* metrics: values after a copy, histogram buckets, the handler, the copier loops."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from classroom.metrics import (
    KNOWN_ERROR_CODES,
    METRICS_REGISTRY,
    LoopLagMonitor,
    MetricsCopier,
    build_registry,
    exported_name,
    metrics_handler,
    setup_metrics,
)
from sfu.stats import MEDIA_COUNTERS, SIGNALING, STATS, MediaStats, SignalingStats


def room_state() -> dict[str, Any]:
    return {"lessons": 2, "classrooms": {"lead": 2, "remote": 5, "observer": 1}, "tracks": 9}


def make() -> tuple[MediaStats, SignalingStats, MetricsCopier]:
    media, sig = MediaStats(), SignalingStats()
    return media, sig, MetricsCopier(room_state, media=media, signaling=sig)


def test_counters_appear_after_a_copy_not_before() -> None:
    media, sig, copier = make()
    reg = build_registry(copier)
    media.packets_in += 10
    media.bytes_in += 12_000
    media.packets_out += 30
    media.bytes_out += 36_000
    media.forwarded_packets += 29
    media.nacks_received += 4
    media.retransmitted_packets += 3
    media.plis_received += 2
    sig.messages_in += 7
    sig.messages_out += 8
    sig.error("bad_json")
    assert reg.get_sample_value("classroom_received_packets_total") == 0  # not copied yet
    copier.copy()
    expected = {
        "classroom_received_packets_total": 10,
        "classroom_received_bytes_total": 12_000,
        "classroom_sent_packets_total": 30,
        "classroom_sent_bytes_total": 36_000,
        "classroom_forwarded_packets_total": 29,
        "classroom_nacks_received_total": 4,
        "classroom_retransmitted_packets_total": 3,
        "classroom_plis_received_total": 2,
        "classroom_transcodes_total": 0,
        "classroom_signaling_messages_in_total": 7,
        "classroom_signaling_messages_out_total": 8,
        "classroom_lessons": 2,
        "classroom_tracks": 9,
    }
    for name, value in expected.items():
        assert reg.get_sample_value(name) == value, name
    for name in MEDIA_COUNTERS:
        assert reg.get_sample_value(f"{exported_name(name)}_total") is not None, name


def test_classrooms_by_role_with_zero_for_missing_roles() -> None:
    _, _, copier = make()
    reg = build_registry(copier)
    get = reg.get_sample_value
    assert get("classroom_classrooms", {"role": "lead"}) == 2
    assert get("classroom_classrooms", {"role": "remote"}) == 5
    assert get("classroom_classrooms", {"role": "observer"}) == 1
    assert get("classroom_classrooms", {"role": "recorder"}) == 0


def test_signaling_errors_by_code_known_codes_start_at_zero() -> None:
    _, sig, copier = make()
    reg = build_registry(copier)
    sig.error("forbidden")
    sig.error("forbidden")
    sig.error("something_new")
    copier.copy()
    get = reg.get_sample_value
    assert get("classroom_signaling_errors_total", {"code": "forbidden"}) == 2
    assert get("classroom_signaling_errors_total", {"code": "something_new"}) == 1
    assert get("classroom_signaling_errors_total", {"code": "bad_json"}) == 0
    for code in KNOWN_ERROR_CODES:
        assert get("classroom_signaling_errors_total", {"code": code}) is not None


def test_histograms_in_seconds_with_cumulative_buckets() -> None:
    media, _, copier = make()
    reg = build_registry(copier)
    for v in (0.05, 0.3, 0.3, 4.0, 500.0):
        media.forward_latency.observe_ms(v)
    for v in (80, 300, 20_000):
        media.keyframe_wait.observe_ms(v)
    media.join_latency.observe_ms(1500)
    copier.copy()
    get = reg.get_sample_value
    name = "classroom_forwarding_latency_seconds"
    assert get(f"{name}_bucket", {"le": "0.0001"}) == 1
    assert get(f"{name}_bucket", {"le": "0.00025"}) == 1
    assert get(f"{name}_bucket", {"le": "0.0005"}) == 3
    assert get(f"{name}_bucket", {"le": "0.005"}) == 4
    assert get(f"{name}_bucket", {"le": "0.1"}) == 4
    assert get(f"{name}_bucket", {"le": "+Inf"}) == 5
    assert get(f"{name}_count") == 5
    assert get(f"{name}_sum") == pytest.approx((0.05 + 0.3 + 0.3 + 4.0 + 500.0) / 1000)
    name = "classroom_keyframe_wait_seconds"
    assert get(f"{name}_bucket", {"le": "0.1"}) == 1
    assert get(f"{name}_bucket", {"le": "0.5"}) == 2
    assert get(f"{name}_bucket", {"le": "10.0"}) == 2
    assert get(f"{name}_bucket", {"le": "+Inf"}) == 3
    name = "classroom_join_latency_seconds"
    assert get(f"{name}_bucket", {"le": "1.0"}) == 0
    assert get(f"{name}_bucket", {"le": "2.0"}) == 1
    assert get(f"{name}_sum") == pytest.approx(1.5)


def test_snapshot_is_a_copy() -> None:
    media, _, copier = make()
    media.keyframe_wait.observe_ms(100)
    snap = copier.copy()
    media.keyframe_wait.observe_ms(100)
    media.packets_in += 1
    assert snap.histograms["keyframe_wait"].count == 1 and snap.media["packets_in"] == 0


def test_broken_state_callable_keeps_last_values() -> None:
    calls = {"n": 0}

    def state() -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("boom")
        return room_state()

    copier = MetricsCopier(state, media=MediaStats(), signaling=SignalingStats())
    reg = build_registry(copier)
    copier.copy()
    assert reg.get_sample_value("classroom_lessons") == 2


def test_no_state_callable() -> None:
    copier = MetricsCopier(media=MediaStats(), signaling=SignalingStats())
    reg = build_registry(copier)
    assert reg.get_sample_value("classroom_lessons") == 0
    assert reg.get_sample_value("classroom_classrooms", {"role": "lead"}) == 0


def test_defaults_are_the_process_singletons() -> None:
    copier = MetricsCopier()
    assert copier.media is STATS and copier.signaling is SIGNALING


def test_exposition_parses() -> None:
    media, _, copier = make()
    media.packets_in += 1
    copier.copy()
    from prometheus_client import generate_latest

    text = generate_latest(build_registry(copier)).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"classroom_received_packets", "classroom_forwarding_latency_seconds",
            "classroom_signaling_errors", "classroom_event_loop_lag_seconds",
            "classroom_classrooms", "classroom_lessons"} <= names  # fmt: skip
    assert all(n.startswith("classroom_") for n in names)


async def test_metrics_handler() -> None:
    media, _, copier = make()
    media.bytes_out += 1234
    copier.copy()
    app = web.Application()
    app[METRICS_REGISTRY] = build_registry(copier)
    req = make_mocked_request("GET", "/metrics", app=app)
    resp = await metrics_handler(req)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert resp.body is not None
    assert b"classroom_sent_bytes_total 1234.0" in bytes(resp.body)  # type: ignore[arg-type]


def test_lag_monitor_record_and_take_max() -> None:
    lag = LoopLagMonitor()
    lag.record(0.2)
    lag.record(-0.001)  # clock noise is not negative lag
    assert lag.last_s == 0.0 and lag.samples == 2
    assert lag.take_max() == 0.2
    assert lag.take_max() == 0.0


async def test_lag_monitor_measures_a_blocked_loop() -> None:
    lag = LoopLagMonitor(interval_s=0.01)
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(0.005)
    time.sleep(0.08)  # block the event loop on purpose
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lag.samples >= 1
    assert lag.take_max() >= 0.05


async def test_copier_run_copies_periodically_and_runs_lag_monitor() -> None:
    media, _, _ = make()
    lag = LoopLagMonitor(interval_s=0.01)
    copier = MetricsCopier(room_state, media=media, signaling=SignalingStats(), lag=lag,
                           interval_s=0.01)  # fmt: skip
    reg = build_registry(copier)
    task = asyncio.create_task(copier.run())
    media.nacks_received += 6
    for _ in range(100):
        await asyncio.sleep(0.01)
        if reg.get_sample_value("classroom_nacks_received_total") == 6 and lag.samples:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reg.get_sample_value("classroom_nacks_received_total") == 6
    assert lag.samples >= 1
    assert reg.get_sample_value("classroom_event_loop_lag_seconds") is not None


class _FakeRouter:
    def stats(self) -> dict[str, Any]:
        return room_state()


class _FakeServer:
    def __init__(self) -> None:
        self.app = web.Application()
        self.router = _FakeRouter()
        self.extras: dict[str, Any] = {}


async def test_setup_metrics_wires_route_and_task() -> None:
    server = _FakeServer()
    copier = setup_metrics(server)
    assert server.extras["metrics"] is copier
    routes = {r.resource.canonical for r in server.app.router.routes() if r.resource}
    assert "/metrics" in routes
    assert server.app[METRICS_REGISTRY].get_sample_value("classroom_lessons") == 2
    (start,) = server.extras["on_start"]
    await start(server)
    task = server.extras["metrics_task"]
    assert not task.done()
    for hook in server.app.on_cleanup:
        await hook(server.app)
    assert task.cancelled()
    assert "metrics_task" not in server.extras


def test_data_dir_disk_gauges(tmp_path: Any) -> None:
    copier = MetricsCopier(media=MediaStats(), signaling=SignalingStats(), disk_path=tmp_path)
    copier.copy()
    reg = build_registry(copier)
    free = reg.get_sample_value("classroom_data_free_bytes")
    size = reg.get_sample_value("classroom_data_size_bytes")
    assert free is not None and size is not None and 0 <= free <= size
    gone = MetricsCopier(media=MediaStats(), signaling=SignalingStats(), disk_path=tmp_path / "missing")
    gone.copy()  # a data directory that is not there: no gauge, no error
    assert build_registry(gone).get_sample_value("classroom_data_free_bytes") is None


def test_exported_names_follow_prometheus_conventions() -> None:
    """Counters end in _total, a unit (bytes, seconds) is the last word before it (docs/ops.md)."""
    copier = MetricsCopier(room_state, media=MediaStats(), signaling=SignalingStats())
    copier.copy()
    text = generate_latest(build_registry(copier)).decode()
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if fam.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
            words = sample.name.removesuffix("_total").split("_")
            assert "bits" not in words and "kbps" not in words and "ms" not in words, sample.name
            if "bytes" in words:
                assert words[-1] == "bytes" or words[-3:] == ["bytes", "per", "second"], sample.name
