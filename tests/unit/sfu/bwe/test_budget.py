from __future__ import annotations

from sfu.bwe.budget import BudgetConfig, RetransmitBudget


def test_retransmissions_are_capped_at_a_share_of_the_estimate() -> None:
    b = RetransmitBudget(BudgetConfig(share=0.10, burst_s=0.25))
    estimate = 1_000_000  # 100 kbit/s of retransmissions = 12 500 B/s
    sent = 0
    t = 0.0
    while t < 10.0:
        if b.allow(1200, estimate, t):
            sent += 1200
        t += 0.001
    assert 10 * 12_500 * 0.9 < sent <= 10 * 12_500 + 0.25 * 12_500 + 1200
    assert b.refused > 0 and b.sent_bytes == sent


def test_late_and_huge_nacks() -> None:
    b = RetransmitBudget()
    assert b.in_time(0.2, 100) and not b.in_time(0.95, 100)
    assert not b.too_many(64) and b.too_many(65)


def test_no_estimate_no_retransmissions() -> None:
    assert RetransmitBudget().allow(100, 0, 0.0) is False


def test_a_keyframe_repair_may_owe_the_bucket_but_only_so_much() -> None:
    """Past an empty bucket a keyframe's repair still goes (``owe``), down to a debt of 0.15 s of
    the estimate (at least 16 kB); then it is refused, and the debt holds back what follows."""
    b = RetransmitBudget(BudgetConfig(share=0.1, burst_s=0.25))
    est = 1_000_000.0  # 0.15 s of it: 18,750 bytes
    assert b.allow(3000, est, 0.0)  # the whole 0.25 s bucket (3,125 bytes)
    owed = 0
    while b.owe(1200, est, 0.0):
        owed += 1200
    assert 18_750 - 1200 < owed <= 18_750
    assert not b.allow(100, est, 0.0)
    assert not b.allow(100, est, 1.0)  # refilled 12.5 kB a second: still owing, other repairs wait
    assert b.owe(1200, est, 1.0)  # (a keyframe's may owe again)
    assert b.allow(100, est, 2.0)
    small = RetransmitBudget()
    assert sum(1200 for _ in range(40) if small.owe(1200, 100_000.0, 0.0)) >= 16_000 - 1200  # the floor
