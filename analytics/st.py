"""S-T (student-teacher) analysis: window codes, Rt, Ch and the teaching mode."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.config import StConfig

MODES = ("practice", "lecture", "dialogue", "mixed")
MODE_NAMES_ZH = {"practice": "练习型", "lecture": "讲授型", "dialogue": "对话型", "mixed": "混合型"}


@dataclass
class StResult:
    interval_s: float
    codes: list[str]
    rt: float
    ch: float
    mode: str

    def as_dict(self) -> dict[str, object]:
        return {
            "interval_s": float(self.interval_s),
            "codes": list(self.codes),
            "rt": round(self.rt, 4),
            "ch": round(self.ch, 4),
            "mode": self.mode,
        }


def window_count(duration_s: float, interval_s: float) -> int:
    """Windows [k*I, (k+1)*I) covering the lesson; a final partial window counts if >= I/2
    (a lesson shorter than that still has one window)."""
    full = math.floor(duration_s / interval_s + 1e-9)
    rest = duration_s - full * interval_s
    n = full + (1 if rest >= interval_s / 2 - 1e-9 else 0)
    return max(n, 1) if duration_s > 0 else 0


def code_windows(teacher: np.ndarray, frame_s: float, duration_s: float, interval_s: float) -> list[str]:
    """``teacher`` is a per-frame bool mask of teacher speech."""
    n = window_count(duration_s, interval_s)
    csum = np.concatenate(([0], np.cumsum(teacher.astype(np.int64))))
    codes = []
    for k in range(n):
        start = k * interval_s
        end = min((k + 1) * interval_s, duration_s)
        a = min(int(round(start / frame_s)), len(teacher))
        b = min(int(round(end / frame_s)), len(teacher))
        talk = (csum[b] - csum[a]) * frame_s
        codes.append("T" if talk >= (end - start) / 2 - 1e-9 else "S")
    return codes


def code_intervals(intervals: list[tuple[float, float]], duration_s: float, interval_s: float) -> list[str]:
    """Same coding from exact speech intervals in seconds (used for ground truth)."""
    n = window_count(duration_s, interval_s)
    codes = []
    for k in range(n):
        start = k * interval_s
        end = min((k + 1) * interval_s, duration_s)
        talk = sum(max(0.0, min(e, end) - max(s, start)) for s, e in intervals)
        codes.append("T" if talk >= (end - start) / 2 - 1e-9 else "S")
    return codes


def rt_ch(codes: list[str]) -> tuple[float, float]:
    n = len(codes)
    if n == 0:
        return 0.0, 0.0
    n_t = sum(1 for c in codes if c == "T")
    runs = 1 + sum(1 for a, b in zip(codes, codes[1:], strict=False) if a != b)
    return n_t / n, (runs - 1) / n


def classify(rt: float, ch: float, config: StConfig) -> str:
    if rt <= config.practice_rt_max:
        return "practice"
    if rt >= config.lecture_rt_min:
        return "lecture"
    if ch >= config.dialogue_ch_min:
        return "dialogue"
    return "mixed"


def analyse(codes: list[str], interval_s: float, config: StConfig) -> StResult:
    rt, ch = rt_ch(codes)
    return StResult(interval_s, codes, rt, ch, classify(rt, ch, config))
