"""The OpenAPI description of the term dashboard's ``/api/analytics/…`` (signaling/schedule/
analytics_api.py), merged into ``/api/openapi.json`` by :func:`signaling.schedule.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

from analytics.dashboard import CSV_VIEWS
from analytics.st import MODES

from .analytics_api import CHARTS, MAX_SUBJECT

ID = {"type": "string", "minLength": 1, "maxLength": 64}
DATE = {"type": "string", "format": "date", "example": "2026-09-07"}
NUM = {"type": "number"}
NULL_NUM = {"type": "number", "nullable": True}
INT = {"type": "integer"}
STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


MODE_COUNTS = _obj({m: INT for m in MODES}, list(MODES))
STATS = {
    "lessons": INT,
    "modes": _ref("AnalyticsModes"),
    "mean_rt": NULL_NUM,
    "mean_ch": NULL_NUM,
    "teacher_share": NULL_NUM,
    "student_share": NULL_NUM,
    "rt_trend_30d": {**NULL_NUM, "description": "least-squares change of Rt per 30 days; null: fewer than 2 days"},
    "ch_trend_30d": {**NULL_NUM, "description": "the same for Ch"},
}

SCHEMAS: dict[str, Any] = {
    "AnalyticsModes": {**MODE_COUNTS, "description": "lessons per S-T mode"},
    "AnalyticsPoint": _obj(
        {"date": DATE, "occurrence_id": STR, "rt": NUM, "ch": NUM, "mode": {"type": "string", "enum": list(MODES)},
         "teacher_share": NUM},
        ["date", "occurrence_id", "rt", "ch", "mode", "teacher_share"],
    ),
    "AnalyticsTeacher": _obj(
        {"teacher_id": {**ID, "nullable": True}, "name": STR, "school_id": STR, "school_name": STR, **STATS,
         "series": {**_array(_ref("AnalyticsPoint")), "description": "one point per lesson, in date order"}},
        ["teacher_id", "name", "lessons", "modes", "series"],
    ),
    "AnalyticsSchool": _obj(
        {"school_id": STR, "name": STR, **STATS,
         "remote_lessons": {**INT, "description": "lessons its classrooms attended as remote classrooms"},
         "remote_floor_share": {**NULL_NUM, "description": "share of those in which the classroom had the floor"},
         "remote_heard_s": NUM},
        ["school_id", "name", "lessons", "modes"],
    ),
    "AnalyticsRemoteClassroom": _obj(
        {
            "classroom_id": STR, "name": STR, "school_id": STR, "school_name": STR,
            "lessons": INT,
            "lessons_with_floor": {**INT, "description": "lessons in which it was given the floor at least once"},
            "floor_share": {**NUM, "description": "lessons_with_floor / lessons"},
            "floor_grants": INT, "floor_s": NUM,
            "heard_s": {**NUM, "description": "its students' talk while its audio was forwarded"},
            "heard_s_per_lesson": NUM, "student_talk_s": NUM, "hand_raises": INT, "unanswered_hands": INT,
            "never_heard_lessons": {**INT, "description": "lessons with less than 1 s heard"},
            "rarely_heard": {"type": "boolean", "description": "floor_share below rarely_heard_share"},
            "teacher_ids": _array(STR),
        },
        ["classroom_id", "name", "lessons", "lessons_with_floor", "floor_share", "heard_s", "rarely_heard"],
    ),
    "AnalyticsScoreDimension": _obj(
        {"dimension": STR, "count": INT, "mean": NULL_NUM, "spread": {**NULL_NUM, "description": "standard deviation"},
         "series": _array(_obj({"date": {**DATE, "description": "the Monday of the week"}, "mean": NULL_NUM,
                                 "count": INT}, ["date", "mean", "count"]))},
        ["dimension", "count", "mean", "series"],
    ),
    "AnalyticsSummary": _obj(
        {
            "lessons": INT, "modes": _ref("AnalyticsModes"), "mean_rt": NULL_NUM, "mean_ch": NULL_NUM,
            "teacher_share": NULL_NUM,
            "teachers": _array(_ref("AnalyticsTeacher")),
            "schools": _array(_ref("AnalyticsSchool")),
            "remote_classrooms": {**_array(_ref("AnalyticsRemoteClassroom")),
                                  "description": "the fairness view: the least heard first"},
            "scores": {**_array(_ref("AnalyticsScoreDimension")),
                       "description": "observation scores (observation_note events) per rubric dimension"},
            "rarely_heard_share": NUM,
            "unreadable_reports": {**INT, "description": "report.json files left out since the server started"},
        },
        ["lessons", "modes", "teachers", "schools", "remote_classrooms", "scores"],
    ),
    "AnalyticsLesson": _obj(
        {
            "occurrence_id": STR, "lesson_id": STR, "date": DATE, "subject": STR, "title": STR,
            "teacher_id": {**ID, "nullable": True}, "teacher_name": STR, "school_id": STR, "school_name": STR,
            "lead_classroom_id": STR, "lead_classroom_name": STR, "duration_s": NUM,
            "mode": {"type": "string", "enum": list(MODES)}, "rt": NUM, "ch": NUM, "teacher_share": NUM,
            "student_share": NUM,
            "remote_classrooms": _array(_obj(
                {"classroom_id": STR, "name": STR, "school_id": STR, "school_name": STR,
                 "had_floor": {"type": "boolean"}, "floor_grants": INT, "floor_s": NUM, "heard_s": NUM,
                 "student_talk_s": NUM, "hand_raises": INT, "unanswered_hands": INT},
                ["classroom_id", "had_floor", "floor_grants", "heard_s"],
            )),
            "scores": {"type": "object", "additionalProperties": NUM,
                       "description": "mean observation score per rubric dimension"},
        },
        ["occurrence_id", "lesson_id", "date", "subject", "mode", "rt", "ch", "teacher_share", "remote_classrooms"],
    ),
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


FILTERS = [
    _query("from", DATE, "first lesson date (bureau-local), inclusive"),
    _query("to", DATE, "last lesson date, inclusive"),
    _query("school_id", ID, "only lessons involving this school's classrooms (lead or remote)"),
    _query("teacher_id", ID, "only this lead teacher's lessons (a teacher: only their own, else 403)"),
    _query("subject", {"type": "string", "maxLength": MAX_SUBJECT}, "only lessons of this subject (exact)"),
    _query("token", {"type": "string"},
           "a teacher: the lead classroom's join link token of a lesson they led (valid up to 30 days after it; "
           "also accepted as Authorization: Bearer <token>); without it, a bureau administrator's API key"),
]


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = {"$ref": "#/components/schemas/Error"}
ERRORS = {
    "400": _json(ERR, "bad filter (invalid_time, invalid_field)"),
    "401": _json(ERR, "no API key, or an invalid or expired teacher link (token_*)"),
    "403": _json(ERR, "forbidden: a teacher asking for another teacher, or a link that is not a lead's"),
    "404": _json(ERR, "school or teacher not in the bureau, unknown chart"),
}


def _op(summary: str, ok: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "tags": ["analytics"],
        "security": [{"apiKey": []}, {"apiKeyHeader": []}, {}],
        "parameters": params,
        "responses": {"200": ok, **ERRORS},
    }


def analytics_paths() -> dict[str, Any]:
    return {
        "/api/analytics/summary": {
            "get": _op(
                "term dashboard: per teacher, school and remote classroom (fairness view), modes, Rt/Ch over time, "
                "talk shares, observation scores, over the analysed lessons that pass the filters",
                _json(_ref("AnalyticsSummary")),
                FILTERS,
            )
        },
        "/api/analytics/lessons": {
            "get": _op(
                "the analysed lessons that pass the filters, one row each, in date order",
                _json(_obj({"lessons": _array(_ref("AnalyticsLesson"))}, ["lessons"])),
                FILTERS,
            )
        },
        "/api/analytics/export.csv": {
            "get": _op(
                "the dashboard as CSV (UTF-8 with BOM): one row per lesson, remote classroom, teacher or school",
                {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                [*FILTERS,
                 _query("view", {"type": "string", "enum": list(CSV_VIEWS)}, "which table (default lessons)")],
            )
        },
        "/api/analytics/charts/{chart}": {
            "get": _op(
                "a dashboard chart (PNG, bilingual labels): rt_ch (Rt/Ch over time per teacher), modes (per "
                "teacher), fairness (floor share per remote classroom), scores (per dimension, weekly)",
                {"description": "PNG", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
                [{"name": "chart", "in": "path", "required": True, "schema": {"type": "string", "enum": list(CHARTS)}},
                 *FILTERS],
            )
        },
    }
