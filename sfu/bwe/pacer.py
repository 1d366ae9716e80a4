"""A leaky bucket for one constrained subscriber connection's video.

A keyframe of the 720p layer is 30–100 KB that the fan-out hands to the socket in a
millisecond; a 2 Mbit/s school line's queue (a few hundred ms) drops its tail, and that
classroom then waits for the next keyframe. Paced, the same packets leave at ``rate_bps``
(a multiple of the link's estimate) and the line's queue never sees the burst.

Pure: items, sizes and a clock in; what is due out. The bucket holds up to ``burst_ms`` worth
of credit; a packet goes when the credit is not negative (so one packet may overdraw it). If
what is queued would take longer than ``max_queue_ms`` to drain at ``rate_bps``, the bucket
drains it faster (as a browser's own pacer does) rather than letting the delay grow: the
link's layer choice, not the pacer, is what fits the stream to the line.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PacerConfig:
    factor: float = 2.0  # pace at this × the link's estimate
    burst_ms: float = 10.0  # credit the bucket may hold
    max_queue_ms: float = 400.0  # drain faster rather than queue for longer
    min_bps: float = 200_000.0


class Pacer(Generic[T]):
    def __init__(self, config: PacerConfig | None = None) -> None:
        self.config = config or PacerConfig()
        self.rate_bps = 0.0
        self._credit = 0.0  # bytes
        self._at = -1.0
        self._queue: deque[tuple[T, int]] = deque()
        self.queued_bytes = 0

    def set_estimate(self, estimate_bps: float) -> None:
        c = self.config
        self.rate_bps = max(c.min_bps, c.factor * estimate_bps)

    def set_rate(self, bps: float) -> None:
        """Pace at ``bps`` itself (a line's measured rate), not a multiple of an estimate."""
        self.rate_bps = max(self.config.min_bps, bps)

    def __len__(self) -> int:
        return len(self._queue)

    def _rate(self) -> float:
        """Bytes per second now: the configured rate, or faster when the queue is long."""
        rate = self.rate_bps / 8.0
        drain = self.queued_bytes / (self.config.max_queue_ms / 1000.0)
        return max(rate, drain)

    def _refill(self, now: float) -> None:
        if self._at < 0:
            self._at = now
            self._credit = self.rate_bps / 8.0 * self.config.burst_ms / 1000.0
            return
        dt = max(0.0, now - self._at)
        self._at = now
        cap = self.rate_bps / 8.0 * self.config.burst_ms / 1000.0
        self._credit = min(cap, self._credit + dt * self._rate())

    def push(self, item: T, size: int) -> None:
        self._queue.append((item, size))
        self.queued_bytes += size

    def due(self, now: float) -> list[T]:
        """The items that may leave now, oldest first."""
        self._refill(now)
        out = []
        while self._queue and self._credit >= 0:
            item, size = self._queue.popleft()
            self.queued_bytes -= size
            self._credit -= size
            out.append(item)
        return out

    def next_due(self) -> float | None:
        """Seconds until the head of the queue may leave (None: nothing queued)."""
        if not self._queue:
            return None
        if self._credit >= 0:
            return 0.0
        return -self._credit / self._rate()

    def flush(self) -> list[T]:
        """Everything queued, at once (pacing turned off)."""
        out = [item for item, _ in self._queue]
        self._queue.clear()
        self.queued_bytes = 0
        return out
