"""The leaky bucket with a fake clock: a keyframe burst leaves at the paced rate."""

from __future__ import annotations

from sfu.bwe.pacer import Pacer, PacerConfig


def drain(p: Pacer[int], start: float, step: float = 0.001, until: float = 5.0) -> list[tuple[float, int]]:
    out = []
    t = start
    while len(p) and t < until:
        out += [(t, item) for item in p.due(t)]
        t += step
    return out


def test_a_burst_leaves_at_the_paced_rate() -> None:
    p: Pacer[int] = Pacer(PacerConfig(factor=2.0, burst_ms=10, max_queue_ms=10_000))
    p.set_estimate(1_000_000)  # paced at 2 Mbit/s = 250 kB/s
    for i in range(50):  # a 60 kB keyframe at once
        p.push(i, 1200)
    sent = drain(p, 0.0)
    assert [i for _, i in sent] == list(range(50))  # in order, nothing lost
    duration = sent[-1][0] - sent[0][0]
    assert 0.2 < duration < 0.26, duration  # 60 kB at 250 kB/s = 0.24 s
    # never more than the burst credit ahead of the rate
    for t, i in sent:
        assert (i + 1) * 1200 <= 250_000 * t + 2500 + 1200


def test_a_long_queue_drains_faster_than_the_rate() -> None:
    p: Pacer[int] = Pacer(PacerConfig(factor=1.0, max_queue_ms=200))
    p.set_estimate(200_000)  # 25 kB/s: 120 kB would take 4.8 s
    for i in range(100):
        p.push(i, 1200)
    sent = drain(p, 0.0)
    assert len(sent) == 100 and sent[-1][0] < 1.0


def test_next_due_and_flush() -> None:
    p: Pacer[str] = Pacer(PacerConfig(factor=1.0, burst_ms=1))
    assert p.next_due() is None
    p.set_estimate(800_000)  # 100 kB/s, credit 100 bytes
    p.push("a", 1000)
    p.push("b", 1000)
    assert p.due(0.0) == ["a"]  # the credit may be overdrawn by one packet
    wait = p.next_due()
    assert wait is not None and 0.008 < wait < 0.011
    assert p.due(0.001) == []
    assert p.flush() == ["b"] and p.queued_bytes == 0 and len(p) == 0


def test_rate_has_a_floor() -> None:
    p: Pacer[int] = Pacer(PacerConfig(min_bps=300_000))
    p.set_estimate(10_000)
    assert p.rate_bps == 300_000


def test_a_rate_of_its_own_is_not_multiplied() -> None:
    """``set_rate``: a line's measured rate is paced as it is (the factor is for an estimate)."""
    p: Pacer[int] = Pacer(PacerConfig(factor=2.0, burst_ms=10, max_queue_ms=10_000))
    p.set_rate(480_000)  # 60 kB/s
    for i in range(25):  # a 30 kB keyframe
        p.push(i, 1200)
    sent = drain(p, 0.0)
    assert len(sent) == 25
    assert 0.45 < sent[-1][0] - sent[0][0] < 0.52  # 30 kB at 60 kB/s = 0.5 s
