"""The transport-cc estimator against a simulated bottleneck (a FIFO draining at a capacity),
with a fake clock: what a send-side estimate must do on a school line."""

from __future__ import annotations

import random

from sfu.bwe.twcc import Packet, TwccConfig, TwccEstimator

PACKET = 1200  # bytes
FEEDBACK_S = 0.1  # Chromium sends transport-cc feedback about every 100 ms
FAST_FEEDBACK_S = 0.05  # and every 50 ms at a couple of Mbit/s


class Bottleneck:
    """A queue in front of a line of ``capacity_bps``, plus a fixed one-way delay; the receiver's
    clock is offset from ours (as it is in life)."""

    def __init__(self, capacity_bps: float, delay_s: float = 0.02, offset_s: float = 1234.5) -> None:
        self.capacity_bps = capacity_bps
        self.delay_s = delay_s
        self.offset_s = offset_s
        self._free_at = 0.0

    def arrival(self, sent: float, size: int) -> float:
        start = max(sent, self._free_at)
        self._free_at = start + size * 8 / self.capacity_bps
        return self._free_at + self.delay_s + self.offset_s


def run(est: TwccEstimator, line: Bottleneck, rate_bps: float, seconds: float, start: float = 0.0,
        feedback_s: float = FEEDBACK_S) -> float:
    """Send ``rate_bps`` for ``seconds`` from ``start``; feedback every ``feedback_s`` reports
    what has arrived by then, and as lost what was sent before it and never arrives (a line
    that drops). Returns the end."""
    interval = PACKET * 8 / rate_bps
    t = start
    pending: list[Packet] = []
    next_feedback = start + feedback_s
    while t < start + seconds:
        pending.append((t, line.arrival(t, PACKET), PACKET))
        t += interval
        if t >= next_feedback:
            now = next_feedback
            cut = 0  # (in order: through the newest packet that has arrived)
            for i, (_, r, _) in enumerate(pending):
                if r is not None and r - line.offset_s <= now:
                    cut = i + 1
            if cut:
                est.on_feedback(pending[:cut], now)
                pending = pending[cut:]
            next_feedback += feedback_s
    return t


def test_no_queue_grows_but_stays_within_what_arrives() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=300_000))
    run(est, Bottleneck(10_000_000), 1_000_000, 5.0)
    assert est.queue_ms < 5
    assert est.overused_at < 0
    assert 0.9e6 < est.acked_bps < 1.1e6
    assert 1.0e6 < est.bps <= 1.1 * est.acked_bps + 10_000  # a little over what arrives, no more


def test_sending_over_the_capacity_is_overuse_within_a_few_feedbacks() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = Bottleneck(8_000_000)
    end = run(est, line, 1_700_000, 3.0)
    assert est.overused_at < 0
    line.capacity_bps = 1_000_000  # the cap drops to 60 % of the top layer
    later = run(est, line, 1_700_000, 0.35, start=end)
    assert est.overused_at > end  # seen within 350 ms
    run(est, line, 1_700_000, 0.3, start=later)
    assert est.bps <= 1_000_000


def test_a_probe_that_arrives_without_a_queue_is_confirmed_within_a_second() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=300_000))
    line = Bottleneck(8_000_000)
    end = run(est, line, 450_000, 3.0)
    assert est.bps < 800_000
    run(est, line, 2_000_000, 1.5, start=end)  # media + padding up to the next layer's cost
    assert est.overused_at < 0
    assert est.bps >= 1.95e6  # what arrived without a queue is proven: 720p at 1.7 Mbit/s + margin


def test_a_probe_into_a_capped_line_stops_at_the_cap() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=300_000))
    line = Bottleneck(1_000_000)
    end = run(est, line, 450_000, 3.0)
    run(est, line, 1_500_000, 1.0, start=end)
    assert est.overused_at > end
    assert est.bps <= 1_000_000


