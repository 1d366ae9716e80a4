"""What a publisher's uplink can carry, from when its packets were sent and when they arrived.

The receive-side half of a REMB sender (the part Chrome's own receiver runs for the streams it
gets; we run it for the streams publishers send us). A publisher stamps each video packet with
``abs-send-time`` (its pacer's clock, 24-bit 6.18 fixed-point seconds); the one-way delay
``arrival − send`` is unknown up to a constant, but its *growth* is the bottleneck's queue:

* the **queue** is the smallest one-way delay of the last ``recent_ms`` (a minimum, so jitter
  spikes do not count) above the smallest of the last ``baseline_s`` (the empty-queue delay);
* a queue above ``overuse_ms`` that is not draining is **overuse**: the estimate drops to
  ``backoff`` × what actually arrives (at most once per ``decrease_interval_ms``), the way GCC's
  AIMD does; the publisher's encoder follows the REMB within a frame or two;
* otherwise the estimate grows by ``growth`` per second, but never beyond ``headroom`` × what
  arrives, so a sender that is not using its allowance is not promised ever more;
* **a delay that does not drain is not a queue**: when, ``rebase_ms`` after an overuse began,
  the publisher sends under ``rebase_ratio`` × what arrived then and the queue is still at half
  its level or more, the path itself got longer (a route change, a relay, a rural link's radio
  hop): the baseline is re-taken from now and the estimate restored to what it was before (a
  real queue empties within that time once the sender is that far under the line's rate). The
  weak-link harness showed why: 45 ms more path delay held a publisher at 80 kbit/s for good.

Pure: packets and a millisecond clock in, bits per second out (tests drive it with a fake
queue). Loss is the other half (``sfu.bwe.estimator.LinkEstimator`` fed by our receiver
reports); the REMB we send is the smaller of the two.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

ABS_SEND_TIME_WRAP = 1 << 24  # 64 s of 1/262144 s units
_UNITS_PER_MS = (1 << 18) / 1000.0


@dataclass
class ArrivalConfig:
    min_bps: float = 80_000.0
    max_bps: float = 2_500_000.0
    recent_ms: int = 150  # the queue is measured over this window
    baseline_s: int = 15  # the empty-queue delay: the smallest over this many seconds
    overuse_ms: float = 40.0  # a queue above this (and not draining) is overuse...
    overuse_windows: int = 3  # ...for this many windows in a row (a lagging event loop is not)
    burst_ratio: float = 0.5  # a window read faster than this × how it was sent: a stall
    backoff: float = 0.85  # on overuse: this × the arrival rate
    growth: float = 1.08  # per second while the queue stays short
    headroom: float = 1.5  # the estimate stays within this × the arrival rate (+ 50 kbit/s)
    rate_window_ms: int = 1000  # arrival rate over this window
    decrease_interval_ms: int = 500
    hold_after_decrease_ms: int = 1000  # no growth right after a decrease
    rebase_ms: int = 2000  # an overuse whose queue has not drained after this long ...
    rebase_ratio: float = 0.8  # ... although the publisher sends under this × the rate then: re-base


class ArrivalEstimator:
    def __init__(self, config: ArrivalConfig | None = None) -> None:
        self.config = c = config or ArrivalConfig()
        self.estimate_bps = c.max_bps  # until the first overuse: no limit of our own
        self.queue_ms = 0.0
        self.overuse = False
        self.decreases = 0
        self._send_ms = 0.0  # unwrapped send time of the newest packet
        self._last_raw = -1
        self._recent_min = float("inf")  # smallest one-way delay since the last update
        self._second_min = float("inf")  # smallest in the current second
        self._second = -1
        self._minima: deque[float] = deque(maxlen=c.baseline_s)  # per-second minima
        self._sizes: deque[tuple[int, int]] = deque()  # (arrival_ms, bytes) in the rate window
        self._window_bytes = 0
        self._last_update_ms = -1
        self._first_ms = -1
        self._last_decrease_ms = -10**9
        self._previous_queue = 0.0
        self._over = 0  # windows in a row above overuse_ms
        # send/arrival span of the current window (ms): a burst read after the event loop
        # stalled arrives much faster than it was sent, and is not the line's queue
        self._win_send0 = self._win_arr0 = self._win_send1 = self._win_arr1 = -1.0
        self.stalls = 0
        self.holds = 0  # updates skipped because our own event loop was late
        # the overuse episode under way: when it began, what arrived then, the queue then and
        # the estimate before its first decrease (-1: none under way)
        self._episode_ms = -1
        self._episode_incoming = 0.0
        self._episode_queue = 0.0
        self._episode_estimate = 0.0
        self.rebases = 0  # times a standing delay was taken for a longer path

    def set_max(self, bps: float) -> None:
        """The most we ever tell the publisher (``media.remb_bitrate``); before the first
        overuse the estimate sits there, so an unimpaired uplink is never held back."""
        self.config.max_bps = bps
        if self.decreases == 0 or self.estimate_bps > bps:
            self.estimate_bps = bps

    # -- input ----------------------------------------------------------------------------

    def on_packet(self, abs_send_time: int, arrival_ms: int, size: int) -> None:
        """One video packet: its 24-bit abs-send-time, when it arrived (ms) and its size."""
        raw = abs_send_time & (ABS_SEND_TIME_WRAP - 1)
        if self._last_raw < 0:
            self._send_ms = 0.0
        else:
            delta = (raw - self._last_raw) & (ABS_SEND_TIME_WRAP - 1)
            if delta >= ABS_SEND_TIME_WRAP // 2:  # reordered (sent before the newest one)
                delta -= ABS_SEND_TIME_WRAP
            self._send_ms += delta / _UNITS_PER_MS
        self._last_raw = raw
        owd = arrival_ms - self._send_ms
        if self._win_send0 < 0:
            self._win_send0, self._win_arr0 = self._send_ms, float(arrival_ms)
        self._win_send1, self._win_arr1 = self._send_ms, float(arrival_ms)
        if owd < self._recent_min:
            self._recent_min = owd
        second = arrival_ms // 1000
        if second != self._second:
            if self._second >= 0 and self._second_min != float("inf"):
                self._minima.append(self._second_min)
            self._second = second
            self._second_min = owd
        elif owd < self._second_min:
            self._second_min = owd
        if self._first_ms < 0:
            self._first_ms = arrival_ms
        self._sizes.append((arrival_ms, size))
        self._window_bytes += size

    # -- output ---------------------------------------------------------------------------

    def incoming_bps(self, now_ms: int) -> float:
        c = self.config
        while self._sizes and now_ms - self._sizes[0][0] > c.rate_window_ms:
            self._window_bytes -= self._sizes.popleft()[1]
        if self._first_ms < 0:
            return 0.0
        # over the window, or over what has passed since the first packet when that is shorter
        span = min(c.rate_window_ms, max(50, now_ms - self._first_ms))
        return self._window_bytes * 8000.0 / span

    def _standing_delay(self, now_ms: int, incoming: float) -> bool:
        """Is the overuse under way a longer path rather than a queue? Ends the episode when
        the queue has drained or the path was re-based (the caller re-takes the baseline)."""
        c = self.config
        if self._episode_ms < 0:
            return False
        if self.queue_ms < 0.5 * self._episode_queue:
            self._episode_ms = -1  # drained: it was a queue, and it is gone
            return False
        if (now_ms - self._episode_ms >= c.rebase_ms and incoming > 0
                and incoming < c.rebase_ratio * self._episode_incoming):
            self.rebases += 1
            self.estimate_bps = max(self.estimate_bps, self._episode_estimate)
            self._episode_ms = -1
            return True
        return False

    def update(self, now_ms: int, busy: bool = False) -> bool:
        """Re-evaluate (call every ``recent_ms`` or so); True when the estimate just dropped,
        which is when a REMB should go out at once rather than with the next report. ``busy``:
        our own event loop ran late lately, so delays may be our socket's backlog: hold."""
        c = self.config
        if self._last_update_ms >= 0 and now_ms - self._last_update_ms < c.recent_ms:
            return False
        if busy:
            self._last_update_ms = now_ms
            self._recent_min = float("inf")
            self._win_send0 = -1.0
            self._over = 0
            self.holds += 1
            return False
        elapsed = (now_ms - self._last_update_ms) / 1000.0 if self._last_update_ms >= 0 else 0.0
        self._last_update_ms = now_ms
        recent, self._recent_min = self._recent_min, float("inf")
        send_span = self._win_send1 - self._win_send0
        arrival_span = self._win_arr1 - self._win_arr0
        self._win_send0 = -1.0
        if recent == float("inf"):
            return False  # nothing arrived: hold
        baseline = min(min(self._minima, default=recent), self._second_min, recent)
        self.queue_ms = recent - baseline
        incoming = self.incoming_bps(now_ms)
        if self._standing_delay(now_ms, incoming):
            self._minima.clear()
            self._second_min = recent
            self.queue_ms = 0.0
            self._over = 0
        draining = self.queue_ms < self._previous_queue - 5.0
        self._previous_queue = self.queue_ms
        stalled = send_span > 20.0 and arrival_span < c.burst_ratio * send_span
        if stalled:
            self.stalls += 1
        if self.queue_ms > c.overuse_ms and not draining and not stalled:
            self._over += 1
        elif not stalled:
            self._over = 0
        self.overuse = self._over >= c.overuse_windows
        if self.overuse and self._episode_ms < 0:
            self._episode_ms, self._episode_incoming = now_ms, incoming
            self._episode_queue, self._episode_estimate = self.queue_ms, self.estimate_bps
        if self.overuse:
            if now_ms - self._last_decrease_ms >= c.decrease_interval_ms and incoming > 0:
                # at most halving per decrease: a burst of late packets must not floor it
                target = max(c.min_bps, c.backoff * incoming, 0.5 * self.estimate_bps)
                if target < self.estimate_bps:
                    self.estimate_bps = target
                    self._last_decrease_ms = now_ms
                    self.decreases += 1
                    return True
            return False
        if now_ms - self._last_decrease_ms >= c.hold_after_decrease_ms and elapsed > 0:
            ceiling = min(c.max_bps, c.headroom * incoming + 50_000.0)
            grown = self.estimate_bps * c.growth**elapsed
            if self.estimate_bps < ceiling:
                self.estimate_bps = min(grown, ceiling)
        return False
