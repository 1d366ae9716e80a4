"""Synthetic lessons with a known speech timeline (used by the tests and the benchmark).

Speech comes from espeak-ng (Debian package ``espeak-ng``), one voice per speaker. Each
microphone track is its own speaker's voice, plus attenuated and delayed copies of the other
speakers (the same room, or a remote classroom's loudspeaker), plus background noise. Files are
written as WAV or as Opus in WebM / Ogg, with a ``classroom-recording/1`` manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

SENTENCES_ZH = [
    "同学们好，今天我们一起学习水的循环。",
    "请大家看屏幕上的这张图，太阳把水加热，水就变成了水蒸气。",
    "水蒸气升到天空中，遇冷凝结成小水滴，小水滴聚在一起就形成了云。",
    "云里的水滴越来越大，最后落下来，就是我们看到的雨。",
    "谁能告诉我，雨水落到地面以后会去哪里呢？",
    "很好，有的流进小河，有的渗进土里，还有的又被太阳晒干了。",
    "我觉得雨水会流到河里，然后流进大海。",
    "老师，我知道，冬天的时候水会变成雪花。",
    "我们村子旁边有一条小河，下雨以后河水会变多。",
    "请第三小组的同学来回答这个问题。",
]
SENTENCES_EN = [
    "Good morning everyone, today we will learn how water moves around our planet.",
    "Look at the picture on the screen, the sun heats the water in the sea.",
    "The water vapour rises into the sky, cools down, and forms tiny droplets.",
    "I think the rain goes into the river and then flows into the sea.",
    "When it is very cold the water in the clouds becomes snow.",
    "Please discuss this question with the classmates next to you.",
]


@dataclass(frozen=True)
class Voice:
    name: str = "cmn"
    """espeak-ng voice (e.g. cmn, cmn+f3, en-us+m3)."""
    pitch: int = 50
    speed: int = 165
    language: str = "zh"


@dataclass
class SynthTrack:
    id: str
    classroom_id: str
    source: str
    voice: Voice
    noise_dbfs: float = -52.0
    file_ext: str = "wav"
    """wav, webm or ogg."""


@dataclass
class Coupling:
    """``source``'s voice reaches ``target``'s microphone ``gain_db`` weaker, ``delay_s`` later."""

    source: str
    target: str
    gain_db: float
    delay_s: float


@dataclass
class LessonSpec:
    lesson_id: str
    duration_s: float
    classrooms: list[tuple[str, str, str]]
    """(id, role, name)"""
    tracks: list[SynthTrack]
    talk: dict[str, list[tuple[float, float]]]
    """track id -> intervals during which that track's speaker talks."""
    couplings: list[Coupling] = field(default_factory=list)
    events: list[dict[str, object]] = field(default_factory=list)
    speech_dbfs: float = -22.0
    seed: int = 1


def cache_dir() -> Path:
    base = os.environ.get("CLASSROOM_ANALYTICS_CACHE")
    path = Path(base) if base else Path(tempfile.gettempdir()) / "classroom-analytics-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    if src == dst:
        return x.astype(np.float32)
    n = int(len(x) * dst / src)
    t = np.arange(n) * (src / dst)
    return np.interp(t, np.arange(len(x)), x).astype(np.float32)


def speech_clip(text: str, voice: Voice, rate: int) -> np.ndarray:
    """espeak-ng speech, trimmed, normalised to RMS 1.0 (cached on disk)."""
    key = hashlib.sha1(f"{voice}|{text}|{rate}".encode()).hexdigest()[:16]
    path = cache_dir() / f"clip-{key}.npy"
    if path.exists():
        return np.load(path)
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(
            [
                "espeak-ng",
                "-v",
                voice.name,
                "-p",
                str(voice.pitch),
                "-s",
                str(voice.speed),
                "-w",
                tmp.name,
                text,
            ],
            check=True,
            capture_output=True,
        )
        with wave.open(tmp.name) as w:
            src_rate = w.getframerate()
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    x = data.astype(np.float32)
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    x = x[loud[0] : loud[-1] + 1] if len(loud) else x
    x = _resample(x, src_rate, rate)
    rms = float(np.sqrt(np.mean(x**2))) or 1.0
    x = (x / rms).astype(np.float32)
    np.save(path, x)
    return x


