"""Which microphone a sound reached first: frame-by-frame waveform comparison of tracks.

A voice picked up by a second microphone is *the same waveform*, weaker and later there:

- in the same room (a lead-room student heard by the teacher's lapel microphone, the teacher heard
  by the students' area microphone) a few milliseconds later, whatever the levels: a teacher who
  walks away from the lapel microphone's best range can be louder on the area microphone than on
  the teacher track, yet the lapel microphone still hears the teacher first;
- in another room (a remote classroom's loudspeaker playing the lead into its microphone, the
  lead's loudspeaker playing a remote classroom) a few hundred milliseconds later, with a delay
  that drifts as jitter buffers adapt.

So for every 60-ms block of track B that holds speech, the normalised cross-correlation of B's
waveform with each other track A's, at the lags where B would hold a copy of A, says how much of
B's sound is A's sound arriving later: with B = g·A(t − d) + own, the peak correlation r gives
r² ≈ copy power / B's power. A block whose best r² reaches ``copy_share`` is a copy and leaves B's
speech. Real speech over a copy keeps most of B's power its own and stays. Same-room pairs search
every lag up to ``same_room_max_delay_s`` in both directions in each block and count a copy only
when B lags A (the pitch of voiced speech repeats the waveform every few milliseconds, so the
direction with the higher peak decides); pairs in different rooms use the delay of the loudness
envelopes over the lesson, refined to the sample on each minute's loudest stretches of A.

Waveforms are compared at 4 kHz after pre-emphasis (the low formants would otherwise make every
correlation peak broad).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.attribution import Coupling, _loud, remove_copies
from analytics.config import AttributionConfig
from analytics.vad import TrackFrames, runs

try:
    from analytics import _fit
except ImportError:  # not built: numpy does the shift search (same choices, float32 sums)
    _fit = None  # type: ignore[assignment]

WAVE_RATE = 4000
_CHUNK = 4096  # blocks per batched FFT


def wave_4k(samples: np.ndarray) -> np.ndarray:
    """8 kHz int16 -> 4 kHz float32 (pair average), pre-emphasised (y[n] = x[n] - 0.85 x[n-1])."""
    n = len(samples) // 2
    # (a + b) * 0.5 in float32 is exactly what mean(axis=1) over pairs gives, 5x faster
    x = samples[0 : 2 * n : 2].astype(np.float32)
    x += samples[1 : 2 * n : 2]
    x *= np.float32(0.5)
    y = np.empty_like(x)
    if n:
        y[0] = x[0]
        np.multiply(x[:-1], np.float32(0.85), out=y[1:])
        np.subtract(x[1:], y[1:], out=y[1:])
    return y


@dataclass
class PairResult:
    source: int
    target: int
    delay_s: float
    correlation: float
    copy: np.ndarray
    """bool per frame of the target: its sound there is the source's sound arriving later."""


def _blocks(mask: np.ndarray) -> np.ndarray:
    """Block k = frames 2k, 2k+1; a block is active if either frame is."""
    n = len(mask) // 2
    m = mask[: 2 * n].reshape(n, 2).any(axis=1)
    return np.flatnonzero(m)


class Padded:
    """A waveform with zeros on both sides, so any window near it can be cut without checks."""

    def __init__(self, x: np.ndarray, pad: int) -> None:
        self.pad = pad
        zeros = np.zeros(pad, np.float32)
        self.data = np.concatenate((zeros, x.astype(np.float32, copy=False), zeros))
        self.n = len(x)


def _rows(x: Padded, starts: np.ndarray, width: int) -> np.ndarray:
    """x[s : s + width] for each start (zero outside x)."""
    s = np.clip(starts + x.pad, 0, len(x.data) - width)
    view = np.lib.stride_tricks.sliding_window_view(x.data, width)
    return view[s]


def _sq_norms(rows: np.ndarray) -> np.ndarray:
    """Sum of squares of each row, in float64 (the rows converted first: the same sums as
    ``einsum(..., dtype=float64)`` in about half the time)."""
    y = rows.astype(np.float64)
    return np.einsum("ij,ij->i", y, y)


def _norms(rows: np.ndarray, width: int) -> np.ndarray:
    """Sliding-window L2 norms of width ``width`` along each row."""
    c = np.zeros((rows.shape[0], rows.shape[1] + 1), dtype=np.float32)
    np.cumsum(np.square(rows, dtype=np.float32), axis=1, out=c[:, 1:])
    return np.sqrt(np.maximum(c[:, width:] - c[:, :-width], 0.0))


_QUIET = 1.0
"""RMS (int16 units) below which a window counts as silent: undecoded (voiceless Opus) stretches
are exact zeros, and FFT round-off divided by a zero norm must not look like a correlation."""


def _normalised(cc: np.ndarray, norms: np.ndarray, width: int) -> np.ndarray:
    return np.where(norms > _QUIET**2 * width, cc / np.maximum(norms, 1e-9), 0.0).astype(np.float32)


