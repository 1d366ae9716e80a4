""" "Heard" means the students' speech was forwarded to the lesson (the classroom held the floor,
unmuted), not that its microphone picked something up."""

from __future__ import annotations

import json
from pathlib import Path

from analytics.report import analyze_recording

from .conftest import Lesson


def test_every_remote_classroom_held_the_floor_and_was_heard(dialogue: Lesson, tmp_path: Path) -> None:
    report = analyze_recording(dialogue.directory, tmp_path / "out", 30.0)
    fairness = report["fairness"]
    assert fairness["never_heard"] == [] and fairness["spoke_but_not_heard"] == []
    for room in ("r1", "r2"):
        part = report["participation"][room]
        assert part["heard_s"] > 5 and part["heard_s"] <= part["student_talk_s"] + 0.01
        assert part["audible_s"] >= part["heard_s"]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Every remote classroom held the floor and was heard" in html


def test_spoke_without_the_floor_is_not_heard(dialogue: Lesson, tmp_path: Path) -> None:
    """The issue's lesson: r2's microphone was recorded, but it never held the floor."""
    rec = dialogue.copy_to(tmp_path / "rec")
    manifest = dialogue.manifest(rec)
    events = manifest["events"]
    assert isinstance(events, list)
    manifest["events"] = [e for e in events if not (e["classroom_id"] == "r2" and e["type"] == "floor_granted")]
    (rec / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    r2 = report["participation"]["r2"]
    assert r2["student_talk_s"] > 5  # its students spoke (the recording has it) ...
    assert r2["heard_s"] == 0 and r2["audible_s"] == 0  # ... but nobody heard them
    fairness = report["fairness"]
    assert fairness["never_heard"] == ["r2"]
    assert fairness["spoke_but_not_heard"] == ["r2"]
    assert fairness["never_granted_floor"] == ["r2"]
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Every remote classroom" not in html
    assert "These remote classrooms were never heard" in html and "but nobody heard them" in html


def test_muted_while_holding_the_floor_is_not_heard(dialogue: Lesson, tmp_path: Path) -> None:
    rec = dialogue.copy_to(tmp_path / "rec")
    manifest = dialogue.manifest(rec)
    events = manifest["events"]
    assert isinstance(events, list)
    events.insert(0, {"t_ms": 0, "type": "mute", "classroom_id": "r1", "by": "lead"})
    (rec / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    report = analyze_recording(rec, tmp_path / "out", 30.0)
    assert report["participation"]["r1"]["floor_s"] > 0
    assert report["participation"]["r1"]["heard_s"] == 0
    assert report["fairness"]["never_heard"] == ["r1"]
