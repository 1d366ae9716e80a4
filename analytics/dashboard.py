"""The term dashboard's numbers: many analysed lessons → per teacher, school and remote classroom.

Pure: no files, no HTTP, no schedule store. The API (``signaling/schedule/analytics_api.py``)
reads each lesson's ``report.json`` into :class:`ReportFacts` (:func:`facts_from_report`), joins it
with the schedule (teacher, schools, subject, date) into a :class:`LessonRow`, and hands the rows
to :func:`summarize` and :func:`csv_text`. Observation scores come in as :class:`Score` s (the
lesson's scored observation notes, read from the schedule database by the API).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from analytics.st import MODES

RARELY_HEARD_SHARE = 0.25
"""A remote classroom is *rarely heard* when it had the floor in fewer than this share of its lessons."""
CSV_VIEWS = ("lessons", "remote_classrooms", "teachers", "schools")


class ReportError(ValueError):
    """A report.json the dashboard cannot use (the message says why)."""


@dataclass(frozen=True)
class RoomFacts:
    """One classroom's participation in one lesson (from the report's ``participation``)."""

    classroom_id: str
    floor_grants: int = 0
    floor_s: float = 0.0
    heard_s: float = 0.0
    student_talk_s: float = 0.0
    hand_raises: int = 0
    unanswered_hands: int = 0


@dataclass(frozen=True)
class ReportFacts:
    """What the dashboard takes from one ``report.json``."""

    lesson_id: str
    """the live room's id: an occurrence id for a scheduled lesson"""
    started_at: str
    duration_s: float
    mode: str
    rt: float
    ch: float
    teacher_share: float
    student_share: float
    rooms: dict[str, RoomFacts] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """One observation note's rubric score."""

    dimension: str
    score: float
    author: str = ""


@dataclass(frozen=True)
class Place:
    """A classroom with its school, as the schedule names them."""

    classroom_id: str
    name: str
    school_id: str
    school_name: str


@dataclass(frozen=True)
class LessonRow:
    """One analysed lesson with its schedule facts."""

    occurrence_id: str
    lesson_id: str
    date: date
    subject: str
    title: str
    teacher_id: str | None
    teacher_name: str
    lead: Place
    remotes: tuple[Place, ...]
    facts: ReportFacts
    scores: tuple[Score, ...] = ()


# ------------------------------------------------------------------------- reading a report
def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ReportError(f"{where} is not a number")
    return float(value)


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReportError(f"{where} is missing or not an object")
    return value


def facts_from_report(report: Any) -> ReportFacts:
    """The dashboard's facts of a ``classroom-behaviour-report/1``; :class:`ReportError` if the
    report lacks what the dashboard needs."""
    report = _dict(report, "the report")
    fmt = report.get("format")
    if not isinstance(fmt, str) or not fmt.startswith("classroom-behaviour-report/"):
        raise ReportError(f"not a classroom-behaviour report (format {fmt!r})")
    lesson_id = report.get("lesson_id")
    if not isinstance(lesson_id, str) or not lesson_id:
        raise ReportError("lesson_id is missing")
    st = _dict(report.get("st"), "st")
    talk = _dict(report.get("talk"), "talk")
    mode = st.get("mode")
    if mode not in MODES:
        raise ReportError(f"st.mode {mode!r} is not one of {', '.join(MODES)}")
    rooms: dict[str, RoomFacts] = {}
    for cid, raw in _dict(report.get("participation", {}), "participation").items():
        p = _dict(raw, f"participation.{cid}")
        rooms[str(cid)] = RoomFacts(
            classroom_id=str(cid),
            floor_grants=int(_number(p.get("floor_grants", 0), f"participation.{cid}.floor_grants")),
            floor_s=_number(p.get("floor_s", 0), f"participation.{cid}.floor_s"),
            heard_s=_number(p.get("heard_s", 0), f"participation.{cid}.heard_s"),
            student_talk_s=_number(p.get("student_talk_s", 0), f"participation.{cid}.student_talk_s"),
            hand_raises=int(_number(p.get("hand_raises", 0), f"participation.{cid}.hand_raises")),
            unanswered_hands=int(_number(p.get("unanswered_hands", 0), f"participation.{cid}.unanswered_hands")),
        )
    return ReportFacts(
        lesson_id=lesson_id,
        started_at=str(report.get("started_at", "")),
        duration_s=_number(report.get("duration_s"), "duration_s"),
        mode=str(mode),
        rt=_number(st.get("rt"), "st.rt"),
        ch=_number(st.get("ch"), "st.ch"),
        teacher_share=_number(talk.get("teacher_share"), "talk.teacher_share"),
        student_share=_number(talk.get("student_share"), "talk.student_share"),
        rooms=rooms,
    )


