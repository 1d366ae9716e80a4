"""The OpenAPI 3 description of the schedule API, served at ``/api/openapi.json``."""

from __future__ import annotations

import copy
from typing import Any

ID = {"type": "string", "minLength": 1, "maxLength": 64}
DATE = {"type": "string", "format": "date", "example": "2026-11-26"}
DATETIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601; without an offset it is taken in the bureau's time zone",
    "example": "2026-11-26T08:00:00+08:00",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "the request field at fault, when there is one"},
                    "reason": {"type": "string", "description": "why the field was refused (required, too_long, ...)"},
                    "message_zh": {"type": "string", "description": "the message in Chinese (CSV import)"},
                    "conflicts": {"type": "array", "items": _ref("Conflict")},
                },
                ["code", "message"],
            )
        },
        ["error"],
    ),
    "Conflict": _obj(
        {
            "lesson_id": {"type": "string"},
            "occurrence_id": {"type": "string"},
            "title": {"type": "string"},
            "start": DATETIME,
            "end": DATETIME,
            "resources": {
                "type": "array",
                "items": _obj({"type": {"type": "string", "enum": ["classroom", "teacher"]}, "id": ID}),
            },
        }
    ),
    "Bureau": _obj(
        {"id": ID, "name": {"type": "string"}, "timezone": {"type": "string"}},
        ["id", "name", "timezone"],
    ),
    "School": _obj({"id": ID, "name": {"type": "string"}}, ["id", "name"]),
    "SchoolInput": {
        **_obj({"name": {"type": "string", "minLength": 1, "maxLength": 200}}, ["name"]),
        "additionalProperties": False,
    },
    "Classroom": _obj(
        {
            "id": ID,
            "school_id": ID,
            "name": {"type": "string"},
            "kind": {"type": "string", "enum": ["browser", "hardware"]},
            "lead_capable": {"type": "boolean", "description": "may lead a lesson (主讲); false: remote only"},
        },
        ["id", "school_id", "name", "kind"],
    ),
    "ClassroomPatch": {
        **_obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "kind": {"type": "string", "enum": ["browser", "hardware"]},
                "lead_capable": {"type": "boolean"},
            }
        ),
        "additionalProperties": False,
    },
    "Deleted": _obj({"id": ID, "deleted": {"type": "boolean"}}, ["id", "deleted"]),
    "Revoked": _obj({"id": ID, "revoked": {"type": "boolean"}}, ["id", "revoked"]),
    "Admin": _obj(
        {
            "id": ID,
            "name": {"type": "string"},
            "created_at": DATETIME,
            "revoked": {"type": "boolean"},
            "me": {"type": "boolean", "description": "the administrator making the request"},
            "api_key": {"type": "string", "description": "only in the answer to POST: shown once, stored hashed"},
        },
        ["id", "name", "revoked"],
    ),
    "NameInput": {
        **_obj({"name": {"type": "string", "minLength": 1, "maxLength": 200}}, ["name"]),
        "additionalProperties": False,
    },
    "Device": _obj(
        {
            "id": ID,
            "classroom_id": ID,
            "name": {"type": "string"},
            "created_at": DATETIME,
            "revoked": {"type": "boolean"},
            "credential": {
                "type": "string",
                "description": "only in the answer to POST: ckd_<device id>.<secret>, shown once, stored hashed",
            },
            "last_seen": {**DATETIME, "nullable": True, "description": "its latest health report (GET only)"},
            "online": {"type": "boolean", "description": "reported within the last 30 s (GET only)"},
            "health": {"nullable": True, "allOf": [_ref("DeviceHealth")], "description": "its latest report"},
        },
        ["id", "classroom_id", "name", "revoked"],
    ),
    "DeviceHealth": {
        **_obj(
            {
                "version": {"type": "string", "minLength": 1, "maxLength": 64},
                "uptime_s": {"type": "number", "minimum": 0},
                "state": {"type": "string", "minLength": 1, "maxLength": 32},
                "lesson_id": {"type": "string", "minLength": 1, "maxLength": 200, "nullable": True},
                **{k: {"type": "integer", "minimum": 0, "maximum": 2**53} for k in (
                    "frames_sent_video", "frames_sent_audio", "frames_received_video", "frames_received_audio")},
                "cpu_percent": {"type": "number", "minimum": 0, "maximum": 100000, "nullable": True},
                "rtt_ms": {"type": "number", "minimum": 0, "maximum": 3600000, "nullable": True},
                "loss": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            },
            ["version", "uptime_s"],
        ),
        "additionalProperties": False,
    },
    "DeviceHealthReceived": _obj({"device_id": ID, "received_at": DATETIME}, ["device_id", "received_at"]),
    "DeviceInput": {
        **_obj(
            {"classroom_id": ID, "name": {"type": "string", "minLength": 1, "maxLength": 200}},
            ["classroom_id", "name"],
        ),
        "additionalProperties": False,
    },
    "DeviceLesson": _obj(
        {
            "device_id": ID,
            "classroom_id": ID,
            "lesson": {
                "nullable": True,
                "description": "the classroom's current or next lesson today (null: none); link is null "
                "until the join window opens (15 minutes before the start)",
                "allOf": [
                    _ref("Occurrence"),
                    _obj(
                        {
                            "opens_at": DATETIME,
                            "link": {
                                "nullable": True,
                                "allOf": [
                                    _obj(
                                        {
                                            "classroom_id": ID,
                                            "classroom_name": {"type": "string"},
                                            "role": {"type": "string", "enum": ["lead", "remote"]},
                                            "token": {"type": "string"},
                                            "url": {"type": "string"},
                                        }
                                    )
                                ],
                            },
                        }
                    ),
                ],
            },
        },
        ["device_id", "classroom_id", "lesson"],
    ),
    "ImportResult": _obj(
        {
            "dry_run": {"type": "boolean"},
            "imported": {"type": "boolean"},
            "rows": {
                "type": "array",
                "items": _obj(
                    {
                        "row": {"type": "integer"},
                        "school": {"type": "string"},
                        "classroom": {"type": "string"},
                        "lead_capable": {"type": "boolean"},
                        "kind": {"type": "string"},
                        "new_school": {"type": "boolean"},
                    }
                ),
            },
            "errors": {
                "type": "array",
                "items": _obj(
                    {
                        "row": {"type": "integer", "description": "spreadsheet row (the header is row 1)"},
                        "field": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "message_zh": {"type": "string"},
                        "values": {
                            "type": "object",
                            "description": "the bad row's cells by column (school, classroom, role, kind)",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                    ["row", "field", "code", "message", "message_zh"],
                ),
            },
            "bad_rows": {"type": "array", "items": {"type": "integer"}},
            "ignored_columns": {"type": "array", "items": {"type": "string"}},
            "new_schools": {"type": "array", "items": {"type": "string"}},
            "created": _obj(
                {
                    "schools": {"type": "array", "items": _ref("School")},
                    "classrooms": {"type": "array", "items": _ref("Classroom")},
                }
            ),
        },
        ["dry_run", "imported", "rows", "errors"],
    ),
    "ClassroomInput": {
        **_obj(
            {
                "school_id": ID,
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "kind": {"type": "string", "enum": ["browser", "hardware"], "default": "browser"},
                "lead_capable": {"type": "boolean", "default": True},
            },
            ["school_id", "name"],
        ),
        "additionalProperties": False,
    },
    "Teacher": _obj({"id": ID, "school_id": ID, "name": {"type": "string"}}, ["id", "school_id", "name"]),
    "TeacherInput": {
        **_obj(
            {"school_id": ID, "name": {"type": "string", "minLength": 1, "maxLength": 200}},
            ["school_id", "name"],
        ),
        "additionalProperties": False,
    },
    "Recurrence": {
        **_obj(
            {
                "frequency": {"type": "string", "enum": ["weekly"], "default": "weekly"},
                "until": {**DATE, "description": "last day of the term (inclusive)"},
                "exceptions": {
                    "type": "array",
                    "items": DATE,
                    "maxItems": 60,
                    "description": "days on which the weekly lesson does not take place",
                },
            },
            ["until"],
        ),
        "additionalProperties": False,
        "description": "weekly, at the first start's weekday and bureau-local time",
    },
    "LessonInput": {
        **_obj(
            {
                "subject": {"type": "string", "minLength": 1, "maxLength": 100},
                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                "lead_classroom_id": ID,
                "lead_teacher_id": {**ID, "nullable": True},
                "remote_classroom_ids": {
                    "type": "array",
                    "items": ID,
                    "minItems": 1,
                    "maxItems": 50,
                    "uniqueItems": True,
                },
                "start": DATETIME,
                "end": DATETIME,
                "recurrence": {"allOf": [_ref("Recurrence")], "nullable": True},
                "recording": {
                    "type": "boolean",
                    "description": "record this lesson; omitted: the bureau's default (GET /api/settings/recording)",
                },
            },
            ["subject", "title", "lead_classroom_id", "remote_classroom_ids", "start", "end"],
        ),
        "additionalProperties": False,
    },
    "LessonPatch": {
        "type": "object",
        "description": "any subset of LessonInput's fields",
        "additionalProperties": False,
        "properties": {},  # filled below from LessonInput
    },
    "Lesson": _obj(
        {
            "id": ID,
            "subject": {"type": "string"},
            "title": {"type": "string"},
            "lead_classroom_id": ID,
            "lead_teacher_id": {**ID, "nullable": True},
            "remote_classroom_ids": {"type": "array", "items": ID},
            "start": DATETIME,
            "end": DATETIME,
            "recurrence": {"allOf": [_ref("Recurrence")], "nullable": True},
            "recording": {"type": "boolean"},
            "cancelled": {"type": "boolean"},
            "created_at": DATETIME,
            "updated_at": DATETIME,
        },
        ["id", "subject", "title", "lead_classroom_id", "remote_classroom_ids", "start", "end"],
    ),
    "Occurrence": _obj(
        {
            "occurrence_id": {
                "type": "string",
                "description": "lesson id (one-off) or '<lesson_id>@<YYYY-MM-DD>' (recurring); "
                "the live room and the join tokens use it",
            },
            "lesson_id": ID,
            "date": DATE,
            "subject": {"type": "string"},
            "title": {"type": "string"},
            "start": DATETIME,
            "end": DATETIME,
            "status": {"type": "string", "enum": ["scheduled", "live", "ended", "cancelled"]},
            "lead_classroom_id": ID,
            "lead_teacher_id": {**ID, "nullable": True},
            "remote_classroom_ids": {"type": "array", "items": ID},
            "recording": {"type": "boolean"},
            "recurring": {"type": "boolean"},
            "started_at": {**DATETIME, "nullable": True},
            "ended_at": {**DATETIME, "nullable": True},
            "connected": {"type": "array", "items": ID},
        },
        ["occurrence_id", "lesson_id", "date", "start", "end", "status"],
    ),
    "Live": {
        "allOf": [
            _ref("Occurrence"),
            _obj(
                {
                    "expected": {"type": "array", "items": ID},
                    "history": {
                        "type": "array",
                        "items": _obj(
                            {
                                "classroom_id": ID,
                                "joined_at": DATETIME,
                                "left_at": {**DATETIME, "nullable": True},
                            }
                        ),
                    },
                }
            ),
        ]
    },
    "JoinLinks": _obj(
        {
            "occurrence_id": {"type": "string"},
            "lesson_id": ID,
            "status": {"type": "string"},
            "not_before": DATETIME,
            "expires": DATETIME,
            "links": {
                "type": "array",
                "items": _obj(
                    {
                        "classroom_id": {"type": "string"},
                        "classroom_name": {"type": "string"},
                        "role": {"type": "string", "enum": ["lead", "remote", "observer"]},
                        "token": {"type": "string"},
                        "url": {"type": "string"},
                        "qr_svg": {"type": "string", "description": "with ?qr=1: a QR code of url (SVG data URI)"},
                    },
                    ["classroom_id", "role", "token", "url"],
                ),
            },
        },
        ["occurrence_id", "links"],
    ),
    "OccurrenceList": _obj(
        {
            "date": DATE,
            "week_start": DATE,
            "week_end": DATE,
            "occurrences": {"type": "array", "items": _ref("Occurrence")},
        },
        ["occurrences"],
    ),
}
SCHEMAS["LessonPatch"]["properties"] = copy.deepcopy(SCHEMAS["LessonInput"]["properties"])
_NULLABLE_TIME = {"type": "string", "format": "date-time", "nullable": True}
SCHEMAS["Recording"] = _obj(
    {
        "lesson_id": {"type": "string", "description": "the live room's id: an occurrence id, or demo-lesson"},
        "recording_id": {"type": "string", "description": "its directory under <data_dir>/recordings"},
        "schedule_lesson_id": {"type": "string", "nullable": True, "description": "null: not a schedule lesson"},
        "occurrence_id": {"type": "string"},
        "date": DATE,
        "subject": {"type": "string"},
        "title": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": "string", "format": "date-time"},
        "duration_ms": {"type": "integer"},
        "complete": {"type": "boolean", "description": "the recorder stopped cleanly"},
        "recording_now": {"type": "boolean"},
        "tracks": {"type": "integer"},
        "classrooms": {"type": "array", "items": {"type": "string"}},
        "expires_at": {**_NULLABLE_TIME, "description": "deleted by retention then; null: kept"},
        "playback_url": {"type": "string", "description": "/playback.html?manifest=<signed URL>, valid 1 h"},
        "report_url": {"type": "string", "nullable": True, "description": "the analysis report (signed), once made"},
    },
    ["lesson_id", "recording_id", "occurrence_id", "started_at", "playback_url"],
)
SCHEMAS["RecordingSettings"] = _obj(
    {
        "recording_default": {"type": "boolean", "description": "new lessons without a recording field are recorded"},
        "updated_at": {"type": "number", "nullable": True},
        "enabled": {"type": "boolean", "description": "the server's master switch (recording.enabled)"},
        "demo_lesson": {"type": "boolean"},
        "retention_days": {"type": "number", "description": "recordings older are deleted; 0: kept forever"},
        "recording_now": {"type": "array", "items": {"type": "string"}},
        "disk_guard": {
            "type": "object",
            "nullable": True,
            "properties": {
                "min_free_bytes": {"type": "integer"},
                "min_free_percent": {"type": "number"},
                "tripped": {"type": "boolean", "description": "recording is held back for lack of space"},
                "free_bytes": {"type": "integer", "nullable": True},
                "total_bytes": {"type": "integer", "nullable": True},
                "held_lessons": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
    ["recording_default", "retention_days"],
)
SCHEMAS["RecordingSettingsInput"] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"recording_default": {"type": "boolean"}},
    "required": ["recording_default"],
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERR = _ref("Error")
ERRORS = {
    "400": _json(ERR, "bad input (bad_json, invalid_field, invalid_time, unknown_classroom, ...)"),
    "401": _json(ERR, "missing or invalid API key"),
    "404": _json(ERR, "not found in the administrator's bureau"),
    "413": _json(ERR, "body over 1 MiB"),
}
READ_ERRORS = {k: ERRORS[k] for k in ("400", "401", "404")}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _op(
    summary: str,
    ok: dict[str, Any],
    status: str = "200",
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            status: ok,
            **(errors if errors is not None else READ_ERRORS),
            **(extra or {}),
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    if params:
        op["parameters"] = params
    return op


LESSON_ID = [_path_param("lesson_id")]
DATE_Q = _query("date", DATE, "the occurrence's (or the week's / day's) bureau-local date")
FILTERS = [
    _query("school_id", ID, "only lessons involving this school's classrooms"),
    _query("classroom_id", ID, "only lessons involving this classroom"),
]
IN_USE = {"409": _json(ERR, "still in use (in_use): the answer says by what")}
CONFLICT = {
    "409": _json(ERR, "a classroom or the teacher is booked at an overlapping time"),
}


def _list(key: str, item: str) -> dict[str, Any]:
    return _json(_obj({key: {"type": "array", "items": _ref(item)}}, [key]))


def _schedule_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "三个课堂 schedule API",
            "version": "1.0.0",
            "description": "Education-bureau scheduling (排课), lesson lifecycle and join "
            "links. Errors are always {error: {code, message}} with a 4xx status.",
        },
        "security": [{"apiKey": []}, {"apiKeyHeader": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a bureau administrator's API key",
                },
                "deviceCredential": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a device's credential ckd_<device id>.<secret> (GET /api/device/lesson only)",
                },
                "apiKeyHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "the same key in a header of its own",
                },
            },
            "schemas": SCHEMAS,
        },
        "paths": {
            "/api/openapi.json": {
                "get": {
                    "summary": "this document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3 document"}},
                }
            },
            "/api/me": {
                "get": _op(
                    "the administrator and their bureau",
                    _json(
                        _obj(
                            {
                                "admin": _obj({"id": ID, "name": {"type": "string"}}),
                                "bureau": _ref("Bureau"),
                                "public_url": {"type": "string"},
                            },
                            ["admin", "bureau"],
                        )
                    ),
                )
            },
            "/api/schools": {
                "get": _op("the bureau's schools", _list("schools", "School")),
                "post": _op("add a school", _json(_ref("School")), "201", "SchoolInput", errors=ERRORS),
            },
            "/api/schools/{school_id}": {
                "get": _op(
                    "a school with its classrooms and teachers",
                    _json(_ref("School")),
                    params=[_path_param("school_id")],
                ),
                "patch": _op(
                    "rename a school",
                    _json(_ref("School")),
                    body="NameInput",
                    params=[_path_param("school_id")],
                    errors=ERRORS,
                ),
                "delete": _op(
                    "delete a school without classrooms and teachers",
                    _json(_ref("Deleted")),
                    params=[_path_param("school_id")],
                    extra=IN_USE,
                ),
            },
            "/api/classrooms": {
                "get": _op(
                    "the bureau's classrooms",
                    _list("classrooms", "Classroom"),
                    params=FILTERS[:1],
                ),
                "post": _op(
                    "add a classroom to a school",
                    _json(_ref("Classroom")),
                    "201",
                    "ClassroomInput",
                    errors=ERRORS,
                ),
            },
            "/api/classrooms/{classroom_id}": {
                "get": _op("a classroom", _json(_ref("Classroom")), params=[_path_param("classroom_id")]),
                "patch": _op(
                    "rename a classroom, change its kind or whether it may lead",
                    _json(_ref("Classroom")),
                    body="ClassroomPatch",
                    params=[_path_param("classroom_id")],
                    errors=ERRORS,
                ),
                "delete": _op(
                    "delete a classroom no lesson and no active device uses",
                    _json(_ref("Deleted")),
                    params=[_path_param("classroom_id")],
                    extra=IN_USE,
                ),
            },
            "/api/teachers/{teacher_id}": {
                "patch": _op(
                    "rename a teacher",
                    _json(_ref("Teacher")),
                    body="NameInput",
                    params=[_path_param("teacher_id")],
                    errors=ERRORS,
                ),
                "delete": _op(
                    "delete a teacher who leads no lesson",
                    _json(_ref("Deleted")),
                    params=[_path_param("teacher_id")],
                    extra=IN_USE,
                ),
            },
            "/api/admins": {
                "get": _op("the bureau's administrators (never their keys)", _list("admins", "Admin")),
                "post": _op(
                    "add an administrator: the answer holds its API key, shown only this once",
                    _json(_ref("Admin")),
                    "201",
                    "NameInput",
                    errors=ERRORS,
                ),
            },
            "/api/admins/{admin_id}": {
                "delete": _op(
                    "revoke an administrator's key (not one's own)",
                    _json(_ref("Revoked")),
                    params=[_path_param("admin_id")],
                    extra={"409": _json(ERR, "already revoked, or one's own key (self_revoke)")},
                ),
            },
            "/api/devices": {
                "get": _op("the bureau's devices (room hardware)", _list("devices", "Device")),
                "post": _op(
                    "add a device bound to a classroom: the answer holds its credential, shown only this once",
                    _json(_ref("Device")),
                    "201",
                    "DeviceInput",
                    errors=ERRORS,
                ),
            },
            "/api/devices/{device_id}": {
                "delete": _op(
                    "revoke a device's credential",
                    _json(_ref("Revoked")),
                    params=[_path_param("device_id")],
                    extra={"409": _json(ERR, "already revoked")},
                ),
            },
            "/api/device/lesson": {
                "get": {
                    **_op(
                        "for a device: its classroom's current or next lesson today, with its join link",
                        _json(_ref("DeviceLesson")),
                        errors={k: ERRORS[k] for k in ("401",)},
                        extra={"429": _json(ERR, "too many credential checks")},
                    ),
                    "security": [{"deviceCredential": []}],
                }
            },
            "/api/device/health": {
                "post": {
                    **_op(
                        "for a device: a health report (version, uptime, state, frames sent/received); "
                        "the bureau's device list shows the latest as last_seen/online/health",
                        _json(_ref("DeviceHealthReceived")),
                        body="DeviceHealth",
                        errors={k: ERRORS[k] for k in ("400", "401", "413")},
                        extra={"429": _json(ERR, "too many credential checks")},
                    ),
                    "security": [{"deviceCredential": []}],
                }
            },
            "/api/import/classrooms": {
                "post": {
                    **_op(
                        "import schools and classrooms from a CSV (header school,classroom,role[,kind]); "
                        "every bad row is reported and skipped, the good rows are created in one transaction",
                        _json(_ref("ImportResult")),
                        params=[
                            _query(
                                "dry_run",
                                {"type": "string", "enum": ["0", "1", "true", "false"]},
                                "1: only check and preview, create nothing",
                            )
                        ],
                        errors={k: ERRORS[k] for k in ("400", "401", "413")},
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                }
            },
            "/api/teachers": {
                "get": _op("the bureau's teachers", _list("teachers", "Teacher"), params=FILTERS[:1]),
                "post": _op(
                    "add a teacher to a school",
                    _json(_ref("Teacher")),
                    "201",
                    "TeacherInput",
                    errors=ERRORS,
                ),
            },
            "/api/lessons": {
                "get": _op("all the bureau's lessons", _list("lessons", "Lesson")),
                "post": _op(
                    "schedule a lesson (one-off or weekly over a term)",
                    _json(_ref("Lesson")),
                    "201",
                    "LessonInput",
                    errors=ERRORS,
                    extra=CONFLICT,
                ),
            },
            "/api/lessons/{lesson_id}": {
                "get": _op("a lesson", _json(_ref("Lesson")), params=LESSON_ID),
                "put": _op(
                    "replace a lesson",
                    _json(_ref("Lesson")),
                    body="LessonInput",
                    params=LESSON_ID,
                    errors=ERRORS,
                    extra=CONFLICT,
                ),
                "patch": _op(
                    "change some fields of a lesson",
                    _json(_ref("Lesson")),
                    body="LessonPatch",
                    params=LESSON_ID,
                    errors=ERRORS,
                    extra=CONFLICT,
                ),
            },
            "/api/lessons/{lesson_id}/cancel": {
                "post": {
                    **_op(
                        "cancel the lesson, or with a date one occurrence of a weekly lesson",
                        _json(_ref("Lesson")),
                        params=LESSON_ID,
                        errors=ERRORS,
                        extra={"409": _json(ERR, "already cancelled, or already begun")},
                    ),
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"date": {**DATE, "nullable": True}},
                                }
                            }
                        },
                    },
                }
            },
            "/api/lessons/{lesson_id}/occurrences": {
                "get": _op(
                    "every occurrence of a lesson with its status",
                    _list("occurrences", "Occurrence"),
                    params=LESSON_ID,
                )
            },
            "/api/lessons/{lesson_id}/live": {
                "get": _op(
                    "live status of an occurrence: status, connected classrooms, join history",
                    _json(_ref("Live")),
                    params=[*LESSON_ID, DATE_Q],
                )
            },
            "/api/lessons/{lesson_id}/links": {
                "get": _op(
                    "signed join links of an occurrence, one per classroom plus an observer link",
                    _json(_ref("JoinLinks")),
                    params=[
                        *LESSON_ID,
                        DATE_Q,
                        _query(
                            "qr", {"type": "string", "enum": ["0", "1"]}, "1: add a QR code (SVG data URI) of each link"
                        ),
                    ],
                    extra={"409": _json(ERR, "the lesson is cancelled")},
                )
            },
            "/api/lessons/{lesson_id}/recordings": {
                "get": _op(
                    "the lesson's recordings (every week of a weekly lesson; date: one week's); demo-lesson "
                    "and other rooms the schedule does not govern answer with their own",
                    _json(_obj({"lesson_id": {"type": "string"}, "recordings": {"type": "array",
                                                                                "items": _ref("Recording")}},
                               ["lesson_id", "recordings"])),
                    params=[*LESSON_ID, DATE_Q],
                )
            },
            "/api/recordings": {
                "get": _op(
                    "every recording the bureau may see, newest first (its lessons', the demo lesson's)",
                    _list("recordings", "Recording"),
                )
            },
            "/api/settings/recording": {
                "get": _op("the bureau's recording default and the server's recording policy",
                           _json(_ref("RecordingSettings"))),
                "put": _op(
                    "set whether the bureau's new lessons are recorded by default",
                    _json(_ref("RecordingSettings")),
                    body="RecordingSettingsInput",
                    errors=ERRORS,
                ),
            },
            "/api/schedule/today": {
                "get": _op(
                    "a day's occurrences (default today) with live status",
                    _json(_ref("OccurrenceList")),
                    params=[DATE_Q, *FILTERS],
                )
            },
            "/api/schedule/week": {
                "get": _op(
                    "the occurrences of the week (Monday to Sunday) containing date",
                    _json(_ref("OccurrenceList")),
                    params=[DATE_Q, *FILTERS],
                )
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The schedule API's paths and the term dashboard's (``/api/analytics/…``, analytics_openapi.py)."""
    from .analytics_openapi import SCHEMAS as ANALYTICS_SCHEMAS
    from .analytics_openapi import analytics_paths

    doc = _schedule_document()
    doc["components"]["schemas"] = {**doc["components"]["schemas"], **ANALYTICS_SCHEMAS}
    doc["paths"].update(analytics_paths())
    from .notes_openapi import SCHEMAS as NOTES_SCHEMAS
    from .notes_openapi import notes_paths

    doc["components"]["schemas"].update(NOTES_SCHEMAS)
    doc["paths"].update(notes_paths())
    return doc
