"""analytics/observation.py: the report's observation section from a manifest's notes."""

from __future__ import annotations

import json
from pathlib import Path

from analytics.observation import curve_point, dimension_scores, notes_from_manifest, write_observation


def _event(t_ms: int, dim: str | None, score: object, text: str = "note") -> dict[str, object]:
    return {"t_ms": t_ms, "type": "observation_note", "classroom_id": None, "author": "王老师", "text": text,
            "dimension": dim, "score": score, "note_id": f"n{t_ms}"}


def test_notes_are_read_checked_and_sorted() -> None:
    raw = {"events": [_event(9000, "师生互动", 4), {"t_ms": 1, "type": "join", "classroom_id": "lead"},
                      _event(1000, None, 9), {"type": "observation_note", "text": "no time"},
                      _event(5000, "学生参与", True)]}
    notes = notes_from_manifest(raw)
    assert [n["t_ms"] for n in notes] == [1000, 5000, 9000]
    assert [n["score"] for n in notes] == [None, None, 4]  # out of range and a bool are no scores


def test_scores_per_dimension() -> None:
    notes = notes_from_manifest({"events": [_event(1, "甲", 2), _event(2, "甲", 4), _event(3, "乙", None),
                                            _event(4, "甲", 3)]})
    dims = {d["dimension"]: d for d in dimension_scores(notes)}
    assert dims["甲"]["count"] == 3 and dims["甲"]["mean"] == 3.0 and dims["甲"]["spread"] == 0.816
    assert (dims["甲"]["min"], dims["甲"]["max"]) == (2, 4)
    assert dims["乙"]["count"] == 0 and dims["乙"]["notes"] == 1 and dims["乙"]["mean"] is None


def test_curve_point_follows_the_windows() -> None:
    codes = ["T", "T", "S", "T"]
    assert curve_point(codes, 30.0, 0) == (0.0, 0.0)
    assert curve_point(codes, 30.0, 45_000) == (1.5, 0.0)
    assert curve_point(codes, 30.0, 75_000) == (2.0, 0.5)
    assert curve_point(codes, 30.0, 10**9) == (3.0, 1.0)
    assert curve_point([], 30.0, 5000) == (0.0, 0.0)


def test_write_observation(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": "classroom-recording/1", "lesson_id": "l1", "title": "数学",
        "events": [_event(40_000, "师生互动", 5, "<b>提问</b> 很好")]}), encoding="utf-8")
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({"lesson_id": "l1", "st": {"codes": ["T", "S"],
                                                                               "interval_s": 30.0}}))
    obs = write_observation(tmp_path)
    assert obs["notes"][0]["st_point"] == [1.0, 0.333]
    page = (report / "observation.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;提问&lt;/b&gt; 很好" in page and "<svg" in page and 'id="observation"' in page
    assert (report / "observation_st.png").stat().st_size > 1000


def test_the_behaviour_analysis_reads_past_notes_without_a_warning(tmp_path: Path) -> None:
    from analytics.manifest import parse_manifest

    raw = {"format": "classroom-recording/1", "lesson_id": "l1", "title": "", "started_at": "2026-11-25T08:00:00Z",
           "duration_ms": 60_000, "classrooms": [], "tracks": [],
           "events": [_event(40_000, "师生互动", 5), {"t_ms": 1, "type": "future_event", "classroom_id": None}]}
    manifest = parse_manifest(raw, tmp_path)
    assert manifest.events == []
    assert [w for w in manifest.warnings if "observation_note" in w] == []
    assert any("future_event" in w for w in manifest.warnings)  # other unknown types still say so
