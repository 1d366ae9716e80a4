from __future__ import annotations

from signaling.bucket import TokenBucket


def test_a_burst_then_the_refill_rate() -> None:
    b = TokenBucket(burst=3, per_s=2.0)
    assert [b.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert abs(b.wait_s(10.0) - 0.5) < 1e-9
    assert not b.take(10.4)
    assert b.take(10.5)
    assert not b.take(10.5)
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]  # never more than the burst
