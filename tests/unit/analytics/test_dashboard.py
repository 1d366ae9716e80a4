"""The term dashboard's pure parts: reading a report (analytics/dashboard.py), aggregation, CSV,
truth-built reports, and the charts (drawn, not looked at: the e2e test's screenshot is)."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

import pytest

from analytics.dashboard import (
    RARELY_HEARD_SHARE,
    LessonRow,
    Place,
    ReportError,
    RoomFacts,
    Score,
    csv_text,
    facts_from_report,
    summarize,
)
from analytics.dashboard_charts import CHART_NAMES, render_png
from analytics.fonts import ChartFont
from analytics.synth import scenario
from analytics.truth_report import manifest_json, truth_report


def _report(**over: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "format": "classroom-behaviour-report/1", "lesson_id": "les_1@2026-09-07", "started_at": "",
        "duration_s": 1200.0, "st": {"mode": "dialogue", "rt": 0.5, "ch": 0.6},
        "talk": {"teacher_share": 0.5, "student_share": 0.4},
        "participation": {"r1": {"floor_grants": 2, "floor_s": 40.0, "heard_s": 30.0, "student_talk_s": 31.0}},
    }
    report.update(over)
    return report


def _row(day: date, rt: float, ch: float, mode: str, rooms: dict[str, RoomFacts], teacher: str = "t1",
         scores: tuple[Score, ...] = ()) -> LessonRow:
    facts = facts_from_report(_report(lesson_id=f"les_{teacher}@{day}", st={"mode": mode, "rt": rt, "ch": ch}))
    facts = type(facts)(**{**facts.__dict__, "rooms": rooms})
    remotes = tuple(Place(cid, cid.upper(), "s2", "村小") for cid in sorted(rooms))
    return LessonRow(f"les_{teacher}@{day}", f"les_{teacher}", day, "数学", "t", teacher, teacher,
                     Place("lead", "Lead", "s1", "城关"), remotes, facts, scores)


def test_a_report_is_read_or_refused_with_the_reason() -> None:
    facts = facts_from_report(_report())
    assert facts.mode == "dialogue" and facts.rooms["r1"].floor_grants == 2 and facts.rooms["r1"].heard_s == 30.0
    bad = [
        ([], "the report"),
        (_report(format="other/1"), "not a classroom-behaviour report"),
        (_report(lesson_id=""), "lesson_id"),
        (_report(st={"mode": "chaos", "rt": 0.5, "ch": 0.5}), "st.mode"),
        (_report(st={"mode": "lecture", "rt": "high", "ch": 0.5}), "st.rt"),
        (_report(duration_s=float("nan")), "duration_s"),
        (_report(talk=None), "talk"),
        (_report(participation={"r1": {"floor_grants": True}}), "floor_grants"),
        (_report(participation={"r1": 3}), "participation.r1"),
    ]
    for report, reason in bad:
        with pytest.raises(ReportError, match=reason):
            facts_from_report(report)


def test_the_fairness_view_and_the_drift() -> None:
    never = RoomFacts("r2")
    rows = [
        _row(date(2026, 9, 7) + timedelta(weeks=w), 0.4 + 0.05 * w, 0.6 - 0.05 * w, "dialogue" if w < 3 else "lecture",
             {"r1": RoomFacts("r1", floor_grants=1, heard_s=20.0, student_talk_s=20.0), "r2": never})
        for w in range(6)
    ]
    s = summarize(rows)
    assert s["lessons"] == 6 and s["modes"] == {"practice": 0, "lecture": 3, "dialogue": 3, "mixed": 0}
    (teacher,) = s["teachers"]
    assert teacher["rt_trend_30d"] == pytest.approx(0.05 / 7 * 30, abs=1e-3)
    assert teacher["ch_trend_30d"] == pytest.approx(-0.05 / 7 * 30, abs=1e-3)
    r2, r1 = s["remote_classrooms"]  # the least heard first
    assert (r2["classroom_id"], r2["lessons_with_floor"], r2["rarely_heard"], r2["never_heard_lessons"]) == (
        "r2", 0, True, 6)
    assert (r1["floor_share"], r1["rarely_heard"], r1["heard_s"]) == (1.0, False, 120.0)
    schools = {x["school_id"]: x for x in s["schools"]}
    assert schools["s1"]["lessons"] == 6 and schools["s2"]["remote_lessons"] == 12
    assert schools["s2"]["remote_floor_share"] == 0.5 and RARELY_HEARD_SHARE == 0.25


def test_nothing_to_show_is_not_an_error() -> None:
    s = summarize([])
    assert s["lessons"] == 0 and s["mean_rt"] is None and s["teachers"] == [] and s["scores"] == []
    for view in ("lessons", "remote_classrooms", "teachers", "schools"):
        assert csv_text([], view).count("\r\n") == 1
    with pytest.raises(ValueError, match="unknown view"):
        csv_text([], "pie")


def test_scores_per_dimension_by_week() -> None:
    rows = [
        _row(date(2026, 9, 7), 0.5, 0.5, "mixed", {}, scores=(Score("师生互动", 4), Score("师生互动", 2))),
        _row(date(2026, 9, 9), 0.5, 0.5, "mixed", {}, teacher="t2", scores=(Score("师生互动", 3),)),
        _row(date(2026, 9, 14), 0.5, 0.5, "mixed", {}, scores=(Score("教学目标", 5),)),
    ]
    dims = {d["dimension"]: d for d in summarize(rows)["scores"]}
    assert dims["师生互动"]["count"] == 3 and dims["师生互动"]["mean"] == 3.0
    assert dims["师生互动"]["series"] == [{"date": "2026-09-07", "mean": 3.0, "count": 3}]
    assert dims["教学目标"]["series"] == [{"date": "2026-09-14", "mean": 5.0, "count": 1}]


def test_csv_is_excel_friendly_and_formula_safe() -> None:
    row = _row(date(2026, 9, 7), 0.5, 0.5, "mixed", {"r1": RoomFacts("r1", floor_grants=1)},
               scores=(Score("教学目标", 4),))
    row = LessonRow(**{**row.__dict__, "title": "=HYPERLINK(\"x\")", "teacher_name": "@王"})
    text = csv_text([row], "lessons")
    assert text.startswith("\ufeff") and "\r\n" in text
    (rec,) = list(csv.DictReader(io.StringIO(text[1:])))
    assert rec["title"].startswith("'=") and rec["teacher_name"] == "'@王"
    assert rec["remote_classrooms_with_floor"] == "r1" and rec["score:教学目标"] == "4.0"


def test_a_truth_report_has_the_analysers_format() -> None:
    talk, events = scenario("lecture", 600, 1, seed=3)
    manifest = manifest_json(
        "les_x@2026-09-07", "2026-09-07T01:00:00Z", 600, [("lead", "lead", "L"), ("r1", "remote", "R")],
        [("teacher", "lead", "teacher"), ("lead-students", "lead", "students"), ("r1-students", "r1", "students")],
        events,
    )
    report = truth_report(manifest, talk)
    facts = facts_from_report(report)
    assert facts.mode == "lecture" and facts.rt >= 0.7
    teacher_s = sum(b - a for a, b in talk["teacher"])
    assert report["talk"]["teacher_s"] == pytest.approx(teacher_s, abs=1.0)
    assert facts.rooms["r1"].floor_grants == sum(
        1 for e in events if e["type"] == "floor_granted" and e["classroom_id"] == "r1")


@pytest.mark.parametrize("font", [None, ChartFont(None)], ids=["cjk", "no-cjk-font"])
def test_every_chart_draws_with_and_without_data(font: ChartFont | None) -> None:
    rows = [_row(date(2026, 9, 7 + d), 0.5, 0.5, "mixed", {"r1": RoomFacts("r1")}, scores=(Score("教学目标", 4),))
            for d in range(3)]
    for summary in (summarize([]), summarize(rows)):
        for name in CHART_NAMES:
            assert render_png(name, summary, font).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="unknown chart"):
        render_png("pie", summarize([]), font)
