"""A send-side, delay-based estimate from transport-wide congestion control feedback (TWCC).

Every video packet we send a subscriber that negotiated transport-cc carries a transport-wide
sequence number; the connection remembers when it sent each one (``Egress.twcc_sent``). The
receiver reports when each arrived. From the two:

* **queue delay** — one-way delay (arrival − send, with an unknown clock offset) minus its
  minimum over ``base_window_s``. The least-delayed packet of each feedback stands for the
  feedback, so a keyframe's own burst (later packets queued behind earlier ones) or a jitter
  spike does not count as a queue; a real standing queue raises even the least-delayed packet.
* **acknowledged rate** — what arrived over the last ``acked_window_s`` of arrival time.

Then a small AIMD, after GCC's shape but tuned for an SFU that can switch layers at once:

* the queue above a threshold and growing (or above ``strong_ms`` and twice the threshold) in
  ``overuse_feedbacks`` feedbacks in a row (a keyframe's burst queues for a moment and drains;
  a line too narrow for what is sent keeps growing): **overuse** — the estimate drops to
  ``decrease`` × the acknowledged rate; again only if the queue has not begun to drain since
  (or after ``drain_s``). The threshold is ``overuse_ms`` or
  ``jitter_factor`` × the queue signal's own feedback-to-feedback jitter, whichever is larger
  (a receiver short of CPU, or a relay, stamps arrivals a few ms late at random);
* the queue under ``clear_ms``: the estimate is at least the acknowledged rate (it arrived
  without a queue: proven) and grows by ``growth`` per second, but not past ``headroom`` × the
  acknowledged rate (a link is only known to carry what it carried; probing with padding is
  how the acknowledged rate, and so the estimate, goes up). Sending less than the estimate
  lowers it only after ``hold_s`` (long enough for the layer selector to act on a probe's
  result, short enough that a probe's figure is not trusted after the line may have changed),
  and only to ``headroom`` × the most that arrived over ``support_window_s`` (an encoder's
  output dips and peaks: a dip is not a narrower line);
* in between: hold;
* **a burst of our own is not a queue**: the queue delay compared with the thresholds is what
  is left after the queue a line of the estimate's capacity would have held of what we sent
  (a fluid model of our own send times: a keyframe of the layer just switched to, forwarded at
  the publisher's pace, fills a 3-Mbit/s line's queue for 0.1-0.3 s even when the layer fits
  with room to spare; counted as overuse, it sent the classroom back down within half a second,
  two keyframe rounds for nothing, and again at the next probe). Only while what we sent over
  ``sustained_s`` is within the estimate and no probe is under way (``explain=False``): there
  the queue is the answer to the question asked. At most ``explain_max_ms`` is explained; a
  line narrower than the estimate still shows its queue growing past the model's;
* **what a standing queue lets through is the line's rate**: a FIFO in front of a narrow line
  sends at that line's rate for as long as it holds anything, so what arrived over the newest
  run of packets that each waited in the queue (at least ``drain_min_s`` of them) bounds the
  decrease's base too. The recent arrivals alone do not: at a cap's onset they still hold what
  arrived before the queue formed and a token bucket's burst (at a 0.47-Mbit/s cap the first
  decrease went to 0.8 Mbit/s, a layer that overfilled the line, and a second downgrade followed);
* **a standing delay that does not drain is not a queue**: once we *send* under
  ``rebase_ratio`` × what arrived when the overuse began, have lost under ``rebase_max_loss``
  of the packets since (a full tail-drop queue loses most of what it is sent; a longer path
  loses next to nothing) and the delay has still not fallen to
  half its level after ``rebase_s``, the path itself got longer (a route change, a relay, a
  radio link's scheduler): the base is re-taken from now and the estimate restored to what it was
  before the episode (it was a false alarm). A real queue drains within that time once the sending rate is that
  far below the line's (a 200-ms tail-drop queue empties in ~0.8 s at 80 %).
* **a step is not a queue either**: a queue delay that jumps from none to over the threshold
  in one feedback and then stays level (not growing by more than its jitter) for ``step_s`` is a
  path that got longer at once, if what arrives keeps up with what is sent (over 70 %: a route
  change loses a few packets too): the base is re-taken without backing off at all. A line
  that is too narrow keeps growing after the jump and is an overuse one feedback later than
  otherwise; a full tail-drop queue is level too, but it delivers only the line's rate of what
  is sent.

Unlike Chromium's receive-side REMB, which after an overuse climbs by tens of kbit/s a second,
this one climbs as fast as the queue stays empty: a probe's padding that arrives without a
queue confirms its rate within about a second. The overuse detector is what keeps that safe.
Pure: the caller passes the time; tests drive it with synthetic feedback and a fake clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class TwccConfig:
    initial_bps: float = 1_000_000.0
    min_bps: float = 80_000.0
    max_bps: float = 20_000_000.0
    overuse_ms: float = 20.0  # queue delay above this and growing: overuse
    # queue delay above this: over, growing or not (a receiver short of CPU stamps arrivals
    # 50-100 ms late at times; a line that is really too narrow passes it within a few feedbacks)
    strong_ms: float = 120.0
    overuse_feedbacks: int = 2  # over in this many feedbacks in a row: overuse
    clear_ms: float = 8.0  # queue delay below this: no queue, the estimate may grow
    base_window_s: float = 20.0  # the one-way delay's minimum is taken over this long
    acked_window_s: float = 0.5
    recent_window_s: float = 0.25  # a decrease is a share of what arrived over this long (if less)
    decrease: float = 0.85  # × the acknowledged rate on overuse
    decrease_interval_s: float = 0.25
    growth: float = 1.5  # per second while there is no queue
    headroom: float = 1.1  # the estimate grows to at most this × the acknowledged rate (+ 10 kbit/s)
    jitter_factor: float = 4.0  # the overuse threshold is at least this × the queue signal's jitter
    drain_s: float = 1.0  # after a decrease, another only if the queue grew since, or after this long
    hold_s: float = 3.0  # an estimate above headroom × what arrives is kept this long, then lowered ...
    support_window_s: float = 5.0  # ... to headroom × the most that arrived over this long
    rebase_s: float = 1.5  # an overuse whose delay has not drained after this long ...
    rebase_ratio: float = 0.8  # ... although we send under this × what arrived when it began: re-base
    rebase_max_loss: float = 0.1  # ... and lose less than this share (a full tail-drop queue loses much)
    drain_min_s: float = 0.1  # the line's rate from a run of queued arrivals at least this long ...
    drain_min_packets: int = 6  # ... and of at least this many packets
    step_s: float = 0.5  # a jump in the delay that stays level this long: a longer path
    explain_bursts: bool = True  # subtract the queue our own bursts make on a line of the estimate
    sustained_s: float = 1.0  # ... while what was sent over this long is within the estimate
    explain_max_ms: float = 400.0  # ... and at most this much of it


# One packet as the estimator sees it: when we sent it (our clock, s), when it arrived (the
# receiver's clock, s; None: lost) and its size in bytes.
Packet = tuple[float, float | None, int]



class _SendWindow:
    """(send time, bytes) of reported packets, in send order, with their byte sum: those sent
    within ``window_s`` of the latest one (the window given to the last ``add``)."""

    __slots__ = ("_items", "bytes")

    def __init__(self) -> None:
        self._items: deque[tuple[float, int]] = deque()
        self.bytes = 0

    def add(self, packets: list[Packet], window_s: float) -> None:
        items = self._items
        for s_at, _, z in packets:
            items.append((s_at, z))
            self.bytes += z
        while items and items[0][0] < items[-1][0] - window_s:
            self.bytes -= items.popleft()[1]

    def span(self) -> float:
        return self._items[-1][0] - self._items[0][0] if self._items else 0.0

class TwccEstimator:
    def __init__(self, config: TwccConfig | None = None) -> None:
        self.config = c = config or TwccConfig()
        self.bps = c.initial_bps
        self.queue_ms = 0.0
        self.acked_bps = 0.0
        self.loss = 0.0  # share of the last feedback's packets not received
        self.overused_at = -1e9
        self.feedbacks = 0
        self.fed_at = -1e9  # when the last feedback came
        self.packets = 0
        self._arrivals: deque[tuple[float, int]] = deque()  # (arrival s, bytes), arrival order
        self._arrived_bytes = 0
        self._minima: deque[tuple[float, float]] = deque()  # (now, min delay s), increasing delays
        self._last_decrease = -1e9
        self._queue_at_decrease = 0.0
        self._supported_at = -1e9
        self._over_count = 0
        self._acked_max: deque[tuple[float, float]] = deque()  # (now, acked), decreasing rates
        self.over = False  # the last feedback's queue was above the threshold (one is not yet overuse)
        self.jitter_ms = 0.0
        self.threshold_ms = self.config.overuse_ms
        self._updated_at = -1.0
        self._acked_since = -1.0  # arrival time of the first packet counted
        # the overuse episode under way: when it began, what arrived then, the queue then and
        # the estimate its first decrease set (-1: none under way)
        self._episode_at = -1.0
        self._episode_acked = 0.0
        self._episode_queue_ms = 0.0
        self._episode_bps = 0.0
        self._episode_packets = 0  # packets reported since the episode began, and lost of them
        self._episode_lost = 0
        # the newest run of arrivals that each waited in a queue (arrival s, bytes): a FIFO in
        # front of a narrow line sends at the line's rate for as long as it holds anything
        self._queued: deque[tuple[float, int]] = deque()
        self._queued_bytes = 0
        self.rebases = 0  # times a standing delay was taken for a longer path
        self._step_at = -1.0  # when the queue delay jumped from none (-1: no jump under way)
        self.steps = 0  # jumps re-based as a longer path
        self._sent = _SendWindow()  # what the reported packets carried, over acked_window_s
        self._sustained = _SendWindow()  # the same over sustained_s
        # the fluid model of our own sends (bytes a line of the estimate's rate would still hold
        # when the last modelled packet left us, and when that was)
        self._backlog = 0.0
        self._backlog_at = -1e9
        self.raw_queue_ms = 0.0  # the queue delay before our own bursts are taken out
        self.explained_ms = 0.0  # what the model took out of the last feedback's queue

    def _explained(self, packets: list[Packet], explain: bool) -> list[float]:
        """Per packet (in feedback order), the queueing delay (s) a line of the estimate's
        capacity would have given it, from our own send times and sizes alone (0 when not
        explaining: see the module's doc)."""
        c = self.config
        sustained = self._sustained
        sustained.add(packets, c.sustained_s)
        span = sustained.span()
        within = span >= 0.5 * c.sustained_s and sustained.bytes * 8 / span <= self.bps
        if not (explain and c.explain_bursts and within):
            self._backlog = 0.0
            if packets:
                self._backlog_at = max(self._backlog_at, packets[-1][0])
            return [0.0] * len(packets)
        rate = max(self.bps, c.min_bps) / 8  # bytes per second
        cap = c.explain_max_ms / 1000
        out = []
        for s_at, _, z in packets:
            if s_at > self._backlog_at:
                self._backlog = max(0.0, self._backlog - (s_at - self._backlog_at) * rate)
                self._backlog_at = s_at
            out.append(min(cap, self._backlog / rate))  # waits behind what is still queued
            self._backlog += z
        return out

    def on_feedback(self, packets: list[Packet], now: float, explain: bool = True) -> bool:
        """One feedback's packets (in sequence order). Returns True if it said "overuse".
        ``explain=False``: no burst of ours is taken out of the queue (a probe is under way)."""
        c = self.config
        got: list[tuple[float, float, int]] = [(s, r, z) for s, r, z in packets if r is not None]
        if not packets:
            return False
        self.feedbacks += 1
        self.fed_at = now
        self.packets += len(packets)
        self.loss = 1.0 - len(got) / len(packets)
        self._sent.add(packets, c.acked_window_s)
        waits = self._explained(packets, explain)
        if not got:
            self._grow_or_hold(now, overuse=False)
            return False
        # acknowledged rate over the last acked_window_s of arrival time
        arrivals = self._arrivals
        by_arrival = sorted(got, key=lambda p: p[1])
        for _, r, z in by_arrival:
            if arrivals and r < arrivals[-1][0]:
                r = arrivals[-1][0]  # reordered: counted at the newest arrival
            arrivals.append((r, z))
            self._arrived_bytes += z
            if self._acked_since < 0:
                self._acked_since = r
        newest = arrivals[-1][0]
        while arrivals and arrivals[0][0] < newest - c.acked_window_s:
            self._arrived_bytes -= arrivals.popleft()[1]
        span = min(c.acked_window_s, newest - self._acked_since)
        if span >= 0.25:  # (over less, a burst's own spacing would pass for the rate)
            self.acked_bps = self._arrived_bytes * 8 / span
        # queue delay: the least-delayed packet of this feedback against the base (the base from
        # the delays as measured; the queue after what our own bursts explain)
        least = min(r - s for s, r, _ in got)
        unexplained = min(r - s - w for (s, r, _), w in zip(packets, waits, strict=True) if r is not None)
        minima = self._minima
        while minima and minima[-1][1] >= least:
            minima.pop()
        minima.append((now, least))
        while minima[0][0] < now - c.base_window_s:
            minima.popleft()
        self._track_queued(by_arrival, minima[0][1])
        if self._episode_at >= 0:
            self._episode_packets += len(packets)
            self._episode_lost += len(packets) - len(got)
        previous = self.queue_ms
        self.raw_queue_ms = (least - minima[0][1]) * 1000.0
        self.queue_ms = max(0.0, (unexplained - minima[0][1]) * 1000.0)
        self.explained_ms = self.raw_queue_ms - self.queue_ms
        # the threshold adapts to how much the queue signal jitters on its own (a receiver
        # short of CPU stamps arrivals late; a relay adds a few ms): at least overuse_ms, and
        # well above the usual feedback-to-feedback change
        if self.feedbacks > 1:
            self.jitter_ms += 0.05 * (abs(self.queue_ms - previous) - self.jitter_ms)
        threshold = max(c.overuse_ms, c.jitter_factor * self.jitter_ms)
        self.threshold_ms = threshold
        over = self.queue_ms > max(c.strong_ms, 2 * threshold) or (
            self.queue_ms > threshold and self.queue_ms > previous)
        if self._episode_at < 0 and (self._step_at >= 0 or (previous < c.clear_ms and self.queue_ms > threshold)):
            over = self._step(now, previous, threshold, over)
            if self._step_at < 0 and self.queue_ms == 0.0:  # re-based
                minima.clear()
                minima.append((now, least))
        # over for two feedbacks in a row: a keyframe's burst queues for a moment and then
        # drains (the next feedback's queue is shorter), a line that is too narrow keeps growing
        if self._standing_delay(now, over):
            minima.clear()
            minima.append((now, least))
            self.queue_ms = 0.0
            over = False
        self.over = over
        self._over_count = self._over_count + 1 if over else 0
        overuse = self._over_count >= c.overuse_feedbacks
        before = self.bps
        self._grow_or_hold(now, overuse, hold=over)
        if overuse and self._episode_at < 0:
            self._episode_at, self._episode_acked = now, self.acked_bps
            self._episode_queue_ms, self._episode_bps = self.queue_ms, before
            self._episode_packets = self._episode_lost = 0
        return overuse

    def _track_queued(self, by_arrival: list[tuple[float, float, int]], base: float) -> None:
        """Extend (or restart) the run of queued arrivals with this feedback's received packets
        (in arrival order)."""
        c = self.config
        least = c.overuse_ms / 2000.0  # waited at least half the overuse threshold: queued
        run = self._queued
        for s_at, r, z in by_arrival:
            if r - s_at - base >= least:
                run.append((r, z))
                self._queued_bytes += z
            elif run:
                run.clear()
                self._queued_bytes = 0
        while len(run) > 1 and run[0][0] < run[-1][0] - c.acked_window_s:
            self._queued_bytes -= run.popleft()[1]

    def drain_bps(self) -> float | None:
        """The line's rate as a standing queue shows it: what arrived over the newest run of
        queued packets (at least ``drain_min_s`` of them; the first one's bytes left before the
        run began). None without such a run."""
        run = self._queued
        if len(run) < self.config.drain_min_packets:
            return None
        span = run[-1][0] - run[0][0]
        if span < self.config.drain_min_s:
            return None
        return (self._queued_bytes - run[0][1]) * 8 / span

    def _step(self, now: float, previous: float, threshold: float, over: bool) -> bool:
        """A jump of the queue delay from none (see the module's doc): after the jump, "over"
        only if it keeps growing or what arrives falls behind what is sent (``over``: the usual
        rule's verdict, then); level for ``step_s``: re-based (``queue_ms`` set to 0)."""
        c = self.config
        span = self._sent.span()
        if span <= 0 or self.acked_bps < 0.7 * self._sent.bytes * 8 / span:
            self._step_at = -1.0  # only the line's rate gets through: a queue (a full one is level)
            return over
        if self._step_at < 0:
            self._step_at = now  # the jump itself: counts as usual (a queue grows on at once)
            return over
        if self.queue_ms < c.clear_ms:
            self._step_at = -1.0  # gone again: a spike
            return False
        if self.queue_ms > c.strong_ms or (self.queue_ms > threshold
                                           and self.queue_ms > previous + max(2.0, self.jitter_ms)):
            self._step_at = -1.0  # growing: a queue after all, the usual rules from now
            return True
        if now - self._step_at >= c.step_s:
            self._step_at = -1.0
            self.steps += 1
            self.rebases += 1
            self.queue_ms = 0.0
        return False

    def _standing_delay(self, now: float, over: bool) -> bool:
        """Is the overuse under way a longer path rather than a queue? (See the module's doc.)
        Ends the episode when the delay has drained or the path was re-based."""
        c = self.config
        if self._episode_at < 0:
            return False
        if not over and self.queue_ms < 0.5 * self._episode_queue_ms:
            self._episode_at = -1.0  # drained: it was a queue, and it is gone
            return False
        span = self._sent.span()
        sent_bps = self._sent.bytes * 8 / span if span > 0 else 0.0
        lossy = self._episode_lost > c.rebase_max_loss * max(1, self._episode_packets)
        if (now - self._episode_at >= c.rebase_s and sent_bps > 0 and not lossy
                and sent_bps < c.rebase_ratio * self._episode_acked
                and self.queue_ms >= 0.5 * self._episode_queue_ms):
            self.rebases += 1
            self.bps = max(self.bps, self._episode_bps)
            self._episode_at = -1.0
            return True
        return False

    def _recent_acked(self) -> float:
        """What arrived over the last ``recent_window_s``, if less than ``acked_bps``: when a
        line narrows at once (a cap, cross traffic), the longer window still holds what arrived
        before the queue formed, and a decrease to a share of that picks a layer that overflows
        again (two switches and two freezes instead of one)."""
        c = self.config
        arrivals = self._arrivals
        if not arrivals:
            return self.acked_bps
        newest = arrivals[-1][0]
        total, oldest = 0, newest
        for at, size in reversed(arrivals):
            if at < newest - c.recent_window_s:
                break
            total, oldest = total + size, at
        span = newest - oldest
        drain = self.drain_bps()
        best = self.acked_bps if drain is None else min(self.acked_bps, drain)
        if span < 0.8 * c.recent_window_s:
            return best
        return min(best, total * 8 / span)

    def confirm(self, bps: float, now: float) -> None:
        """A probe carried ``bps`` without a queue: the estimate is at least that (and it counts
        as carried now)."""
        if bps > self.bps:
            self.bps = min(self.config.max_bps, bps)
        self._supported_at = now

    def _recent_max(self, now: float) -> float:
        """The highest acknowledged rate seen over the last ``support_window_s``."""
        window = self._acked_max
        while window and window[-1][1] <= self.acked_bps:
            window.pop()
        window.append((now, self.acked_bps))
        while window[0][0] < now - self.config.support_window_s:
            window.popleft()
        return window[0][1]

    def _grow_or_hold(self, now: float, overuse: bool, hold: bool = False) -> None:
        c = self.config
        dt = 0.0 if self._updated_at < 0 else max(0.0, min(1.0, now - self._updated_at))
        self._updated_at = now
        if overuse:
            self.overused_at = now
            # once decreased, again only if the queue has not started to drain since: a queue
            # takes a while to empty, and each decrease lowers what arrives (and so the next
            # decrease's base) — without this, one overuse would spiral down to min_bps
            again = now - self._last_decrease >= c.decrease_interval_s and (
                now - self._last_decrease >= c.drain_s or self.queue_ms >= self._queue_at_decrease)
            if again and self.acked_bps > 0:
                self.bps = max(c.min_bps, min(self.bps, c.decrease * self._recent_acked()))
                self._last_decrease = now
                self._queue_at_decrease = self.queue_ms
            return
        if self.queue_ms < c.clear_ms and self.acked_bps > 0 and not hold:
            cap = c.headroom * self.acked_bps + 10_000.0
            # what arrived without a queue is proven: never below it (a probe confirmed at once).
            # Growth stops at the headroom over what arrives, but sending less than the estimate
            # (a lower layer chosen for another reason, a paused track) does not lower it
            recent = self._recent_max(now)
            if self.bps <= cap * 1.05:  # carried: what arrives supports it
                self._supported_at = now
                grown = min(self.bps * c.growth**dt, cap)
            elif now - self._supported_at <= c.hold_s:
                grown = self.bps
            else:  # not carried for a while: what a probe showed then may no longer hold; but
                # what arrived within support_window_s did (an encoder's output dips and peaks)
                grown = min(self.bps, max(cap, c.headroom * recent + 10_000.0))
            self.bps = max(c.min_bps, min(c.max_bps, max(grown, self.acked_bps)))
