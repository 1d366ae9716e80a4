"""How much retransmission one subscriber connection may be sent.

A NACK from a receiver whose link is already full must not be answered with more than the link
can carry: retransmitted bytes draw from a token bucket refilled at ``share`` × the connection's
estimate; a packet that can no longer arrive in time (older than ``max_age_s`` minus the RTT)
is skipped; and a NACK asking for more than ``max_packets`` at once is answered with one
keyframe request instead (the loss is too large to repair packet by packet). A packet of the
keyframe the subscriber's picture starts from is repaired past what the bucket holds (``owe``):
without it the picture stays frozen until the receiver gives up and asks for a keyframe (~3 s) —
but only up to a debt of ``max_debt_s`` of the estimate (at least ``min_debt_bytes``): in a full
queue the keyframe's packets and their repairs are lost again and again, and unbounded, such
repairs (163 in one minute of a 60 % cap) fed the line more than it could carry.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BudgetConfig:
    share: float = 0.10  # of the estimate
    burst_s: float = 0.25  # bucket depth, in seconds of refill
    max_age_s: float = 1.0
    max_packets: int = 64
    max_debt_s: float = 0.15  # what ``owe`` may take past the bucket, in seconds of the estimate
    min_debt_bytes: int = 16_000  # ... but at least this (a small keyframe's packets)


class RetransmitBudget:
    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self._tokens = 0.0
        self._at = -1.0
        self.sent_bytes = 0
        self.refused = 0

    def _refill(self, estimate_bps: float, now: float) -> float:
        c = self.config
        rate = c.share * max(0.0, estimate_bps) / 8.0  # bytes per second
        if self._at < 0:
            self._tokens = rate * c.burst_s
        else:
            self._tokens = min(rate * c.burst_s, self._tokens + rate * max(0.0, now - self._at))
        self._at = now
        return rate

    def too_many(self, count: int) -> bool:
        """A NACK this large is answered with a keyframe request instead."""
        return count > self.config.max_packets

    def in_time(self, age_s: float, rtt_ms: float) -> bool:
        return age_s + rtt_ms / 1000.0 <= self.config.max_age_s

    def owe(self, nbytes: int, estimate_bps: float, now: float) -> bool:
        """Take ``nbytes`` past what is left (a repair that must go: the keyframe a subscriber is
        waiting for): the bucket may go below zero, holding back the repairs after it, down to
        the debt limit; False (nothing taken) beyond it."""
        self._refill(estimate_bps, now)
        c = self.config
        limit = max(float(c.min_debt_bytes), c.max_debt_s * max(0.0, estimate_bps) / 8.0)
        if self._tokens - nbytes < -limit:
            return False  # (the caller then asks ``allow``, which counts the refusal)
        self._tokens -= nbytes
        self.sent_bytes += nbytes
        return True

    def allow(self, nbytes: int, estimate_bps: float, now: float) -> bool:
        self._refill(estimate_bps, now)
        if self._tokens < nbytes:
            self.refused += 1
            return False
        self._tokens -= nbytes
        self.sent_bytes += nbytes
        return True