# --------------------------------------------------------------------------- aggregation
def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _spread(values: list[float]) -> float | None:
    if not values:
        return None
    m = sum(values) / len(values)
    return round(math.sqrt(sum((v - m) ** 2 for v in values) / len(values)), 4)


def _trend_per_30_days(points: list[tuple[date, float]]) -> float | None:
    """Least-squares slope of the values over the days, per 30 days (None: fewer than 2 days)."""
    if len({d for d, _ in points}) < 2:
        return None
    xs = [d.toordinal() for d, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return round(sxy / sxx * 30, 4)


def _modes(rows: Iterable[LessonRow]) -> dict[str, int]:
    counts = dict.fromkeys(MODES, 0)
    for row in rows:
        counts[row.facts.mode] += 1
    return counts


def _lesson_stats(rows: list[LessonRow]) -> dict[str, Any]:
    return {
        "lessons": len(rows),
        "modes": _modes(rows),
        "mean_rt": _mean([r.facts.rt for r in rows]),
        "mean_ch": _mean([r.facts.ch for r in rows]),
        "teacher_share": _mean([r.facts.teacher_share for r in rows]),
        "student_share": _mean([r.facts.student_share for r in rows]),
        "rt_trend_30d": _trend_per_30_days([(r.date, r.facts.rt) for r in rows]),
        "ch_trend_30d": _trend_per_30_days([(r.date, r.facts.ch) for r in rows]),
    }


def _point(row: LessonRow) -> dict[str, Any]:
    return {
        "date": row.date.isoformat(),
        "occurrence_id": row.occurrence_id,
        "rt": row.facts.rt,
        "ch": row.facts.ch,
        "mode": row.facts.mode,
        "teacher_share": row.facts.teacher_share,
    }


def lesson_json(row: LessonRow) -> dict[str, Any]:
    """One lesson as ``GET /api/analytics/lessons`` lists it."""
    remotes = []
    for place in row.remotes:
        room = row.facts.rooms.get(place.classroom_id, RoomFacts(place.classroom_id))
        remotes.append(
            {
                "classroom_id": place.classroom_id,
                "name": place.name,
                "school_id": place.school_id,
                "school_name": place.school_name,
                "had_floor": room.floor_grants > 0,
                "floor_grants": room.floor_grants,
                "floor_s": round(room.floor_s, 2),
                "heard_s": round(room.heard_s, 2),
                "student_talk_s": round(room.student_talk_s, 2),
                "hand_raises": room.hand_raises,
                "unanswered_hands": room.unanswered_hands,
            }
        )
    return {
        "occurrence_id": row.occurrence_id,
        "lesson_id": row.lesson_id,
        "date": row.date.isoformat(),
        "subject": row.subject,
        "title": row.title,
        "teacher_id": row.teacher_id,
        "teacher_name": row.teacher_name,
        "school_id": row.lead.school_id,
        "school_name": row.lead.school_name,
        "lead_classroom_id": row.lead.classroom_id,
        "lead_classroom_name": row.lead.name,
        "duration_s": round(row.facts.duration_s, 1),
        "mode": row.facts.mode,
        "rt": row.facts.rt,
        "ch": row.facts.ch,
        "teacher_share": row.facts.teacher_share,
        "student_share": row.facts.student_share,
        "remote_classrooms": remotes,
        "scores": {d: s for d, s in _scores_by_dimension(row.scores).items()},
    }


def _scores_by_dimension(scores: Iterable[Score]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for s in scores:
        by.setdefault(s.dimension, []).append(s.score)
    return {d: round(sum(v) / len(v), 3) for d, v in sorted(by.items())}


def _teachers(rows: list[LessonRow]) -> list[dict[str, Any]]:
    groups: dict[str, list[LessonRow]] = {}
    for row in rows:
        groups.setdefault(row.teacher_id or "", []).append(row)
    out = []
    for tid, group in groups.items():
        first = group[0]
        out.append(
            {
                "teacher_id": tid or None,
                "name": first.teacher_name,
                "school_id": first.lead.school_id,
                "school_name": first.lead.school_name,
                **_lesson_stats(group),
                "series": [_point(r) for r in group],
            }
        )
    return sorted(out, key=lambda t: (t["school_name"], t["name"]))


def _remote_stats(rows: list[LessonRow]) -> dict[str, dict[str, Any]]:
    """Per remote classroom: how often it had the floor, and its talk."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for place in row.remotes:
            room = row.facts.rooms.get(place.classroom_id, RoomFacts(place.classroom_id))
            entry = out.setdefault(
                place.classroom_id,
                {
                    "classroom_id": place.classroom_id,
                    "name": place.name,
                    "school_id": place.school_id,
                    "school_name": place.school_name,
                    "lessons": 0,
                    "lessons_with_floor": 0,
                    "floor_grants": 0,
                    "floor_s": 0.0,
                    "heard_s": 0.0,
                    "student_talk_s": 0.0,
                    "hand_raises": 0,
                    "unanswered_hands": 0,
                    "never_heard_lessons": 0,
                    "teacher_ids": set(),
                },
            )
            entry["lessons"] += 1
            entry["lessons_with_floor"] += 1 if room.floor_grants > 0 else 0
            entry["floor_grants"] += room.floor_grants
            entry["floor_s"] += room.floor_s
            entry["heard_s"] += room.heard_s
            entry["student_talk_s"] += room.student_talk_s
            entry["hand_raises"] += room.hand_raises
            entry["unanswered_hands"] += room.unanswered_hands
            entry["never_heard_lessons"] += 1 if room.heard_s < 1.0 else 0
            if row.teacher_id:
                entry["teacher_ids"].add(row.teacher_id)
    return out


def _remote_classrooms(rows: list[LessonRow]) -> list[dict[str, Any]]:
    out = []
    for entry in _remote_stats(rows).values():
        lessons = entry["lessons"]
        share = entry["lessons_with_floor"] / lessons if lessons else 0.0
        out.append(
            {
                **entry,
                "teacher_ids": sorted(entry["teacher_ids"]),
                "floor_s": round(entry["floor_s"], 1),
                "heard_s": round(entry["heard_s"], 1),
                "student_talk_s": round(entry["student_talk_s"], 1),
                "floor_share": round(share, 4),
                "heard_s_per_lesson": round(entry["heard_s"] / lessons, 1) if lessons else 0.0,
                "rarely_heard": share < RARELY_HEARD_SHARE,
            }
        )
    # the fairness view: the least heard first
    return sorted(out, key=lambda r: (r["floor_share"], r["heard_s"], r["name"]))


def _schools(rows: list[LessonRow]) -> list[dict[str, Any]]:
    """Per school: the lessons its classrooms led, and how its remote classrooms were heard."""
    led: dict[str, list[LessonRow]] = {}
    names: dict[str, str] = {}
    for row in rows:
        led.setdefault(row.lead.school_id, []).append(row)
        names[row.lead.school_id] = row.lead.school_name
    remote: dict[str, dict[str, float]] = {}
    for entry in _remote_stats(rows).values():
        names[entry["school_id"]] = entry["school_name"]
        agg = remote.setdefault(entry["school_id"], {"lessons": 0, "with_floor": 0, "heard_s": 0.0})
        agg["lessons"] += entry["lessons"]
        agg["with_floor"] += entry["lessons_with_floor"]
        agg["heard_s"] += entry["heard_s"]
    out = []
    for sid in sorted(names, key=lambda s: names[s]):
        group = led.get(sid, [])
        rem = remote.get(sid, {"lessons": 0, "with_floor": 0, "heard_s": 0.0})
        out.append(
            {
                "school_id": sid,
                "name": names[sid],
                **_lesson_stats(group),
                "remote_lessons": int(rem["lessons"]),
                "remote_floor_share": round(rem["with_floor"] / rem["lessons"], 4) if rem["lessons"] else None,
                "remote_heard_s": round(rem["heard_s"], 1),
            }
        )
    return out


def _score_dimensions(rows: list[LessonRow]) -> list[dict[str, Any]]:
    dims: dict[str, list[tuple[date, float]]] = {}
    for row in rows:
        for s in row.scores:
            dims.setdefault(s.dimension, []).append((row.date, s.score))
    out = []
    for dim, points in sorted(dims.items()):
        by_day: dict[date, list[float]] = {}  # by week: the Monday of the lesson's week
        for d, v in points:
            by_day.setdefault(date.fromordinal(d.toordinal() - d.weekday()), []).append(v)
        values = [v for _, v in points]
        out.append(
            {
                "dimension": dim,
                "count": len(values),
                "mean": _mean(values),
                "spread": _spread(values),
                "series": [
                    {"date": d.isoformat(), "mean": _mean(v), "count": len(v)} for d, v in sorted(by_day.items())
                ],
            }
        )
    return out


def summarize(rows: Iterable[LessonRow]) -> dict[str, Any]:
    """The dashboard: totals, per teacher, per school, per remote classroom (fairness), scores."""
    ordered = sorted(rows, key=lambda r: (r.date, r.occurrence_id))
    return {
        "lessons": len(ordered),
        "modes": _modes(ordered),
        "mean_rt": _mean([r.facts.rt for r in ordered]),
        "mean_ch": _mean([r.facts.ch for r in ordered]),
        "teacher_share": _mean([r.facts.teacher_share for r in ordered]),
        "teachers": _teachers(ordered),
        "schools": _schools(ordered),
        "remote_classrooms": _remote_classrooms(ordered),
        "scores": _score_dimensions(ordered),
        "rarely_heard_share": RARELY_HEARD_SHARE,
    }


# ----------------------------------------------------------------------------------- CSV
def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading = + - @ would start a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    if isinstance(value, str) and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _table(header: list[str], records: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for rec in records:
        writer.writerow([_cell(rec.get(h)) for h in header])
    return "\ufeff" + buf.getvalue()  # BOM: spreadsheet programs then read the Chinese as UTF-8


STAT_COLUMNS = ["lessons", *(f"mode_{m}" for m in MODES), "mean_rt", "mean_ch", "teacher_share", "rt_trend_30d"]


def _flat_modes(rec: dict[str, Any]) -> dict[str, Any]:
    return {**rec, **{f"mode_{m}": rec["modes"][m] for m in MODES}}


def csv_text(rows: Iterable[LessonRow], view: str) -> str:
    """One of :data:`CSV_VIEWS` as CSV (UTF-8 with BOM, CRLF lines)."""
    ordered = sorted(rows, key=lambda r: (r.date, r.occurrence_id))
    if view == "lessons":
        dims = sorted({s.dimension for r in ordered for s in r.scores})
        header = [
            "date", "occurrence_id", "subject", "title", "teacher_id", "teacher_name", "school_id", "school_name",
            "lead_classroom_id", "duration_s", "mode", "rt", "ch", "teacher_share", "student_share",
            "remote_classrooms", "remote_classrooms_with_floor", *(f"score:{d}" for d in dims),
        ]
        records = []
        for row in ordered:
            j = lesson_json(row)
            records.append(
                {
                    **j,
                    "remote_classrooms": " ".join(r["classroom_id"] for r in j["remote_classrooms"]),
                    "remote_classrooms_with_floor": " ".join(
                        r["classroom_id"] for r in j["remote_classrooms"] if r["had_floor"]
                    ),
                    **{f"score:{d}": v for d, v in j["scores"].items()},
                }
            )
        return _table(header, records)
    if view == "remote_classrooms":
        header = [
            "classroom_id", "name", "school_id", "school_name", "lessons", "lessons_with_floor", "floor_share",
            "floor_grants", "floor_s", "heard_s", "heard_s_per_lesson", "student_talk_s", "hand_raises",
            "unanswered_hands", "never_heard_lessons", "rarely_heard",
        ]
        return _table(header, _remote_classrooms(ordered))
    if view == "teachers":
        header = ["teacher_id", "name", "school_id", "school_name", *STAT_COLUMNS]
        return _table(header, [_flat_modes(t) for t in _teachers(ordered)])
    if view == "schools":
        header = ["school_id", "name", *STAT_COLUMNS, "remote_lessons", "remote_floor_share", "remote_heard_s"]
        return _table(header, [_flat_modes(s) for s in _schools(ordered)])
    raise ValueError(f"unknown view {view!r}: one of {', '.join(CSV_VIEWS)}")
