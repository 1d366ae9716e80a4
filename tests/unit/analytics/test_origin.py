"""The waveform attribution (analytics/origin.py) on small synthetic signals with known paths.

Voices are harmonic signals with a syllable-like envelope (a pitch, so the pitch-period aliases the
module must see through are there); microphones are delayed, scaled copies plus noise.
"""

from __future__ import annotations

import numpy as np

from analytics import vad as vad_mod
from analytics.config import AttributionConfig
from analytics.origin import (
    WAVE_RATE,
    Padded,
    _consistent_peaks,
    _drop_copy_runs,
    _keep_mask,
    _sq_norms,
    attribute,
    dominant_lags,
    pad_waves,
    remove_copies_by_waveform,
    same_room_correlations,
    wave_4k,
)
from analytics.vad import TrackFrames, frame_energy

RATE = 8000
FRAME_S = 0.03


def voice(
    seconds: float, pitch_hz: float, seed: int, talk: list[tuple[float, float]], floor: float = 0.15
) -> np.ndarray:
    """A voiced sound at ``pitch_hz`` (±8 % vibrato) with 4-Hz syllables (the envelope's lowest
    point ``floor``), only inside ``talk``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    f0 = pitch_hz * (1 + 0.08 * np.sin(2 * np.pi * 0.3 * t + seed))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    harmonics = range(1, int(3500 // pitch_hz))  # up to 3.5 kHz whatever the pitch, like formants
    x = sum(np.sin(k * phase + rng.uniform(0, 6)) / np.sqrt(k) for k in harmonics)
    x = x + 0.3 * rng.standard_normal(n)  # fricatives
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + seed), floor, 1.0)
    gate = np.zeros(n)
    for s, e in talk:
        gate[int(s * RATE) : int(e * RATE)] = 1.0
    return (x * envelope * gate).astype(np.float64)


def delayed(x: np.ndarray, seconds: float) -> np.ndarray:
    d = int(round(seconds * RATE))
    out = np.zeros_like(x)
    out[d:] = x[: len(x) - d]
    return out


def frames_of(track_id: str, room: str, source: str, signal: np.ndarray) -> tuple[TrackFrames, np.ndarray]:
    pcm = np.clip(signal, -32768, 32767).astype(np.int16)
    energy = frame_energy(pcm, int(RATE * FRAME_S))
    floor = float(np.percentile(energy, 10))
    raw = energy >= floor + 9.0
    tf = TrackFrames(track_id, room, source, energy, np.ones(len(energy), bool), floor, raw, raw.copy())
    return tf, wave_4k(pcm)


def noise(n: int, seed: int, level: float = 30.0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n) * level


def frame_mask(talk: list[tuple[float, float]], n: int) -> np.ndarray:
    m = np.zeros(n, bool)
    for s, e in talk:
        m[int(round(s / FRAME_S)) + 2 : int(round(e / FRAME_S)) - 2] = True  # away from the edges
    return m


def share(mask: np.ndarray, where: np.ndarray) -> float:
    return float(mask[where].mean())


def test_wave_4k_halves_the_rate_and_pre_emphasises() -> None:
    x = (np.sin(np.arange(8000) * 0.05) * 1000).astype(np.int16)
    y = wave_4k(x)
    assert y.dtype == np.float32 and len(y) == 4000
    assert WAVE_RATE == 4000
    assert np.abs(y).max() < np.abs(x.astype(np.float32)).max()  # a low tone is attenuated
    assert len(wave_4k(np.zeros(0, np.int16))) == 0


def _lead_room(
    walking: bool,
) -> tuple[list[TrackFrames], list[np.ndarray], list[tuple[float, float]], list[tuple[float, float]]]:
    """Teacher on the lapel mic, a student on the area mic; each heard by the other mic later.

    ``walking``: the teacher is 10 dB weaker on the lapel mic and 4 dB *louder* on the area mic
    than on the lapel mic (only the arrival order says who talks)."""
    seconds = 32.0  # 23-32 s: silence (the noise floor is a low percentile of the track)
    teacher_talk = [(1.0, 8.0), (15.0, 20.0)]
    student_talk = [(9.0, 14.0), (18.0, 23.0)]  # 18-20 s: both at once, neither pausing
    t = voice(seconds, 110, 1, teacher_talk, floor=0.6) * 3000
    s = voice(seconds, 230, 2, student_talk, floor=0.6) * 3000
    g_teacher_lapel = 10 ** (-10 / 20) if walking else 1.0
    g_teacher_area = g_teacher_lapel * 10 ** (4 / 20) if walking else 10 ** (-16 / 20)
    lapel = g_teacher_lapel * t + 10 ** (-5 / 20) * delayed(s, 0.004) + noise(len(t), 3)
    area = s + g_teacher_area * delayed(t, 0.006) + noise(len(t), 4)
    a, wa = frames_of("teacher", "lead", "teacher", lapel)
    b, wb = frames_of("lead-students", "lead", "students", area)
    return [a, b], [wa, wb], teacher_talk, student_talk


def test_bleed_of_a_student_into_the_lapel_mic_is_removed_the_teacher_stays() -> None:
    tracks, waves, teacher_talk, student_talk = _lead_room(walking=False)
    remove_copies_by_waveform(tracks, waves, FRAME_S, AttributionConfig())
    n = len(tracks[0].raw)
    only_student = frame_mask([(9.0, 14.0), (20.0, 23.0)], n)
    only_teacher = frame_mask([(1.0, 8.0), (15.0, 18.0)], n)
    both = frame_mask([(18.0, 20.0)], n)
    teacher, students = tracks[0].speech, tracks[1].speech
    assert share(teacher, only_student) < 0.1  # the bleed is not teacher talk
    assert share(teacher, only_teacher) > 0.9
    assert share(students, only_student) > 0.9
    assert share(students, only_teacher) < 0.1  # the teacher heard by the area mic
    assert share(teacher, both) > 0.8 and share(students, both) > 0.8  # overlap: both talk


def test_a_walking_teacher_louder_on_the_area_mic_is_still_the_teacher() -> None:
    tracks, waves, _, _ = _lead_room(walking=True)
    assert tracks[1].energy_db[int(3 / FRAME_S)] > tracks[0].energy_db[int(3 / FRAME_S)]  # area louder
    remove_copies_by_waveform(tracks, waves, FRAME_S, AttributionConfig())
    n = len(tracks[0].raw)
    only_teacher = frame_mask([(1.0, 8.0), (15.0, 18.0)], n)
    only_student = frame_mask([(9.0, 14.0), (20.0, 23.0)], n)
    assert share(tracks[0].speech, only_teacher) > 0.9
    assert share(tracks[1].speech, only_teacher) < 0.1
    assert share(tracks[1].speech, only_student) > 0.9


def test_dominant_lags_see_through_the_pitch_alias() -> None:
    """Teacher at 125 Hz (32 samples at 4 kHz): 20 samples to the area mic, and the area mic's
    block also correlates with the lapel mic 12 samples *later* (one period away); the student's
    path is 14 samples the other way."""
    tracks, waves, _, _ = _lead_room(walking=False)
    pw = pad_waves(waves, AttributionConfig())
    blocks = np.arange(len(tracks[0].raw) // 2)
    r = same_room_correlations(pw[0], pw[1], blocks, 240, 100)
    ab, ba = dominant_lags(r, 100, 4, 0.5)
    # index j means lag 4 + j samples at 4 kHz: 6 ms = 24 samples, 4 ms = 16 samples
    assert any(abs(j + 4 - 24) <= 1 for j in ab)
    assert any(abs(j + 4 - 16) <= 1 for j in ba)
    assert not any(abs(j + 4 - 16) <= 1 for j in ab)


def test_loudspeaker_echo_with_drifting_delay_is_removed_own_voice_kept() -> None:
    seconds = 72.0  # 58-72 s: silence
    lead_talk = [(1.0, 25.0), (31.0, 58.0)]
    remote_talk = [(26.0, 30.5), (45.0, 50.0)]  # 45-50 s over the lead's echo
    lead = voice(seconds, 120, 5, lead_talk) * 3000
    own = voice(seconds, 210, 6, remote_talk) * 3000 * 10 ** (4 / 20)
    # the loudspeaker copy comes 300 ms later, then 320 ms (a jitter buffer grew), only 4 dB weaker
    echo = np.concatenate((delayed(lead, 0.30)[: 30 * RATE], delayed(lead, 0.32)[30 * RATE :]))
    lead_mic = lead + noise(len(lead), 7)
    remote_mic = own + 10 ** (-4 / 20) * echo + noise(len(lead), 8)
    a, wa = frames_of("teacher", "lead", "teacher", lead_mic)
    b, wb = frames_of("r1-students", "r1", "students", remote_mic)
    couplings = remove_copies_by_waveform([a, b], [wa, wb], FRAME_S, AttributionConfig())
    n = len(a.raw)
    echo_only = frame_mask([(1.4, 25.0), (32.0, 44.5), (51.0, 58.0)], n)
    own_only = frame_mask([(26.0, 30.5)], n)
    over = frame_mask([(45.0, 50.0)], n)
    assert share(b.speech, echo_only) < 0.1
    assert share(b.speech, own_only) > 0.9
    assert share(b.speech, over) > 0.8  # 8 dB above the echo: own speech
    assert share(a.speech, frame_mask(lead_talk, n)) > 0.95
    found = [c for c in couplings if c.source == "teacher" and c.target == "r1-students"]
    assert found and 0.29 <= found[0].delay_s <= 0.33
    assert found[0].removed_s > 20


def test_one_track_or_no_waveforms_do_not_fail() -> None:
    t = voice(5.0, 150, 9, [(1.0, 4.0)]) * 3000
    a, wa = frames_of("teacher", "lead", "teacher", t)
    assert remove_copies_by_waveform([a], [wa], FRAME_S, AttributionConfig()) == []
    assert (a.speech == a.raw).all()
    silent, ws = frames_of("r1-students", "r1", "students", noise(len(t), 1))
    silent.raw[:] = False
    assert remove_copies_by_waveform([a, silent], [wa, ws], FRAME_S, AttributionConfig()) == []
    # without waveforms the pipeline falls back to the loudness comparison
    b, _ = frames_of("lead-students", "lead", "students", 0.1 * t + noise(len(t), 2))
    a.wave, b.wave = None, None
    attribute([a, b], FRAME_S, AttributionConfig())
    assert b.speech.sum() <= b.raw.sum()


def test_consistent_peaks_take_the_neighbours_delay_over_a_pitch_alias() -> None:
    lags = np.arange(41)
    rows = []
    for peak in (20, 20, 31, 20, 21):  # window 2: the alias one pitch period away is higher
        row = np.exp(-0.5 * ((lags - peak) / 1.5) ** 2)
        if peak != 20 and peak != 21:
            row += 0.9 * np.exp(-0.5 * ((lags - 20) / 1.5) ** 2)
        rows.append(row)
    curves = np.array(rows)
    windows = np.arange(5)
    found = _consistent_peaks(curves, windows, np.full(5, 0.6))
    assert found.tolist() == [20, 20, 20, 20, 21]
    # a clear single peak is a real step of the delay and stays
    step = curves.copy()
    step[2] = np.exp(-0.5 * ((lags - 31) / 1.5) ** 2)
    assert _consistent_peaks(step, windows, np.full(5, 0.6))[2] == 31
    # neighbours whose peaks mean nothing (weak correlation) do not move a window
    assert _consistent_peaks(curves, windows, np.full(5, 0.1))[2] == 31
    # a delay a neighbour shares is a real path (a room's two microphones a few ms apart)
    shared = curves.copy()
    shared[3] = shared[2]
    assert _consistent_peaks(shared, windows, np.full(5, 0.6))[2:4].tolist() == [31, 31]


def test_a_remote_answer_coming_back_through_the_other_rooms_is_kept() -> None:
    # r1 answers; the lead's loudspeaker plays the answer into the lead microphone, whose mix every
    # remote loudspeaker plays back (r1 hears its own answer again ~0.6 s later), and r2's
    # loudspeaker plays r1 into r2's microphone. r2 and r1 both hear the lead only 4 dB weaker:
    # their common echo must not make r2 (or the lead's copy of r1) explain r1's own answer.
    seconds = 40.0
    lead_talk = [(1.0, 11.5), (24.5, 29.5), (36.5, 39.0)]
    r1_talk = [(12.0, 24.0), (30.0, 36.0)]
    teacher = voice(seconds, 120, 11, lead_talk) * 3000
    answer = voice(seconds, 230, 12, r1_talk) * 3000
    lead_mic = teacher + 10 ** (-16 / 20) * delayed(answer, 0.28) + noise(len(teacher), 13)
    r1_mic = answer + 10 ** (-4 / 20) * delayed(lead_mic, 0.29) + noise(len(teacher), 14)
    r2_mic = 10 ** (-4 / 20) * delayed(lead_mic, 0.30) + 10 ** (-8 / 20) * delayed(answer, 0.45)
    r2_mic = r2_mic + noise(len(teacher), 15)
    a, wa = frames_of("teacher", "lead", "teacher", lead_mic)
    b, wb = frames_of("r1-students", "r1", "students", r1_mic)
    c, wc = frames_of("r2-students", "r2", "students", r2_mic)
    remove_copies_by_waveform([a, b, c], [wa, wb, wc], FRAME_S, AttributionConfig())
    n = len(a.raw)
    answer_frames = frame_mask(r1_talk, n) & b.raw
    assert share(b.speech, answer_frames) > 0.95
    assert share(a.speech, frame_mask(lead_talk, n) & a.raw) > 0.95
    assert share(a.speech, frame_mask([(12.6, 24.0), (30.6, 36.0)], n)) < 0.1
    assert c.speech.sum() * FRAME_S < 1.0


def test_a_fragment_buried_in_a_copy_goes_an_own_word_between_copies_stays() -> None:
    n = 200
    raw = np.zeros(n, bool)
    raw[20:180] = True
    removed = raw.copy()
    removed[100:104] = False  # 0.12 s where the copy's correlation dipped, deep inside the copy
    removed[40:60] = False  # 0.6 s of the speaker's own word over the copy
    tf = TrackFrames("teacher", "lead", "teacher", np.zeros(n, np.float32), np.ones(n, bool), 0.0, raw, raw & ~removed)
    _drop_copy_runs(tf, removed, np.zeros(n, np.float32), FRAME_S, 0.1)
    assert not tf.speech[100:104].any()
    assert tf.speech[40:60].all()


def _aligned_reference(
    a: Padded, rb: np.ndarray, nb: np.ndarray, starts: np.ndarray, lags: np.ndarray, spread: int,
    silent: np.ndarray, frame: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-sample silence masking _aligned did before _keep_mask (index arithmetic per row)."""
    block = rb.shape[1]
    first = starts - lags - spread
    s = np.clip(first + a.pad, 0, len(a.data) - block - 2 * spread)
    ra = np.lib.stride_tricks.sliding_window_view(a.data, block + 2 * spread)[s]
    at = (first[:, None] + np.arange(block + 2 * spread)[None, :]) // frame
    ra = ra * ~silent[np.clip(at, 0, len(silent) - 1)]
    centre = ra[:, spread : spread + block]
    na = np.sqrt(np.einsum("ij,ij->i", centre, centre, dtype=np.float64)) + np.sqrt(block)
    shifts = np.lib.stride_tricks.sliding_window_view(ra, block, axis=1)
    dots = np.einsum("mkt,mt->mk", shifts, rb)
    best = np.argmax(dots, axis=1)
    rows = np.arange(len(starts))
    return shifts[rows, best], dots[rows, best] / (na * nb)


