"""Ground-truth arithmetic shared by the analytics tests (interval union and total are the
accuracy command's own: :mod:`analytics.accuracy`)."""

from __future__ import annotations

from analytics.accuracy import total, union

__all__ = ["agreement", "total", "union"]

Interval = tuple[float, float]


def agreement(a: list[str], b: list[str]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