def test_jitter_below_the_threshold_is_not_overuse() -> None:
    est = TwccEstimator()
    t = 0.0
    for i in range(100):  # 10 s of feedback, each packet 0-15 ms late at random-ish
        packets: list[Packet] = []
        for j in range(10):
            send = t + j * 0.01
            packets.append((send, send + 0.03 + ((i * 7 + j * 13) % 16) / 1000, PACKET))
        t += FEEDBACK_S
        assert not est.on_feedback(packets, t)


def test_lost_packets_are_counted_and_do_not_stop_the_estimate() -> None:
    est = TwccEstimator()
    packets: list[Packet] = [(i * 0.01, None if i % 10 == 0 else i * 0.01 + 0.02, PACKET) for i in range(20)]
    est.on_feedback(packets, 0.3)
    assert abs(est.loss - 0.1) < 1e-9
    assert est.on_feedback([(0.5, None, PACKET)], 0.6) is False
    assert est.on_feedback([], 0.7) is False


def test_sending_less_lowers_the_estimate_only_after_a_while() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=300_000))
    line = Bottleneck(8_000_000)
    end = run(est, line, 1_500_000, 3.0)
    high = est.bps
    assert high > 1.5e6
    end = run(est, line, 300_000, 2.5, start=end)  # a lower layer: no queue, nothing says "less" yet
    assert est.bps == high
    run(est, line, 300_000, 6.0, start=end)  # but a probe's figure is not kept for ever
    assert est.bps <= 1.1 * est.acked_bps + 10_000 + 1 and est.acked_bps < 350_000


def test_an_encoder_dipping_below_its_usual_rate_does_not_lower_the_estimate() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = Bottleneck(8_000_000)
    end = run(est, line, 1_200_000, 4.0)
    for _ in range(6):  # 1.2 Mbit/s with 1.5-s dips to 0.6 Mbit/s: the usual layer, not less room
        end = run(est, line, 600_000, 1.5, start=end)
        end = run(est, line, 1_200_000, 1.5, start=end)
    assert est.bps >= 1.1 * 1_200_000 * 0.95



class RelayedLine(Bottleneck):
    """A line behind a relay that holds each packet ``delay_s`` + U(0, ``jitter_s``), in order
    (as loadtest/l2relay.py does)."""

    def __init__(self, capacity_bps: float, jitter_s: float, seed: int = 7) -> None:
        super().__init__(capacity_bps, delay_s=0.0005)
        self.jitter_s = jitter_s
        self._rng = random.Random(seed)
        self._last = 0.0

    def arrival(self, sent: float, size: int) -> float:
        at = super().arrival(sent, size) + self._rng.uniform(0, self.jitter_s)
        self._last = max(self._last, at)
        return self._last


def follow(est: TwccEstimator, line: Bottleneck, seconds: float, start: float,
           top_bps: float = 1_700_000) -> tuple[float, float]:
    """The sender follows the estimate (as the layer choice does, up to ``top_bps``); feedback
    every FEEDBACK_S reports what has arrived. Returns (end, lowest estimate seen)."""
    pending: list[Packet] = []
    t, lowest = start, est.bps
    next_feedback = start + FEEDBACK_S
    while t < start + seconds:
        rate = min(top_bps, est.bps)
        pending.append((t, line.arrival(t, PACKET), PACKET))
        t += PACKET * 8 / rate
        while t >= next_feedback:
            ready = [p for p in pending if p[1] is not None and p[1] - line.offset_s <= next_feedback]
            pending = pending[len(ready):]
            if ready:
                est.on_feedback(ready, next_feedback)
            lowest = min(lowest, est.bps)
            next_feedback += FEEDBACK_S
    return t, lowest


