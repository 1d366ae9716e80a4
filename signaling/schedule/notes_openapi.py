"""The OpenAPI description of the observation notes API (signaling/schedule/notes_api.py), merged
into ``/api/openapi.json`` by :func:`signaling.schedule.openapi.openapi_document`."""

from __future__ import annotations

from typing import Any

from signaling.notes import MAX_DIMENSIONS, MAX_TEXT_CHARS, SCORE_MAX, SCORE_MIN

STR = {"type": "string"}
INT = {"type": "integer"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = _ref("Error")
SCORE = {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX, "nullable": True}
RUBRIC = {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": MAX_DIMENSIONS}
SCHEMAS: dict[str, Any] = {
    "ObservationNote": _obj({
        "id": STR, "lesson_id": STR, "t_ms": INT, "at_ms": INT, "author": STR, "author_id": STR,
        "author_role": {"type": "string", "enum": ["observer", "admin", "lead"]}, "text": STR,
        "dimension": {"type": "string", "nullable": True}, "score": SCORE, "moment": {"type": "boolean"},
        "origin": {"type": "string", "enum": ["live", "playback"]},
    }, ["id", "lesson_id", "t_ms", "at_ms", "author", "text", "dimension", "score", "moment", "origin"]),
    "ObservationNotes": _obj({
        "lesson_id": STR, "notes": {"type": "array", "items": _ref("ObservationNote")}, "rubric": RUBRIC,
        "may_add": {"type": "boolean"}, "observation_url": {"type": "string", "nullable": True},
    }, ["lesson_id", "notes", "rubric", "may_add"]),
    "ObservationNoteInput": _obj({
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS},
        "dimension": {"type": "string", "nullable": True}, "score": SCORE,
        "t_ms": {"type": "integer", "minimum": 0, "description": "the playback position (ms on the recording)"},
    }, ["text", "t_ms"]),
    "Rubric": _obj({"dimensions": RUBRIC}, ["dimensions"]),
}
ACCESS = {
    "401": _json(ERR, "no credential, a bad API key or join token"),
    "403": _json(ERR, "a token of another lesson, or a role that may not (remote, recorder; lead may only read)"),
    "404": _json(ERR, "a lesson of another bureau"),
}


def notes_paths() -> dict[str, Any]:
    lesson = [{"name": "lesson_id", "in": "path", "required": True, "schema": STR,
               "description": "the live room's id: an occurrence id les_…@YYYY-MM-DD, a one-off les_…, demo-lesson"}]
    return {
        "/api/lessons/{lesson_id}/notes": {
            "get": {
                "summary": "the lesson's observation notes in time order (format=csv: as a CSV file); "
                           "Authorization: an API key of the lesson's bureau or the lesson's observer/lead join token",
                "parameters": [*lesson, {"name": "format", "in": "query", "required": False,
                                         "schema": {"type": "string", "enum": ["json", "csv"]}}],
                "responses": {"200": {"description": "OK", "content": {
                    "application/json": {"schema": _ref("ObservationNotes")},
                    "text/csv": {"schema": {"type": "string"}}}}, "400": _json(ERR, "bad query"), **ACCESS},
            },
            "post": {
                "summary": "add a note afterwards at a playback position (administrators and observers)",
                "parameters": lesson,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("ObservationNoteInput")}}},
                "responses": {"201": _json(_obj({"note": _ref("ObservationNote")}, ["note"]), "saved"),
                              "400": _json(ERR, "invalid_field (text, dimension, score, t_ms)"), **ACCESS,
                              "409": _json(ERR, "no_recording: the lesson has no recording")},
            },
        },
        "/api/settings/rubric": {
            "get": {"summary": "the bureau's observation rubric (default: 教学目标, 师生互动, 学生参与, "
                               "远端关注, 信息技术运用)",
                    "responses": {"200": _json(_ref("Rubric")), "401": _json(ERR, "missing or invalid API key")}},
            "put": {"summary": "set the bureau's observation rubric",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Rubric")}}},
                    "responses": {"200": _json(_ref("Rubric")), "400": _json(ERR, "invalid_field (dimensions)"),
                                  "401": _json(ERR, "missing or invalid API key")}},
        },
    }