class _Speaker:
    """Places the speaker's clips back to back inside each talk interval."""

    def __init__(
        self,
        voice: Voice,
        intervals: list[tuple[float, float]],
        rate: int,
        rng: np.random.Generator,
    ) -> None:
        texts = SENTENCES_ZH if voice.language == "zh" else SENTENCES_EN
        self.clips = [speech_clip(t, voice, rate) for t in texts]
        self.rate = rate
        self.placements: list[tuple[int, np.ndarray]] = []
        for start, end in intervals:
            pos = int(start * rate)
            stop = int(end * rate)
            while stop - pos > int(0.3 * rate):
                clip = self.clips[int(rng.integers(len(self.clips)))]
                piece = clip[: stop - pos]
                if len(piece) < len(clip):  # cut mid-sentence: fade out over 20 ms
                    fade = min(len(piece), int(0.02 * rate))
                    piece = piece.copy()
                    piece[-fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
                self.placements.append((pos, piece))
                pos += len(piece) + int(rng.uniform(0.15, 0.3) * rate)

    def render(self, a: int, b: int) -> np.ndarray:
        out = np.zeros(max(b - a, 0), dtype=np.float32)
        for pos, clip in self.placements:
            lo, hi = max(pos, a), min(pos + len(clip), b)
            if hi > lo:
                out[lo - a : hi - a] += clip[lo - pos : hi - pos]
        return out

    def truth(self) -> list[tuple[float, float]]:
        """Speech intervals as placed (pauses between sentences < 0.3 s belong to the turn)."""
        merged: list[list[float]] = []
        for pos, clip in self.placements:
            s, e = pos / self.rate, (pos + len(clip)) / self.rate
            if merged and s - merged[-1][1] < 0.35:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        return [(s, e) for s, e in merged]


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pinkish noise with RMS ~1, built in blocks with FFT shaping."""
    out = np.empty(n, dtype=np.float32)
    block = 1 << 15
    for i in range(0, n, block):
        m = min(block, n - i)
        spec = np.fft.rfft(rng.standard_normal(block))
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f / 50.0 + 1.0)
        y = np.fft.irfft(spec, block)[:m]
        out[i : i + m] = y / (np.std(y) or 1.0)
    return out


def _write_wav(path: Path, chunks: list[np.ndarray], rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        for c in chunks:
            w.writeframes(c.tobytes())


class _OpusWriter:
    def __init__(self, path: Path, rate: int, fmt: str, complexity: int) -> None:
        self.container = av.open(str(path), "w", format=fmt)
        self.stream = self.container.add_stream(
            "libopus",
            rate=48000,
            options={"application": "voip", "compression_level": str(complexity)},
        )
        self.stream.layout = "mono"
        self.stream.bit_rate = 32000
        self.rate = rate
        self.pts = 0

    def write(self, samples: np.ndarray) -> None:
        step = self.rate // 5
        for i in range(0, len(samples), step):
            piece = samples[None, i : i + step]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="s16", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self.pts
            self.pts += piece.shape[1]
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


def build_lesson(
    spec: LessonSpec,
    out_dir: Path,
    rate: int = 16000,
    chunk_s: float = 30.0,
    opus_complexity: int = 10,
) -> dict[str, list[tuple[float, float]]]:
    """Write the recording to ``out_dir``; return the true speech intervals per track id."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    speakers = {t.id: _Speaker(t.voice, spec.talk.get(t.id, []), rate, rng) for t in spec.tracks}
    level = 32768 * 10 ** (spec.speech_dbfs / 20)
    total = int(spec.duration_s * rate)
    chunk = int(chunk_s * rate)
    manifest_tracks = []
    for track in spec.tracks:
        file = f"{track.id}.{track.file_ext}"
        path = out_dir / file
        noise_rng = np.random.default_rng(abs(hash((spec.seed, track.id))) % (2**32))
        incoming = [c for c in spec.couplings if c.target == track.id]
        writer: _OpusWriter | None = None
        wav_chunks: list[np.ndarray] = []
        if track.file_ext in ("webm", "ogg", "mkv"):
            fmt = {"webm": "webm", "ogg": "ogg", "mkv": "matroska"}[track.file_ext]
            writer = _OpusWriter(path, rate, fmt, opus_complexity)
        noise_level = 32768 * 10 ** (track.noise_dbfs / 20)
        for a in range(0, total, chunk):
            b = min(a + chunk, total)
            x = speakers[track.id].render(a, b) * level
            for c in incoming:
                d = int(c.delay_s * rate)
                echo = int(0.023 * rate)
                g = 10 ** (c.gain_db / 20) * level
                src = speakers[c.source]
                x += g * (src.render(a - d, b - d) + 0.4 * src.render(a - d - echo, b - d - echo))
            x += _noise(b - a, noise_rng) * noise_level
            pcm = np.clip(x, -32768, 32767).astype(np.int16)
            if writer is not None:
                writer.write(pcm)
            else:
                wav_chunks.append(pcm)
        if writer is not None:
            writer.close()
        else:
            _write_wav(path, wav_chunks, rate)
        codec = "pcm_s16le" if track.file_ext == "wav" else "opus"
        manifest_tracks.append(
            {
                "id": track.id,
                "file": file,
                "kind": "audio",
                "codec": codec,
                "classroom_id": track.classroom_id,
                "source": track.source,
                "start_ms": 0,
                "end_ms": int(spec.duration_s * 1000),
            }
        )
    manifest = {
        "format": "classroom-recording/1",
        "lesson_id": spec.lesson_id,
        "title": f"Synthetic lesson {spec.lesson_id}",
        "started_at": "2026-11-25T08:00:00Z",
        "duration_ms": int(spec.duration_s * 1000),
        "classrooms": [{"id": c, "role": r, "name": n} for c, r, n in spec.classrooms],
        "tracks": manifest_tracks,
        "events": spec.events,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    truth = {tid: sp.truth() for tid, sp in speakers.items()}
    (out_dir / "truth.json").write_text(json.dumps(truth))
    return truth


def standard_rooms(n_remote: int) -> list[tuple[str, str, str]]:
    rooms = [("lead", "lead", "主讲教室 Lead")]
    rooms += [(f"r{i + 1}", "remote", f"远端{i + 1} Remote {i + 1}") for i in range(n_remote)]
    return rooms


VOICES = [
    Voice("cmn", pitch=35, speed=160),
    Voice("cmn+f3", pitch=70, speed=175),
    Voice("cmn+m3", pitch=60, speed=150),
    Voice("en-us+f2", pitch=75, speed=170, language="en"),
    Voice("cmn+f5", pitch=85, speed=180),
    Voice("en-gb+m4", pitch=55, speed=155, language="en"),
]


def standard_tracks(n_remote: int, file_ext: str = "wav") -> list[SynthTrack]:
    tracks = [
        SynthTrack("teacher", "lead", "teacher", VOICES[0], -55.0, file_ext),
        SynthTrack("lead-students", "lead", "students", VOICES[1], -48.0, file_ext),
    ]
    for i in range(n_remote):
        tracks.append(
            SynthTrack(
                f"r{i + 1}-students",
                f"r{i + 1}",
                "students",
                VOICES[2 + i % 4],
                -50.0 + 4 * (i % 2),
                file_ext,
            )
        )
    return tracks


def standard_couplings(tracks: list[SynthTrack]) -> list[Coupling]:
    """Same-room pickup at the lead, loudspeaker pickup in every remote classroom."""
    out: list[Coupling] = []
    for a in tracks:
        for b in tracks:
            if a is b:
                continue
            same_room = a.classroom_id == b.classroom_id
            if same_room:
                out.append(Coupling(a.id, b.id, -20.0 if a.source == "teacher" else -16.0, 0.01))
            elif b.classroom_id == "lead":
                out.append(Coupling(a.id, b.id, -18.0, 0.28))  # remote voice via lead loudspeaker
            else:
                out.append(Coupling(a.id, b.id, -15.0, 0.3 if a.classroom_id == "lead" else 0.45))
    return out


def scenario(
    kind: str, duration_s: float, n_remote: int, seed: int
) -> tuple[dict[str, list[tuple[float, float]]], list[dict[str, object]]]:
    """Talk intervals per track and floor events for a lecture/dialogue/practice/mixed lesson."""
    rng = np.random.default_rng(seed)
    student_tracks = ["lead-students"] + [f"r{i + 1}-students" for i in range(n_remote)]
    rooms = ["lead"] + [f"r{i + 1}" for i in range(n_remote)]
    talk: dict[str, list[tuple[float, float]]] = {t: [] for t in ["teacher", *student_tracks]}
    events: list[dict[str, object]] = []
    t = 1.0
    turn = 0
    while t < duration_s - 2:
        if kind == "lecture":
            teacher_len, pause, student_p = rng.uniform(20, 50), rng.uniform(1.0, 3.0), 0.25
        elif kind == "dialogue":
            teacher_len, pause, student_p = rng.uniform(10, 30), rng.uniform(0.8, 2.0), 1.0
        elif kind == "practice":
            teacher_len, pause, student_p = rng.uniform(5, 15), rng.uniform(30, 70), 0.6
        else:  # mixed
            teacher_len, pause, student_p = rng.uniform(15, 40), rng.uniform(10, 30), 0.5
        end = min(t + teacher_len, duration_s - 1)
        talk["teacher"].append((t, end))
        t = end + pause
        if rng.random() < student_p and t < duration_s - 5:
            k = turn % len(student_tracks) if kind != "lecture" else int(rng.integers(len(student_tracks)))
            if n_remote > 1 and k == len(student_tracks) - 1 and kind != "dialogue":
                k = 0  # the last remote classroom stays silent (fairness view) except in dialogues
            turn += 1
            room = rooms[k]
            length = rng.uniform(8, 25) if kind == "dialogue" else rng.uniform(4, 20)
            events.append({"t_ms": int((t - 3) * 1000), "type": "hand_raised", "classroom_id": room})
            # as the server logs a grant: the hand it lowers first, in the same millisecond
            grant_ms = int((t - 1) * 1000)
            events.append(
                {"t_ms": grant_ms, "type": "hand_lowered", "classroom_id": room, "by": "lead", "reason": "granted"}
            )
            events.append({"t_ms": grant_ms, "type": "floor_granted", "classroom_id": room, "by": "lead"})
            end = min(t + length, duration_s - 1)
            talk[student_tracks[k]].append((t, end))
            events.append({"t_ms": int((end + 0.5) * 1000), "type": "floor_revoked", "classroom_id": room})
            t = end + rng.uniform(0.8, 2.0)
    return talk, events


def standard_lesson(
    lesson_id: str, kind: str, duration_s: float, n_remote: int, file_ext: str, seed: int
) -> LessonSpec:
    """A lesson of the ``scenario`` kind on the standard rooms, tracks and cross-talk."""
    talk, events = scenario(kind, duration_s, n_remote, seed=seed)
    tracks = standard_tracks(n_remote, file_ext)
    return LessonSpec(
        lesson_id=lesson_id,
        duration_s=duration_s,
        classrooms=standard_rooms(n_remote),
        tracks=tracks,
        talk=talk,
        couplings=standard_couplings(tracks),
        events=events,
        seed=seed,
    )
