"""Attempt limits for API-key checks: per administrator id and per client address, failures in
a sliding window and checks in progress at once. Pure bookkeeping with an injected clock."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Beyond this many tracked ids/addresses, entries whose failures all left the window are dropped.
_PRUNE_ABOVE = 10_000


@dataclass
class _Track:
    failures: deque[float] = field(default_factory=deque)
    pending: int = 0


class _Table:
    def __init__(self, max_failures: int, max_pending: int, window_s: float) -> None:
        self.max_failures = max_failures
        self.max_pending = max_pending
        self.window_s = window_s
        self.tracks: dict[str, _Track] = {}

    def _expire(self, track: _Track, now: float) -> None:
        while track.failures and track.failures[0] <= now - self.window_s:
            track.failures.popleft()

    def retry_after(self, name: str, now: float) -> float | None:
        """Seconds until ``name`` may try again, or ``None`` when it may now."""
        track = self.tracks.get(name)
        if track is None or not self.max_failures:
            return None
        self._expire(track, now)
        if len(track.failures) < self.max_failures:
            return None
        # the failure that has to leave the window for one more attempt to be allowed
        oldest = track.failures[len(track.failures) - self.max_failures]
        return max(oldest + self.window_s - now, 0.001)

    def busy(self, name: str) -> bool:
        track = self.tracks.get(name)
        return bool(self.max_pending and track is not None and track.pending >= self.max_pending)

    def begin(self, name: str) -> None:
        self.tracks.setdefault(name, _Track()).pending += 1

    def end(self, name: str, now: float) -> None:
        track = self.tracks.get(name)
        if track is None:
            return
        track.pending = max(track.pending - 1, 0)
        self._drop_if_idle(name, track, now)

    def fail(self, name: str, now: float) -> None:
        track = self.tracks.setdefault(name, _Track())
        track.failures.append(now)
        while len(track.failures) > max(self.max_failures, 1):
            track.failures.popleft()
        if len(self.tracks) > _PRUNE_ABOVE:
            for other, t in list(self.tracks.items()):
                self._drop_if_idle(other, t, now)

    def clear(self, name: str) -> None:
        track = self.tracks.get(name)
        if track is not None:
            track.failures.clear()
            if not track.pending:
                del self.tracks[name]

    def _drop_if_idle(self, name: str, track: _Track, now: float) -> None:
        self._expire(track, now)
        if not track.pending and not track.failures:
            self.tracks.pop(name, None)


@dataclass(frozen=True)
class Refusal:
    """Why an attempt is refused now, and when to come back (whole seconds, at least 1)."""

    message: str
    retry_after_s: int


class AttemptLimiter:
    def __init__(
        self,
        failures_per_id: int,
        failures_per_address: int,
        window_s: float,
        pending_per_id: int,
        pending_per_address: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_id = _Table(failures_per_id, pending_per_id, window_s)
        self.by_address = _Table(failures_per_address, pending_per_address, window_s)
        self.clock = clock
        self.refused = 0

    def check(self, admin_id: str, address: str) -> Refusal | None:
        """``None`` when a key check for ``admin_id`` from ``address`` may start now."""
        now = self.clock()
        wait = self.by_id.retry_after(admin_id, now)
        if wait is not None:
            return self._refuse(f"too many failed API key attempts for {admin_id}", wait)
        wait = self.by_address.retry_after(address, now)
        if wait is not None:
            return self._refuse(f"too many failed API key attempts from {address}", wait)
        if self.by_id.busy(admin_id):
            return self._refuse(f"API key checks for {admin_id} are already in progress", 1.0)
        if self.by_address.busy(address):
            return self._refuse(f"API key checks from {address} are already in progress", 1.0)
        return None

    def _refuse(self, message: str, wait_s: float) -> Refusal:
        self.refused += 1
        seconds = max(math.ceil(wait_s), 1)
        return Refusal(f"{message}; retry in {seconds} s", seconds)

    def begin(self, admin_id: str, address: str) -> None:
        self.by_id.begin(admin_id)
        self.by_address.begin(address)

    def end(self, admin_id: str, address: str, ok: bool) -> None:
        now = self.clock()
        if ok:
            self.by_id.clear(admin_id)
        else:
            self.by_id.fail(admin_id, now)
            self.by_address.fail(address, now)
        self.by_id.end(admin_id, now)
        self.by_address.end(address, now)

    def failed(self, address: str) -> None:
        """A failure that needed no hash (e.g. an unknown administrator id)."""
        self.by_address.fail(address, self.clock())
