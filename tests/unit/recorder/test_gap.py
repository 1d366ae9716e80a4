"""A resumed recording's ``recorder_gap`` ends where the new run wrote its first frame, not where
it started (issue #16: its join, subscription and ICE/DTLS are unrecorded time too)."""

from __future__ import annotations

from pathlib import Path

from recorder.core import GAP_EVENT, RecordingSession
from recorder.manifest import read_manifest


class Clock:
    def __init__(self, t: float = 1_780_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def gap_of(directory: Path) -> tuple[int, int]:
    (gap,) = [e for e in read_manifest(directory / "manifest.json").events if e.type == GAP_EVENT]
    return gap.t_ms, int(gap.extra["end_ms"])


def test_the_gap_ends_at_the_first_frame_written_after_resuming(tmp_path: Path) -> None:
    clock = Clock()
    RecordingSession(tmp_path, "L", clock=clock).close()  # the first run: 0 → 0 s
    clock.t += 10.0
    session = RecordingSession(tmp_path, "L", clock=clock)  # resumed 10 s later
    track = session.add_track("lead-teacher-audio", "audio", "opus", "lead", "teacher")
    clock.t += 2.5
    session.poll()  # joining, connecting: no frame yet, the gap is still open
    track.first_frame_unix = clock.t - 0.5  # its first frame 12.0 s in
    clock.t += 1.0
    session.poll()
    session.close()
    assert gap_of(tmp_path) == (0, 12_000)


def test_a_run_that_writes_nothing_leaves_the_gap_open_to_its_end(tmp_path: Path) -> None:
    clock = Clock()
    RecordingSession(tmp_path, "L", clock=clock).close()
    clock.t += 4.0
    session = RecordingSession(tmp_path, "L", clock=clock)
    clock.t += 3.0
    session.close()
    assert gap_of(tmp_path) == (0, 7_000)
