"""``kill -9`` of a recording process 30 s into a lesson: the manifest left behind parses and
everything up to at most 5 s before the kill decodes. Runs in real time (~32 s)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from recorder.cli import record_main
from recorder.core import RecordingSession
from recorder.manifest import TrackEntry, read_manifest
from tests.integration.recorder.media import EncodedMedia, SendTrack, schedule

KILL_AFTER = 30.0
MAX_LOSS = 5.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def decoded_until(path: Path, kind: str) -> tuple[float | None, int]:
    """Time of the last frame that decodes (seconds, file timeline) and how many decoded."""
    last: float | None = None
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0] if kind == "video" else container.streams.audio[0]
            for frame in container.decode(stream):
                last = float(frame.time or 0.0)
                count += 1
    except av.FFmpegError:
        pass  # a cut-off file: count what decoded before the cut
    return last, count


def decoded_audio_seconds(path: Path) -> float:
    """Seconds of sound that decode from an audio file (samples ÷ rate, summed over its frames):
    unlike the last frame's time, this counts holes, and a stream slower than real time."""
    seconds = 0.0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.audio[0]):
                seconds += frame.samples / frame.sample_rate
    except av.FFmpegError:
        pass  # a cut-off file: count what decoded before the cut
    return seconds


def assert_audio_covers(path: Path, start_ms: float, kill_ms: float, max_loss_s: float, what: str) -> float:
    """The audio in ``path`` (whose first sample is at ``start_ms`` on the lesson's timeline)
    covers its time up to the kill but for at most ``max_loss_s``; returns the seconds missing."""
    span = (kill_ms - start_ms) / 1000
    assert span > 2 * max_loss_s, f"{what}: {span:.1f} s before the kill is too short for the check to mean anything"
    recorded = decoded_audio_seconds(path)
    missing = span - recorded
    print(f"{what}: {recorded:.2f} s of audio decode for {span:.2f} s recorded "
          f"until the kill ({missing:.2f} s missing)")
    assert missing <= max_loss_s, (what, recorded, missing)
    return missing


def audio_covers_video(directory: Path, tracks: list[TrackEntry], max_loss_s: float) -> None:
    """Each audio track of ``tracks`` holds as much sound as its classroom's video track lasts,
    but for ``max_loss_s`` (one classroom's camera and microphone start and stop together)."""
    for audio in (t for t in tracks if t.kind == "audio"):
        video = next(t for t in tracks if t.kind == "video" and t.classroom_id == audio.classroom_id)
        last, _ = decoded_until(directory / video.file, "video")
        assert last is not None, video.id
        sound = decoded_audio_seconds(directory / audio.file)
        print(f"{audio.id}: {sound:.2f} s of audio decode beside {last:.2f} s of {video.id}")
        assert sound >= last - max_loss_s, (audio.id, sound, video.id, last)


@pytest.mark.slow
def test_kill_9_loses_at_most_5_seconds(tmp_path: Path, lesson_media: dict[str, EncodedMedia]) -> None:
    out = tmp_path / "rec"
    specs = [
        ("lead-cam", "video", "vp8", "lead", "teacher", "vp8"),
        ("lead-mic", "audio", "opus", "lead", "teacher", "opus"),
        ("r1-cam", "video", "vp8", "r1", "students", "vp8_dark"),
        ("r1-mic", "audio", "opus", "r1", "students", "opus"),
    ]
    ports = {s[0]: free_udp_port() for s in specs}
    cmd = [
        sys.executable,
        "-m",
        "classroom.cli",
        "record",
        "--out",
        str(out),
        "--lesson-id",
        "crash-lesson",
        "--log-level",
        "WARNING",
    ]
    for track_id, kind, codec, classroom, source, _ in specs:
        cmd += ["--udp-track", f"{track_id},{kind},{codec},{classroom},{source},{ports[track_id]}"]
    proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[3])
    try:
        deadline = time.time() + 15
        while not (out / "manifest.json").exists():
            assert proc.poll() is None, "the recorder exited early"
            assert time.time() < deadline, "the recorder did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # sockets bound after the first manifest
        senders = [
            SendTrack(track_id, lesson_media[key], delay=0.0, sender_clock_offset=10.0)
            for track_id, _, _, _, _, key in specs
        ]
        t0 = time.time()
        events = schedule(senders, t0, until=KILL_AFTER + 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        kill_at = t0 + KILL_AFTER
        for when, track_id, data in events:
            if when >= kill_at:
                break
            delay = when - time.time()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(data, ("127.0.0.1", ports[track_id]))
        time.sleep(max(0.0, kill_at - time.time()))
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.time()
        proc.wait(10)
        sock.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    manifest = read_manifest(out / "manifest.json")
    assert not manifest.complete
    kill_ms = (killed - manifest.started_at.timestamp()) * 1000
    assert len(manifest.tracks) == 4
    for track in manifest.tracks:
        assert track.segments, track.id
        covered_ms = None
        for index, segment in enumerate(track.segments):
            last, count = decoded_until(out / segment.file, track.kind)
            if index < len(track.segments) - 1:
                assert count > 0, f"{segment.file} does not decode"
            if last is not None:
                covered_ms = track.start_ms + last * 1000
        assert covered_ms is not None
        lost = (kill_ms - covered_ms) / 1000
        print(f"{track.id}: decodable until {lost:.2f} s before the kill")
        assert lost <= MAX_LOSS, (track.id, lost)
        # ``file`` points at something playable
        first, count = decoded_until(out / track.file, track.kind)
        assert count > 0

    # repair: every track's full file is rebuilt from its segments (remux only)
    assert record_main(["--repair", str(out)]) == 0
    repaired = read_manifest(out / "manifest.json")
    for track in repaired.tracks:
        assert track.complete and track.file == f"{track.id}.webm"
        last, count = decoded_until(out / track.file, track.kind)
        assert last is not None and count > 0
        lost = (kill_ms - (track.start_ms + last * 1000)) / 1000
        assert lost <= MAX_LOSS, (track.id, lost)
        # the manifest says where the rebuilt file ends, not what the dead recorder had listed
        assert 0 <= track.end_ms - (track.start_ms + last * 1000) <= 100, (track.id, track.end_ms, last)
        if track.kind == "audio":  # and the sound itself, not only its last frame, is all there
            assert_audio_covers(out / track.file, track.start_ms, kill_ms, MAX_LOSS, f"repaired {track.id}")

    # a recorder started again in the directory continues the same recording
    session = RecordingSession(out, "crash-lesson")
    assert abs(session.start_unix - manifest.started_at.timestamp()) < 0.01
    assert session.add_track("lead-cam", "video", "vp8", "lead", "teacher").info.track_id == ("lead-cam-2")
    resumed = session.close()
    assert [t.id for t in resumed.tracks] == [t.id for t in repaired.tracks]