def test_keep_mask_and_float64_sums_give_the_same_numbers_as_the_per_sample_formulas() -> None:
    rng = np.random.default_rng(7)
    frame, block, spread = 120, 240, 6
    x = (rng.standard_normal(40 * frame + 37) * 900).astype(np.float32)  # not a whole number of frames
    a = Padded(x, 500)
    b = Padded((rng.standard_normal(len(x)) * 900).astype(np.float32), 500)
    silent = rng.random(len(x) // frame) < 0.4
    silent[0] = True
    silent[-1] = False
    keep = _keep_mask(a, silent, frame)
    assert keep is not None and len(keep) == len(a.data)
    assert _keep_mask(a, np.zeros(len(silent), bool), frame) is None
    assert _keep_mask(a, None, frame) is None
    starts = np.array([0, 240, 2400, len(x) - 240, 37, -300])
    lags = np.array([3, 0, 50, 120, 7, -20])
    sl = np.lib.stride_tricks.sliding_window_view(b.data, block)[starts + b.pad]
    rb = np.ascontiguousarray(sl)
    nb = np.sqrt(_sq_norms(rb)) + np.sqrt(block)
    got_rows, got_r = _numpy_aligned(a, rb, nb, starts, lags, spread, keep)  # the C path: the test below
    want_rows, want_r = _aligned_reference(a, rb, nb, starts, lags, spread, silent, frame)
    assert np.array_equal(got_rows, want_rows)
    assert np.array_equal(got_r, want_r)
    assert np.array_equal(_sq_norms(rb), np.einsum("ij,ij->i", rb, rb, dtype=np.float64))


def test_frame_energy_in_chunks_is_the_whole_array_computation() -> None:
    rng = np.random.default_rng(3)
    pcm = (rng.standard_normal(240 * (2 * vad_mod._ENERGY_CHUNK + 5) + 17) * 4000).astype(np.int16)
    x = pcm[: len(pcm) // 240 * 240].reshape(-1, 240).astype(np.float32)
    whole = (10.0 * np.log10(np.einsum("ij,ij->i", x, x) / 240 + 1.0)).astype(np.float32)
    assert np.array_equal(frame_energy(pcm, 240), whole)


def _numpy_aligned(*args: object, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    import analytics.origin as origin_mod

    saved = origin_mod._fit
    origin_mod._fit = None
    try:
        return origin_mod._aligned(*args, **kwargs)  # type: ignore[arg-type]
    finally:
        origin_mod._fit = saved


def test_the_c_shift_search_chooses_what_numpy_chooses() -> None:
    # analytics/_fit.c (built by setup.py) against the numpy formula it replaces: the same
    # shifted rows, correlations equal to float32 round-off; with and without a silence mask,
    # windows running off both ends of the waveform
    import pytest

    import analytics.origin as origin_mod

    if origin_mod._fit is None:
        pytest.skip("analytics._fit is not built")
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(4000 * 20) * 800).astype(np.float32)
    wave = origin_mod.Padded(x, 1000)
    block, spread, m = 240, 6, 700
    starts = np.concatenate(([0, 10, len(x) - block], rng.integers(0, len(x) - block, m - 3)))
    lags = rng.integers(-50, 400, m)
    rb = origin_mod._rows(wave, starts - lags + rng.integers(-spread, spread + 1, m), block) + (
        rng.standard_normal((m, block)) * 50
    ).astype(np.float32)
    nb = np.sqrt(origin_mod._sq_norms(rb)) + np.sqrt(block)
    keep = rng.random(len(wave.data)) > 0.2
    for mask in (None, keep):
        rows_c, r_c = origin_mod._aligned(wave, rb, nb, starts, lags, spread, mask)
        rows_np, r_np = _numpy_aligned(wave, rb, nb, starts, lags, spread, mask)
        assert np.array_equal(rows_c, rows_np)
        assert np.allclose(r_c, r_np, rtol=1e-5, atol=1e-7)
