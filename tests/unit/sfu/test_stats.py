"""Hot-path counters: plain ints, slots, a cheap fixed-bucket histogram."""

from __future__ import annotations

import dataclasses
import math
import timeit

import pytest

from sfu import stats
from sfu.stats import (
    MEDIA_COUNTERS,
    SIGNALING,
    STATS,
    LatencyHistogram,
    MediaStats,
    SignalingStats,
)

EXPECTED_COUNTERS = {
    "packets_in", "bytes_in", "packets_out", "bytes_out", "forwarded_packets", "nacks_received",
    "nacks_sent", "retransmitted_packets", "nack_misses", "plis_received",
    "keyframe_requests_sent", "keyframe_repairs", "keyframe_requests_for_join", "keyframe_requests_for_switch",
    "keyframe_requests_for_resync", "keyframe_requests_for_loss", "keyframe_requests_for_pli",
    "remb_sent", "rtcp_sr_sent", "rtcp_errors", "rtp_errors",
    "dropped_congested", "transcodes", "forwarded_in_c", "bad_datagrams", "retransmitted_bytes",
    "retransmits_skipped", "nack_keyframes", "layer_switches", "padding_bytes", "temporal_dropped",
    "repairs_duplicated", "feedback_repairs", "nacks_crossed", "rtcp_dlrr_sent", "red_packets_in",
    "red_packets_out", "upstream_repaired", "rtx_packets_in",
    "rtx_redundant", "ice_mdns_unresolved", "ice_prflx_learned", "ice_restarts", "ice_restarts_failed",
    "gop_replays", "gop_replayed_packets", "mux_unknown_ufrag", "mux_unknown_address", "mux_bad_stun",
}  # fmt: skip


def test_media_counters_are_plain_int_slots() -> None:
    s = MediaStats()
    assert set(MEDIA_COUNTERS) == EXPECTED_COUNTERS
    assert not hasattr(s, "__dict__")  # slots: no attribute typos on the hot path
    with pytest.raises(AttributeError):
        s.packets_inn = 1  # type: ignore[attr-defined]
    for name in MEDIA_COUNTERS:
        assert type(getattr(s, name)) is int and getattr(s, name) == 0
    s.packets_in += 3
    s.bytes_in += 1200
    assert s.counters()["packets_in"] == 3 and s.counters()["bytes_in"] == 1200
    c = s.counters()
    c["packets_in"] = 99  # a copy
    assert s.packets_in == 3


def test_singletons() -> None:
    assert isinstance(STATS, MediaStats) and stats.STATS is STATS
    assert isinstance(SIGNALING, SignalingStats)
    assert set(STATS.histograms()) == {"forward_latency", "keyframe_wait", "join_latency"}
    assert STATS.forward_latency.bounds == stats.FORWARD_LATENCY_BOUNDS_MS


def test_reset() -> None:
    s = MediaStats()
    s.rtp_errors = 5
    s.join_latency.observe_ms(700)
    s.reset()
    assert s.rtp_errors == 0 and s.join_latency.count == 0


def test_histogram_buckets_le_semantics() -> None:
    h = LatencyHistogram((1.0, 5.0, 10.0))
    for v in (0.0, 1.0, 1.01, 5.0, 7.0, 10.0, 10.5, 1e9, -1.0):
        h.observe_ms(v)
    # bucket le=1: 0, 1, -1; le=5: + 1.01, 5; le=10: + 7, 10; +Inf: + 10.5, 1e9
    assert h.counts == [3, 2, 2, 2]
    assert h.buckets() == [(1.0, 3), (5.0, 5), (10.0, 7), (math.inf, 9)]
    assert h.count == 9
    assert h.sum_ms == pytest.approx(0 + 1 + 1.01 + 5 + 7 + 10 + 10.5 + 1e9 - 1)


def test_histogram_copy_and_reset() -> None:
    h = LatencyHistogram((1.0, 2.0))
    h.observe_ms(1.5)
    c = h.copy()
    h.observe_ms(0.5)
    assert c.count == 1 and c.counts == [0, 1, 0]
    h.reset()
    assert h.counts == [0, 0, 0] and h.count == 0 and h.sum_ms == 0.0


@pytest.mark.parametrize("bounds", [(), (2.0, 1.0), (1.0, 1.0)])
def test_histogram_rejects_bad_bounds(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        LatencyHistogram(bounds)


def test_histogram_rejects_bad_counts() -> None:
    with pytest.raises(ValueError):
        LatencyHistogram((1.0,), counts=[0])


def test_histogram_is_slotted_dataclass() -> None:
    assert dataclasses.is_dataclass(LatencyHistogram)
    assert not hasattr(LatencyHistogram((1.0,)), "__dict__")


def test_observe_is_cheap() -> None:
    h = LatencyHistogram(stats.FORWARD_LATENCY_BOUNDS_MS)
    n = 100_000
    seconds = timeit.timeit(lambda: h.observe_ms(0.7), number=n)
    assert h.count == n
    assert seconds / n < 5e-6  # generous: typically well under 1 microsecond


def test_signaling_stats() -> None:
    s = SignalingStats()
    s.messages_in += 2
    s.messages_out += 5
    s.error("bad_json")
    s.error("bad_json")
    s.error("forbidden")
    assert s.errors == {"bad_json": 2, "forbidden": 1}
    s.reset()
    assert (s.messages_in, s.messages_out, s.errors) == (0, 0, {})
