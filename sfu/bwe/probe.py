"""Probing: finding out whether a subscriber's link can take the next layer before switching.

A REMB (the receiver's delay-based estimate) never runs far ahead of what arrives (about 1.5 ×)
and climbs only a few per cent a second, so a link fed a low layer would show room for a higher
one late or never. When the loss-based estimate says a higher allocation may fit but the
REMB-bounded one does not, the :class:`Prober` asks for padding so that ``target / 1.4`` arrives
(at most ``max_ratio`` × sent, ``max_bps`` in all) for ``duration_s``, and goes on while REMB
climbs. When REMB has come to 85 % of the target with nothing saying "too much", the probe
succeeded (``succeeded_bps``: the caller lifts its REMB bound to the target). When congestion
shows (a falling REMB, loss), it failed: the next try waits ``cooldown_s``, doubling up to
``max_cooldown_s``. A failed probe costs padding and a little queueing, never a frozen picture.
"""

from __future__ import annotations

from dataclasses import dataclass

REMB_HEADROOM = 1.4
SUCCESS_SHARE = 0.85  # REMB at this share of the target (just over the better allocation's cost) = success


@dataclass
class ProbeConfig:
    duration_s: float = 1.5
    max_ratio: float = 1.0  # padding at most this × what is sent now
    max_bps: float = 2_500_000.0
    cooldown_s: float = 4.0
    max_cooldown_s: float = 8.0  # short: a lifted cap is found again within seconds
    # no probe starts within this long of congestion: the step case's log showed a probe toward
    # the layer just left, started at the very overuse that left it (padding into a full queue)
    quiet_s: float = 1.5
    # what arrives during a probe is target / headroom: the receiver's REMB runs up to ~1.5 ×
    # what arrives (so 1.4 gets REMB to the target); with our own transport-cc estimate the
    # target itself must arrive (1.0): an upgrade is made only on what the line was seen to carry
    headroom: float = REMB_HEADROOM


class Prober:
    def __init__(self, config: ProbeConfig | None = None) -> None:
        self.config = config or ProbeConfig()
        self.padding_bps = 0.0  # what to send as padding now (0: no probe running)
        self.target_bps = 0.0
        self._until = -1.0
        self._confirmed_at_start = 0.0
        self._blocked_until = -1e9
        self._cooldown = 0.0
        self.probes = 0
        self.failed = 0
        self.succeeded_bps = 0.0  # set when a probe succeeds; the caller takes it (and resets it)

    @property
    def active(self) -> bool:
        return self.padding_bps > 0

    def update(self, wanted_bps: float, confirmed_bps: float, sent_bps: float, congested_at: float,
               now: float) -> float:
        """``wanted_bps``: what the better allocation needs; ``confirmed_bps``: the REMB-bounded
        estimate. Returns the padding rate to send now (0: none)."""
        c = self.config
        if self.active:
            if congested_at >= self._until - c.duration_s:  # congestion during the probe
                self.failed += 1
                self._cooldown = min(c.max_cooldown_s, max(c.cooldown_s, 2 * self._cooldown))
                self._blocked_until = now + self._cooldown
                self._stop()
            elif confirmed_bps >= self.target_bps:
                self._cooldown = 0.0
                self._stop()
            elif now >= self._until:
                if confirmed_bps >= SUCCESS_SHARE * self.target_bps:
                    # the receiver's own estimate has come most of the way, and nothing said
                    # "too much": the link takes it (REMB climbs only a few % a second behind)
                    self.succeeded_bps = self.target_bps
                    self._cooldown = 0.0
                    self._stop()
                elif confirmed_bps > 1.05 * self._confirmed_at_start:
                    # climbing: go on
                    self._until = now + c.duration_s
                    self._confirmed_at_start = confirmed_bps
                    self.padding_bps = self._padding(self.target_bps, sent_bps)
                else:
                    self._blocked_until = now + c.cooldown_s  # no progress: try again later
                    self._stop()
            return self.padding_bps
        if (wanted_bps <= confirmed_bps or now < self._blocked_until or sent_bps <= 0
                or now - congested_at < c.quiet_s):
            return 0.0
        self.target_bps = wanted_bps
        self._confirmed_at_start = confirmed_bps
        self.padding_bps = self._padding(wanted_bps, sent_bps)
        if self.padding_bps <= 0:
            self.padding_bps = 0.0
            return 0.0
        self._until = now + c.duration_s
        self.probes += 1
        return self.padding_bps

    def fail(self, now: float) -> None:
        """End a running probe as failed now (the caller saw the queue grow under it)."""
        if not self.active:
            return
        c = self.config
        self.failed += 1
        self._cooldown = min(c.max_cooldown_s, max(c.cooldown_s, 2 * self._cooldown))
        self._blocked_until = now + self._cooldown
        self._stop()

    def _padding(self, target_bps: float, sent_bps: float) -> float:
        # REMB runs at most ~1.5 x what arrives: arriving at target / 1.4 lets it reach target
        c = self.config
        return max(0.0, min(target_bps / c.headroom - sent_bps, c.max_ratio * sent_bps, c.max_bps))

    def _stop(self) -> None:
        self.padding_bps = 0.0
        self.target_bps = 0.0
        self._until = -1.0
