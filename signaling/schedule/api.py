"""The schedule's REST API under ``/api/`` (aiohttp, JSON). Reference: ``/api/openapi.json``."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import date, datetime, timedelta
from datetime import tzinfo as TzInfo
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web, web_protocol

from signaling.limits import Limits
from signaling.tokens import TokenSigner

from .errors import ApiError, Handler, api_error_middleware, bad_request, not_found
from .keygate import KeyGate, unauthorized
from .models import (
    CLASSROOM_KINDS,
    Admin,
    Bureau,
    Classroom,
    Lesson,
    LessonSpec,
    OccurrenceView,
    Recurrence,
    School,
    Teacher,
)
from .openapi import openapi_document
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
async def read_json(request: web.Request, timeout_s: float = 30.0) -> dict[str, Any]:
    """The request body as a JSON object: the one reader of every JSON body. Bodies over 1 MiB
    answer 413, bodies that do not arrive within ``timeout_s`` 408, anything but a JSON object
    (also nesting too deep for the parser) 400."""
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
    if not data.strip():
        raise bad_request("bad_json", "a JSON object body is required")
    try:
        value = json.loads(bytes(data).decode("utf-8"))
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
        raise bad_request("invalid_field", f"{key} must be a non-empty string")
    if len(value) > max_len:
        raise bad_request("invalid_field", f"{key} must be at most {max_len} characters")
    if "\x00" in value or not _encodable(value):
        raise bad_request("invalid_field", f"{key} must be valid text without NUL characters")
    return value.strip()


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates sent as JSON escapes
        return False
    return True


def _id(value: object, key: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or not _encodable(value):
        raise bad_request("invalid_field", f"{key} must be an id string")
    return value


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise bad_request("invalid_field", f"unknown field(s): {', '.join(map(str, extra))}")


def parse_lesson(body: dict[str, Any], tz: TzInfo) -> LessonSpec:
    """Validate a lesson body (create, or the merged result of an update)."""
    _unknown_fields(body, LESSON_FIELDS)
    subject = _text(body, "subject", 100)
    title = _text(body, "title", 200)
    lead = _id(body.get("lead_classroom_id"), "lead_classroom_id")
    teacher_raw = body.get("lead_teacher_id")
    teacher = None if teacher_raw is None else _id(teacher_raw, "lead_teacher_id")
    remotes_raw = body.get("remote_classroom_ids")
    if not isinstance(remotes_raw, list):
        raise bad_request("invalid_field", "remote_classroom_ids must be a list of classroom ids")
    if not remotes_raw:
        raise bad_request("no_remote_classroom", "a lesson needs at least one remote classroom")
    if len(remotes_raw) > MAX_REMOTES:
        raise bad_request("invalid_field", f"at most {MAX_REMOTES} remote classrooms")
    remotes = tuple(_id(r, "remote_classroom_ids[]") for r in remotes_raw)
    if len(set(remotes)) != len(remotes):
        raise bad_request("invalid_field", "remote_classroom_ids lists a classroom twice")
    if lead in remotes:
        raise bad_request("invalid_field", "the lead classroom cannot also be a remote classroom")
    try:
        start = parse_time(body.get("start"), tz, "start")
        end = parse_time(body.get("end"), tz, "end")
    except TimeError_ as exc:
        raise bad_request("invalid_time", str(exc)) from exc
    if end <= start:
        raise bad_request("invalid_time", "end must be after start")
    if end - start > MAX_LESSON_S:
        raise bad_request("invalid_time", "a lesson lasts at most 12 hours")
    recording = body.get("recording", False)
    if not isinstance(recording, bool):
        raise bad_request("invalid_field", "recording must be true or false")
    recurrence = parse_recurrence(body.get("recurrence"), datetime.fromtimestamp(start, tz).date())
    return LessonSpec(subject, title, lead, teacher, remotes, start, end, recurrence, recording)


def parse_recurrence(raw: object, first_day: date) -> Recurrence | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad_request("invalid_field", "recurrence must be an object or null")
    _unknown_fields(raw, {"until", "exceptions", "frequency"})
    if raw.get("frequency", "weekly") != "weekly":
        raise bad_request("invalid_field", "recurrence.frequency must be 'weekly'")
    try:
        until = parse_date(raw.get("until"), "recurrence.until")
        exceptions_raw = raw.get("exceptions", [])
        if not isinstance(exceptions_raw, list) or len(exceptions_raw) > MAX_EXCEPTIONS:
            raise TimeError_(f"recurrence.exceptions must be a list of at most {MAX_EXCEPTIONS} dates")
        exceptions = tuple(parse_date(d, "recurrence.exceptions[]") for d in exceptions_raw)
    except TimeError_ as exc:
        raise bad_request("invalid_time", str(exc)) from exc
    if until < first_day:
        raise bad_request("invalid_time", "recurrence.until must not be before the first lesson")
    if until - first_day > timedelta(days=MAX_TERM_DAYS):
        raise bad_request("invalid_time", f"a term lasts at most {MAX_TERM_DAYS} days")
    return Recurrence(until, tuple(sorted(set(exceptions))))


# ------------------------------------------------------------------ JSON views
def bureau_json(b: Bureau) -> dict[str, Any]:
    return {"id": b.id, "name": b.name, "timezone": b.timezone}


def school_json(s: School) -> dict[str, Any]:
    return {"id": s.id, "name": s.name}


def classroom_json(c: Classroom) -> dict[str, Any]:
    return {"id": c.id, "school_id": c.school_id, "name": c.name, "kind": c.kind}


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

    # -- auth
    async def admin(self, request: web.Request) -> Admin:
        header = request.headers.get("Authorization", "")
        key = ""
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif request.headers.get("X-API-Key"):
            key = request.headers["X-API-Key"].strip()
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
        _unknown_fields(body, {"school_id", "name", "kind"})
        kind = body.get("kind", "browser")
        if kind not in CLASSROOM_KINDS:
            raise bad_request("invalid_field", f"kind must be one of {', '.join(CLASSROOM_KINDS)}")
        school_id = _id(body.get("school_id"), "school_id")
        if self.store.get_school(admin.bureau_id, school_id) is None:
            raise bad_request("unknown_school", f"school {school_id!r} does not exist")
        room = self.store.create_classroom(admin.bureau_id, school_id, _text(body, "name", 200), str(kind))
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
            raise bad_request("unknown_school", f"school {school_id!r} does not exist")
        teacher = self.store.create_teacher(admin.bureau_id, school_id, _text(body, "name", 200))
        return web.json_response(teacher_json(teacher), status=201)

    async def list_lessons(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        lessons = self.store.list_lessons(admin.bureau_id)
        return web.json_response({"lessons": [lesson_json(lesson, tz) for lesson in lessons]})

    async def create_lesson(self, request: web.Request) -> web.Response:
        admin = await self.admin(request)
        tz = self.tz(admin)
        spec = parse_lesson(await self.body(request), tz)
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
        not_before, expires = token_window(occ)
        names = {c.id: c.name for c in self.store.list_classrooms(admin.bureau_id)}
        entries = [(lesson.lead_classroom_id, "lead")]
        entries += [(cid, "remote") for cid in lesson.remote_classroom_ids]
        # each links request gets its own observer id: two observers must not evict each other
        entries.append((f"observer-{secrets.token_hex(4)}", "observer"))
        links = []
        for cid, role in entries:
            name = "Observer" if role == "observer" else names.get(cid, cid)
            token = self.signer.issue(
                lesson_id=occ.occurrence_id,
                classroom_id=cid,
                role=role,
                name=name,
                not_before=not_before,
                expires=expires,
                lesson_title=lesson.title,
            )
            links.append(
                {
                    "classroom_id": cid,
                    "classroom_name": name,
                    "role": role,
                    "token": token,
                    "url": f"{self.public_url}/{PAGE_FOR_ROLE[role]}?token={quote(token)}",
                }
            )
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
    add("GET", "/api/teachers", api.list_teachers, ("school_id",))
    add("POST", "/api/teachers", api.create_teacher)
    add("GET", "/api/lessons", api.list_lessons)
    add("POST", "/api/lessons", api.create_lesson)
    add("GET", "/api/lessons/{lesson_id}", api.get_lesson)
    add("PUT", "/api/lessons/{lesson_id}", api.replace_lesson)
    add("PATCH", "/api/lessons/{lesson_id}", api.replace_lesson)
    add("POST", "/api/lessons/{lesson_id}/cancel", api.cancel_lesson)
    add("GET", "/api/lessons/{lesson_id}/occurrences", api.lesson_occurrences)
    add("GET", "/api/lessons/{lesson_id}/live", api.live_status, occurrence_query)
    add("GET", "/api/lessons/{lesson_id}/links", api.join_links, occurrence_query)
    add("GET", "/api/schedule/today", api.today, listing_query)
    add("GET", "/api/schedule/week", api.week, listing_query)


class RecordingsProvider(Protocol):
    def __call__(self, lesson_id: str) -> list[dict[str, Any]]: ...


def setup_recordings_api(
    app: web.Application,
    store: ScheduleStore,
    signer: TokenSigner,
    live: LiveStatus,
    provider: RecordingsProvider,
) -> None:
    """``GET /api/lessons/{lesson_id}/recordings``: the lesson's recordings (every week of a
    weekly lesson) with signed, expiring playback and report links, for the administrators of
    the lesson's bureau only."""
    api = ScheduleApi(store, signer, live, "", app.get(KEYGATE_KEY))

    async def recordings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        lesson_id = request.match_info["lesson_id"]
        if store.get_lesson(admin.bureau_id, lesson_id) is None:
            raise not_found(f"lesson {lesson_id}")
        return web.json_response({"lesson_id": lesson_id, "recordings": provider(lesson_id)})

    app.router.add_get("/api/lessons/{lesson_id}/recordings", recordings)
