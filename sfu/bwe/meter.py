"""Bitrate over a sliding window, in buckets (no per-packet allocation)."""

from __future__ import annotations


class RateMeter:
    """Bytes counted into ``buckets`` slots of ``window_s / buckets`` seconds each."""

    __slots__ = ("_width", "_slots", "_index", "_start")

    def __init__(self, window_s: float = 1.0, buckets: int = 10) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window and bucket count must be positive")
        self._width = window_s / buckets
        self._slots = [0] * buckets
        self._index = -1  # absolute bucket number of the newest slot
        self._start = 0.0

    def _roll(self, now: float) -> int:
        index = int(now / self._width)
        if self._index < 0:
            self._index = index
            self._start = now
        elif index > self._index:
            n = len(self._slots)
            for i in range(self._index + 1, min(index, self._index + n) + 1):
                self._slots[i % n] = 0
            self._index = index
        return index

    def add(self, nbytes: int, now: float) -> None:
        index = self._roll(now)
        if index >= self._index - len(self._slots) + 1:
            self._slots[index % len(self._slots)] += nbytes

    def bps(self, now: float) -> float:
        """Bits per second over the window (over the time seen so far while it fills)."""
        if self._index < 0:
            return 0.0
        self._roll(now)
        window = self._width * len(self._slots)
        span = min(window, max(self._width, now - self._start))
        return sum(self._slots) * 8 / span
