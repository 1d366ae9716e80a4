"""Harder synthetic lessons: bleed, loud loudspeaker echo, overlaps, long silences, a walking teacher.

The standard synthetic lessons (:mod:`analytics.synth`) give every microphone its own speaker
clearly louder than any copy of the others, at fixed levels and delays. Real classrooms are less
kind, and these lessons put in what went wrong on lessons the analyzer had not seen:

- **Lead-room students near the teacher's lapel microphone**: their answers reach the teacher
  track only 3–8 dB weaker than on the students' area microphone, 3–7 ms later.
- **A teacher who walks away from the lapel microphone's best range**: for stretches of the
  lesson the teacher's voice on the teacher track falls by 9–14 dB while the area microphone,
  which the teacher walks towards, hears the teacher 3–7 dB *louder* than the teacher track does.
  Only the arrival order (the lapel microphone is still the nearer one) tells who is talking.
- **Remote loudspeaker echo**: each remote classroom's microphone hears the lead's audio (both lead
  tracks as they were recorded) from its loudspeaker only 4–9 dB weaker, 250–450 ms later, with
  early reflections, and with a delay that drifts by up to 60 ms over the lesson (a jitter buffer
  adapting).
- **Overlapping speech**: students start answering before the teacher has finished; the teacher
  says a short word of encouragement over an answer.
- **Long silences** (practice: 40–120 s nobody talks) with a few chair scrapes on the area mic.
- Speaker levels vary ±3 dB from sentence to sentence.

Every voice reaches every microphone through a path: a gain (which may change with time), a delay
and early reflections. ``build_hard_lesson`` writes a ``classroom-recording/1`` directory and a
``truth.json`` with each speaker's true speech intervals (keyed by the speaker's own track id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analytics import synth

HARD_VERSION = 1

VOICES_ZH = [
    synth.Voice("cmn", pitch=35, speed=160),
    synth.Voice("cmn+f3", pitch=70, speed=175),
    synth.Voice("cmn+m3", pitch=60, speed=150),
    synth.Voice("cmn+f5", pitch=85, speed=180),
    synth.Voice("cmn+m1", pitch=45, speed=170),
    synth.Voice("cmn+f2", pitch=78, speed=165),
]
VOICES_EN = [
    synth.Voice("en-us", pitch=40, speed=165, language="en"),
    synth.Voice("en-us+f2", pitch=75, speed=170, language="en"),
    synth.Voice("en-gb+m4", pitch=55, speed=155, language="en"),
    synth.Voice("en-us+f4", pitch=82, speed=175, language="en"),
    synth.Voice("en-gb+m2", pitch=48, speed=160, language="en"),
    synth.Voice("en-us+f3", pitch=70, speed=168, language="en"),
]

SAME_ROOM_TAPS = ((0.0, 1.0), (0.009, 0.45), (0.023, 0.3))
LOUDSPEAKER_TAPS = ((0.0, 1.0), (0.017, 0.5), (0.041, 0.3))


@dataclass
class Path_:
    """How one voice reaches one microphone: gain (dB, piecewise linear in time), delay, taps."""

    delay_s: float
    gain_db: float
    taps: tuple[tuple[float, float], ...] = SAME_ROOM_TAPS
    curve: list[tuple[float, float]] = field(default_factory=list)
    """(t_s, gain_db) breakpoints; when given they replace ``gain_db``."""

    def gains(self, t: np.ndarray) -> np.ndarray | float:
        if not self.curve:
            return float(10 ** (self.gain_db / 20))
        xs = np.array([p[0] for p in self.curve])
        ys = np.array([p[1] for p in self.curve])
        return (10 ** (np.interp(t, xs, ys) / 20)).astype(np.float32)


@dataclass
class HardSpec:
    lesson_id: str
    duration_s: float
    n_remote: int
    seed: int
    language: str
    talk: dict[str, list[tuple[float, float]]]
    events: list[dict[str, object]]
    walks: list[tuple[float, float]]
    """intervals during which the teacher is away from the lapel microphone's best range."""
    scrapes: list[tuple[float, float]]
    """non-speech noise bursts on the lead area microphone."""
    paths: dict[tuple[str, str], Path_]
    """(voice = speaker's track id, microphone track id) -> path (voices reaching other rooms'
    microphones through the loudspeaker are modelled by ``echo``)."""
    echo: dict[str, tuple[float, float, float]]
    """remote mic track id -> (gain_db, delay at start s, delay at end s) of the lead's audio."""
    noise_dbfs: dict[str, float]
    speech_dbfs: float = -22.0


