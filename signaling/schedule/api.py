"""The schedule's REST API under ``/api/`` (aiohttp, JSON). Reference: ``/api/openapi.json``."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, date, datetime, timedelta
from datetime import tzinfo as TzInfo
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web, web_protocol

from signaling.limits import Limits
from signaling.tokens import TokenSigner

from . import auth
from .csv_import import CsvFileError, parse_classrooms_csv
from .device_health import HealthBoard, parse_health
from .errors import ApiError, Handler, api_error_middleware, bad_request, not_found
from .keygate import KeyGate, unauthorized
from .models import (
    CLASSROOM_KINDS,
    Admin,
    AdminInfo,
    Bureau,
    Classroom,
    Device,
    Lesson,
    LessonSpec,
    OccurrenceView,
    Recurrence,
    School,
    Teacher,
)
from .openapi import openapi_document
from .qr import qr_data_uri
from .store import ScheduleStore
from .timing import (
    MAX_LESSON_S,
    MAX_TERM_DAYS,
    TimeError_,
    day_bounds,
    format_time,
    parse_date,
    parse_time,
    token_window,
    week_bounds,
)

MAX_BODY_BYTES = 1024 * 1024
MAX_REMOTES = 50
MAX_EXCEPTIONS = 60
LESSON_FIELDS = {
    "subject",
    "title",
    "lead_classroom_id",
    "lead_teacher_id",
    "remote_classroom_ids",
    "start",
    "end",
    "recurrence",
    "recording",
}
PAGE_FOR_ROLE = {"lead": "lead.html", "remote": "remote.html", "observer": "observer.html"}


class LiveStatus(Protocol):
    """What the signaling knows about live rooms."""

    def connected(self, lesson_id: str) -> list[str]:
        """Classroom ids connected now to the live room ``lesson_id`` (an occurrence id)."""
        ...


STORE_KEY = web.AppKey("schedule_store", ScheduleStore)
KEYGATE_KEY = web.AppKey("schedule_keygate", KeyGate)


# ------------------------------------------------------------------ request helpers
async def read_body(request: web.Request, timeout_s: float = 30.0) -> bytes:
    """The request body's bytes: the one reader of every body. Bodies over 1 MiB answer 413,
    bodies that do not arrive within ``timeout_s`` 408."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", "request body too large (limit 1 MiB)")
    data = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                chunk = await request.content.read(64 * 1024)
                if not chunk:
                    break
                data += chunk
                if len(data) > MAX_BODY_BYTES:
                    raise ApiError(413, "body_too_large", "request body too large (limit 1 MiB)")
    except TimeoutError:
        raise ApiError(408, "body_timeout", f"the request body did not arrive within {timeout_s:g} s") from None
    except ConnectionError:  # the client went away mid-body (found by tests/fuzz): nobody to answer, no traceback
        raise bad_request("bad_request", "the connection closed before the whole body arrived") from None
    except web_protocol.RequestPayloadError as exc:  # e.g. a Content-Encoding that does not decode
        raise bad_request("bad_body", f"the request body could not be read: {str(exc).strip()[:200]}") from None
    return bytes(data)


