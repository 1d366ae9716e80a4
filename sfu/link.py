"""One subscriber connection's link: its estimate, its layer choices and its retransmission budget.

The stages are pure (:mod:`sfu.bwe`); this wires them to one connection's DownTracks. It is fed
from the subscriber's RTCP (REMB, receiver reports) and evaluated on every such feedback and on
the node's RTCP tick: choose a layer per track within the estimate, and tell each DownTrack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from sfu import rtcp
from sfu.bwe.budget import BudgetConfig, RetransmitBudget
from sfu.bwe.estimator import EstimatorConfig, LinkEstimator
from sfu.bwe.probe import ProbeConfig, Prober
from sfu.bwe.selector import (
    PAUSED,
    PRIORITY_AUDIO,
    PRIORITY_COURSEWARE,
    PRIORITY_OTHER,
    PRIORITY_SPOTLIGHT,
    PRIORITY_TEACHER,
    LayerSelector,
    SelectorConfig,
    TrackLayers,
    allocate,
)
from sfu.bwe.twcc import Packet, TwccConfig, TwccEstimator
from sfu.stats import STATS
from sfu.vp8 import ALL_TIDS

if TYPE_CHECKING:
    from sfu.downtrack import DownTrack
    from sfu.uptrack import UpTrack

log = logging.getLogger(__name__)

# Bitrates assumed for a layer before it has been measured (bps), lowest first.
DEFAULT_LAYER_BPS = (150_000.0, 500_000.0, 1_500_000.0, 2_500_000.0)
AUDIO_BPS = 64_000.0
# A layer that has sent nothing for this long is not offered (the publisher turned it off, e.g.
# Chrome sends fewer simulcast layers for a small picture).
LAYER_IDLE_S = 2.0
NACK_WINDOW_S = 0.25
PROBE_MARGIN = 1.1
RTX_FLOOR_BPS = 640_000.0  # x the budget's share (10 %): at least 64 kbit/s of repairs
PAUSE_EVIDENCE_S = 10.0  # video is paused only within this long of a congestion signal
# Pacing (sfu/bwe/pacer.py): a connection is paced while it is constrained — some video below
# its top live layer or paused, or congestion seen within PACE_MEMORY_S — and its estimate is
# under PACE_BELOW_BPS; an unconstrained one keeps the C loop's fast path.
PACE_BELOW_BPS = 8_000_000.0
PACE_MEMORY_S = 10.0
# While a queue stands in front of the classroom's line (transport-cc overuse within this long),
# its video is paced at a little under what the queue lets through (TwccEstimator.drain_bps):
# a keyframe then waits here and not in the line's queue in front of the audio (audio is
# never paced), and leaves no slower than the line could take it.
QUEUE_PACE_S = 2.0
QUEUE_PACE_SHARE = 0.95
SINGLE_LAYER_BPS = 300_000.0  # a single-layer video not measured yet
NACK_MEMORY = 2048
RANDOM_LOSS_CEILING = 0.3  # a NACK burst above this share is congestion even without a queue
RR_MIN_EXPECTED = 20  # a receiver report's loss is passed on once it covers this many packets
# Repairs are sent twice on a link that loses packets at random and has a long round trip: a
# lost repair costs another round trip, long enough to freeze the picture (3 % loss at 100 ms:
# about one frame in a hundred needed a second repair). Only when nothing was congested lately
# (there the loss is the queue's own, and copies would add to it).
DUPLICATE_LOSS = 0.01  # NACKed share of what is sent, smoothed
DUPLICATE_RTT_MS = 50.0
# on any path, from this NACKed share up: a browser asks again for a lost repair only after its own
# RTT estimate, and a receive-only connection (every subscribe connection) has none: Chromium then
# waits its default 100 ms, however short the path — with 5 % loss each way that was four freezes of
# 0.2-0.5 s a minute (loss5, 2026-12-03)
DUPLICATE_SHORT_LOSS = 0.03
DUPLICATE_QUIET_S = 5.0


@dataclass
class LinkConfig:
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    selector: SelectorConfig = field(default_factory=SelectorConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    twcc: TwccConfig = field(default_factory=TwccConfig)
    twcc_probe_ratio: float = 3.0  # padding at most this × what is sent, on a transport-cc link
    adaptive: bool = True  # False: every subscriber gets the top layer (the old behaviour)
    # repair what transport-cc feedback says was lost, not only what is NACKed (off: on the 5 % loss
    # run it made the freezes worse, 6.5-7.5 %, see docs/weak-links.md)
    feedback_repairs: bool = False


def priority_of(up: UpTrack, spotlight: str | None = None) -> int:
    if not up.is_video:
        return PRIORITY_AUDIO
    if spotlight is not None and up.classroom_id == spotlight:
        return PRIORITY_SPOTLIGHT
    if up.source == "teacher":
        return PRIORITY_TEACHER
    if up.source == "screen":
        return PRIORITY_COURSEWARE
    return PRIORITY_OTHER


def layer_bitrates(up: UpTrack, now_ms: int) -> tuple[float, ...]:
    """What each live layer of ``up`` costs (measured, or a default until measured)."""
    if not up.is_video:
        return (max(AUDIO_BPS, up.bitrate_bps),)
    out = []
    for layer in up.layers:
        if up.simulcast and (layer.packets == 0 or now_ms - layer.last_arrival_ms > LAYER_IDLE_S * 1000):
            out.append(-1.0)  # not sending
            continue
        default = DEFAULT_LAYER_BPS[min(layer.layer, len(DEFAULT_LAYER_BPS) - 1)] if up.simulcast else SINGLE_LAYER_BPS
        out.append(layer.bitrate_bps if layer.bitrate_bps > 0 else default)
    return tuple(out)


# A layer at half its frame rate (VP8 TID 0-1) is an allocation of its own when that is still
# smooth enough for a classroom: the layer sends at least this many frames a second.
HALF_RATE_MIN_FPS = 25.0
HALF_RATE_SHARE = (0.3, 0.9)  # what TID 0-1 measure of the layer's bytes, when that is plausible


def layer_options(up: UpTrack, now_ms: int, rates: tuple[float, ...] | None = None) -> list[tuple[int, int, float]]:
    """(layer index, temporal layers, bitrate) a subscriber of ``up`` can be given, cheapest
    first: each live layer at its full frame rate and, for a VP8 layer with temporal layers, at
    half of it just below (frame rate drops before resolution, and needs no keyframe either
    way). The half-rate option is priced as the full one — so it is never chosen — unless the
    layer sends >= ``HALF_RATE_MIN_FPS``: the list keeps its shape when the frame rate moves, and
    the selector's state (an index into it) keeps its meaning. ``rates``: ``layer_bitrates(up,
    now_ms)`` when the caller has it already."""
    if rates is None:
        rates = layer_bitrates(up, now_ms)
    out: list[tuple[int, int, float]] = []
    for index, bps in enumerate(rates):
        if bps < 0:
            continue
        layer = up.layers[index] if index < len(up.layers) else up
        if up.is_video and layer.has_temporal:
            share = layer.half_rate_share
            half = bps * share
            smooth = layer.fps >= HALF_RATE_MIN_FPS and HALF_RATE_SHARE[0] <= share <= HALF_RATE_SHARE[1]
            if not smooth or (out and half <= out[-1][2]):
                half = bps
            out.append((index, 1, half))
        out.append((index, ALL_TIDS, bps))
    return out


class TwccHistory(Protocol):
    """What a connection remembers of the packets it numbered (``Egress.twcc_sent``)."""

    def twcc_sent(self, seq: int) -> tuple[float, int] | None: ...

    def twcc_packet(self, seq: int) -> tuple[int, int] | None: ...


Lost = tuple[int, int, float]  # a copy the subscriber's feedback says never arrived: (ssrc, RTP seq, sent at)


class Link:
    def __init__(self, config: LinkConfig | None = None) -> None:
        self.config = c = config or LinkConfig()
        self.estimator = LinkEstimator(c.estimator)
        self.selector = LayerSelector(c.selector)
        self.budget = RetransmitBudget(c.budget)
        self.prober = Prober(c.probe)
        self._probing: DownTrack | None = None
        self.sent_bps = 0.0
        self._octets = 0
        self._octets_at = -1.0
        self.layers: dict[str, int] = {}  # mid -> chosen layer (-1 paused)
        self._sr_sent: dict[int, float] = {}  # ntp middle 32 bits of our SRs -> monotonic time
        self.spotlight: str | None = None  # the spotlighted classroom (its camera comes third)
        # NACKed packets against packets sent, over short windows: a loss signal within a
        # fraction of a second (receiver reports come once a second)
        self._nacked = 0
        self._window_at = -1.0
        self._window_packets = 0
        self._nack_seen: dict[tuple[int, int], None] = {}  # (ssrc, seq) NACKed lately, oldest first
        self.nack_ratio = 0.0  # NACKed packets / packets sent, smoothed over the windows
        self.paused_video = 0  # video tracks paused for this link at the last evaluation
        self.pace_bps = 0.0  # pace this connection's video at this estimate (0: not paced)
        self.line_pace_bps = 0.0  # pace it at this rate itself while a queue stands (0: no queue)
        self._line_bps = 0.0  # the line's rate as the last standing queue showed it, and when
        self._line_at = -1e9
        self.reduced_video = 0  # video tracks below their top live layer
        self.twcc: TwccEstimator | None = None  # once the subscriber sends transport-cc feedback
        self.forwarded_bytes = 0  # RTP bytes of media sent on this connection (as of the last evaluation)
        self.retransmitted_bytes = 0  # and of repairs
        self._media_seen = self._repairs_seen = 0
        self._twcc_logged = -1e9
        self._rr_counters: dict[int, tuple[int, int]] = {}  # video ssrc -> (highest seq, cumulative lost)
        self._rr_expected = self._rr_lost = 0  # summed over reports not yet passed on

    # -- feedback ---------------------------------------------------------------------------

    def _sent(self, downs: list[DownTrack], now: float) -> float:
        media = sum(d.octets + 12 * d.packets for d in downs)
        repairs = sum(d.retransmitted_bytes for d in downs)
        # totals for /metrics, growing by what the DownTracks' counters grew (one that closed
        # takes its counts with it: the sum shrinks, and nothing is subtracted)
        self.forwarded_bytes += max(0, media - self._media_seen)
        self.retransmitted_bytes += max(0, repairs - self._repairs_seen)
        self._media_seen, self._repairs_seen = media, repairs
        total = media + repairs
        if self._octets_at < 0:
            self._octets, self._octets_at = total, now
        elif now - self._octets_at >= 0.5:
            self.sent_bps = (total - self._octets) * 8 / (now - self._octets_at)
            self._octets, self._octets_at = total, now
        return self.sent_bps

    def sender_report_sent(self, ntp: int, now: float) -> None:
        self._sr_sent[rtcp.ntp_middle(ntp)] = now
        if len(self._sr_sent) > 16:
            for key in list(self._sr_sent)[:-16]:
                del self._sr_sent[key]

    def on_remb(self, bitrate: int, downs: list[DownTrack], now: float) -> None:
        self.estimator.on_remb(bitrate, self._sent(downs, now), now)

    def on_twcc(self, feedback: rtcp.TransportFeedback, egress: TwccHistory, downs: list[DownTrack],
                now: float) -> list[Lost]:
        """Transport-cc feedback: our send times for its packets against their arrival times
        give the send-side estimate, which stands in for REMB. Returns the packets it says were
        lost, to repair now (``DownTrack.on_lost``) rather than when a NACK makes it here."""
        packets: list[Packet] = []
        missing = False
        for seq, arrived_us in feedback.packets:
            sent = egress.twcc_sent(seq)
            if sent is not None:
                packets.append((sent[0], None if arrived_us is None else arrived_us * 1e-6, sent[1]))
                missing = missing or arrived_us is None
        if not packets:
            return []
        if self.twcc is None:
            self.twcc = TwccEstimator(self.config.twcc)
            # probes are confirmed by what arrives, not by a receiver's slow climb: they may be
            # larger, and the overuse detector stops one within a feedback interval or two
            self.prober.config = replace(self.prober.config, max_ratio=self.config.twcc_probe_ratio, headroom=1.0)
        self._sent(downs, now)
        twcc = self.twcc
        rebases = twcc.rebases
        overuse = twcc.on_feedback(packets, now, explain=not self.prober.active)
        if twcc.rebases != rebases:
            log.info("transport-cc: a standing delay that did not drain at %.0f kbit/s arriving: the "
                     "path got longer, not a queue; base delay re-taken, estimate %.0f kbit/s",
                     twcc.acked_bps / 1000, twcc.bps / 1000)
        self.estimator.on_delay_estimate(twcc.bps, overuse, now)
        if twcc.over and self.prober.active:
            # a probe's padding is stopped at the first sign of a queue: what the line cannot
            # take is dropped at its queue, media with it
            self.prober.fail(now)
            if self._probing is not None:
                self._probing.set_probe(0)
        if now - self._twcc_logged >= 1.0 and (overuse or log.isEnabledFor(logging.DEBUG)):
            self._twcc_logged = now  # (an overuse at most once a second per connection at INFO)
            log.log(logging.INFO if overuse else logging.DEBUG,
                    "transport-cc%s: estimate %.0f kbit/s, arriving %.0f, queue %.1f ms (threshold %.1f; "
                    "%.1f ms more explained by our own bursts), lost %.1f %%", " overuse" if overuse else "",
                    twcc.bps / 1000, twcc.acked_bps / 1000, twcc.queue_ms, twcc.threshold_ms,
                    twcc.explained_ms, twcc.loss * 100)
        if not missing or not self.config.feedback_repairs or now - self.estimator.congested_at <= DUPLICATE_QUIET_S:
            return []  # (a full line: the NACKs' repairs, within the budget, are all it gets)
        return self._lost(feedback, egress)

    @staticmethod
    def _lost(feedback: rtcp.TransportFeedback, egress: TwccHistory) -> list[Lost]:
        """The media packets of a feedback with no copy arrived (a packet sent twice by
        ``duplicate_repairs`` whose other copy arrived is not lost): a second report of each loss
        beside the NACK, meant for a NACK or a repair lost on the way (a browser asks again only
        100 ms later). Off by default (``LinkConfig.feedback_repairs``): on the 5 % loss run
        Chromium's NACKs came first anyway and the extra repairs drained the budget."""
        arrived: set[tuple[int, int]] = set()
        lost: list[Lost] = []
        for seq, arrived_us in feedback.packets:
            packet = egress.twcc_packet(seq)
            if packet is None or packet[0] == 0:
                continue  # (not remembered, or numbered without its stream)
            if arrived_us is not None:
                arrived.add(packet)
            else:
                sent = egress.twcc_sent(seq)
                if sent is not None:
                    lost.append((packet[0], packet[1], sent[0]))
        return [x for x in lost if (x[0], x[1]) not in arrived]

    def retransmit_base(self, now: float) -> float:
        """What the retransmission budget is a share of: the estimate, but never less than what
        is being sent (a lossy link that is not full needs its repairs: one unrepaired loss
        freezes VP8 until the next keyframe) nor than RTX_FLOOR_BPS (a low layer's repairs);
        twice that while repairs are sent twice."""
        base = max(self.estimator.estimate(now), self.sent_bps, RTX_FLOOR_BPS)
        # each repair sent twice: twice the budget, or on a 5 % line the second copies use it up
        # and first copies are refused (each refusal: a NACK again 100 ms later, a frozen picture)
        return 2 * base if self.duplicate_repairs(now) else base

    def duplicate_repairs(self, now: float) -> bool:
        """Send each repair twice: random loss (on a long round trip, or a lot of it on any path),
        nothing congested lately."""
        e = self.estimator
        lossy = self.nack_ratio >= DUPLICATE_SHORT_LOSS or (
            self.nack_ratio >= DUPLICATE_LOSS and e.rtt_ms >= DUPLICATE_RTT_MS)
        return lossy and now - e.congested_at > DUPLICATE_QUIET_S

    def on_nack(self, ssrc: int, seqs: list[int]) -> None:
        """Count each lost packet once: a receiver NACKs the same packet again every round trip
        until it arrives or gives up."""
        seen = self._nack_seen
        for seq in seqs:
            key = (ssrc, seq)
            if key not in seen:
                seen[key] = None
                self._nacked += 1
        while len(seen) > NACK_MEMORY:
            del seen[next(iter(seen))]

    def _nack_loss(self, downs: list[DownTrack], now: float) -> None:
        packets = sum(d.packets for d in downs if d.kind == "video")
        if self._window_at < 0:
            self._window_at, self._window_packets, self._nacked = now, packets, 0
            return
        if now - self._window_at < NACK_WINDOW_S:
            return
        sent = packets - self._window_packets
        if sent >= 10:
            ratio = min(1.0, self._nacked / sent)
            self.nack_ratio = 0.8 * self.nack_ratio + 0.2 * ratio
            if ratio > self.estimator.config.loss_high and self._queue_or_unknown(ratio):
                self.estimator.on_loss(ratio, now)  # congestion now, not in a second
        self._window_at, self._window_packets, self._nacked = now, packets, 0

    def _queue_or_unknown(self, ratio: float) -> bool:
        """Is a burst of NACKs congestion? Without transport-cc we cannot tell: yes. With it, a
        queue that overflows grows first (a school line's tail-drop queue, tbf here), so losses
        while the queue stays short are the line's own random loss — a 5 % line NACKs more than
        10 % of a 250-ms window every few seconds by chance, and each such "congestion" used to
        cost a layer switch at once. Very heavy loss counts anyway."""
        twcc = self.twcc
        if twcc is None or ratio >= RANDOM_LOSS_CEILING:
            return True
        return twcc.raw_queue_ms >= 0.5 * twcc.threshold_ms  # (a burst of ours that overflowed: a queue too)

    def on_report(self, blocks: list[rtcp.ReportBlock], ssrcs: set[int], now: float) -> None:
        """A receiver report from the subscriber: loss over the video streams, and RTT.

        The loss is the packets lost over all video streams against the packets expected, from
        each block's cumulative counters since the previous report — not the largest of the
        blocks' own fractions: a courseware stream that sent 2 packets in that second and lost
        one says "50 %" on a 5 % line, which used to cost the camera a layer. Reports are summed
        until they cover at least RR_MIN_EXPECTED packets; one that expected none (video
        paused) says "nothing lost", so the estimate can grow toward resuming it."""
        expected_now = compared = 0
        for b in blocks:
            if b.ssrc not in ssrcs:
                continue
            previous = self._rr_counters.get(b.ssrc)
            self._rr_counters[b.ssrc] = (b.highest_seq, b.packets_lost)
            if previous is None:
                continue
            compared += 1
            expected = b.highest_seq - previous[0]
            if not 0 < expected < 0x8000:  # (a restarted stream or a stale report)
                continue
            expected_now += expected
            self._rr_expected += expected
            self._rr_lost += min(expected, max(0, b.packets_lost - previous[1]))
        if len(self._rr_counters) > 64:  # (streams come and go over a lesson)
            for key in [k for k in self._rr_counters if k not in ssrcs]:
                del self._rr_counters[key]
        if self._rr_expected >= RR_MIN_EXPECTED or (compared and expected_now == 0):
            # (nothing expected since the last report — video paused —: nothing was lost, and
            # the loss-based estimate may grow again toward resuming it)
            lost = self._rr_lost / self._rr_expected if self._rr_expected else 0.0
            self.estimator.on_loss(lost, now)
            self._rr_expected = self._rr_lost = 0
        for b in blocks:
            sent_at = self._sr_sent.get(b.lsr) if b.lsr else None
            if sent_at is not None:
                self.estimator.on_rtt((now - sent_at - b.dlsr / 65536.0) * 1000.0)
                break

    # -- decision ---------------------------------------------------------------------------

    def evaluate(self, downs: list[DownTrack], now: float, now_ms: int) -> None:
        """Choose each DownTrack's layer within the estimate and apply it."""
        self._sent(downs, now)
        self._nack_loss(downs, now)
        self.estimator.tick(now)
        if not self.config.adaptive:
            self._top_live(downs, now_ms)
            return
        demands = []
        by_key: dict[str, tuple[DownTrack, tuple[float, ...]]] = {}
        options: dict[str, list[tuple[int, int, float]]] = {}
        for d in downs:
            up = d.up
            if up is None or up.closed:
                continue
            rates = layer_bitrates(up, now_ms)
            opts = layer_options(up, now_ms, rates)
            if not opts:
                continue
            live = tuple(o[2] for o in opts)
            demands.append(TrackLayers(d.mid, priority_of(up, self.spotlight), live, audio=not up.is_video))
            by_key[d.mid] = (d, rates)
            options[d.mid] = opts
        budget = self.estimator.estimate(now)
        # REMB alone never pauses video: a paused stream gives the receiver nothing to measure,
        # so its REMB could not say when to resume. Only the loss-based figure can pause.
        lowest = sum(t.bitrates[0] for t in demands)
        budget = max(budget, min(self.estimator.unbounded(), lowest))
        floor = 0.0  # what the selector gives at once, with no up margin or hold
        if now - self.estimator.congested_at > PAUSE_EVIDENCE_S:
            floor = lowest  # and nothing is paused without recent congestion
        if self.twcc is not None and now - self.twcc.fed_at < 1.0 and self.twcc.acked_bps >= lowest:
            # nor while the line is seen to carry at least the lowest layers: what the receiver
            # got over the last half second was no less (a pause costs seconds of picture: the
            # estimate has to grow back from where loss reports pushed it)
            floor = lowest
        budget = max(budget, floor)
        # a queue growing now (transport-cc overuse within the last half second): no hysteresis
        # downward, or a layer a little above the estimate would keep the queue standing
        congested = self.twcc is not None and now - self.twcc.overused_at < 0.5
        choice = self.selector.select(budget, demands, now, congested=congested, floor=floor)
        self._probe(demands, choice, by_key, budget, now)
        top = {t.key: len(t.bitrates) - 1 for t in demands}
        self.paused_video = sum(1 for k, v in choice.items() if v == PAUSED)
        self.reduced_video = sum(1 for k, v in choice.items() if 0 <= v < top[k])
        estimate = self.estimator.estimate(now)
        constrained = (self.paused_video or self.reduced_video
                       or now - self.estimator.congested_at < PACE_MEMORY_S)
        self.pace_bps = estimate if constrained and estimate < PACE_BELOW_BPS else 0.0
        self.line_pace_bps = self._line_rate(now)
        for key, live_index in choice.items():
            d, rates = by_key[key]
            if d.kind != "video":
                continue
            tid = ALL_TIDS
            if live_index == PAUSED:
                index = PAUSED
            else:  # back from "the n-th option" to the layer's own index and its frame rate
                index, tid, _ = options[key][live_index]
            if self.layers.get(key) != index:
                if key in self.layers:
                    STATS.layer_switches += 1
                log.info(
                    "subscriber %s mid %s: layer %s -> %s (estimate %.0f kbit/s, REMB %.0f, sent %.0f, loss %.1f %%, "
                    "layers %s kbit/s)", d.subscriber_id, key, self.layers.get(key), index,
                    self.estimator.estimate(now) / 1000, self.estimator.remb_bps / 1000, self.sent_bps / 1000,
                    self.estimator.loss * 100, [round(r / 1000) for r in rates],
                )
                self.layers[key] = index
            current = d.target.layer if d.target is not None else d.layer_index()
            if current != index:
                d.select_layer(index, at_once=now - self.estimator.congested_at < 1.0)
            if d.temporal != tid:
                log.info("subscriber %s mid %s: temporal layers %s -> %s", d.subscriber_id, key,
                         "all" if d.temporal == ALL_TIDS else d.temporal, "all" if tid == ALL_TIDS else tid)
                d.set_temporal(tid)

    def _line_rate(self, now: float) -> float:
        """What to pace video at while a queue stands in front of the line (0: none stands)."""
        twcc = self.twcc
        if twcc is None or now - twcc.overused_at >= QUEUE_PACE_S:
            return 0.0
        drain = twcc.drain_bps()
        if drain is not None:
            self._line_bps, self._line_at = drain, now
        if now - self._line_at >= QUEUE_PACE_S:
            return 0.0
        return QUEUE_PACE_SHARE * self._line_bps

    @staticmethod
    def top_live_layer(up: UpTrack, now_ms: int) -> int:
        """The highest layer of ``up`` that is sending (the top one when none is, yet)."""
        rates = layer_bitrates(up, now_ms)
        live = [i for i, r in enumerate(rates) if r >= 0]
        return live[-1] if live else len(up.layers) - 1

    def _top_live(self, downs: list[DownTrack], now_ms: int) -> None:
        """Not adaptive (the recorder): every simulcast track on its highest *sending* layer. A
        browser sends fewer layers for a small picture (a 640x360 camera: no ``f``), and a
        subscriber left on a silent top layer would get no video at all."""
        for d in downs:
            up = d.up
            if d.kind != "video" or up is None or up.closed or not up.simulcast:
                continue
            index = self.top_live_layer(up, now_ms)
            current = d.target.layer if d.target is not None else d.layer_index()
            if current != index:
                d.select_layer(index)

    def _probe(self, demands: list[TrackLayers], choice: dict[str, int],
               by_key: dict[str, tuple[DownTrack, tuple[float, ...]]], budget: float, now: float) -> None:
        """Pad a video stream when the loss-based estimate would allow a better allocation than
        the receiver's (REMB-bounded) one has confirmed."""
        up = self.config.selector.up
        wanted = allocate(self.estimator.unbounded() / up, demands)
        better = [t for t in demands if not t.audio and wanted[t.key] > choice.get(t.key, PAUSED) >= 0]
        if self.estimator.loss >= self.estimator.config.loss_low:
            better = []  # a lossy link: padding would only add to the loss (and REMB is noisy there)
        wanted_bps = 0.0
        if better:
            wanted_bps = up * sum(t.bitrates[wanted[t.key]] for t in demands if wanted[t.key] >= 0)
        was = self.prober.active
        # confirm a little more than the better allocation needs, so measured bitrates moving
        # up a few per cent do not call for another probe at once
        rate = self.prober.update(PROBE_MARGIN * wanted_bps, budget, self.sent_bps, self.estimator.congested_at, now)
        if self.prober.succeeded_bps:
            self.estimator.probe_confirmed(self.prober.succeeded_bps, now)
            if self.twcc is not None:  # (or the next feedback's estimate would undo it)
                self.twcc.confirm(self.prober.succeeded_bps, now)
            self.prober.succeeded_bps = 0.0
        if self.prober.active != was:
            log.info("link probe %s: padding %.0f kbit/s toward %.0f kbit/s (estimate %.0f, REMB %.0f, sent %.0f; "
                     "%d probes, %d failed)", "start" if rate else "end", rate / 1000, wanted_bps / 1000,
                     budget / 1000, self.estimator.remb_bps / 1000, self.sent_bps / 1000, self.prober.probes,
                     self.prober.failed)
        carrier = None
        if rate > 0:  # on the most important video being forwarded
            live = [by_key[t.key][0] for t in sorted(demands, key=lambda t: t.priority)
                    if not t.audio and choice.get(t.key, PAUSED) >= 0]
            carrier = next((d for d in live if d.fwd.started and not d.fwd.paused), None)
        if self._probing is not None and self._probing is not carrier:
            self._probing.set_probe(0)
        self._probing = carrier
        if carrier is not None:
            carrier.set_probe(rate)

    # -- what pages and metrics show --------------------------------------------------------

    def quality(self) -> str:
        """``good``, ``fair`` (losses repaired, or a lower layer) or ``poor`` (video paused,
        heavy loss or a very long round trip)."""
        loss, rtt = self.estimator.loss, self.estimator.rtt_ms
        if self.paused_video or loss >= 0.10 or rtt >= 800:
            return "poor"
        if self.reduced_video or loss >= 0.02 or rtt >= 300:
            return "fair"
        return "good"

    def snapshot(self, now: float) -> dict[str, object]:
        return {
            "quality": self.quality(),
            "estimate_kbps": round(self.estimator.estimate(now) / 1000),
            "sent_kbps": round(self.sent_bps / 1000),
            "loss": round(self.estimator.loss, 3),
            "rtt_ms": round(self.estimator.rtt_ms),
            "layers": dict(self.layers),
            "forwarded_bytes": self.forwarded_bytes,
            "retransmitted_bytes": self.retransmitted_bytes,
            "queue_ms": round(self.twcc.queue_ms, 1) if self.twcc is not None else None,
        }
