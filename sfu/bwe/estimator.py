"""What one subscriber connection can take, from the feedback its receiver sends us.

Two signals, the way a send-side controller combines them (after GCC's split into a delay-based
and a loss-based part, RFC 8888 style feedback aside):

* **REMB** — Chrome's receive-side, delay-based estimate. It is bounded by about 1.5 × what the
  receiver gets, so a REMB well above what we send says "no congestion", not "this much
  capacity"; a *falling* REMB below what we send says the queue is growing: we follow it down at
  once. (Right after we raise what we send, REMB lags below it while it climbs: that is not
  congestion, hence "falling".)
* **loss** from receiver reports — above ``loss_high`` the estimate shrinks by half the loss
  fraction; below ``loss_low`` it grows by ``growth`` per second (loss-based probing). Between
  the two it holds — unless a fresh REMB above the estimate has said "no queue" and nothing was
  congested for ``random_loss_quiet_s``: then the loss is the line's own, not ours, and it grows.

The estimate is the loss-based figure bounded by a fresh REMB. Since REMB never runs far ahead
of what arrives, going up a layer needs a probe first (:class:`sfu.bwe.probe.Prober`: padding
until REMB confirms the higher rate, or congestion says it does not fit).

RTT comes from the receiver reports' LSR/DLSR against our sender reports; the retransmission
budget uses it to skip packets that can no longer arrive in time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EstimatorConfig:
    initial_bps: float = 1_500_000.0
    min_bps: float = 80_000.0
    max_bps: float = 20_000_000.0
    loss_low: float = 0.02  # below this, grow
    loss_high: float = 0.10  # above this, shrink
    growth: float = 1.15  # per second while no congestion is seen
    # ... and while our own send-side delay estimate (transport-cc) guards the link: there the
    # loss-based figure is only the ceiling probes may aim at (every upgrade is confirmed on
    # what arrives, a failed probe costs a moment's queue), and at 1.15 a lifted cap took
    # 7 s of growth before the first probe toward the top layer
    growth_delay_based: float = 1.4
    remb_ttl_s: float = 3.0  # a REMB older than this is forgotten
    remb_congested: float = 0.9  # REMB < this × sent rate: the receiver sees the queue grow
    decrease_interval_s: float = 0.3  # at most one loss-based decrease per interval
    random_loss_quiet_s: float = 5.0  # moderate loss with room in the REMB for this long: grow


class LinkEstimator:
    def __init__(self, config: EstimatorConfig | None = None) -> None:
        self.config = c = config or EstimatorConfig()
        self._loss_bps = c.initial_bps
        self.remb_bps = 0.0
        self._remb_at = -1e9
        self._remb_cap = 0.0  # REMB as a bound: rises at once, falls at most by half per interval
        self._cap_cut_at = -1e9
        self.loss = 0.0  # last reported fraction lost, 0..1
        self.rtt_ms = 0.0
        self._last_growth = -1.0
        self._last_decrease = -1e9
        self.congested_at = -1e9  # the last time any signal said "too much"
        self._delay_based_at = -1e9  # the last send-side delay estimate (on_delay_estimate)

    # -- feedback -------------------------------------------------------------------------

    def on_remb(self, bps: float, sent_bps: float, now: float) -> None:
        """A REMB from the receiver; ``sent_bps`` is what we sent it over the last second."""
        c = self.config
        previous = self.remb_bps if self.remb_fresh(now) else 0.0
        self.remb_bps = max(0.0, float(bps))
        self._remb_at = now
        falling = previous > 0 and self.remb_bps < 0.97 * previous
        if self.remb_bps >= self._remb_cap or previous == 0:
            self._remb_cap = self.remb_bps
        elif falling and now - self._cap_cut_at >= c.decrease_interval_s:
            # only a falling REMB lowers the bound (one lagging behind a confirmed probe does not)
            self._remb_cap = max(self.remb_bps, 0.5 * self._remb_cap)
            self._cap_cut_at = now
        if falling and sent_bps > 0 and self.remb_bps < c.remb_congested * sent_bps:
            # delay-based overuse: toward what the receiver says it gets through, but at most
            # halving per decrease interval (one odd REMB must not pause a classroom's video)
            self.congested_at = now
            if now - self._last_decrease >= c.decrease_interval_s:
                self._loss_bps = max(c.min_bps, min(self._loss_bps, max(self.remb_bps, 0.5 * self._loss_bps)))
                self._last_decrease = now

    def on_delay_estimate(self, bps: float, overuse: bool, now: float) -> None:
        """Our own send-side, delay-based estimate (transport-cc feedback, sfu/bwe/twcc.py) in
        place of the receiver's REMB: the same bound, but followed down at once on overuse
        (it is our own measurement of the queue, not a receiver's figure that may lag)."""
        c = self.config
        self.remb_bps = max(0.0, float(bps))
        self._remb_at = now
        self._remb_cap = self.remb_bps
        self._delay_based_at = now
        if overuse:
            self.congested_at = now
            if now - self._last_decrease >= c.decrease_interval_s:
                # the loss-based figure (the one that may pause video) at most halves, as for a
                # REMB: a queue says "less", not "nothing"
                self._loss_bps = max(c.min_bps, min(self._loss_bps, max(self.remb_bps, 0.5 * self._loss_bps)))
                self._last_decrease = now

    def on_loss(self, fraction: float, now: float) -> None:
        """A receiver report's fraction lost (0..1) over its interval."""
        c = self.config
        fraction = min(1.0, max(0.0, fraction))
        self.loss = fraction
        if fraction > c.loss_high:
            if now - self._last_decrease >= c.decrease_interval_s:
                self._loss_bps = max(c.min_bps, self._loss_bps * (1.0 - 0.5 * fraction))
                self._last_decrease = now
            self.congested_at = now

    def probe_confirmed(self, bps: float, now: float) -> None:
        """A probe carried ``bps`` without congestion: the REMB bound may go up to it."""
        if self.remb_fresh(now):
            self._remb_cap = max(self._remb_cap, bps)
        self._loss_bps = max(self._loss_bps, bps)

    def on_rtt(self, rtt_ms: float) -> None:
        if 0 <= rtt_ms < 10_000:
            self.rtt_ms = rtt_ms if self.rtt_ms == 0 else 0.8 * self.rtt_ms + 0.2 * rtt_ms

    def tick(self, now: float) -> None:
        """Grow while nothing says "too much" (call a few times a second)."""
        c = self.config
        if self._last_growth < 0:
            self._last_growth = now
            return
        dt = now - self._last_growth
        self._last_growth = now
        if dt <= 0:
            return
        quiet = now - self.congested_at
        # Moderate loss alone (between loss_low and loss_high) holds the estimate, as it may be
        # the queue overflowing; but while the receiver's delay-based REMB says there is room
        # and nothing was congested for a while, that loss is the line's own (a rural link's
        # random loss): grow anyway, or a 3 % line would never leave its start-up figure.
        room = self.remb_fresh(now) and self.remb_bps >= self._loss_bps and quiet > c.random_loss_quiet_s
        growth = c.growth_delay_based if now - self._delay_based_at < 1.0 else c.growth
        if (self.loss < c.loss_low and quiet > 1.0) or (self.loss < c.loss_high and room):
            self._loss_bps = min(c.max_bps, self._loss_bps * growth**dt)

    # -- result ---------------------------------------------------------------------------

    def estimate(self, now: float) -> float:
        """Bits per second this connection can take now: the loss-based figure, bounded by the
        receiver's own (REMB) while it sends one."""
        if self.remb_fresh(now) and self._remb_cap > 0:
            return max(self.config.min_bps, min(self._loss_bps, self._remb_cap))
        return self._loss_bps

    def unbounded(self) -> float:
        """The loss-based figure alone: what a probe may try to confirm."""
        return self._loss_bps

    def remb_fresh(self, now: float) -> bool:
        return now - self._remb_at <= self.config.remb_ttl_s
