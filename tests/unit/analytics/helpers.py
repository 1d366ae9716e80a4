"""Ground-truth arithmetic shared by the analytics tests."""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[float, float]


def union(intervals: Iterable[Iterable[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def total(intervals: Iterable[Iterable[float]]) -> float:
    return sum(e - s for s, e in union(intervals))


def agreement(a: list[str], b: list[str]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
