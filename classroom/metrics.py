"""Prometheus metrics (``classroom_*``) for one server process, served at ``/metrics``.

How the numbers get there
-------------------------
The media hot path only bumps plain ints (``sfu.stats.STATS``, ``sfu.stats.SIGNALING``).
:class:`MetricsCopier` runs on the event loop and, once per second, copies those ints, the
histograms, the room counts (from a callable the server passes in) and the event-loop lag into
one immutable :class:`MetricsSnapshot`. A custom collector (:class:`ClassroomCollector`)
turns the latest snapshot into metric families at scrape time.

Why a snapshot plus a custom collector rather than prometheus ``Counter`` objects updated by
delta: the scrape costs nothing between scrapes, the counters are the exact monotonic values
(no delta bookkeeping that can drift or go negative after a test reset), the room-state callable
(which walks live dicts) only ever runs on the event loop even if a scrape comes from another
thread, and one scrape always shows numbers from the same instant. The price is that values are
up to one copy interval (1 s) old.

Wiring (``setup_metrics(server)`` does this for ``classroom/server.py``)::

    lag = LoopLagMonitor()
    copier = MetricsCopier(router.stats, lag=lag)
    app[METRICS_REGISTRY] = build_registry(copier)
    app.router.add_get("/metrics", metrics_handler)
    task = asyncio.create_task(copier.run())   # also runs the lag monitor
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sfu.stats import SIGNALING, STATS, LatencyHistogram, MediaStats, SignalingStats
from signaling.tokens import ROLES

log = logging.getLogger("classroom.metrics")

RoomState = Callable[[], Mapping[str, Any]]

METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)

# Exported with value 0 before they first happen, so rate() and alerts work from the start.
KNOWN_ERROR_CODES: tuple[str, ...] = (
    "bad_json", "message_too_large", "binary_not_supported", "bad_version", "unknown_type",
    "bad_field", "not_joined", "already_joined", "token_missing", "token_malformed",
    "token_invalid", "token_expired", "token_not_yet_valid", "lesson_unavailable", "forbidden",
    "lead_present", "sdp_invalid", "rate_limited", "internal", "join_timeout",
    # floor control (signaling/floor.py)
    "bad_state", "unknown_classroom", "floor_full",
    # recorder admission (signaling/recorder_access.py)
    "recorder_refused",
    # several nodes (signaling/routing/redis.py)
    "cluster_unavailable",
)  # fmt: skip

MEDIA_HELP: dict[str, str] = {
    "packets_in": "RTP packets received from publishers",
    "bytes_in": "RTP bytes received from publishers",
    "packets_out": "RTP packets sent to subscribers (forwarded and retransmitted)",
    "bytes_out": "RTP bytes sent to subscribers",
    "forwarded_packets": "RTP packets forwarded to subscribers",
    "nacks_received": "NACKs received from subscribers",
    "nacks_sent": "NACKs sent to publishers",
    "retransmitted_packets": "packets retransmitted from the packet cache after a NACK",
    "nack_misses": "NACKed packets no longer in the packet cache",
    "retransmitted_bytes": "RTP bytes retransmitted from the packet cache after a NACK",
    "retransmits_skipped": "NACKed packets not re-sent: too late to arrive in time, or over the subscriber's budget",
    "keyframe_repairs": "NACKed packets of the keyframe a subscriber's picture starts from, re-sent past its "
    "retransmission budget or deadline (without them it stays frozen until it asks for a keyframe)",
    "nack_keyframes": "NACKs too large to repair packet by packet, answered with a keyframe request",
    "padding_bytes": "padding bytes sent to probe a subscriber's link before moving it up a layer",
    "repairs_duplicated": "retransmissions sent twice to a subscriber whose link loses at random on a long round trip",
    "temporal_dropped": "VP8 packets of frames above a subscriber's temporal layer (lower frame rate), not sent",
    "layer_switches": "simulcast layer changes (or pauses) chosen for subscribers by their bandwidth estimate",
    "rtx_packets_in": "RTX retransmissions from publishers, unwrapped to the packets they repair",
    "rtx_redundant": "RTX packets that copied a packet already received (probe padding): not forwarded",
    "upstream_repaired": "packets NACKed to a publisher that then arrived (its retransmissions)",
    "red_packets_in": "audio packets that arrived as RED (audio/red) containers",
    "red_packets_out": "audio packets sent to subscribers as RED containers",
    "plis_received": "PLIs/FIRs received from subscribers (relayed as keyframe requests)",
    "keyframe_requests_sent": "keyframe requests (PLI) sent to publishers",
    "keyframe_requests_for_join": "of the keyframe requests sent, those first asked for by a new video subscriber",
    "keyframe_requests_for_switch": "of the keyframe requests sent, those first asked for by a simulcast layer switch",
    "keyframe_requests_for_resync": "of the keyframe requests sent, those first asked for by a subscriber "
    "whose stream had to start again (a refused send, a gap)",
    "keyframe_requests_for_loss": "of the keyframe requests sent, those first asked for by a NACK too large to repair",
    "keyframe_requests_for_pli": "of the keyframe requests sent, those first asked for by a subscriber's PLI/FIR",
    "remb_sent": "REMB messages sent to publishers",
    "rtcp_sr_sent": "RTCP sender reports sent to subscribers",
    "nacks_crossed": "NACKed packets not repaired again because their repair had been sent less than a round "
    "trip before (the NACK crossed it)",
    "rtcp_dlrr_sent": "RTCP XR DLRR answers to subscribers' receiver reference times (so a peer that only "
    "receives knows its round-trip time)",
    "rtcp_errors": "RTCP packets that could not be parsed or sent",
    "rtp_errors": "RTP packets that could not be parsed, decrypted or sent",
    "dropped_congested": "packets dropped because a subscriber was congested",
    "bad_datagrams": "datagrams at a media port dropped before aiortc saw them "
    "(empty, not STUN/DTLS/RTP, or not from the connected peer)",
    "mux_unknown_ufrag": "STUN binding requests at the node's media port (media.udp_port) for no connection's "
    "ICE ufrag: dropped",
    "mux_unknown_address": "DTLS/SRTP/other datagrams at the node's media port from an address no valid ICE check "
    "came from: dropped",
    "mux_bad_stun": "STUN at the node's media port that was truncated, malformed, wrongly signed (MESSAGE-INTEGRITY) "
    "or answered no request of ours: dropped",
    "forwarded_in_c": "of the forwarded packets, those the compiled fan-out loop sent (the rest went through Python)",
    "transcodes": "times media was decoded or encoded (should stay 0: the SFU only forwards)",
    "ice_mdns_unresolved": "remote .local (mDNS) ICE candidates that did not resolve within 5.25 s "
    "(the connection then relies on peer-reflexive candidates)",
    "ice_prflx_learned": "peer-reflexive remote ICE candidates learned from a peer's connectivity checks",
    "ice_restarts": "ICE restarts of WHIP/WHEP sessions (PATCH with a new ice-ufrag and ice-pwd)",
    "ice_restarts_failed": "ICE restarts whose new connectivity checks failed (the connection was closed)",
    "gop_replays": "video subscribers started on the current GOP from the cache instead of waiting for a keyframe",
    "gop_replayed_packets": "packets sent to starting video subscribers from the cache (their GOP replay)",
}

# Hot-path counter key (``sfu.stats.MediaStats``) -> exported name where the two differ: Prometheus
# wants the unit at the end of the name (``…_bytes_total``); the old names are in docs/ops.md.
EXPORTED_NAMES: dict[str, str] = {
    "packets_in": "received_packets",
    "bytes_in": "received_bytes",
    "packets_out": "sent_packets",
    "bytes_out": "sent_bytes",
}


def exported_name(key: str) -> str:
    """The metric family name (without ``_total``) of a hot-path counter."""
    return "classroom_" + EXPORTED_NAMES.get(key, key)


# histogram attribute -> (metric name, help)
HISTOGRAMS: dict[str, tuple[str, str]] = {
    "forward_latency": (
        "classroom_forwarding_latency_seconds",
        "time from a packet's arrival to its forwarding inside the SFU",
    ),
    "keyframe_wait": (
        "classroom_keyframe_wait_seconds",
        "time from a keyframe request to the keyframe's arrival",
    ),
    "join_latency": (
        "classroom_join_latency_seconds",
        "time from a classroom's join (token) to its first received media",
    ),
}


@dataclass(frozen=True)
class HistogramCopy:
    buckets: tuple[tuple[float, int], ...]  # cumulative (upper bound ms, count), ends with inf
    sum_ms: float
    count: int

    @classmethod
    def of(cls, h: LatencyHistogram) -> HistogramCopy:
        return cls(tuple(h.buckets()), h.sum_ms, h.count)


@dataclass(frozen=True)
class MetricsSnapshot:
    taken_at: float  # unix seconds
    media: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, HistogramCopy] = field(default_factory=dict)
    messages_in: int = 0
    messages_out: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lessons: int = 0
    classrooms: dict[str, int] = field(default_factory=dict)
    tracks: int = 0
    loop_lag_s: float = 0.0
    loop_lag_max_s: float = 0.0
    links: list[dict[str, Any]] = field(default_factory=list)
    # the file system of the data directory (recordings, database): -1 when not known
    data_free_bytes: int = -1
    data_size_bytes: int = -1


class LoopLagMonitor:
    """Sleeps ``interval_s`` again and again and records by how much each wake-up was late."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.last_s = 0.0
        self._max_s = 0.0
        self.samples = 0

    def record(self, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.last_s = lag_s
        self._max_s = max(self._max_s, lag_s)
        self.samples += 1

    def take_max(self) -> float:
        """The largest lag since the previous call (then starts over from the latest lag)."""
        m = self._max_s
        self._max_s = self.last_s
        return m

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.record(loop.time() - start - self.interval_s)


class MetricsCopier:
    """Copies the hot-path ints into a :class:`MetricsSnapshot` (see the module docstring)."""

    def __init__(
        self,
        state: RoomState | None = None,
        *,
        media: MediaStats = STATS,
        signaling: SignalingStats = SIGNALING,
        lag: LoopLagMonitor | None = None,
        interval_s: float = 1.0,
        disk_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.state = state
        self.media = media
        self.signaling = signaling
        self.lag = lag
        self.interval_s = interval_s
        self.disk_path = disk_path
        self._room: tuple[int, dict[str, int], int] = (0, dict.fromkeys(ROLES, 0), 0)
        self._links: list[dict[str, Any]] = []
        self.snapshot: MetricsSnapshot = self.copy()

    def _room_state(self) -> tuple[int, dict[str, int], int]:
        if self.state is None:
            return self._room
        try:
            raw = self.state()
            classrooms = dict.fromkeys(ROLES, 0)
            for role, n in dict(raw.get("classrooms", {})).items():
                classrooms[str(role)] = int(n)
            self._room = (int(raw.get("lessons", 0)), classrooms, int(raw.get("tracks", 0)))
            self._links = [dict(x) for x in raw.get("links", [])]
        except Exception:  # a broken callable must not stop the metrics: keep the last values
            log.exception("room state for metrics failed")
        return self._room

    def _disk(self) -> tuple[int, int]:
        if self.disk_path is None:
            return -1, -1
        try:
            usage = shutil.disk_usage(self.disk_path)  # one statvfs: cheap enough once a second
        except OSError:
            return -1, -1
        return int(usage.free), int(usage.total)

    def copy(self) -> MetricsSnapshot:
        """Take a new snapshot now (also what ``run`` does every ``interval_s``)."""
        lessons, classrooms, tracks = self._room_state()
        free, size = self._disk()
        lag_last = self.lag.last_s if self.lag else 0.0
        lag_max = self.lag.take_max() if self.lag else 0.0
        self.snapshot = MetricsSnapshot(
            taken_at=time.time(),
            media=self.media.counters(),
            histograms={k: HistogramCopy.of(h) for k, h in self.media.histograms().items()},
            messages_in=self.signaling.messages_in,
            messages_out=self.signaling.messages_out,
            errors=dict(self.signaling.errors),
            lessons=lessons,
            classrooms=classrooms,
            tracks=tracks,
            loop_lag_s=lag_last,
            loop_lag_max_s=lag_max,
            links=self._links,
            data_free_bytes=free,
            data_size_bytes=size,
        )
        return self.snapshot

    async def run(self) -> None:
        """Copy every ``interval_s`` until cancelled; runs the lag monitor alongside, if any."""
        lag_task = asyncio.create_task(self.lag.run()) if self.lag is not None else None
        try:
            while True:
                await asyncio.sleep(self.interval_s)
                self.copy()
        finally:
            if lag_task is not None:
                lag_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lag_task


def _histogram(name: str, doc: str, h: HistogramCopy) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc)
    buckets = [("+Inf" if math.isinf(b) else floatToGoString(b / 1000.0), n) for b, n in h.buckets]
    fam.add_metric([], buckets, h.sum_ms / 1000.0)
    return fam


class ClassroomCollector(Collector):
    """Metric families from a copier's latest snapshot, built at scrape time."""

    def __init__(self, copier: MetricsCopier) -> None:
        self.copier = copier

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        s = self.copier.snapshot
        yield GaugeMetricFamily("classroom_lessons", "lessons live on this node", value=s.lessons)
        fam = GaugeMetricFamily(
            "classroom_classrooms", "connected classrooms by role", labels=["role"]
        )
        for role, n in sorted(s.classrooms.items()):
            fam.add_metric([role], n)
        yield fam
        yield GaugeMetricFamily("classroom_tracks", "published tracks on this node", value=s.tracks)
        for name, value in s.media.items():
            yield CounterMetricFamily(
                exported_name(name), MEDIA_HELP.get(name, name.replace("_", " ")), value=value
            )
        for key, h in s.histograms.items():
            name, doc = HISTOGRAMS.get(key, (f"classroom_{key}_seconds", key.replace("_", " ")))
            yield _histogram(name, doc, h)
        yield CounterMetricFamily(
            "classroom_signaling_messages_in", "signaling messages received", value=s.messages_in
        )
        yield CounterMetricFamily(
            "classroom_signaling_messages_out", "signaling messages sent", value=s.messages_out
        )
        fam_err = CounterMetricFamily(
            "classroom_signaling_errors", "signaling errors sent, by code", labels=["code"]
        )
        errors = dict.fromkeys(KNOWN_ERROR_CODES, 0) | s.errors
        for code, n in sorted(errors.items()):
            fam_err.add_metric([code], n)
        yield fam_err
        yield GaugeMetricFamily(
            "classroom_event_loop_lag_seconds",
            "how late the latest event-loop wake-up was",
            value=s.loop_lag_s,
        )
        yield GaugeMetricFamily(
            "classroom_event_loop_lag_max_seconds",
            "the largest event-loop lag during the last copy interval",
            value=s.loop_lag_max_s,
        )
        yield from _link_families(s.links)
        if s.data_size_bytes >= 0:
            yield GaugeMetricFamily(
                "classroom_data_free_bytes",
                "free space on the file system of the data directory (recordings, database)",
                value=s.data_free_bytes,
            )
            yield GaugeMetricFamily(
                "classroom_data_size_bytes",
                "size of the file system of the data directory",
                value=s.data_size_bytes,
            )
        yield GaugeMetricFamily(
            "classroom_metrics_snapshot_timestamp_seconds",
            "when these numbers were copied (unix time)",
            value=s.taken_at,
        )


QUALITY_LEVELS = {"good": 0, "fair": 1, "poor": 2}


def _link_families(links: list[dict[str, Any]]) -> Iterable[Metric]:
    """Per-classroom link figures, labelled by lesson and classroom (at most 500 series each)."""
    labels = ["lesson", "classroom"]
    est = GaugeMetricFamily("classroom_link_estimate_bytes_per_second",
                            "what the SFU estimates a classroom's downlink can take", labels=labels)
    sent = GaugeMetricFamily("classroom_link_sent_bytes_per_second",
                             "what the SFU sends a classroom (media and retransmissions)", labels=labels)
    loss = GaugeMetricFamily("classroom_link_loss_ratio",
                             "fraction of packets a classroom reported lost (last report)", labels=labels)
    rtt = GaugeMetricFamily("classroom_link_rtt_seconds", "round-trip time to a classroom", labels=labels)
    quality = GaugeMetricFamily("classroom_link_quality",
                                "a classroom's link: 0 good, 1 fair (repairing or on a lower layer), 2 poor",
                                labels=labels)
    forwarded = GaugeMetricFamily("classroom_link_forwarded_bytes",
                                  "RTP bytes of media sent to a classroom on its connection so far", labels=labels)
    repaired = GaugeMetricFamily("classroom_link_retransmitted_bytes",
                                 "RTP bytes of retransmissions sent to a classroom on its connection so far",
                                 labels=labels)
    layer = GaugeMetricFamily("classroom_link_layer",
                              "the simulcast layer a classroom receives of each video (0 lowest, -1 paused)",
                              labels=[*labels, "mid"])
    for x in links:
        key = [str(x.get("lesson", "")), str(x.get("classroom", ""))]
        est.add_metric(key, float(x.get("estimate_kbps", 0)) * 1000 / 8)  # base unit: bytes
        sent.add_metric(key, float(x.get("sent_kbps", 0)) * 1000 / 8)
        loss.add_metric(key, float(x.get("loss", 0)))
        rtt.add_metric(key, float(x.get("rtt_ms", 0)) / 1000)
        quality.add_metric(key, QUALITY_LEVELS.get(str(x.get("quality")), 0))
        forwarded.add_metric(key, float(x.get("forwarded_bytes", 0) or 0))
        repaired.add_metric(key, float(x.get("retransmitted_bytes", 0) or 0))
        layers = x.get("layers")
        if isinstance(layers, dict):
            for mid, value in layers.items():
                layer.add_metric([*key, str(mid)], float(value))
    yield from (est, sent, loss, rtt, quality, forwarded, repaired, layer)


def build_registry(copier: MetricsCopier) -> CollectorRegistry:
    """A fresh registry with only the ``classroom_*`` collector (no process/GC collectors)."""
    registry = CollectorRegistry()
    registry.register(ClassroomCollector(copier))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: the text exposition of ``request.app[METRICS_REGISTRY]``."""
    body = generate_latest(request.app[METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(server: Any) -> MetricsCopier:
    """Wire metrics into ``classroom.server.Server`` (duck-typed: ``app``, ``router.stats``,
    ``extras``): registry, ``/metrics`` route, and the copier task started on server start and
    cancelled on app cleanup."""
    app: web.Application = server.app
    lag = LoopLagMonitor()
    config = getattr(server, "config", None)
    copier = MetricsCopier(server.router.stats, lag=lag, disk_path=config.data_path if config else None)
    app[METRICS_REGISTRY] = build_registry(copier)
    app.router.add_get("/metrics", metrics_handler)

    async def start(_server: Any) -> None:
        server.extras["metrics_task"] = asyncio.create_task(copier.run())

    async def stop(_app: web.Application) -> None:
        task = server.extras.pop("metrics_task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    server.extras.setdefault("on_start", []).append(start)
    app.on_cleanup.append(stop)
    server.extras["metrics"] = copier
    return copier