async def read_json(request: web.Request, timeout_s: float = 30.0) -> dict[str, Any]:
    """The request body as a JSON object (see :func:`read_body`); anything but a JSON object
    (also nesting too deep for the parser) answers 400."""
    data = await read_body(request, timeout_s)
    if not data.strip():
        raise bad_request("bad_json", "a JSON object body is required")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("bad_json", f"the body is not valid JSON: {exc}") from exc
    except RecursionError:
        raise bad_request("bad_json", "the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise bad_request("bad_json", "the body must be a JSON object")
    return value


def _text(body: dict[str, Any], key: str, max_len: int, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise bad_request("invalid_field", f"{key} must be a non-empty string", field=key, reason="required")
    if len(value) > max_len:
        raise bad_request(
            "invalid_field", f"{key} must be at most {max_len} characters", field=key, reason="too_long", max=max_len
        )
    if "\x00" in value or not _encodable(value):
        raise bad_request("invalid_field", f"{key} must be valid text without NUL characters", field=key, reason="text")
    return value.strip()


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates sent as JSON escapes
        return False
    return True


def _id(value: object, key: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not _encodable(value):
        raise bad_request("invalid_field", f"{key} must be an id string", field=key.removesuffix("[]"), reason="id")
    return value


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise bad_request("invalid_field", f"{key} must be true or false", field=key, reason="bool")
    return value


def _kind(body: dict[str, Any], default: str = "browser") -> str:
    kind = body.get("kind", default)
    if kind not in CLASSROOM_KINDS:
        raise bad_request(
            "invalid_field", f"kind must be one of {', '.join(CLASSROOM_KINDS)}", field="kind", reason="choice"
        )
    return str(kind)


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise bad_request(
            "invalid_field",
            f"unknown field(s): {', '.join(map(str, extra))}",
            field=str(extra[0])[:64],
            reason="unknown",
        )


def parse_lesson(body: dict[str, Any], tz: TzInfo) -> LessonSpec:
    """Validate a lesson body (create, or the merged result of an update)."""
    _unknown_fields(body, LESSON_FIELDS)
    subject = _text(body, "subject", 100)
    title = _text(body, "title", 200)
    lead = _id(body.get("lead_classroom_id"), "lead_classroom_id")
    teacher_raw = body.get("lead_teacher_id")
    teacher = None if teacher_raw is None else _id(teacher_raw, "lead_teacher_id")
    remotes_raw = body.get("remote_classroom_ids")
    remotes_field = "remote_classroom_ids"
    if not isinstance(remotes_raw, list):
        raise bad_request(
            "invalid_field", "remote_classroom_ids must be a list of classroom ids", field=remotes_field, reason="list"
        )
    if not remotes_raw:
        raise bad_request("no_remote_classroom", "a lesson needs at least one remote classroom", field=remotes_field)
    if len(remotes_raw) > MAX_REMOTES:
        raise bad_request(
            "invalid_field", f"at most {MAX_REMOTES} remote classrooms", field=remotes_field, reason="too_many"
        )
    remotes = tuple(_id(r, "remote_classroom_ids[]") for r in remotes_raw)
    if len(set(remotes)) != len(remotes):
        raise bad_request(
            "invalid_field", "remote_classroom_ids lists a classroom twice", field=remotes_field, reason="duplicate"
        )
    if lead in remotes:
        raise bad_request(
            "invalid_field", "the lead classroom cannot also be a remote classroom", field=remotes_field, reason="lead"
        )
    times: dict[str, float] = {}
    for key in ("start", "end"):
        try:
            times[key] = parse_time(body.get(key), tz, key)
        except TimeError_ as exc:
            raise bad_request("invalid_time", str(exc), field=key) from exc
    start, end = times["start"], times["end"]
    if end <= start:
        raise bad_request("invalid_time", "end must be after start", field="end", reason="order")
    if end - start > MAX_LESSON_S:
        raise bad_request("invalid_time", "a lesson lasts at most 12 hours", field="end", reason="too_long")
    recording = _bool(body, "recording", False)
    recurrence = parse_recurrence(body.get("recurrence"), datetime.fromtimestamp(start, tz).date())
    return LessonSpec(subject, title, lead, teacher, remotes, start, end, recurrence, recording)


def parse_recurrence(raw: object, first_day: date) -> Recurrence | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("invalid_field", "recurrence must be an object or null", field="recurrence", reason="object")
    _unknown_fields(raw, {"until", "exceptions", "frequency"})
    if raw.get("frequency", "weekly") != "weekly":
        raise bad_request(
            "invalid_field", "recurrence.frequency must be 'weekly'", field="recurrence.frequency", reason="choice"
        )
    field = "recurrence.until"
    try:
        until = parse_date(raw.get("until"), "recurrence.until")
        field = "recurrence.exceptions"
        exceptions_raw = raw.get("exceptions", [])
        if not isinstance(exceptions_raw, list) or len(exceptions_raw) > MAX_EXCEPTIONS:
            raise TimeError_(f"recurrence.exceptions must be a list of at most {MAX_EXCEPTIONS} dates")
        exceptions = tuple(parse_date(d, "recurrence.exceptions[]") for d in exceptions_raw)
    except TimeError_ as exc:
        raise bad_request("invalid_time", str(exc), field=field) from exc
    if until < first_day:
        raise bad_request(
            "invalid_time", "recurrence.until must not be before the first lesson", field="recurrence.until",
            reason="before_start",
        )
    if until - first_day > timedelta(days=MAX_TERM_DAYS):
        raise bad_request(
            "invalid_time", f"a term lasts at most {MAX_TERM_DAYS} days", field="recurrence.until", reason="too_long"
        )
    return Recurrence(until, tuple(sorted(set(exceptions))))


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


# ------------------------------------------------------------------ JSON views
def bureau_json(b: Bureau) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "timezone": b.timezone}


def school_json(s: School) -> dict[str, Any]:
    return {"id": s.id, "name": s.name}


def classroom_json(c: Classroom) -> dict[str, Any]:
    return {"id": c.id, "school_id": c.school_id, "name": c.name, "kind": c.kind, "lead_capable": c.lead_capable}


def admin_json(a: AdminInfo, me: str) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "created_at": format_time(a.created_at, UTC),
        "revoked": a.revoked_at is not None,
        "me": a.id == me,
    }


def device_json(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "classroom_id": d.classroom_id,
        "name": d.name,
        "created_at": format_time(d.created_at, UTC),
        "revoked": d.revoked_at is not None,
    }


def teacher_json(t: Teacher) -> dict[str, Any]:
    return {"id": t.id, "school_id": t.school_id, "name": t.name}


def lesson_json(lesson: Lesson, tz: TzInfo) -> dict[str, Any]:
    rec = None
    if lesson.recurrence is not None:
        rec = {
            "frequency": "weekly",
            "until": lesson.recurrence.until.isoformat(),
            "exceptions": [d.isoformat() for d in lesson.recurrence.exceptions],
        }
    return {
        "id": lesson.id,
        "subject": lesson.subject,
        "title": lesson.title,
        "lead_classroom_id": lesson.lead_classroom_id,
        "lead_teacher_id": lesson.lead_teacher_id,
        "remote_classroom_ids": list(lesson.remote_classroom_ids),
        "start": format_time(lesson.start, tz),
        "end": format_time(lesson.end, tz),
        "recurrence": rec,
        "recording": lesson.recording,
        "cancelled": lesson.cancelled,
        "created_at": format_time(lesson.created_at, tz),
        "updated_at": format_time(lesson.updated_at, tz),
    }


def lesson_input(lesson: Lesson, tz: TzInfo) -> dict[str, Any]:
    """A lesson as a request body (the base a PATCH is merged onto)."""
    full = lesson_json(lesson, tz)
    return {k: full[k] for k in LESSON_FIELDS}


def occurrence_json(v: OccurrenceView, tz: TzInfo) -> dict[str, Any]:
    lesson, occ = v.lesson, v.occurrence
    return {
        "occurrence_id": occ.occurrence_id,
        "lesson_id": lesson.id,
        "date": occ.date.isoformat(),
        "subject": lesson.subject,
        "title": lesson.title,
        "start": format_time(occ.start, tz),
        "end": format_time(occ.end, tz),
        "status": v.status,
        "lead_classroom_id": lesson.lead_classroom_id,
        "lead_teacher_id": lesson.lead_teacher_id,
        "remote_classroom_ids": list(lesson.remote_classroom_ids),
        "recording": lesson.recording,
        "recurring": lesson.recurrence is not None,
        "started_at": None if v.started_at is None else format_time(v.started_at, tz),
        "ended_at": None if v.ended_at is None else format_time(v.ended_at, tz),
        "connected": list(v.connected),
    }


# ------------------------------------------------------------------ the API
class ScheduleApi:
    def __init__(
        self,
        store: ScheduleStore,
        signer: TokenSigner,
        live: LiveStatus,
        public_url: str,
        gate: KeyGate | None = None,
    ) -> None:
        self.store = store
        self.signer = signer
        self.live = live
        self.public_url = public_url.rstrip("/")
        self.gate = gate or KeyGate(store)
        self.body_timeout_s = self.gate.limits.http_body_timeout_s
        self.health = HealthBoard(store.clock)

    # -- auth
    async def admin(self, request: web.Request) -> Admin:
        key = _bearer(request)
        if not key:
            raise unauthorized("an API key is required (Authorization: Bearer <key>)")
        return await self.gate.authenticate(key, request.remote or "")

    async def body(self, request: web.Request) -> dict[str, Any]:
        return await read_json(request, self.body_timeout_s)

    def tz(self, admin: Admin) -> TzInfo:
        return self.store.tz(admin.bureau_id)

    def _lesson(self, admin: Admin, request: web.Request) -> Lesson:
        lesson = self.store.get_lesson(admin.bureau_id, request.match_info["lesson_id"])
        if lesson is None:
            raise not_found("lesson")
        return lesson

    def _filters(self, admin: Admin, request: web.Request) -> tuple[str | None, str | None]:
        school_id = request.query.get("school_id")
        classroom_id = request.query.get("classroom_id")
        if school_id is not None:
            _id(school_id, "school_id")
        if classroom_id is not None:
            _id(classroom_id, "classroom_id")
        if school_id is not None and self.store.get_school(admin.bureau_id, school_id) is None:
            raise not_found("school")
        if classroom_id is not None and self.store.get_classroom(admin.bureau_id, classroom_id) is None:
            raise not_found("classroom")
        return school_id, classroom_id

    def _date_query(self, request: web.Request, admin: Admin) -> date:
        raw = request.query.get("date")
        if raw is None:
            return datetime.fromtimestamp(self.store.clock(), self.tz(admin)).date()
        try:
            return parse_date(raw, "date")
        except TimeError_ as exc:
            raise bad_request("invalid_time", str(exc)) from exc

    def _with_live(self, views: list[OccurrenceView]) -> list[OccurrenceView]:
        for v in views:
            if v.status == "live":
                v.connected = sorted(self.live.connected(v.occurrence.occurrence_id))
        return views

    # -- handlers
    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    async def me(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        bureau = self.store.get_bureau(admin.bureau_id)
        assert bureau is not None
        return web.json_response(
            {
                "admin": {"id": admin.id, "name": admin.name},
                "bureau": bureau_json(bureau),
                "public_url": self.public_url,
            }
        )

    async def list_schools(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        schools = self.store.list_schools(admin.bureau_id)
        return web.json_response({"schools": [school_json(s) for s in schools]})

    async def create_school(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        body = await self.body(request)
        _unknown_fields(body, {"name"})
        school = self.store.create_school(admin.bureau_id, _text(body, "name", 200))
        return web.json_response(school_json(school), status=201)

    async def get_school(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        school = self.store.get_school(admin.bureau_id, request.match_info["school_id"])
        if school is None:
            raise not_found("school")
        rooms = self.store.list_classrooms(admin.bureau_id, school.id)
        teachers = self.store.list_teachers(admin.bureau_id, school.id)
        return web.json_response(
            {
                **school_json(school),
                "classrooms": [classroom_json(c) for c in rooms],
                "teachers": [teacher_json(t) for t in teachers],
            }
        )

    async def list_classrooms(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        school_id, _ = self._filters(admin, request)
        rooms = self.store.list_classrooms(admin.bureau_id, school_id)
        return web.json_response({"classrooms": [classroom_json(c) for c in rooms]})

    async def create_classroom(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        body = await self.body(request)
        _unknown_fields(body, {"school_id", "name", "kind", "lead_capable"})
        kind = _kind(body)
        lead_capable = _bool(body, "lead_capable", True)
        school_id = _id(body.get("school_id"), "school_id")
        if self.store.get_school(admin.bureau_id, school_id) is None:
            raise bad_request("unknown_school", f"school {school_id!r} does not exist", field="school_id")
        name = _text(body, "name", 200)
        room = self.store.create_classroom(admin.bureau_id, school_id, name, kind, lead_capable)
        return web.json_response(classroom_json(room), status=201)

    async def get_classroom(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        room = self.store.get_classroom(admin.bureau_id, request.match_info["classroom_id"])
        if room is None:
            raise not_found("classroom")
        return web.json_response(classroom_json(room))

    async def list_teachers(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        school_id, _ = self._filters(admin, request)
        teachers = self.store.list_teachers(admin.bureau_id, school_id)
        return web.json_response({"teachers": [teacher_json(t) for t in teachers]})

    async def create_teacher(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        body = await self.body(request)
        _unknown_fields(body, {"school_id", "name"})
        school_id = _id(body.get("school_id"), "school_id")
        if self.store.get_school(admin.bureau_id, school_id) is None:
            raise bad_request("unknown_school", f"school {school_id!r} does not exist", field="school_id")
        teacher = self.store.create_teacher(admin.bureau_id, school_id, _text(body, "name", 200))
        return web.json_response(teacher_json(teacher), status=201)

    # -- editing and deleting the district's records
    def _school(self, admin: Admin, request: web.Request) -> School:
        school = self.store.get_school(admin.bureau_id, request.match_info["school_id"])
        if school is None:
            raise not_found("school")
        return school

    async def update_school(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        school = self._school(admin, request)
        body = await self.body(request)
        _unknown_fields(body, {"name"})
        updated = self.store.update_school(admin.bureau_id, school.id, _text(body, "name", 200))
        return web.json_response(school_json(updated))

    async def delete_school(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        school = self._school(admin, request)
        self.store.delete_school(admin.bureau_id, school.id)
        return web.json_response({"id": school.id, "deleted": True})

    async def update_classroom(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        room = self.store.get_classroom(admin.bureau_id, request.match_info["classroom_id"])
        if room is None:
            raise not_found("classroom")
        body = await self.body(request)
        _unknown_fields(body, {"name", "kind", "lead_capable"})
        name = room.name if "name" not in body else _text(body, "name", 200)
        updated = self.store.update_classroom(
            admin.bureau_id, room.id, name, _kind(body, room.kind), _bool(body, "lead_capable", room.lead_capable)
        )
        return web.json_response(classroom_json(updated))

    async def delete_classroom(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        room = self.store.get_classroom(admin.bureau_id, request.match_info["classroom_id"])
        if room is None:
            raise not_found("classroom")
        self.store.delete_classroom(admin.bureau_id, room.id)
        return web.json_response({"id": room.id, "deleted": True})

    async def update_teacher(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        teacher = self.store.get_teacher(admin.bureau_id, request.match_info["teacher_id"])
        if teacher is None:
            raise not_found("teacher")
        body = await self.body(request)
        _unknown_fields(body, {"name"})
        updated = self.store.update_teacher(admin.bureau_id, teacher.id, _text(body, "name", 200))
        return web.json_response(teacher_json(updated))

    async def delete_teacher(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        teacher = self.store.get_teacher(admin.bureau_id, request.match_info["teacher_id"])
        if teacher is None:
            raise not_found("teacher")
        self.store.delete_teacher(admin.bureau_id, teacher.id)
        return web.json_response({"id": teacher.id, "deleted": True})

    # -- administrators and devices (their credentials are shown once, stored hashed)
    async def list_admins(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        return web.json_response({"admins": [admin_json(a, admin.id) for a in self.store.list_admins(admin.bureau_id)]})

    async def create_admin(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        body = await self.body(request)
        _unknown_fields(body, {"name"})
        name = _text(body, "name", 200)
        credential = await self.gate.new_credential(auth.new_admin_credential)  # scrypt off the loop
        created, key = self.store.create_admin(admin.bureau_id, name, credential)
        info = AdminInfo(created.id, created.name, created.created_at, None)
        return web.json_response({**admin_json(info, admin.id), "api_key": key}, status=201)

    async def revoke_admin(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        admin_id = request.match_info["admin_id"]
        if admin_id == admin.id:
            raise ApiError(409, "self_revoke", "an administrator cannot revoke its own key (ask another one)")
        self.store.revoke_bureau_admin(admin.bureau_id, admin_id)
        return web.json_response({"id": admin_id, "revoked": True})

    async def list_devices(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        devices = []
        for d in self.store.list_devices(admin.bureau_id):
            seen, online, health = self.health.view(d.id)
            devices.append({**device_json(d), "last_seen": None if seen is None else format_time(seen, UTC),
                            "online": online and d.revoked_at is None, "health": health})
        return web.json_response({"devices": devices})

    async def create_device(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        body = await self.body(request)
        _unknown_fields(body, {"classroom_id", "name"})
        classroom_id = _id(body.get("classroom_id"), "classroom_id")
        name = _text(body, "name", 200)
        self.store.check_classroom(admin.bureau_id, classroom_id)
        credential = await self.gate.new_credential(auth.new_device_credential)  # scrypt off the loop
        device, key = self.store.create_device(admin.bureau_id, classroom_id, name, credential)
        return web.json_response({**device_json(device), "credential": key}, status=201)

    async def revoke_device(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        device_id = request.match_info["device_id"]
        self.store.revoke_device(admin.bureau_id, device_id)
        return web.json_response({"id": device_id, "revoked": True})

    async def device_lesson(self, request: web.Request) -> web.Response:
        """For room hardware (device credential): its classroom's current or next lesson today,
        with the classroom's own join link once the link's window is open."""
        key = _bearer(request)
        if not key:
            raise unauthorized("a device credential is required (Authorization: Bearer ckd_...)")
        device = await self.gate.authenticate_device(key, request.remote or "")
        tz = self.store.tz(device.bureau_id)
        now = self.store.clock()
        day = datetime.fromtimestamp(now, tz).date()
        start, end = day_bounds(day, tz)
        views = self.store.occurrences_between(device.bureau_id, start, end, classroom_id=device.classroom_id)
        pick = next(
            (v for v in views if v.status in ("scheduled", "live") and v.occurrence.end > now), None
        )  # a lesson past its end is not "current" even while its links stay valid (the next one is)
        answer: dict[str, Any] = {"device_id": device.id, "classroom_id": device.classroom_id, "lesson": None}
        if pick is not None:
            not_before, _ = token_window(pick.occurrence)
            link = None
            if not_before <= now:
                role = "lead" if pick.lesson.lead_classroom_id == device.classroom_id else "remote"
                link = self._link(pick, device.classroom_id, role, self._names(device.bureau_id))
            answer["lesson"] = {
                **occurrence_json(pick, tz),
                "opens_at": format_time(not_before, tz),
                "link": link,
            }
        return web.json_response(answer)

    async def device_health(self, request: web.Request) -> web.Response:
        """For room hardware (device credential): a health report (version, uptime, state, frames);
        the bureau's device list shows the latest and when it came."""
        key = _bearer(request)
        if not key:
            raise unauthorized("a device credential is required (Authorization: Bearer ckd_...)")
        device = await self.gate.authenticate_device(key, request.remote or "")
        health = parse_health(await self.body(request))
        at = self.health.report(device.id, health)
        return web.json_response({"device_id": device.id, "received_at": format_time(at, UTC)})

    # -- CSV import of a district's schools and classrooms
    async def import_classrooms(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        raw = request.query.get("dry_run", "0").lower()
        if raw not in ("0", "1", "true", "false"):
            raise bad_request("invalid_field", "dry_run must be 1 or 0", field="dry_run", reason="bool")
        dry_run = raw in ("1", "true")
        data = await read_body(request, self.body_timeout_s)
        rooms, schools = self.store.classroom_names(admin.bureau_id)
        try:
            plan = parse_classrooms_csv(data, rooms, schools)
        except CsvFileError as exc:
            raise bad_request(exc.code, exc.message, message_zh=exc.message_zh) from None
        created_schools: list[School] = []
        created_rooms: list[Classroom] = []
        if not dry_run and plan.rows:
            created_schools, created_rooms = self.store.import_classrooms(
                admin.bureau_id, [(r.school, r.classroom, r.lead_capable, r.kind) for r in plan.rows]
            )
        return web.json_response(
            {
                "dry_run": dry_run,
                "imported": bool(created_rooms),
                "rows": [
                    {
                        "row": r.row,
                        "school": r.school,
                        "classroom": r.classroom,
                        "lead_capable": r.lead_capable,
                        "kind": r.kind,
                        "new_school": r.new_school,
                    }
                    for r in plan.rows
                ],
                "errors": [
                    {
                        "row": e.row,
                        "field": e.field,
                        "code": e.code,
                        "message": e.message,
                        "message_zh": e.message_zh,
                        "values": plan.bad_values.get(e.row, {}),
                    }
                    for e in plan.errors
                ],
                "bad_rows": plan.bad_rows,
                "ignored_columns": plan.ignored_columns,
                "new_schools": plan.new_schools,
                "created": {
                    "schools": [school_json(x) for x in created_schools],
                    "classrooms": [classroom_json(x) for x in created_rooms],
                },
            }
        )

    async def list_lessons(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        lessons = self.store.list_lessons(admin.bureau_id)
        return web.json_response({"lessons": [lesson_json(lesson, tz) for lesson in lessons]})

    async def create_lesson(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        body = await self.body(request)
        from .recording_policy import apply_recording_default

        apply_recording_default(request, admin.bureau_id, body)  # no "recording": the bureau's default
        spec = parse_lesson(body, tz)
        lesson = self.store.create_lesson(admin.bureau_id, spec)
        return web.json_response(lesson_json(lesson, tz), status=201)

    async def get_lesson(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        return web.json_response(lesson_json(self._lesson(admin, request), self.tz(admin)))

    async def replace_lesson(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        lesson = self._lesson(admin, request)
        body = await self.body(request)
        if request.method == "PATCH":
            _unknown_fields(body, LESSON_FIELDS)
            body = {**lesson_input(lesson, tz), **body}
        else:
            from .recording_policy import apply_recording_default

            apply_recording_default(request, admin.bureau_id, body)  # no "recording": the bureau's default
        spec = parse_lesson(body, tz)
        updated = self.store.update_lesson(admin.bureau_id, lesson.id, spec)
        return web.json_response(lesson_json(updated, tz))

    async def cancel_lesson(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        lesson = self._lesson(admin, request)
        day: date | None = None
        if request.can_read_body:
            body = await self.body(request)
            _unknown_fields(body, {"date"})
            if body.get("date") is not None:
                try:
                    day = parse_date(body["date"], "date")
                except TimeError_ as exc:
                    raise bad_request("invalid_time", str(exc)) from exc
        updated = self.store.cancel_lesson(admin.bureau_id, lesson.id, day)
        return web.json_response(lesson_json(updated, self.tz(admin)))

    def _occurrence(self, admin: Admin, request: web.Request) -> OccurrenceView:
        """The occurrence named by ``?date=`` (recurring lessons); default: the current or
        next one (or the last, when all are over)."""
        lesson = self._lesson(admin, request)
        raw = request.query.get("date")
        if raw is not None:
            try:
                day = parse_date(raw, "date")
            except TimeError_ as exc:
                raise bad_request("invalid_time", str(exc)) from exc
            occ = self.store.find_occurrence(lesson, day if lesson.recurrence else None)
            if occ is None or occ.date != day:
                raise not_found("occurrence on that date")
            return self.store.view(lesson, occ)
        occurrences = self.store.occurrences(lesson)
        now = self.store.clock()
        pick = next((o for o in occurrences if token_window(o)[1] >= now), occurrences[-1])
        return self.store.view(lesson, pick)

    async def lesson_occurrences(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        lesson = self._lesson(admin, request)
        views = [self.store.view(lesson, o) for o in self.store.occurrences(lesson)]
        return web.json_response({"occurrences": [occurrence_json(v, tz) for v in self._with_live(views)]})

    async def live_status(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        view = self._with_live([self._occurrence(admin, request)])[0]
        history = self.store.history(view.occurrence.occurrence_id)
        return web.json_response(
            {
                **occurrence_json(view, tz),
                "expected": list(view.lesson.classroom_ids),
                "history": [
                    {
                        "classroom_id": e.classroom_id,
                        "joined_at": format_time(e.joined_at, tz),
                        "left_at": None if e.left_at is None else format_time(e.left_at, tz),
                    }
                    for e in history
                ],
            }
        )

    async def join_links(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        view = self._occurrence(admin, request)
        lesson, occ = view.lesson, view.occurrence
        if lesson.cancelled:
            raise ApiError(409, "lesson_cancelled", "a cancelled lesson has no join links")
        qr = request.query.get("qr", "0")
        if qr not in ("0", "1"):
            raise bad_request("invalid_field", "qr must be 1 or 0", field="qr", reason="bool")
        not_before, expires = token_window(occ)
        names = self._names(admin.bureau_id)
        entries = [(lesson.lead_classroom_id, "lead")]
        entries += [(cid, "remote") for cid in lesson.remote_classroom_ids]
        # each links request gets its own observer id: two observers must not evict each other
        entries.append((f"observer-{secrets.token_hex(4)}", "observer"))
        links = [self._link(view, cid, role, names) for cid, role in entries]
        if qr == "1":
            for link in links:
                link["qr_svg"] = qr_data_uri(link["url"])
        return web.json_response(
            {
                "occurrence_id": occ.occurrence_id,
                "lesson_id": lesson.id,
                "status": view.status,
                "not_before": format_time(not_before, tz),
                "expires": format_time(expires, tz),
                "links": links,
            }
        )

    def _names(self, bureau_id: str) -> dict[str, str]:
        return {c.id: c.name for c in self.store.list_classrooms(bureau_id)}

    def _link(self, view: OccurrenceView, cid: str, role: str, names: dict[str, str]) -> dict[str, Any]:
        """A signed join link of one classroom for one occurrence."""
        not_before, expires = token_window(view.occurrence)
        name = "Observer" if role == "observer" else names.get(cid, cid)
        token = self.signer.issue(
            lesson_id=view.occurrence.occurrence_id,
            classroom_id=cid,
            role=role,
            name=name,
            not_before=not_before,
            expires=expires,
            lesson_title=view.lesson.title,
        )
        return {
            "classroom_id": cid,
            "classroom_name": name,
            "role": role,
            "token": token,
            "url": f"{self.public_url}/{PAGE_FOR_ROLE[role]}?token={quote(token)}",
        }

    async def today(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        school_id, classroom_id = self._filters(admin, request)
        day = self._date_query(request, admin)
        start, end = day_bounds(day, tz)
        views = self.store.occurrences_between(admin.bureau_id, start, end, school_id, classroom_id)
        return web.json_response(
            {
                "date": day.isoformat(),
                "occurrences": [occurrence_json(v, tz) for v in self._with_live(views)],
            }
        )

    async def week(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        school_id, classroom_id = self._filters(admin, request)
        monday, start, end = week_bounds(self._date_query(request, admin), tz)
        views = self.store.occurrences_between(admin.bureau_id, start, end, school_id, classroom_id)
        return web.json_response(
            {
                "week_start": monday.isoformat(),
                "week_end": (monday + timedelta(days=6)).isoformat(),
                "occurrences": [occurrence_json(v, tz) for v in self._with_live(views)],
            }
        )


def setup_schedule(
    app: web.Application,
    store: ScheduleStore,
    signer: TokenSigner,
    live: LiveStatus,
    public_url: str,
    limits: Limits | None = None,
) -> None:
    """Add the schedule API (everything under ``/api/``) to ``app``; nothing else."""
    gate = KeyGate(store, limits)
    api = ScheduleApi(store, signer, live, public_url, gate)
    app[STORE_KEY] = store
    app[KEYGATE_KEY] = gate

    async def close_gate(app: web.Application) -> None:
        gate.close()

    app.on_cleanup.append(close_gate)
    app.middlewares.append(api_error_middleware)

    def add(method: str, path: str, handler: Handler, query: tuple[str, ...] = ()) -> None:
        allowed = set(query)

        async def checked(request: web.Request) -> web.StreamResponse:
            unknown = sorted(set(request.query) - allowed)
            if unknown:
                raise bad_request(
                    "invalid_field",
                    f"unknown query parameter(s): {', '.join(unknown)[:200]}",
                )
            return await handler(request)

        app.router.add_route(method, path, checked)

    occurrence_query = ("date",)
    listing_query = ("date", "school_id", "classroom_id")
    add("GET", "/api/openapi.json", api.openapi)
    add("GET", "/api/me", api.me)
    add("GET", "/api/schools", api.list_schools)
    add("POST", "/api/schools", api.create_school)
    add("GET", "/api/schools/{school_id}", api.get_school)
    add("GET", "/api/classrooms", api.list_classrooms, ("school_id",))
    add("POST", "/api/classrooms", api.create_classroom)
    add("GET", "/api/classrooms/{classroom_id}", api.get_classroom)
    add("PATCH", "/api/schools/{school_id}", api.update_school)
    add("DELETE", "/api/schools/{school_id}", api.delete_school)
    add("PATCH", "/api/classrooms/{classroom_id}", api.update_classroom)
    add("DELETE", "/api/classrooms/{classroom_id}", api.delete_classroom)
    add("GET", "/api/teachers", api.list_teachers, ("school_id",))
    add("POST", "/api/teachers", api.create_teacher)
    add("PATCH", "/api/teachers/{teacher_id}", api.update_teacher)
    add("DELETE", "/api/teachers/{teacher_id}", api.delete_teacher)
    add("GET", "/api/admins", api.list_admins)
    add("POST", "/api/admins", api.create_admin)
    add("DELETE", "/api/admins/{admin_id}", api.revoke_admin)
    add("GET", "/api/devices", api.list_devices)
    add("POST", "/api/devices", api.create_device)
    add("DELETE", "/api/devices/{device_id}", api.revoke_device)
    add("GET", "/api/device/lesson", api.device_lesson)
    add("POST", "/api/device/health", api.device_health)
    add("POST", "/api/import/classrooms", api.import_classrooms, ("dry_run",))
    add("GET", "/api/lessons", api.list_lessons)
    add("POST", "/api/lessons", api.create_lesson)
    add("GET", "/api/lessons/{lesson_id}", api.get_lesson)
    add("PUT", "/api/lessons/{lesson_id}", api.replace_lesson)
    add("PATCH", "/api/lessons/{lesson_id}", api.replace_lesson)
    add("POST", "/api/lessons/{lesson_id}/cancel", api.cancel_lesson)
    add("GET", "/api/lessons/{lesson_id}/occurrences", api.lesson_occurrences)
    add("GET", "/api/lessons/{lesson_id}/live", api.live_status, occurrence_query)
    add("GET", "/api/lessons/{lesson_id}/links", api.join_links, ("date", "qr"))
    add("GET", "/api/schedule/today", api.today, listing_query)
    add("GET", "/api/schedule/week", api.week, listing_query)

