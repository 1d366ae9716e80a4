"""Hot-path counters: plain ints, no locks, no prometheus calls per packet.

The media path does ``STATS.packets_in += 1`` and ``STATS.forward_latency.observe_ms(x)``; that
is all it costs. Everything runs on the one asyncio thread, so plain ``+=`` is exact.
``classroom/metrics.py`` copies these numbers into Prometheus once per second.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field, fields

from sfu.lane import c_forwarded

# bucket upper bounds, milliseconds
FORWARD_LATENCY_BOUNDS_MS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100)
KEYFRAME_WAIT_BOUNDS_MS: tuple[float, ...] = (50, 100, 250, 500, 1000, 2000, 5000, 10000)
JOIN_LATENCY_BOUNDS_MS: tuple[float, ...] = (250, 500, 1000, 2000, 3000, 5000, 10000, 30000)


@dataclass(slots=True)
class LatencyHistogram:
    """A fixed-bucket histogram of milliseconds: one bisect and three ``+=`` per observation.

    ``counts[i]`` counts values ``v <= bounds[i]`` not counted in an earlier bucket (Prometheus
    ``le`` semantics); ``counts[-1]`` counts values above the last bound.
    """

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    sum_ms: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.bounds or list(self.bounds) != sorted(set(self.bounds)):
            raise ValueError("histogram bounds must be non-empty, increasing and distinct")
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)
        elif len(self.counts) != len(self.bounds) + 1:
            raise ValueError("counts must have one entry per bound plus one")

    def observe_ms(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum_ms += value
        self.count += 1

    def buckets(self) -> list[tuple[float, int]]:
        """Cumulative ``(upper bound ms, count <= bound)`` pairs, ending with ``(inf, count)``."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((bound, running))
        out.append((math.inf, running + self.counts[-1]))
        return out

    def copy(self) -> LatencyHistogram:
        return LatencyHistogram(self.bounds, list(self.counts), self.sum_ms, self.count)

    def reset(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum_ms = 0.0
        self.count = 0


@dataclass(slots=True)
class MediaStats:
    """Counters of the whole SFU process since start (monotonic, never reset in production)."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    forwarded_packets: int = 0
    nacks_received: int = 0
    nacks_sent: int = 0
    retransmitted_packets: int = 0
    nack_misses: int = 0
    retransmitted_bytes: int = 0
    # NACKed packets not re-sent: too late to arrive in time, or over the connection's budget
    retransmits_skipped: int = 0
    # NACKs too large to repair packet by packet, answered with a keyframe request instead
    nack_keyframes: int = 0
    # simulcast layer changes made for subscribers
    layer_switches: int = 0
    # padding sent to probe subscribers' links before moving them up a layer
    padding_bytes: int = 0
    # VP8 packets of frames above a subscriber's temporal target, not sent to it
    temporal_dropped: int = 0
    # repairs sent a second time (random loss on a long round trip: sfu.link.duplicate_repairs)
    repairs_duplicated: int = 0
    # packets repaired because transport-cc feedback said they were lost, before (or without) a NACK
    feedback_repairs: int = 0
    nacks_crossed: int = 0  # NACKed packets not repaired again: their repair had just been sent
    rtcp_dlrr_sent: int = 0  # XR DLRR answers to subscribers' receiver reference times (their RTT)
    # packets NACKed to a publisher that then arrived (its retransmissions)
    upstream_repaired: int = 0
    # RTX (RFC 4588) packets from publishers, unwrapped to the packet they repair
    rtx_packets_in: int = 0
    # of those, copies of packets the SFU had (a browser's probe padding): not forwarded
    rtx_redundant: int = 0
    # audio packets that arrived as RED (audio/red) containers
    red_packets_in: int = 0
    # of the packets sent to subscribers, those sent as RED containers
    red_packets_out: int = 0
    plis_received: int = 0
    keyframe_requests_sent: int = 0
    # repairs of the keyframe a subscriber's picture starts from, sent past its budget or deadline
    keyframe_repairs: int = 0
    # of those, by what asked first (uptrack.KEYFRAME_REASONS): every one of them makes a VP8
    # simulcast publisher key all its layers, which costs every viewer of its top layer a stall
    keyframe_requests_for_join: int = 0
    keyframe_requests_for_switch: int = 0
    keyframe_requests_for_resync: int = 0
    keyframe_requests_for_loss: int = 0
    keyframe_requests_for_pli: int = 0
    remb_sent: int = 0
    rtcp_sr_sent: int = 0
    rtcp_errors: int = 0
    rtp_errors: int = 0
    dropped_congested: int = 0
    # datagrams at a media port that were neither STUN nor plausible DTLS/SRTP from the peer
    bad_datagrams: int = 0
    # the node's shared media port (media.udp_port, sfu.glue.UdpMux): datagrams dropped there before any
    # connection saw them — a binding request for no connection's ufrag, DTLS/SRTP from an address no valid
    # check came from, and STUN that was truncated, malformed, wrongly signed or answered no request of ours
    mux_unknown_ufrag: int = 0
    mux_unknown_address: int = 0
    mux_bad_stun: int = 0
    # remote .local (mDNS) ICE candidates nobody answered for within the lookup budget (sfu/glue.py)
    ice_mdns_unresolved: int = 0
    # peer-reflexive remote candidates learned from a peer's own connectivity checks
    ice_prflx_learned: int = 0
    # ICE restarts of WHIP/WHEP sessions (PATCH with a new ice-ufrag), and those that failed
    ice_restarts: int = 0
    ice_restarts_failed: int = 0
    # video subscribers started on the source's current GOP from the cache (DownTrack._replay_gop)
    gop_replays: int = 0
    gop_replayed_packets: int = 0
    transcodes: int = 0
    # of forwarded_packets, those the C fan-out loop sent itself (refreshed by counters())
    forwarded_in_c: int = 0
    _c_base: int = 0
    # ingress -> egress inside the SFU
    forward_latency: LatencyHistogram = field(
        default_factory=lambda: LatencyHistogram(FORWARD_LATENCY_BOUNDS_MS)
    )
    # keyframe request (PLI/FIR sent upstream) -> keyframe arrives
    keyframe_wait: LatencyHistogram = field(
        default_factory=lambda: LatencyHistogram(KEYFRAME_WAIT_BOUNDS_MS)
    )
    # token presented (join) -> first media received by that classroom
    join_latency: LatencyHistogram = field(
        default_factory=lambda: LatencyHistogram(JOIN_LATENCY_BOUNDS_MS)
    )

    def counters(self) -> dict[str, int]:
        """The plain int counters by name (a copy)."""
        self.forwarded_in_c = c_forwarded() - self._c_base
        return {name: getattr(self, name) for name in MEDIA_COUNTERS}

    def histograms(self) -> dict[str, LatencyHistogram]:
        """The histograms by name (the live objects)."""
        return {
            "forward_latency": self.forward_latency,
            "keyframe_wait": self.keyframe_wait,
            "join_latency": self.join_latency,
        }

    def reset(self) -> None:
        """For tests only."""
        for name in MEDIA_COUNTERS:
            setattr(self, name, 0)
        self._c_base = c_forwarded()
        for h in self.histograms().values():
            h.reset()


MEDIA_COUNTERS: tuple[str, ...] = tuple(
    f.name for f in fields(MediaStats) if f.type in ("int", int) and not f.name.startswith("_")
)


@dataclass(slots=True)
class SignalingStats:
    """WebSocket message counters and errors by protocol error code."""

    messages_in: int = 0
    messages_out: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1

    def reset(self) -> None:
        """For tests only."""
        self.messages_in = 0
        self.messages_out = 0
        self.errors.clear()


@dataclass(slots=True)
class LoopLag:
    """When this process's event loop last ran late (the media node's RTCP tick notes it):
    packets read then waited in our own socket buffer, so their delay is not the network's."""

    lagged_until: float = -1.0
    worst_s: float = 0.0

    def note(self, lag_s: float, now: float, threshold_s: float = 0.05, hold_s: float = 2.0) -> None:
        if lag_s > threshold_s:
            self.lagged_until = now + hold_s
            self.worst_s = max(self.worst_s, lag_s)

    def busy(self, now: float) -> bool:
        return now < self.lagged_until


STATS = MediaStats()
SIGNALING = SignalingStats()
LOOP_LAG = LoopLag()
