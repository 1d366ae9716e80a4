"""recorder/writer.py: segment rotation by the track's own time and by the wall clock (issue #14:
a sender whose timestamps run slower than real time must not keep a segment open for longer)."""

from __future__ import annotations

from pathlib import Path

import av

from recorder.writer import TrackWriter

SILENT_OPUS = b"\xf8\xff\xfe"  # one 20 ms CELT frame of silence


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(container.streams.audio[0]))


def write_slow_audio(writer: TrackWriter, wall_seconds: float, with_clock: bool) -> None:
    """20 ms frames every 20 ms of wall time whose timestamps advance a sixth of that."""
    for i in range(round(wall_seconds / 0.020)):
        assert writer.write(SILENT_OPUS, i * 160, True, now=100.0 + i * 0.020 if with_clock else None)


def test_a_segment_is_due_after_segment_seconds_of_the_wall_clock(tmp_path: Path) -> None:
    writer = TrackWriter(tmp_path, "mic", "audio", "opus", 48000, segment_seconds=2.0)
    write_slow_audio(writer, 10.0, with_clock=True)
    # 10 s of wall time, 1.7 s of track time: five segments, not one
    assert len(writer.segments) == 5
    finished = writer.segments[:-1]
    assert all(s.complete for s in finished)
    for segment in finished:  # each closed properly: it decodes, 100 frames of 20 ms
        assert abs(decoded_seconds(tmp_path / segment.file) - 2.0) < 0.05, segment
    writer.close()
    assert abs(decoded_seconds(tmp_path / writer.file) - 10.0) < 0.05


def test_without_a_clock_only_the_tracks_own_time_counts(tmp_path: Path) -> None:
    writer = TrackWriter(tmp_path, "mic", "audio", "opus", 48000, segment_seconds=2.0)
    write_slow_audio(writer, 10.0, with_clock=False)
    assert len(writer.segments) == 1
    writer.close()


def test_a_real_time_track_is_cut_every_segment_seconds_either_way(tmp_path: Path) -> None:
    writer = TrackWriter(tmp_path, "mic", "audio", "opus", 48000, segment_seconds=2.0)
    for i in range(500):  # 10 s, timestamps and wall clock agree
        writer.write(SILENT_OPUS, i * 960, True, now=100.0 + i * 0.020)
    assert len(writer.segments) == 5
    assert [round(s.start_ms) for s in writer.segments] == [0, 2000, 4000, 6000, 8000]
    writer.close()


def test_video_waits_for_a_keyframe_when_the_wall_clock_makes_a_segment_due(tmp_path: Path) -> None:
    writer = TrackWriter(tmp_path, "cam", "video", "vp8", 90000, segment_seconds=2.0)
    frame = b"\x00" * 64
    assert writer.write(frame, 0, True, 320, 240, now=0.0)
    for i in range(1, 100):  # 100 frames 30 ms apart on the wall clock, 5 ms apart in the track
        assert writer.write(frame, i * 450, False, now=i * 0.030)
    assert len(writer.segments) == 1 and writer.wants_keyframe  # due, but no keyframe yet
    assert writer.write(frame, 100 * 450, True, now=3.0)
    assert len(writer.segments) == 2 and not writer.wants_keyframe
    writer.close()
