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