def test_a_longer_path_is_re_based_instead_of_backing_off_to_nothing() -> None:
    """A relay or a route change adds 50 ms to every packet at once, with jitter: it looks like
    a queue for a moment, but backing off does not drain it; the estimate must come back, not
    spiral down (loadtest.weaklink's rtt100 condition paused a classroom's video this way)."""
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = RelayedLine(3_000_000, jitter_s=0.010)
    end, _ = follow(est, line, 5.0, 0.0)
    before = est.bps
    line.delay_s = 0.045  # the path is 45 ms longer from now on; the line is as wide as before
    end, lowest = follow(est, line, 5.0, end)
    assert est.rebases >= 1
    assert est.queue_ms < 15
    assert lowest >= 300_000  # a spiral reached 82 kbit/s (and paused the video)
    assert est.bps >= 0.8 * before


def test_a_real_queue_that_drains_is_not_re_based() -> None:
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = RelayedLine(8_000_000, jitter_s=0.010)
    end, _ = follow(est, line, 5.0, 0.0)
    line.capacity_bps = 1_000_000  # the cap drops to 60 % of the top layer
    end, _ = follow(est, line, 5.0, end)
    assert est.rebases == 0
    assert est.bps <= 1_000_000


def test_a_step_in_the_path_delay_is_re_based_without_backing_off() -> None:
    """The same 45 ms at once, seen as a jump that stays level: no overuse at all, so the layer
    a classroom receives is not dropped (a downgrade is a keyframe and a freeze on a lossy line)."""
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = RelayedLine(3_000_000, jitter_s=0.010)
    end, _ = follow(est, line, 5.0, 0.0)
    before, overused_before = est.bps, est.overused_at
    line.delay_s = 0.045
    end, lowest = follow(est, line, 5.0, end)
    assert est.steps >= 1
    assert est.overused_at == overused_before
    assert lowest >= 0.9 * before


def test_a_cap_that_makes_the_queue_jump_is_still_overuse() -> None:
    """A line narrowed to under half of what is sent: the queue jumps in one feedback and goes
    on growing; that is an overuse one feedback later, not a longer path."""
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = Bottleneck(8_000_000)
    t = run(est, line, 1_800_000, 3.0)
    line.capacity_bps = 700_000
    run(est, line, 1_800_000, 0.6, start=t)
    assert est.overused_at > t
    assert est.steps == 0