def same_room_correlations(a: Padded, b: Padded, blocks: np.ndarray, block: int, max_lag: int) -> np.ndarray:
    """Normalised cross-correlation per block for lags -max_lag..max_lag (column max_lag + l:
    B's sound l samples after A's)."""
    width = block + 2 * max_lag
    size = 1 << int(np.ceil(np.log2(width)))
    out = np.zeros((len(blocks), 2 * max_lag + 1), dtype=np.float32)
    for i in range(0, len(blocks), _CHUNK):
        starts = blocks[i : i + _CHUNK] * block
        ra = _rows(a, starts, block)
        rb = _rows(b, starts - max_lag, width)
        cc = np.fft.irfft(np.conj(np.fft.rfft(ra, size, axis=1)) * np.fft.rfft(rb, size, axis=1), size, axis=1)
        na = np.sqrt(_sq_norms(ra))
        out[i : i + len(starts)] = _normalised(cc[:, : 2 * max_lag + 1], na[:, None] * _norms(rb, block), block)
    return out


def dominant_lags(r: np.ndarray, max_lag: int, min_lag: int, min_r: float) -> tuple[list[int], list[int]]:
    """The delays of real sound paths between two microphones of a room, from per-block
    correlations ``r`` (column ``max_lag + l``: B's sound ``l`` samples after A's): the lags
    where blocks with a clear peak have their highest peak most often, as indices into lags
    ``min_lag..max_lag`` for B after A and for A after B.

    Voiced speech repeats every pitch period, so a block holding A's voice also correlates at
    the reverse side's lag that is one period away (nearly as high when the pitch is steady); a
    path's delay is the same in every block while those aliases move with the pitch, and the
    true delay beats its alias in most blocks (the alias is the true peak times the voice's own
    correlation over a period), so only each block's overall highest peak is counted."""
    allowed = np.ones(r.shape[1], dtype=bool)
    allowed[max_lag - min_lag + 1 : max_lag + min_lag] = False
    masked = np.where(allowed[None, :], r, -np.inf)
    best = np.argmax(masked, axis=1)
    strong = masked[np.arange(len(r)), best] >= min_r
    counts = np.bincount(best[strong], minlength=r.shape[1]).astype(np.float64)
    counts = np.convolve(counts, np.ones(3), mode="same")

    def modes(side: np.ndarray) -> list[int]:
        keep: list[int] = []
        if not len(side) or side.max() <= 0:
            return keep
        top = float(side.max())
        for k in np.argsort(side)[::-1]:
            if side[k] < 0.5 * top or len(keep) >= 3:
                break
            if all(abs(int(k) - j) > 4 for j in keep):
                keep.append(int(k))
        return keep

    positive = counts[max_lag + min_lag :]  # index j: lag min_lag + j
    negative = counts[: max_lag - min_lag + 1][::-1]  # index j: lag -(min_lag + j)
    return modes(positive), modes(negative)


