"""A 60-second lesson with a lead and two remote classrooms, recorded from RTP (faster than real
time with a simulated clock): every track file opens, has the right codec and duration, the
recorder never touched a codec, and audio/video of a classroom line up within 80 ms."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import av
import pytest

from recorder.core import RecordingSession
from recorder.manifest import read_manifest
from tests.integration.recorder.media import (
    EncodedMedia,
    FakeClock,
    SendTrack,
    decode_times,
    feed,
    flash_times,
    onsets,
    schedule,
)

# (track id, media key, classroom, source, kind, codec, loss, reorder)
TRACKS = [
    ("lead-teacher-video", "vp8", "lead", "teacher", "video", "vp8", 0.0, 0.05),
    ("lead-screen-video", "h264", "lead", "screen", "video", "h264", 0.0, 0.05),
    ("lead-students-video", "vp8_dark", "lead", "students", "video", "vp8", 0.0, 0.05),
    ("lead-teacher-audio", "opus", "lead", "teacher", "audio", "opus", 0.0, 0.05),
    ("lead-students-audio", "opus", "lead", "students", "audio", "opus", 0.0, 0.05),
    ("r1-students-video", "vp8", "r1", "students", "video", "vp8", 0.005, 0.1),
    ("r1-students-audio", "opus", "r1", "students", "audio", "opus", 0.005, 0.1),
    ("r2-students-video", "vp8_dark", "r2", "students", "video", "vp8", 0.0, 0.0),
    ("r2-students-audio", "opus", "r2", "students", "audio", "opus", 0.0, 0.0),
]


def record_lesson(
    directory: Path, media: dict[str, EncodedMedia], clock: FakeClock
) -> tuple[RecordingSession, list[str], float]:
    session = RecordingSession(directory, "lesson-1", "数学 · 分数", clock=clock)
    session.add_classroom("lead", "lead", "城关小学 (主讲)")
    session.add_classroom("r1", "remote", "山村教学点一")
    session.add_classroom("r2", "remote", "山村教学点二")
    senders = []
    for track_id, key, classroom, source, kind, codec, loss, reorder in TRACKS:
        session.add_track(track_id, kind, codec, classroom, source)
        # each classroom's sender clock is off by a different amount; video arrives later
        # than audio (encoder + pacing), as in browsers: only sender reports can align them
        senders.append(
            SendTrack(
                track_id,
                media[key],
                delay=0.16 if kind == "video" else 0.03,
                sender_clock_offset={"lead": 500.0, "r1": -3.0, "r2": 77.7}[classroom],
                loss=loss,
                reorder=reorder,
                start=0.4 if classroom == "r2" else 0.2,
            )
        )
    session.event("join", "lead", t_ms=0)
    session.event("join", "r1", t_ms=100)
    session.event("join", "r2", t_ms=150)
    session.event("hand_raised", "r1", t_ms=12_000)
    session.event("floor_granted", "r1", t_ms=15_000)
    session.event("spotlight", "r1", t_ms=15_100)
    session.event("floor_revoked", "r1", t_ms=40_000)
    session.event("spotlight", None, t_ms=40_100)
    events = schedule(senders, clock.now)
    cpu0 = time.process_time()
    requests = feed(session.rtp, session.poll, clock, events)
    clock.now += 0.5
    session.close()
    cpu = time.process_time() - cpu0
    return session, requests, cpu


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory, lesson_media: dict[str, EncodedMedia]) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("recording")
    patcher = pytest.MonkeyPatch()
    from tests.integration.recorder.conftest import _Forbidden, _NoCodecContainer

    log: dict[str, list[Any]] = {"streams": [], "muxed": [], "opened": []}
    real_open = av.open

    def spy_open(path: Any, mode: str = "r", **kwargs: Any) -> Any:
        if mode != "w":
            # the only thing the recorder may read: its in-memory Opus template (headers only)
            if not isinstance(path, io.BytesIO):
                raise AssertionError(f"the recorder opened {path} for reading")
            return real_open(path, mode, **kwargs)
        log["opened"].append(path)
        return _NoCodecContainer(real_open(path, mode, **kwargs), log)

    patcher.setattr(av, "open", spy_open)
    for name in ("CodecContext", "AudioResampler", "VideoFrame", "AudioFrame"):
        patcher.setattr(av, name, _Forbidden(name))
    patcher.setattr(av.codec, "CodecContext", _Forbidden("codec.CodecContext"))
    try:
        session, requests, cpu = record_lesson(directory, lesson_media, FakeClock())
    finally:
        patcher.undo()
    return {"dir": directory, "session": session, "requests": requests, "cpu": cpu, "log": log}


def test_manifest_and_every_track(recorded: dict[str, Any]) -> None:
    directory: Path = recorded["dir"]
    raw = json.loads((directory / "manifest.json").read_text())
    assert raw["format"] == "classroom-recording/1"
    manifest = read_manifest(directory / "manifest.json")
    assert manifest.complete and manifest.lesson_id == "lesson-1"
    assert {c.id: c.role for c in manifest.classrooms} == {
        "lead": "lead",
        "r1": "remote",
        "r2": "remote",
    }
    assert abs(manifest.duration_ms - 60_900) < 1000
    assert [t.id for t in manifest.tracks] == [t[0] for t in TRACKS]
    assert [e.type for e in manifest.events][:3] == ["join", "join", "join"]
    for track in manifest.tracks:
        expected_codec = dict((t[0], t[5]) for t in TRACKS)[track.id]
        assert track.codec == expected_codec and track.complete
        with av.open(str(directory / track.file)) as container:
            stream = container.streams[0]
            assert stream.type == track.kind
            assert stream.codec_context.name == expected_codec
            if expected_codec == "opus":  # CodecPrivate for players that need it
                assert (stream.codec_context.extradata or b"").startswith(b"OpusHead")
            assert container.duration is not None
            duration = container.duration / 1e6
        assert abs(duration - 60.0) < 0.5, (track.id, duration)
        assert abs((track.end_ms - track.start_ms) / 1000 - 60.0) < 0.5
        assert len(track.segments) >= 25
        for segment in track.segments:
            assert (directory / segment.file).is_file()


def test_zero_codec_use_in_the_recorder(recorded: dict[str, Any]) -> None:
    log = recorded["log"]
    assert log["streams"]
    assert all(s.codec_context is None or not s.codec_context.is_open for s in log["streams"])
    assert len(log["muxed"]) > 9 * 2 * 800  # full file + segment for every frame


def test_loss_triggers_keyframe_requests(recorded: dict[str, Any]) -> None:
    session: RecordingSession = recorded["session"]
    r1 = session.tracks["r1-students-video"]
    assert r1.jitter.stats.lost > 0
    assert "r1-students-video" in recorded["requests"]
    assert r1.stats.dropped_frames < 200  # dropped only until the next keyframe (1 s GOP)


def _flash_onsets(path: Path, kind: str, start_ms: int) -> list[float]:
    samples = decode_times(str(path), kind)
    threshold = 160.0 if kind == "video" else 0.05
    return [start_ms / 1000 + t for t in onsets(samples, threshold)]


@pytest.mark.parametrize("classroom", ["lead", "r2"])
def test_av_sync_within_80ms(recorded: dict[str, Any], classroom: str) -> None:
    directory: Path = recorded["dir"]
    manifest = read_manifest(directory / "manifest.json")
    tracks = {t.id: t for t in manifest.tracks}
    video = tracks[f"{classroom}-teacher-video" if classroom == "lead" else "r2-students-video"]
    audio = tracks[f"{classroom}-teacher-audio" if classroom == "lead" else "r2-students-audio"]
    v = _flash_onsets(directory / video.file, "video", video.start_ms)
    a = _flash_onsets(directory / audio.file, "audio", audio.start_ms)
    expected = len(flash_times(60.0))
    assert len(v) == expected and len(a) == expected, (len(v), len(a))
    worst = max(abs(x - y) for x, y in zip(v, a, strict=True))
    print(f"A/V offset {classroom}: worst {worst * 1000:.1f} ms")
    assert worst <= 0.080


def test_recorder_cpu_per_track(recorded: dict[str, Any]) -> None:
    per_track = recorded["cpu"] / len(TRACKS) / 60.0
    print(f"recorder CPU: {per_track * 100:.2f}% of a core per track")
    assert per_track < 0.02