def _with_keyframe(est: TwccEstimator, line: Bottleneck, media_bps: float, key_bytes: int,
                   key_bps: float, seconds: float, start: float) -> float:
    """``media_bps`` for ``seconds``, with a keyframe of ``key_bytes`` forwarded at ``key_bps``
    (the publisher's pacer) 0.5 s in; feedback every FEEDBACK_S. Returns the end."""
    schedule: list[tuple[float, int]] = []
    t = start
    while t < start + seconds:
        schedule.append((t, PACKET))
        t += PACKET * 8 / media_bps
    k = start + 0.5
    for _ in range(key_bytes // PACKET):
        schedule.append((k, PACKET))
        k += PACKET * 8 / key_bps
    schedule.sort()
    pending: list[Packet] = []
    next_feedback = start + FEEDBACK_S
    for s_at, size in schedule:
        while s_at >= next_feedback:
            ready = [p for p in pending if p[1] is not None and p[1] - line.offset_s <= next_feedback]
            pending = pending[len(ready):]
            est.on_feedback(ready, next_feedback)
            next_feedback += FEEDBACK_S
        pending.append((s_at, line.arrival(s_at, size), size))
    return t


def test_a_keyframe_burst_into_a_line_with_room_is_not_an_overuse() -> None:
    """An up-switch on a 3-Mbit/s line: the 720p layer (1.75 Mbit/s) fits with room to spare,
    but its first keyframe (100 kB, forwarded at the publisher's 6 Mbit/s pace) queues for
    ~0.15 s. That is our own burst, not a line narrower than the estimate (rtt100_loss3_cap3,
    2026-12-04: three up-switches, each undone within half a second, two keyframe rounds each)."""
    for explain, overuse in ((False, True), (True, False)):
        est = TwccEstimator(TwccConfig(initial_bps=2_200_000, explain_bursts=explain))
        line = Bottleneck(3_000_000, delay_s=0.05)
        t = run(est, line, 450_000, 3.0)
        est.confirm(2_200_000, t)  # a probe showed the line carries the top layer
        t = _with_keyframe(est, line, 1_750_000, 100_000, 6_000_000, 3.0, t)
        assert (est.overused_at > 0) is overuse, (explain, est.raw_queue_ms)
    assert est.bps >= 1_750_000


def test_a_keyframe_into_a_line_narrower_than_the_layer_is_still_an_overuse() -> None:
    """The model takes out only what a line of the estimate's capacity would queue: a line that
    cannot carry the layer at all keeps a queue growing past that, and is found."""
    est = TwccEstimator(TwccConfig(initial_bps=2_200_000))
    line = Bottleneck(1_400_000, delay_s=0.05)
    t = run(est, line, 450_000, 3.0)
    est.confirm(2_200_000, t)  # (a probe's figure that no longer holds)
    _with_keyframe(est, line, 1_750_000, 100_000, 6_000_000, 1.5, t)
    assert est.overused_at > t
    assert est.bps < 1_400_000


class ShapedLine(Bottleneck):
    """A token-bucket shaper as ``tc … tbf`` is (and many a school router): up to ``burst``
    bytes pass at once after a quiet spell, then the line's rate; a packet that would wait
    longer than ``limit_s`` is dropped (arrival ``None``)."""

    def __init__(self, capacity_bps: float, burst: int = 15_000, limit_s: float = 0.2) -> None:
        super().__init__(capacity_bps)
        self.burst, self.limit_s = burst, limit_s
        self._virtual = 0.0  # when a FIFO at the line's rate would have sent what it took

    def arrival(self, sent: float, size: int) -> float | None:  # type: ignore[override]
        finish = max(sent, self._virtual) + size * 8 / self.capacity_bps
        leaves = max(sent, finish - self.burst * 8 / self.capacity_bps)
        if leaves - sent > self.limit_s:
            return None  # tail drop
        self._virtual = finish
        return leaves + self.delay_s + self.offset_s


def test_the_first_decrease_at_a_shaped_cap_is_what_the_queue_drains() -> None:
    """A cap to 30 % of the top layer behind a token bucket: the bucket's burst and what arrived
    before the queue formed make the recent arrivals look twice the line's rate, and a decrease
    to a share of that picked the middle layer (its keyframe then overfilled the line, and a
    second downgrade followed: two keyframe rounds and a 3-s freeze, cap30 2026-12-04 21:59).
    What arrives while a queue stands is the line's rate: the first decrease is under it."""
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = ShapedLine(8_000_000)
    t = run(est, line, 1_800_000, 3.0, 0.0, FAST_FEEDBACK_S)
    assert est.overused_at < 0
    line.capacity_bps = 470_000
    t = run(est, line, 1_800_000, 0.4, t, FAST_FEEDBACK_S)
    assert est.overused_at > 3.0
    assert est.bps <= 470_000


def test_a_full_queue_that_drops_is_not_a_longer_path() -> None:
    """Still sending twice the line's rate into a tail-drop queue: the delay stands at the
    queue's limit and most packets are lost. What *arrives* is far under what arrived when the
    overuse began, but what is *sent* is not, and a longer path loses nothing: no re-base (one
    restored the estimate to 3.1 Mbit/s on a 0.47-Mbit/s line)."""
    est = TwccEstimator(TwccConfig(initial_bps=2_000_000))
    line = ShapedLine(8_000_000)
    t = run(est, line, 1_800_000, 3.0, 0.0, FAST_FEEDBACK_S)
    line.capacity_bps = 470_000
    run(est, line, 1_000_000, 3.0, t, FAST_FEEDBACK_S)
    assert est.rebases == 0
    assert est.bps <= 470_000
