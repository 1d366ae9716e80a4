"""Damaged input: a clear message and a report for whatever could be read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analytics.cli import main as cli_main
from analytics.errors import AnalysisError
from analytics.report import analyze_recording

from .conftest import Lesson
from .helpers import total


def _copy(lesson: Lesson, tmp_path: Path) -> Path:
    return lesson.copy_to(tmp_path / "rec")


def _edit_manifest(directory: Path, edit: object) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def test_truncated_opus_track(opus_lesson: Lesson, tmp_path: Path) -> None:
    rec = _copy(opus_lesson, tmp_path)
    path = rec / "teacher.webm"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    messages = [w for w in report["warnings"] if "track teacher" in w]
    assert messages and ("truncated" in messages[0] or "corrupt" in messages[0]), messages
    decoded = next(t["decoded_s"] for t in report["tracks"] if t["id"] == "teacher")
    assert 0.3 * opus_lesson.duration_s < decoded < 0.7 * opus_lesson.duration_s
    # teacher speech is still measured in the part that was read
    first_half = [(s, min(e, decoded)) for s, e in opus_lesson.truth["teacher"] if s < decoded]
    assert abs(report["talk"]["teacher_s"] - total(first_half)) <= 0.03 * opus_lesson.duration_s
    assert (tmp_path / "out" / "report.html").exists()


def test_truncated_wav_track(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)
    path = rec / "r1-students.wav"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    assert any("track r1-students" in w and "truncated" in w for w in report["warnings"])
    assert report["st"]["mode"] == "lecture"


def test_corrupt_track(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)
    (rec / "lead-students.wav").write_bytes(b"RIFF\x00\x00garbage" + bytes(range(256)) * 40)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    messages = [w for w in report["warnings"] if "track lead-students" in w]
    assert messages, report["warnings"]
    assert report["participation"]["lead"]["has_audio"] is False
    # without the students' track their answers heard by the lapel mic (16.8 s here) cannot be
    # told from the teacher: that is the margin
    assert abs(report["talk"]["teacher_s"] - total(lecture.truth["teacher"])) < 0.06 * 330


def test_garbage_opus_file(opus_lesson: Lesson, tmp_path: Path) -> None:
    rec = _copy(opus_lesson, tmp_path)
    (rec / "r1-students.ogg").write_bytes(b"OggS" + b"\x07" * 5000)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    assert any("track r1-students" in w for w in report["warnings"]), report["warnings"]
    assert report["fairness"]["never_heard_without_audio"] == ["r1"]


def test_missing_file(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)
    (rec / "r2-students.wav").unlink()
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    assert "track r2-students: file r2-students.wav is missing; no audio for it" in report["warnings"]
    assert report["st"]["mode"] == "lecture"


def test_unknown_manifest_fields_are_reported_and_ignored(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["recorder_version"] = "9.9"
        data["tracks"][0]["bitrate"] = 32000
        data["classrooms"][0]["school"] = "No. 1 Primary"
        data["events"].append({"t_ms": 1000, "type": "reaction", "classroom_id": "r1"})

    _edit_manifest(rec, edit)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    text = "\n".join(report["warnings"])
    assert "recorder_version" in text and "bitrate" in text and "school" in text
    assert "reaction" in text
    baseline = analyze_recording(lecture.directory, tmp_path / "base", 30.0)
    assert report["st"] == baseline["st"]
    assert report["talk"] == baseline["talk"]


def test_segments_are_decoded_in_order(lecture: Lesson, tmp_path: Path) -> None:
    import wave

    rec = _copy(lecture, tmp_path)
    with wave.open(str(rec / "teacher.wav")) as w:
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    cut = 120 * rate * 2
    for name, chunk in (("teacher-0.wav", frames[:cut]), ("teacher-1.wav", frames[cut:])):
        with wave.open(str(rec / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(chunk)
    (rec / "teacher.wav").unlink()

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        track = data["tracks"][0]
        del track["file"]
        track["segments"] = [
            {"file": "teacher-0.wav", "start_ms": 0, "end_ms": 120000},
            {"file": "teacher-1.wav", "start_ms": 120000, "end_ms": 330000},
        ]

    _edit_manifest(rec, edit)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    baseline = analyze_recording(lecture.directory, tmp_path / "base", 30.0)
    assert report["warnings"] == []
    assert report["st"]["codes"] == baseline["st"]["codes"]
    assert report["talk"]["teacher_s"] == pytest.approx(baseline["talk"]["teacher_s"], abs=0.5)


def test_missing_duration_and_bad_entries(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        del data["duration_ms"]
        data["tracks"].append({"id": "x", "kind": "audio", "source": "teacher"})
        data["tracks"].append("nonsense")
        data["events"].append({"type": "join"})

    _edit_manifest(rec, edit)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    text = "\n".join(report["warnings"])
    assert "duration_ms missing" in text
    assert "track x: no classroom_id" in text
    assert "event" in text
    assert report["duration_s"] == pytest.approx(330.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "manifest.json: missing"),
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"format": "something-else/3"}', "not a recording this version can read"),
        ('{"format": "classroom-recording/2"}', "is not 'classroom-recording/1'"),
    ],
)
def test_unusable_manifest_gives_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    if content is not None:
        (rec / "manifest.json").write_text(content)
    with pytest.raises(AnalysisError, match=message.replace("(", r"\(")):
        analyze_recording(rec, tmp_path / "out")
    assert cli_main([str(rec), "--out", str(tmp_path / "out2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main([str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_bad_config_file(lecture: Lesson, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("analytics:\n  vad:\n    agressiveness: 3\n")
    code = cli_main([str(lecture.directory), "--out", str(tmp_path / "o"), "--config", str(config), "--quiet"])
    assert code == 2
    assert "unknown setting vad.agressiveness" in capsys.readouterr().err


def test_path_outside_recording_is_refused(lecture: Lesson, tmp_path: Path) -> None:
    rec = _copy(lecture, tmp_path)
    shutil.copy(rec / "r1-students.wav", tmp_path / "outside.wav")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        data["tracks"][2]["file"] = "../outside.wav"

    _edit_manifest(rec, edit)
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    assert any("points outside the recording" in w for w in report["warnings"])


def test_recorder_layout_whole_file_and_segments(lecture: Lesson, tmp_path: Path) -> None:
    """The recorder lists the whole-track ``file`` and its ``segments``; ``complete`` says which
    one is the track (docs/recording-format.md)."""
    import wave

    rec = _copy(lecture, tmp_path)
    with wave.open(str(rec / "teacher.wav")) as w:
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    (rec / "segments" / "teacher").mkdir(parents=True)
    bounds = [0, 100, 200, 330]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        with wave.open(str(rec / "segments" / "teacher" / f"{i:05d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(frames[a * rate * 2 : b * rate * 2])
    segments = [
        {"file": f"segments/teacher/{i:05d}.wav", "start_ms": a * 1000, "end_ms": b * 1000}
        for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]

    def complete(data: dict) -> None:  # type: ignore[type-arg]
        data["complete"] = True
        data["tracks"][0].update(complete=True, segments=segments)

    _edit_manifest(rec, complete)
    baseline = analyze_recording(lecture.directory, tmp_path / "base", 30.0)
    report = analyze_recording(rec, tmp_path / "a", 30.0)
    assert report["warnings"] == []
    assert report["talk"] == baseline["talk"]

    (rec / "teacher.wav").unlink()  # whole file lost: the segments still hold the track
    report = analyze_recording(rec, tmp_path / "b", 30.0)
    assert report["warnings"] == ["track teacher: file teacher.wav is missing; reading its segments instead"]
    assert report["st"]["codes"] == baseline["st"]["codes"]

    def recording(data: dict) -> None:  # type: ignore[type-arg]
        data["tracks"][0].update(complete=False, file="segments/teacher/00000.wav")

    _edit_manifest(rec, recording)  # still recording: file is the first segment only
    report = analyze_recording(rec, tmp_path / "c", 30.0)
    assert report["warnings"] == []
    assert report["talk"]["teacher_s"] == pytest.approx(baseline["talk"]["teacher_s"], abs=0.5)