def peaks_near(r: np.ndarray, columns: list[int], tolerance: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block: the best correlation within ``tolerance`` columns of any of ``columns``, and its column."""
    best = np.zeros(len(r), dtype=np.float32)
    where = np.zeros(len(r), dtype=np.int64)
    for c in columns:
        lo, hi = max(c - tolerance, 0), min(c + tolerance + 1, r.shape[1])
        k = np.argmax(r[:, lo:hi], axis=1)
        v = r[np.arange(len(r)), lo + k]
        better = v > best
        best[better] = v[better]
        where[better] = lo + k[better]
    return best, where


def _aligned(
    a: Padded,
    rb: np.ndarray,
    nb: np.ndarray,
    starts: np.ndarray,
    lags: np.ndarray,
    spread: int,
    keep: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A's rows ``lags`` (± spread, the best per row) before each of B's rows, and their
    normalised correlation with B's (A's norm taken at the centre shift: they differ little).
    ``keep`` (bool per sample of ``a.data``, from :func:`_keep_mask`) is False where A's sound
    is taken as silence."""
    block = rb.shape[1]
    if _fit is not None and len(starts) and len(a.data) >= block + 2 * spread:
        rows_out = np.empty((len(starts), block), dtype=np.float32)
        r_out = np.empty(len(starts), dtype=np.float64)
        _fit.aligned(
            a.data,
            keep,
            a.pad,
            np.ascontiguousarray(rb, dtype=np.float32),
            np.ascontiguousarray(starts, dtype=np.int64),
            np.ascontiguousarray(lags, dtype=np.int64),
            spread,
            np.ascontiguousarray(nb, dtype=np.float64),
            _QUIET,
            rows_out,
            r_out,
        )
        return rows_out, r_out
    first = starts - lags - spread
    ra = _rows(a, first, block + 2 * spread)
    if keep is not None:
        s = np.clip(first + a.pad, 0, len(keep) - block - 2 * spread)
        ra = ra * np.lib.stride_tricks.sliding_window_view(keep, block + 2 * spread)[s]
    centre = ra[:, spread : spread + block]
    na = np.sqrt(_sq_norms(centre)) + _QUIET * np.sqrt(block)
    shifts = np.lib.stride_tricks.sliding_window_view(ra, block, axis=1)  # (m, 2 spread + 1, block)
    dots = np.einsum("mkt,mt->mk", shifts, rb)
    best = np.argmax(dots, axis=1)
    rows = np.arange(len(starts))
    return shifts[rows, best], dots[rows, best] / (na * nb)


def _keep_mask(a: Padded, silent: np.ndarray | None, frame: int) -> np.ndarray | None:
    """Per sample of ``a.data`` (padding included): False in the frames of ``frame`` samples
    that ``silent`` marks (before the first frame its value, after the last one the last's).
    Built once per source, so each block's rows are a plain gather (no per-sample index
    arithmetic)."""
    if silent is None or not silent.any():
        return None
    keep = ~silent
    body = np.repeat(keep, frame)[: max(len(a.data) - a.pad, 0)]
    tail = len(a.data) - a.pad - len(body)
    return np.concatenate((np.full(a.pad, keep[0]), body, np.full(max(tail, 0), keep[-1])))[: len(a.data)]


def joint_share(
    b: Padded,
    sources: list[tuple[Padded, np.ndarray]],
    blocks: np.ndarray,
    block: int,
    spread: int,
    silent: list[np.ndarray | None] | None = None,
    alternatives: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each block of B: the share of its power that the sources, each at its own delay
    (``sources[k] = (wave, lag per block)``, ± spread), explain together (least squares), the
    source with the best single correlation and that correlation. ``silent[k]`` (bool per frame
    of half a block) marks frames of source k that do not count (B's own sound heard there);
    ``alternatives[k]`` is a second lag per block for source k, used where it correlates better."""
    share = np.zeros(len(blocks), dtype=np.float32)
    which = np.zeros(len(blocks), dtype=np.int32)
    single = np.zeros(len(blocks), dtype=np.float32)
    k = len(sources)
    keeps = [None if silent is None else _keep_mask(wave, silent[j], block // 2) for j, (wave, _) in enumerate(sources)]
    for i in range(0, len(blocks), _CHUNK):
        sl = slice(i, i + _CHUNK)
        starts = blocks[sl] * block
        rb = _rows(b, starts, block)
        eb = _sq_norms(rb)
        nb = np.sqrt(eb) + _QUIET * np.sqrt(block)
        # (m, k, block) in float64, filled source by source (einsum's own casting, dtype=, is
        # slower, with the same sums)
        x64 = np.empty((len(starts), k, block), dtype=np.float64)
        rs = []
        for k_src, (wave, lags) in enumerate(sources):
            quiet = keeps[k_src]
            ra, r = _aligned(wave, rb, nb, starts, lags[sl], spread, quiet)
            if alternatives is not None:
                other = np.flatnonzero(alternatives[k_src][sl] != lags[sl])
                if len(other):
                    alt_lags = alternatives[k_src][sl][other]
                    ra2, r2 = _aligned(wave, rb[other], nb[other], starts[other], alt_lags, spread, quiet)
                    better = r2 > r[other]
                    ra[other[better]] = ra2[better]
                    r[other[better]] = r2[better]
            x64[:, k_src] = ra
            rs.append(r)
        gram = np.einsum("mkt,mlt->mkl", x64, x64)
        cross = np.einsum("mkt,mt->mk", x64, rb.astype(np.float64))
        ridge = 1e-6 * np.trace(gram, axis1=1, axis2=2)[:, None, None] + 1e-6
        w = np.linalg.solve(gram + ridge * np.eye(k)[None, :, :], cross[:, :, None])[:, :, 0]
        share[sl] = np.clip(np.einsum("mk,mk->m", w, cross) / (eb + _QUIET**2 * block), 0.0, 1.0)
        r_all = np.stack(rs, axis=1)
        which[sl] = np.argmax(r_all, axis=1)
        single[sl] = np.max(r_all, axis=1)
    return share, which, single


def _refine_delays(
    a: Padded,
    b: Padded,
    a_frames: TrackFrames,
    lag_samples: int,
    n_blocks: int,
    block: int,
    frame: int,
    search: int,
    window_blocks: int,
    a_mask: np.ndarray | None = None,
) -> np.ndarray:
    """The copy delay (samples) for every block, refined per window (``window_blocks``) on A's
    loudest stretch in each quarter of the window (0.24 s each, searched ± ``search``), among
    the frames of ``a_mask`` (A's own sound; default: all its speech)."""
    seg_frames = 8
    seg = seg_frames * frame
    size = seg + 2 * search  # enough for lags 0..2 search; faster than the next power of two
    n_windows = -(-n_blocks // window_blocks)
    quarter = max(1, (2 * window_blocks) // 4)
    n_frames = len(a_frames.raw)
    own = a_frames.raw if a_mask is None else a_frames.raw[: len(a_mask)] & a_mask[: len(a_frames.raw)]
    level = np.where(own, a_frames.energy_db[: len(own)], -np.inf).astype(np.float64)
    level[max(n_frames - seg_frames, 0) :] = -np.inf
    padded = np.full(n_windows * 4 * quarter, -np.inf)
    usable = min(len(level), len(padded))
    padded[:usable] = level[:usable]
    sub = padded.reshape(n_windows * 4, quarter)
    best = np.argmax(sub, axis=1)
    ok = np.isfinite(sub[np.arange(len(sub)), best])
    frames_at = np.arange(len(sub)) * quarter + best
    found = np.full(n_windows, -1, dtype=np.int64)
    picks = np.flatnonzero(ok)
    if len(picks):
        starts = frames_at[picks] * frame
        ra = _rows(a, starts, seg)
        rb = _rows(b, starts + lag_samples - search, seg + 2 * search)
        cc = np.fft.irfft(np.conj(np.fft.rfft(ra, size, axis=1)) * np.fft.rfft(rb, size, axis=1), size, axis=1)
        cc = cc[:, : 2 * search + 1]
        window = picks // 4  # increasing
        first = np.flatnonzero(np.diff(np.concatenate(([-1], window))))
        sums = np.add.reduceat(cc, first, axis=0)
        counts = np.diff(np.concatenate((first, [len(window)])))
        na = np.sqrt(_sq_norms(ra))
        r = _normalised(cc, na[:, None] * _norms(rb, seg)[:, : 2 * search + 1], seg)
        strength = (np.add.reduceat(r, first, axis=0) / counts[:, None]).max(axis=1)
        # a window's own estimate needs two stretches, or one clear one; a weak one (the source
        # holds little of its own sound there) is left to the neighbours' interpolation
        have = ((counts >= 2) | (strength >= 0.5)) & (strength >= _USABLE)
        found[window[first][have]] = (
            lag_samples - search + _consistent_peaks(sums[have], window[first][have], strength[have])
        )
    valid = np.flatnonzero(found >= 0)
    if len(valid) == 0:
        return np.full(n_blocks, lag_samples, dtype=np.int64)
    filled = np.interp(np.arange(n_windows), valid, found[valid]).round().astype(np.int64)
    return np.repeat(filled, window_blocks)[:n_blocks]


_RELIABLE = 0.25
"""mean normalised correlation from which a window's delay steers its neighbours'."""
_USABLE = 0.15
"""mean normalised correlation below which a window's own delay estimate is not used."""


def _consistent_peaks(
    curves: np.ndarray,
    windows: np.ndarray,
    strength: np.ndarray,
    near: float = 0.8,
    reach: int = 2,
    tolerance: int = 8,
    reliable: float = _RELIABLE,
) -> np.ndarray:
    """The peak of each window's correlation curve (one row per window, ``windows`` its index,
    ``strength`` its peak's mean normalised correlation), taking the neighbours into account: a
    voice repeats every pitch period, so a curve also peaks one period either side of the true
    delay, and in some windows an alias wins. Where a window's highest peak is more than
    ``tolerance`` samples from the median of the highest peaks of the reliable windows
    (strength ≥ ``reliable``: where the source only holds another room's echo the peaks mean
    nothing) within ``reach``, and the window has another peak within ``tolerance`` of that
    median reaching ``near`` of its maximum, that peak is taken; a window without such a peak,
    or whose peak a reliable neighbour shares (a real step of the delay, or a second path of a
    room whose microphones hear a voice a few ms apart), keeps its own."""
    best = np.argmax(curves, axis=1)
    own = best.copy()
    good = strength >= reliable
    for i in range(len(curves)):
        around = (np.abs(windows - windows[i]) <= reach) & (np.arange(len(curves)) != i) & good
        if around.sum() < 2:
            continue
        median = float(np.median(own[around]))
        if abs(own[i] - median) <= tolerance or (np.abs(own[around] - own[i]) <= tolerance).any():
            continue  # agrees with the neighbours, or a neighbour has the same delay (a real path)
        row = curves[i]
        top = row[own[i]]
        lo, hi = max(int(np.floor(median)) - tolerance, 0), min(int(np.ceil(median)) + tolerance + 1, len(row))
        if hi <= lo or top <= 0:
            continue
        k = lo + int(np.argmax(row[lo:hi]))
        if row[k] >= near * top:
            best[i] = k
    return best


def _steady(delays: np.ndarray, window_blocks: int, reach: int = 2) -> np.ndarray:
    """Per-block delays (constant per window) replaced by the median of the windows within
    ``reach`` of each."""
    per_window = delays[::window_blocks]
    if len(per_window) < 3:
        return delays
    padded = np.pad(per_window, reach, mode="edge")
    med = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1), axis=1)
    return np.repeat(np.round(med).astype(np.int64), window_blocks)[: len(delays)]


def _windowed_median(values: np.ndarray, use: np.ndarray, blocks: np.ndarray, window: int) -> np.ndarray | None:
    """Median of ``values[use]`` per window of ``window`` blocks, for every entry (windows without
    enough values take the nearest window's); None when there are too few values at all."""
    if use.sum() < 20:
        return None
    win = blocks // window
    n_win = int(win.max()) + 1 if len(win) else 1
    med = np.full(n_win, np.nan)
    for w in np.unique(win[use]):
        v = values[use & (win == w)]
        if len(v) >= 10:
            med[w] = float(np.median(v))
    ok = np.flatnonzero(np.isfinite(med))
    if len(ok) == 0:
        return np.full(len(values), float(np.median(values[use])))
    filled = np.interp(np.arange(n_win), ok, med[ok])
    return filled[win]


def _smoothed(values: np.ndarray, weights: np.ndarray, blocks: np.ndarray, n_blocks: int, half: int) -> np.ndarray:
    """Weighted mean of ``values`` over the blocks within ``half`` blocks of each one (only
    blocks in ``blocks`` count), returned for ``blocks``."""
    num = np.zeros(n_blocks + 2 * half + 1)
    den = np.zeros(n_blocks + 2 * half + 1)
    num[blocks + half] = values * weights
    den[blocks + half] = weights
    kernel = np.ones(2 * half + 1)
    sn = np.convolve(num, kernel, mode="same")[blocks + half]
    sd = np.convolve(den, kernel, mode="same")[blocks + half]
    return sn / np.maximum(sd, 1e-9)


def _global_lag(
    a: Padded, b: Padded, a_frames: TrackFrames, a_mask: np.ndarray, frame: int, max_lag: int
) -> tuple[int, float]:
    """The delay (samples, 1..max_lag) at which B holds A's sound, from the waveforms of up to
    12 of A's loudest 0.48-s stretches of ``a_mask`` (mean normalised correlation at that lag)."""
    seg_frames = 16
    seg = seg_frames * frame
    level = np.where(a_mask[: len(a_frames.energy_db)], a_frames.energy_db[: len(a_mask)], -np.inf)
    level[-seg_frames - max_lag // frame - 1 :] = -np.inf
    top = min(4000, len(level))
    part = np.argpartition(level, len(level) - top)[len(level) - top :] if top else np.zeros(0, np.int64)
    order = part[np.argsort(level[part])[::-1]]
    picks: list[int] = []
    for k in order.tolist():
        if not np.isfinite(level[k]) or len(picks) >= 12:
            break
        if all(abs(k - p) >= seg_frames for p in picks):
            picks.append(k)
    if len(picks) < 3:
        return 0, 0.0
    starts = np.array(picks, dtype=np.int64) * frame
    width = seg + max_lag
    size = 1 << int(np.ceil(np.log2(width + 1)))
    ra = _rows(a, starts, seg)
    rb = _rows(b, starts, width)
    cc = np.fft.irfft(np.conj(np.fft.rfft(ra, size, axis=1)) * np.fft.rfft(rb, size, axis=1), size, axis=1)
    na = np.sqrt(_sq_norms(ra))
    r = _normalised(cc[:, : max_lag + 1], na[:, None] * _norms(rb, seg), seg)
    mean = r.mean(axis=0)
    mean[:1] = -1.0  # lag 0 is the same room's business
    lag = int(np.argmax(mean))
    return lag, float(mean[lag])


def find_copies(
    tracks: list[TrackFrames],
    pw: list[Padded],
    frame_s: float,
    config: AttributionConfig,
    own_masks: list[np.ndarray] | None = None,
    same_room: bool = True,
    delay_cache: dict[tuple[int, int, int], np.ndarray] | None = None,
    scores: list[np.ndarray] | None = None,
    between_rooms: bool = True,
    heard: dict[tuple[int, int], np.ndarray] | None = None,
) -> list[PairResult]:
    """Copies of each track's sound on the others (``tracks[i]`` and ``pw[i]`` belong together;
    pad them with :func:`pad_waves`).

    ``own_masks`` are the frames taken as each track's own sound when the delay between rooms is
    estimated (default: every speech frame); ``delay_cache`` keeps refined delays between calls;
    ``scores`` (one float array per track) receive each frame's highest copy share seen;
    ``same_room`` / ``between_rooms`` choose which of the two comparisons run;
    ``heard[(a, b)]`` (bool per frame) marks the frames of track ``a`` that hold track ``b``'s
    sound: they do not count when ``a``'s room is a source for ``b`` (B's own voice, played back
    to B through other rooms, must not explain B's own speech)."""
    if delay_cache is None:
        delay_cache = {}
    n_frames = min(len(t.raw) for t in tracks)
    frame = int(round(frame_s * WAVE_RATE))
    block = 2 * frame
    n_blocks = n_frames // 2
    results: list[PairResult] = []
    masks = own_masks if own_masks is not None else [t.raw for t in tracks]
    max_lag_samples = max(1, int(round(config.max_delay_s * WAVE_RATE)))
    max_lag = max(2, int(round(config.same_room_max_delay_s * WAVE_RATE)))
    min_lag = max(1, int(round(0.001 * WAVE_RATE)))
    search = max(2, int(round(config.delay_search_s * WAVE_RATE)))
    window_blocks = 2 * max(1, int(round(10.0 / (4 * frame_s))))  # 10 s, four quarters of whole frames

    def blocks_where(mask: np.ndarray) -> np.ndarray:
        return _blocks(mask[:n_frames])

    done_same: set[tuple[int, int]] = set()
    incoming: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in tracks]
    for ia, a in enumerate(tracks):
        for ib, b in enumerate(tracks):
            if ia == ib or not a.raw.any() or not b.raw.any():
                continue
            if a.classroom_id == b.classroom_id:
                if (ib, ia) in done_same or not same_room:
                    continue
                done_same.add((ia, ib))
                both = blocks_where(a.raw & b.raw)
                if len(both) == 0:
                    continue
                r = same_room_correlations(pw[ia], pw[ib], both, block, max_lag)
                pos = r[:, max_lag + min_lag :]  # B after A: lags min_lag..max_lag
                neg = r[:, : max_lag - min_lag + 1][:, ::-1]  # A after B: lags min_lag..max_lag
                gate = float(np.sqrt(config.copy_share))
                lags_ab, lags_ba = dominant_lags(r, max_lag, min_lag, gate)
                p_ab, k_ab = peaks_near(pos, lags_ab, 2)
                p_ba, k_ba = peaks_near(neg, lags_ba, 2)
                l_ab, l_ba = k_ab + min_lag, k_ba + min_lag
                # decisions over ±150 ms, weighted by each block's power: a single block's peak is noisy
                e_a = _block_power(a, both)
                e_b = _block_power(b, both)
                s_ab = _smoothed(p_ab.astype(np.float64) ** 2, e_b, both, n_blocks, 2)
                s_ba = _smoothed(p_ba.astype(np.float64) ** 2, e_a, both, n_blocks, 2)
                level_a = 10 * np.log10(e_a + 1e-9)
                level_b = 10 * np.log10(e_b + 1e-9)
                for src, dst, p, q, lags, lv_src, lv_dst in (
                    (ia, ib, s_ab, s_ba, l_ab, level_a, level_b),
                    (ib, ia, s_ba, s_ab, l_ba, level_b, level_a),
                ):
                    hit = (p >= config.copy_share) & (p > q)
                    if scores is not None:
                        _note(scores[dst], both, np.where(p > q, p, 0.0))
                    # a faint copy (low signal-to-noise, so weakly correlated) at the copy's usual
                    # level, measured on the clear copies of the last half minute, is a copy too
                    clear = (p >= 0.5) & (p > 2 * q)
                    gain = _windowed_median(lv_dst - lv_src, clear, both, 500)
                    if gain is not None:
                        faint = (
                            (p >= config.copy_share / 3)
                            & (p > 1.5 * q)
                            & (lv_dst <= lv_src + gain + config.level_margin_db)
                        )
                        hit |= faint
                    results.append(_pair(src, dst, both[hit], p[hit], lags[hit], n_frames, frame_s))
                continue
    if not between_rooms:
        return results
    # between rooms a loudspeaker plays the mix of the other room's tracks: each room is one source
    rooms: dict[str, list[int]] = {}
    for i, t in enumerate(tracks):
        rooms.setdefault(t.classroom_id, []).append(i)
    room_ids = list(rooms)
    room_frames = [_room_frames([tracks[i] for i in rooms[r]], n_frames) for r in room_ids]
    room_waves = [_mix([pw[i] for i in rooms[r]]) for r in room_ids]
    room_masks = [np.logical_or.reduce([masks[i][:n_frames] for i in rooms[r]]) for r in room_ids]
    for ir, room in enumerate(room_ids):
        a = room_frames[ir]
        if not a.raw.any():
            continue
        for ib, b in enumerate(tracks):
            if b.classroom_id == room or not b.raw.any():
                continue
            lag_samples, corr = _global_lag(room_waves[ir], pw[ib], a, room_masks[ir], frame, max_lag_samples)
            if corr < config.min_correlation:
                continue
            lag = int(round(lag_samples / frame))
            key = (ir, ib, lag_samples)
            if key not in delay_cache:
                delay_cache[key] = _refine_delays(
                    room_waves[ir],
                    pw[ib],
                    a,
                    lag_samples,
                    n_blocks,
                    block,
                    frame,
                    search,
                    window_blocks,
                    room_masks[ir],
                )
            delays = delay_cache[key]
            incoming[ib].append((ir, lag, delays))
    for ib, srcs in enumerate(incoming):
        if not srcs:
            continue
        # B's speech blocks while a source had sound one delay earlier (± 2 frames: delays drift)
        shifted = np.zeros(n_frames, dtype=bool)
        for ir, lag, _ in srcs:
            a_raw = room_frames[ir].raw
            for k in range(max(lag - 2, 0), lag + 3):
                if k < n_frames:
                    shifted[k:] |= a_raw[: n_frames - k]
        cand = blocks_where(tracks[ib].raw & shifted)
        if len(cand) == 0:
            continue
        silent: list[np.ndarray | None] | None = None
        if heard:
            silent = []
            for ir, _, _ in srcs:
                own = [heard[(ia, ib)][:n_frames] for ia in rooms[room_ids[ir]] if (ia, ib) in heard]
                silent.append(np.logical_or.reduce(own) if own else None)
        # each block also tries its neighbourhood's delay (the median over ±2 windows): a window
        # whose own estimate is a pitch period off (an alias) then still finds its copies
        steady = [_steady(d, window_blocks)[cand] for _, _, d in srcs]
        share, which, single = joint_share(
            pw[ib], [(room_waves[ir], d[cand]) for ir, _, d in srcs], cand, block, 6, silent, steady
        )
        power_b = _block_power(tracks[ib], cand)
        share = _smoothed(share.astype(np.float64), power_b, cand, n_blocks, 2)
        hit = share >= config.copy_share
        if scores is not None:
            _note(scores[ib], cand, share)
        # a loudspeaker copy keeps its level: blocks no louder than the source's level there plus
        # the copy gain (measured on the clear copies) and with some correlation are copies too;
        # and a block far louder than that is no copy of that source, whatever the correlation
        # (a classroom's answer correlates with its own weak return through the other rooms)
        level_b = 10 * np.log10(power_b + 1e-9)
        for k, (ir, _, d) in enumerate(srcs):
            back = np.clip(cand - np.round(d[cand] / block).astype(np.int64), 0, n_blocks - 1)
            level_a = 10 * np.log10(_block_power(room_frames[ir], back) + 1e-9)
            clear = (which == k) & (share >= 0.5)
            if clear.sum() < 20:
                continue
            copy_gain = float(np.median(level_b[clear] - level_a[clear]))
            quiet = (
                (which == k)
                & (share >= config.copy_share / 2)
                & (level_b <= level_a + copy_gain + config.level_margin_db)
            )
            hit |= quiet
            hit &= ~((which == k) & (level_b > level_a + copy_gain + config.copy_level_margin_db))
        for k, (ir, _, d) in enumerate(srcs):
            mine = hit & (which == k)
            members = rooms[room_ids[ir]]
            # which of the room's tracks was loudest one delay earlier: the reported source
            frames_back = np.clip(
                2 * cand[mine] - int(round(float(np.median(d[cand]) if len(cand) else 0) / frame)), 0, n_frames - 1
            )
            loudest = np.argmax(np.stack([tracks[i].energy_db[:n_frames][frames_back] for i in members]), axis=0)
            for j, ia in enumerate(members):
                pick = loudest == j
                results.append(
                    _pair(ia, ib, cand[mine][pick], single[mine][pick], d[cand][mine][pick], n_frames, frame_s)
                )
    return results


def _mix(waves: list[Padded]) -> Padded:
    if len(waves) == 1:
        return waves[0]
    out = Padded(np.zeros(0, np.float32), 0)
    n = min(len(w.data) for w in waves)
    out.data = waves[0].data[:n].copy()
    for w in waves[1:]:
        out.data += w.data[:n]
    out.pad = waves[0].pad
    out.n = min(w.n for w in waves)
    return out


def pad_waves(waves: list[np.ndarray], config: AttributionConfig) -> list[Padded]:
    pad = int(round(config.max_delay_s * WAVE_RATE)) + WAVE_RATE
    return [Padded(w, pad) for w in waves]


def _room_frames(members: list[TrackFrames], n_frames: int) -> TrackFrames:
    """A classroom's tracks seen as one sound source (what its loudspeaker-side listeners hear)."""
    if len(members) == 1:
        return members[0]
    power = np.sum([10 ** (m.energy_db[:n_frames].astype(np.float64) / 10) for m in members], axis=0)
    floor = float(10 * np.log10(sum(10 ** (m.floor_db / 10) for m in members)))
    raw = np.logical_or.reduce([m.raw[:n_frames] for m in members])
    return TrackFrames(
        track_id=members[0].classroom_id,
        classroom_id=members[0].classroom_id,
        source="room",
        energy_db=(10 * np.log10(power)).astype(np.float32),
        covered=np.logical_or.reduce([m.covered[:n_frames] for m in members]),
        floor_db=floor,
        raw=raw,
        speech=raw.copy(),
    )


def _block_power(frames: TrackFrames, blocks: np.ndarray) -> np.ndarray:
    """Linear power of each block (from the frame energies)."""
    e = frames.energy_db.astype(np.float64)
    i = np.minimum(2 * blocks + 1, len(e) - 1)
    return 10 ** (e[2 * blocks] / 10) + 10 ** (e[i] / 10)


def _pair(
    src: int, dst: int, blocks: np.ndarray, r: np.ndarray, lags: np.ndarray, n_frames: int, frame_s: float
) -> PairResult:
    copy = np.zeros(n_frames, dtype=bool)
    copy[2 * blocks] = True
    copy[np.minimum(2 * blocks + 1, n_frames - 1)] = True
    delay = float(np.median(lags)) / WAVE_RATE if len(lags) else 0.0
    corr = float(np.median(r)) if len(r) else 0.0
    return PairResult(src, dst, delay, corr, copy)


def _note(score: np.ndarray, blocks: np.ndarray, values: np.ndarray) -> None:
    for k in (0, 1):
        idx = np.minimum(2 * blocks + k, len(score) - 1)
        np.maximum.at(score, idx, values.astype(np.float32))


def _drop_copy_runs(
    frames: TrackFrames,
    removed: np.ndarray,
    score: np.ndarray,
    frame_s: float,
    min_score: float,
    gap_s: float = 0.45,
    short_s: float = 0.3,
    buried: float = 5.0,
) -> None:
    """Drops short leftovers inside copies: the few frames where a copy's correlation dipped
    would otherwise be joined into speech by the smoothing. A leftover run shorter than
    ``short_s``, itself partly explained by another track (mean copy share ≥ ``min_score``) and
    with at least twice as many copy frames as its own within ``gap_s`` around it goes, and so
    does one buried in copies (``buried`` times as many copy frames around it as its own),
    whatever its share: in a long copy the few blocks whose correlation dipped are the rest of
    that copy (measured on the harder lessons: such fragments were 3 % of the true speech runs
    that short and 60 % of the false ones). A speaker's own syllables between copies (two people
    talking at once) are not explained by the other track, come in longer runs and stay."""
    left = frames.speech
    gap = int(round(gap_s / frame_s))
    short = int(round(short_s / frame_s))
    csum = np.concatenate(([0], np.cumsum(removed.astype(np.int64))))
    n = len(left)
    for s, e in runs(left):
        if e - s >= short:
            continue
        lo, hi = max(s - gap, 0), min(e + gap, n)
        around = csum[hi] - csum[lo]
        if around >= buried * (e - s) or (around >= 2 * (e - s) and float(score[s:e].mean()) >= min_score):
            left[s:e] = False


def _lasting(mask: np.ndarray, gap: int, shortest: int) -> np.ndarray:
    """``mask`` with gaps up to ``gap`` frames filled, keeping only runs of at least ``shortest``
    frames (a copy heard for a while; the scattered blocks a chance correlation marks go)."""
    out = mask.copy()
    spans = runs(out)
    for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        if s2 - e1 <= gap:
            out[e1:s2] = True
    for s, e in runs(out):
        if e - s < shortest:
            out[s:e] = False
    return out


def remove_copies_by_waveform(
    tracks: list[TrackFrames], waves: list[np.ndarray], frame_s: float, config: AttributionConfig
) -> list[Coupling]:
    """Clears the ``speech`` frames of each track that are another track's sound arriving later."""
    for t in tracks:
        t.speech = t.raw.copy()
    if len(tracks) < 2:
        return []
    # pass 1: every speech frame is a track's own sound when delays between rooms are estimated;
    # pass 2 (between rooms): only what pass 1 left (a remote microphone full of the lead's echo
    # would otherwise have its delay to the lead estimated from that echo), and a source room's
    # frames that pass 1 found to hold the target's own sound do not count for that target: a
    # remote classroom's answer comes back to it from every other room (the lead's loudspeaker,
    # then the lead's echo in it; the other classrooms' loudspeakers), and that returning copy of
    # the same voice "explained" scattered blocks of the answer itself. Between rooms pass 2
    # decides; the same-room comparison runs once, in pass 1.
    pw = pad_waves(waves, config)
    scores = [np.zeros(len(t.raw), dtype=np.float32) for t in tracks]
    same = find_copies(tracks, pw, frame_s, config, scores=scores, between_rooms=False)
    first = same + find_copies(tracks, pw, frame_s, config, same_room=False, delay_cache={})
    removed_1 = [t.raw.copy() for t in tracks]
    heard: dict[tuple[int, int], np.ndarray] = {}
    for res in first:
        removed_1[res.target][: len(res.copy)] &= ~res.copy
        heard[(res.target, res.source)] = _lasting(res.copy & tracks[res.target].raw[: len(res.copy)], 2, 10)
    loud = [_loud(t, m, 12.0) for t, m in zip(tracks, removed_1, strict=True)]
    second = find_copies(tracks, pw, frame_s, config, loud, same_room=False, delay_cache={}, scores=scores, heard=heard)
    merged: dict[tuple[int, int], PairResult] = {}
    for res in same + second:
        merged[(res.source, res.target)] = res
    couplings: list[Coupling] = []
    removed_all = [np.zeros(len(t.raw), dtype=bool) for t in tracks]
    for res in merged.values():
        n = len(res.copy)
        removed_all[res.target][:n] |= res.copy & tracks[res.target].raw[:n]
    for t, removed, score in zip(tracks, removed_all, scores, strict=True):
        t.speech = t.raw & ~removed
        _drop_copy_runs(t, removed, score, frame_s, config.copy_share / 4)
    for _, res in sorted(merged.items()):
        b = tracks[res.target]
        a = tracks[res.source]
        n = len(res.copy)
        removed = res.copy & b.raw[:n]
        if not removed.any():
            continue
        lag = int(round(res.delay_s / frame_s))
        idx = np.flatnonzero(removed)
        src_idx = np.clip(idx - lag, 0, len(a.energy_db) - 1)
        gain = float(np.median(b.energy_db[idx] - a.energy_db[src_idx]))
        couplings.append(
            Coupling(
                source=a.track_id,
                target=b.track_id,
                delay_s=res.delay_s,
                gain_db=gain,
                correlation=res.correlation,
                removed_s=float(removed.sum()) * frame_s,
            )
        )
    return couplings


def attribute(tracks: list[TrackFrames], frame_s: float, config: AttributionConfig) -> list[Coupling]:
    """The cross-track comparison of the pipeline: by waveform when every track has one (then the
    waveforms are dropped), else by loudness envelopes (:func:`analytics.attribution.remove_copies`)."""
    waves = [t.wave for t in tracks]
    if any(w is None for w in waves):
        return remove_copies(tracks, frame_s, config)
    couplings = remove_copies_by_waveform(tracks, [w for w in waves if w is not None], frame_s, config)
    for t in tracks:
        t.wave = None
    return couplings
