"""Cross-track comparison: remove speech that is only a copy of another track's voice.

A voice reaches other tracks too: the teacher is heard faintly by the lead classroom's students
microphone, and every classroom's loudspeaker plays the others, so its microphone picks them up
again a few hundred milliseconds later. For each ordered pair of tracks (A, B) we estimate, from
the whole lesson, the delay ``d`` at which B's loudness envelope follows A's best and the level of
the copy (``gain``: B's level minus A's, in dB, taken from the frames where A speaks). If the two
envelopes are correlated and the copy is clearly weaker than the original, every speech frame of
B that is no louder than ``A(t - d) + gain + margin`` while A speaks at ``t - d`` is a copy and is
removed from B. A voice genuinely talking over a copy is louder than the copy and survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.config import AttributionConfig
from analytics.vad import TrackFrames


@dataclass
class Coupling:
    source: str
    target: str
    delay_s: float
    gain_db: float
    correlation: float
    removed_s: float = 0.0


def _envelope(frames: TrackFrames) -> np.ndarray:
    """Loudness above the noise floor: how the track's sound looks from another microphone."""
    env = np.clip(frames.energy_db - frames.floor_db - 3.0, 0.0, 40.0)
    env[~frames.covered] = 0.0
    return env.astype(np.float64)


class _Spectrum:
    """Zero-mean envelope, its FFT and its norm, for repeated cross-correlations."""

    def __init__(self, env: np.ndarray, size: int) -> None:
        centred = env - env.mean()
        self.norm = float(np.sqrt(np.dot(centred, centred)))
        self.fft = np.fft.rfft(centred, size)
        self.size = size


def _best_lag(a: _Spectrum, b: _Spectrum, max_lag: int) -> tuple[int, float]:
    """Lag l in [0, max_lag] maximising corr(a[t], b[t + l]) (normalised)."""
    denom = a.norm * b.norm
    if denom <= 0:
        return 0, 0.0
    cc = np.fft.irfft(np.conj(a.fft) * b.fft, a.size)[: max_lag + 1]
    lag = int(np.argmax(cc))
    return lag, float(cc[lag] / denom)


def _shift_max(x: np.ndarray, lag: int, spread: int, fill: float) -> np.ndarray:
    """y[t] = max(x[t - lag - spread .. t - lag + spread])."""
    n = len(x)
    out = np.full(n, fill, dtype=x.dtype)
    for k in range(-spread, spread + 1):
        shift = lag + k
        if shift >= 0:
            if shift < n:
                np.maximum(out[shift:], x[: n - shift], out=out[shift:])
        else:
            np.maximum(out[: n + shift], x[-shift:], out=out[: n + shift])
    return out


def _couplings(
    tracks: list[TrackFrames],
    own_masks: list[np.ndarray],
    hide_masks: list[list[np.ndarray]],
    frame_s: float,
    config: AttributionConfig,
) -> dict[tuple[int, int], tuple[Coupling, np.ndarray]]:
    n = len(tracks[0].energy_db)
    max_lag = max(1, min(int(round(config.max_delay_s / frame_s)), n - 1))
    size = 1 << int(np.ceil(np.log2(n + max_lag + 1)))  # no wrap-around for lags 0..max_lag
    envs = [_envelope(t) for t in tracks]
    full = [_Spectrum(e, size) for e in envs]
    own = [_Spectrum(np.where(m, e, 0.0), size) for e, m in zip(envs, own_masks, strict=True)]
    # the target's loudness with its own speaker hidden (several guesses of who that is)
    rest = [[_Spectrum(np.where(m, 0.0, e), size) for m in masks] for e, masks in zip(envs, hide_masks, strict=True)]
    found: dict[tuple[int, int], tuple[Coupling, np.ndarray]] = {}
    for ia, a in enumerate(tracks):
        a_active = a.raw
        if a_active.sum() < 10:
            continue
        strong = a_active & (a.energy_db >= np.median(a.energy_db[a_active]))
        a_level = np.where(a_active, a.energy_db, -np.inf).astype(np.float32)
        for ib, b in enumerate(tracks):
            if ia == ib or not b.raw.any():
                continue
            lag, corr = _best_lag(own[ia], full[ib], max_lag)
            for variant in rest[ib]:
                lag2, corr2 = _best_lag(own[ia], variant, max_lag)
                if corr2 > corr:
                    lag, corr = lag2, corr2
            if corr < config.min_correlation:
                continue
            idx = np.flatnonzero(strong[: n - lag] & b.raw[lag:] & b.covered[lag:])
            if len(idx) < 10:
                continue
            diff = b.energy_db[idx + lag] - a.energy_db[idx]
            gain = float(np.percentile(diff, 10))
            if gain > -config.min_attenuation_db:
                continue
            predicted = _shift_max(a_level, lag, 1, -np.inf)
            copy = b.raw & (b.energy_db <= predicted + gain + config.margin_db)
            coupling = Coupling(
                source=a.track_id,
                target=b.track_id,
                delay_s=lag * frame_s,
                gain_db=gain,
                correlation=corr,
                removed_s=float(copy.sum()) * frame_s,
            )
            found[(ia, ib)] = (coupling, copy)
    return found


def _removals(tracks: list[TrackFrames], found: dict[tuple[int, int], tuple[Coupling, np.ndarray]]) -> list[np.ndarray]:
    removals = [np.zeros(len(t.raw), dtype=bool) for t in tracks]
    for (_, ib), (_, copy) in found.items():
        removals[ib] |= copy
    return removals


def _loud(frames: TrackFrames, mask: np.ndarray, below_db: float) -> np.ndarray:
    if not mask.any():
        return mask
    level = float(np.percentile(frames.energy_db[mask], 90))
    return mask & (frames.energy_db >= level - below_db)


def remove_copies(tracks: list[TrackFrames], frame_s: float, config: AttributionConfig) -> list[Coupling]:
    """Clears ``speech`` frames of each track that are copies of another track's speech.

    Two passes: the first takes each track's loudest speech as its own voice; the second takes
    what the first pass left as original speech, which keeps delay estimates from following
    a third voice that two tracks both pick up.
    """
    if len(tracks) < 2:
        for t in tracks:
            t.speech = t.raw.copy()
        return []
    first = [_loud(t, t.raw, 10.0) for t in tracks]
    found1 = _couplings(tracks, first, [[m] for m in first], frame_s, config)
    removals = _removals(tracks, found1)
    second = [_loud(t, t.raw & ~rem, 12.0) for t, rem in zip(tracks, removals, strict=True)]
    found2 = _couplings(tracks, second, [[a, b] for a, b in zip(first, second, strict=True)], frame_s, config)
    # the second pass decides; a coupling only the first pass saw (a rarely heard voice whose
    # correlation drowns in the other track's sound once its own mask is exact) is kept
    found = {**found1, **found2}
    removals = _removals(tracks, found)
    for t, rem in zip(tracks, removals, strict=True):
        t.speech = t.raw & ~rem
    return [found[k][0] for k in sorted(found)]