def _tracks(n_remote: int) -> list[tuple[str, str, str]]:
    """(track id, classroom id, source)"""
    out = [("teacher", "lead", "teacher"), ("lead-students", "lead", "students")]
    out += [(f"r{i + 1}-students", f"r{i + 1}", "students") for i in range(n_remote)]
    return out


def _walk_curve(
    walks: list[tuple[float, float]], base_db: float, away_db: float, ramp_s: float = 4.0
) -> list[tuple[float, float]]:
    curve = [(-10.0, base_db)]
    for s, e in walks:
        curve += [(s, base_db), (s + ramp_s, away_db), (e - ramp_s, away_db), (e, base_db)]
    curve.append((1e9, base_db))
    return curve


def hard_scenario(
    duration_s: float, n_remote: int, seed: int
) -> tuple[
    dict[str, list[tuple[float, float]]], list[dict[str, object]], list[tuple[float, float]], list[tuple[float, float]]
]:
    """Talk intervals per speaker, floor events, the teacher's walks and chair scrapes."""
    rng = np.random.default_rng(seed)
    remotes = [f"r{i + 1}" for i in range(n_remote)]
    heard_remotes = remotes[:-1] if n_remote > 1 else remotes  # the last one never gets the floor
    talk: dict[str, list[tuple[float, float]]] = {t: [] for t, _, _ in _tracks(n_remote)}
    events: list[dict[str, object]] = []
    scrapes: list[tuple[float, float]] = []
    end_limit = duration_s - 2.0
    t = 1.0
    silences = 0

    def teacher(s: float, e: float) -> None:
        e = min(e, end_limit)
        if e - s > 0.5:
            talk["teacher"].append((s, e))

    while t < end_limit - 3:
        phase = rng.random()
        if phase < 0.3:  # lecture
            length = rng.uniform(20, 60)
            teacher(t, t + length)
            t += length + rng.uniform(0.8, 2.5)
        elif phase < 0.88 or silences >= max(1, int(duration_s // 600)):  # question and answers
            q = rng.uniform(5, 12)
            teacher(t, t + q)
            t_end_teacher = t + q
            for _ in range(int(rng.integers(1, 4))):
                if t_end_teacher >= end_limit - 6:
                    break
                lead_answer = rng.random() < 0.55 or not heard_remotes
                answer = rng.uniform(4, 15)
                if rng.random() < 0.4:  # the answer starts before the teacher has finished
                    start = t_end_teacher - rng.uniform(0.3, 1.5)
                else:
                    start = t_end_teacher + rng.uniform(0.5, 1.5)
                end = min(start + answer, end_limit)
                if lead_answer:
                    talk["lead-students"].append((start, end))
                else:
                    room = heard_remotes[int(rng.integers(len(heard_remotes)))]
                    raised = int((min(start, t_end_teacher) - 3) * 1000)
                    grant = int((min(start, t_end_teacher) - 0.8) * 1000)
                    events.append({"t_ms": raised, "type": "hand_raised", "classroom_id": room})
                    events.append(
                        {"t_ms": grant, "type": "hand_lowered", "classroom_id": room, "by": "lead", "reason": "granted"}
                    )
                    events.append({"t_ms": grant, "type": "floor_granted", "classroom_id": room, "by": "lead"})
                    events.append({"t_ms": int((end + 0.5) * 1000), "type": "floor_revoked", "classroom_id": room})
                    talk[f"{room}-students"].append((start, end))
                if rng.random() < 0.35 and end - start > 6:  # a short word of encouragement over the answer
                    mid = rng.uniform(start + 2, end - 3)
                    teacher(mid, mid + rng.uniform(0.8, 1.8))
                feedback = rng.uniform(3, 10)
                fb_start = end + rng.uniform(0.5, 1.5)
                teacher(fb_start, fb_start + feedback)
                t_end_teacher = fb_start + feedback
            t = t_end_teacher + rng.uniform(0.8, 2.0)
        else:  # practice: a long silence
            silences += 1
            length = rng.uniform(40, 120)
            for _ in range(int(rng.integers(1, 4))):
                s = rng.uniform(t + 3, t + length - 3)
                scrapes.append((s, s + rng.uniform(0.3, 0.8)))
            t += length
            teacher(t, t + rng.uniform(5, 15))
            t = talk["teacher"][-1][1] + rng.uniform(0.8, 2.0)
    # the teacher walks away for about a quarter of the lesson, in 30-90 s stretches
    walks: list[tuple[float, float]] = []
    w = rng.uniform(20, 80)
    while w < duration_s - 40:
        length = rng.uniform(30, 90)
        walks.append((w, min(w + length, duration_s - 5)))
        w += length + rng.uniform(100, 260)
    # the teacher's intervals may touch after overlap edits: merge them
    merged: list[list[float]] = []
    for s, e in sorted(talk["teacher"]):
        if merged and s <= merged[-1][1] + 0.3:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    talk["teacher"] = [(s, e) for s, e in merged]
    events.sort(key=lambda e: int(str(e["t_ms"])))
    return talk, events, walks, sorted(scrapes)


def hard_spec(lesson_id: str, duration_s: float, n_remote: int, seed: int, language: str = "zh") -> HardSpec:
    """A question-and-answer lesson with every hard case; levels and delays drawn from ``seed``."""
    if language not in ("zh", "en"):
        raise ValueError(f"language must be zh or en, got {language!r}")
    talk, events, walks, scrapes = hard_scenario(duration_s, n_remote, seed)
    rng = np.random.default_rng(seed + 1000)
    tracks = _tracks(n_remote)
    paths: dict[tuple[str, str], Path_] = {}
    walk_drop = -float(rng.uniform(9, 14))
    paths[("teacher", "teacher")] = Path_(0.0, 0.0, ((0.0, 1.0),), _walk_curve(walks, 0.0, walk_drop))
    # while away the teacher is 3-7 dB louder on the area mic than on the teacher track
    area_away = walk_drop + float(rng.uniform(3, 7))
    area_delay = float(rng.uniform(0.004, 0.009))
    paths[("teacher", "lead-students")] = Path_(
        area_delay, -16.0, SAME_ROOM_TAPS, _walk_curve(walks, -float(rng.uniform(14, 18)), area_away)
    )
    paths[("lead-students", "lead-students")] = Path_(0.0, 0.0, ((0.0, 1.0),))
    paths[("lead-students", "teacher")] = Path_(float(rng.uniform(0.003, 0.007)), -float(rng.uniform(3, 8)))
    for tid, _, _ in tracks[2:]:
        paths[(tid, tid)] = Path_(0.0, 0.0, ((0.0, 1.0),))
        # the lead's loudspeaker plays the remote classroom into both lead microphones
        paths[(tid, "teacher")] = Path_(0.28, -float(rng.uniform(16, 20)), LOUDSPEAKER_TAPS)
        paths[(tid, "lead-students")] = Path_(0.285, -float(rng.uniform(12, 16)), LOUDSPEAKER_TAPS)
        for other, _, _ in tracks[2:]:
            if other != tid:
                paths[(tid, other)] = Path_(0.45, -float(rng.uniform(8, 12)), LOUDSPEAKER_TAPS)
    echo = {}
    for tid, _, _ in tracks[2:]:
        d0 = float(rng.uniform(0.25, 0.4))
        echo[tid] = (-float(rng.uniform(4, 9)), d0, d0 + float(rng.uniform(-0.05, 0.06)))
    noise = {"teacher": -55.0, "lead-students": -48.0}
    for i, (tid, _, _) in enumerate(tracks[2:]):
        noise[tid] = -50.0 + 4 * (i % 2)
    return HardSpec(lesson_id, duration_s, n_remote, seed, language, talk, events, walks, scrapes, paths, echo, noise)


class _Renderer:
    """Microphone signals for one chunk of the lesson, from voices rendered once per chunk."""

    def __init__(self, spec: HardSpec, speakers: dict[str, synth._Speaker], rate: int, level: float) -> None:
        self.spec = spec
        self.speakers = speakers
        self.rate = rate
        self.level = level
        self.lookback = int(2.0 * rate)  # echo delay + taps + the lead path of a remote voice

    def chunk(self, a: int, b: int) -> dict[str, np.ndarray]:
        rate = self.rate
        lb = self.lookback
        lo = a - 2 * lb
        voices = {tid: sp.render(lo, b) * self.level for tid, sp in self.speakers.items()}
        for tid, gains in self._level_jitter(lo, b).items():
            voices[tid] *= gains

        def mic_clean(mic: str, start: int, stop: int) -> np.ndarray:
            out = np.zeros(stop - start, dtype=np.float32)
            t = np.arange(start, stop, dtype=np.float64) / rate
            for (voice, target), path in self.spec.paths.items():
                if target != mic:
                    continue
                g = path.gains(t)
                for tap_s, amp in path.taps:
                    d = int(round((path.delay_s + tap_s) * rate))
                    s0 = start - d - lo
                    out += g * amp * voices[voice][s0 : s0 + (stop - start)]
            return out

        mics = {
            "teacher": mic_clean("teacher", a - lb, b),
            "lead-students": mic_clean("lead-students", a - lb, b) + self._scrapes(a - lb, b),
        }
        out = {tid: m[lb:] for tid, m in mics.items()}
        lead_mix = mics["teacher"] + mics["lead-students"]
        centre = (a + b) / 2 / rate / max(self.spec.duration_s, 1.0)
        for tid, _, _ in _tracks(self.spec.n_remote)[2:]:
            x = mic_clean(tid, a, b)
            gain_db, d0, d1 = self.spec.echo[tid]
            delay = d0 + (d1 - d0) * min(max(centre, 0.0), 1.0)
            g = 10 ** (gain_db / 20)
            for tap_s, amp in LOUDSPEAKER_TAPS:
                d = int(round((delay + tap_s) * rate))
                x += g * amp * lead_mix[lb - d : lb - d + (b - a)]
            out[tid] = x
        return out

    def _level_jitter(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Each sentence ±3 dB: a gain per placement, constant over the clip."""
        out = {}
        for tid, sp in self.speakers.items():
            g = np.ones(b - a, dtype=np.float32)
            for k, (pos, clip) in enumerate(sp.placements):
                s, e = max(pos, a), min(pos + len(clip), b)
                if e > s:
                    jitter = ((k * 7919 + self.spec.seed * 104729) % 61) / 10.0 - 3.0
                    g[s - a : e - a] = 10 ** (jitter / 20)
            out[tid] = g
        return out

    def _scrapes(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(b - a, dtype=np.float32)
        level = 32768 * 10 ** (-36 / 20)
        for k, (s_s, e_s) in enumerate(self.spec.scrapes):
            s, e = int(s_s * self.rate), int(e_s * self.rate)
            lo, hi = max(s, a), min(e, b)
            if hi <= lo:
                continue
            rng = np.random.default_rng(self.spec.seed * 31 + k)
            white = rng.standard_normal(e - s).astype(np.float32)
            burst = np.convolve(white, np.ones(6, dtype=np.float32) / 6, mode="same")  # a dull scrape
            burst *= np.hanning(e - s).astype(np.float32) * level / (np.std(burst) or 1.0)
            out[lo - a : hi - a] += burst[lo - s : hi - s]
        return out


def build_hard_lesson(
    spec: HardSpec, out_dir: Path, file_ext: str = "webm", rate: int = 16000, opus_complexity: int = 5
) -> dict[str, list[tuple[float, float]]]:
    """Write the recording; return (and write as ``truth.json``) the true speech intervals."""
    out_dir.mkdir(parents=True, exist_ok=True)
    voices = VOICES_ZH if spec.language == "zh" else VOICES_EN
    rng = np.random.default_rng(spec.seed)
    tracks = _tracks(spec.n_remote)
    speakers = {
        tid: synth._Speaker(voices[i % len(voices)], spec.talk.get(tid, []), rate, rng)
        for i, (tid, _, _) in enumerate(tracks)
    }
    level = 32768 * 10 ** (spec.speech_dbfs / 20)
    renderer = _Renderer(spec, speakers, rate, level)
    total = int(spec.duration_s * rate)
    chunk = int(30 * rate)
    writers: dict[str, synth._OpusWriter] = {}
    wavs: dict[str, list[np.ndarray]] = {tid: [] for tid, _, _ in tracks}
    fmt = {"webm": "webm", "ogg": "ogg", "mkv": "matroska"}.get(file_ext)
    if file_ext != "wav" and fmt is None:
        raise ValueError(f"file_ext must be wav, webm, ogg or mkv, got {file_ext!r}")
    if fmt is not None:
        for tid, _, _ in tracks:
            writers[tid] = synth._OpusWriter(out_dir / f"{tid}.{file_ext}", rate, fmt, opus_complexity)
    noise_rngs = {tid: np.random.default_rng(spec.seed * 1009 + i) for i, (tid, _, _) in enumerate(tracks)}
    for a in range(0, total, chunk):
        b = min(a + chunk, total)
        signals = renderer.chunk(a, b)
        for tid, _, _ in tracks:
            x = signals[tid] + synth._noise(b - a, noise_rngs[tid]) * 32768 * 10 ** (spec.noise_dbfs[tid] / 20)
            pcm = np.clip(x, -32768, 32767).astype(np.int16)
            if fmt is not None:
                writers[tid].write(pcm)
            else:
                wavs[tid].append(pcm)
    for tid, _, _ in tracks:
        if fmt is not None:
            writers[tid].close()
        else:
            synth._write_wav(out_dir / f"{tid}.wav", wavs[tid], rate)
    manifest = {
        "format": "classroom-recording/1",
        "lesson_id": spec.lesson_id,
        "title": f"Harder synthetic lesson {spec.lesson_id} ({spec.language}, seed {spec.seed})",
        "started_at": "2026-12-02T08:00:00Z",
        "duration_ms": int(spec.duration_s * 1000),
        "classrooms": [{"id": c, "role": r, "name": n} for c, r, n in synth.standard_rooms(spec.n_remote)],
        "tracks": [
            {
                "id": tid,
                "file": f"{tid}.{file_ext}",
                "kind": "audio",
                "codec": "pcm_s16le" if file_ext == "wav" else "opus",
                "classroom_id": room,
                "source": source,
                "start_ms": 0,
                "end_ms": int(spec.duration_s * 1000),
                "complete": True,
            }
            for tid, room, source in tracks
        ],
        "events": spec.events,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    truth = {tid: sp.truth() for tid, sp in speakers.items()}
    (out_dir / "truth.json").write_text(json.dumps(truth))
    (out_dir / "scenario.json").write_text(
        json.dumps({"walks": spec.walks, "scrapes": spec.scrapes, "echo": spec.echo, "language": spec.language})
    )
    return truth
