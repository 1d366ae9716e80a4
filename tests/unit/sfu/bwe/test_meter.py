from __future__ import annotations

import pytest

from sfu.bwe.meter import RateMeter


def test_steady_rate() -> None:
    m = RateMeter(1.0, 10)
    t = 0.0
    for _ in range(300):  # 1000 bytes every 10 ms = 800 kbit/s
        m.add(1000, t)
        t += 0.01
    assert m.bps(t) == pytest.approx(800_000, rel=0.05)


def test_rate_falls_to_zero_when_nothing_arrives() -> None:
    m = RateMeter(1.0, 10)
    for i in range(100):
        m.add(1000, i * 0.01)
    assert m.bps(5.0) == 0.0


def test_empty_and_bad_arguments() -> None:
    assert RateMeter().bps(1.0) == 0.0
    with pytest.raises(ValueError):
        RateMeter(0, 10)
