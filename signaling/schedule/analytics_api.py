"""The term dashboard's API (研修 research staff; issue #18): ``GET /api/analytics/…``.

Across every analysed lesson of the bureau (a recording directory with ``report/report.json``
whose lesson id is one of the schedule's occurrences), filtered by date range, school, teacher and
subject:

- ``GET /api/analytics/summary`` — per teacher, per school, per remote classroom (the fairness
  view), the S-T mode distribution, Rt/Ch over time, talk shares, observation scores;
- ``GET /api/analytics/lessons`` — one row per analysed lesson;
- ``GET /api/analytics/export.csv?view=lessons|remote_classrooms|teachers|schools`` — CSV;
- ``GET /api/analytics/charts/{chart}`` — a PNG chart (``rt_ch``, ``modes``, ``fairness``, ``scores``).

Who sees what: a bureau administrator (API key) sees the lessons of its own bureau. A teacher
proves who they are with the join link of a lesson they led (the lead classroom's token as
``?token=`` or ``Authorization: Bearer <token>``, accepted up to 30 days after that lesson, as for
the recording): they see only the lessons whose lead teacher is that lesson's lead teacher, and
asking for another teacher is ``403``.

Reports are read from disk in a worker thread and remembered by (file, mtime, size), so a term of
lessons is parsed once; a report the dashboard cannot use is logged and counted
(``unreadable_reports``), never an error of the request. Observation scores come from the schedule
database's notes (:func:`observation_scores`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from analytics.dashboard import (
    CSV_VIEWS,
    LessonRow,
    Place,
    ReportError,
    ReportFacts,
    Score,
    csv_text,
    facts_from_report,
    lesson_json,
    summarize,
)
from signaling.tokens import TokenError, TokenSigner

from .api import KEYGATE_KEY, LiveStatus, ScheduleApi, _bearer, _id, bad_request
from .auth import KEY_PREFIX
from .errors import ApiError, not_found
from .models import Lesson
from .notes_store import notes_for_bureau
from .store import ScheduleStore
from .timing import TimeError_, parse_date, split_occurrence_id

log = logging.getLogger(__name__)

TEACHER_TOKEN_GRACE_S = 30 * 86400
CHARTS = ("rt_ch", "modes", "fairness", "scores")
FILTER_QUERY = ("from", "to", "school_id", "teacher_id", "subject", "token")
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Viewer:
    bureau_id: str
    teacher_id: str | None = None
    """set: a teacher, who sees only their own lessons"""


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    school_id: str | None = None
    teacher_id: str | None = None
    subject: str | None = None


@dataclass
class _Cached:
    key: tuple[int, int]
    facts: ReportFacts | None


def observation_scores(store: ScheduleStore, bureau_id: str) -> dict[str, tuple[Score, ...]]:
    """The bureau's scored observation notes by live room id (occurrence id): the one place the
    dashboard reads notes (the schedule database's ``observation_notes``, where live notes and
    notes added on the playback page are kept; signaling/schedule/notes_store.py). A note without a
    rubric dimension or a score carries no score."""
    out: dict[str, list[Score]] = {}
    for note in notes_for_bureau(store, bureau_id):
        if note.dimension and note.score is not None:
            out.setdefault(note.lesson_id, []).append(Score(note.dimension, float(note.score), note.author))
    return {lesson: tuple(scores) for lesson, scores in out.items()}


class ReportCache:
    """Every analysed lesson's report facts under ``recordings``, re-read only when its
    ``report.json`` changed (mtime, size)."""

    def __init__(self, recordings: Path) -> None:
        self.recordings = recordings
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self.unreadable = 0

    @staticmethod
    def _stat(path: Path) -> tuple[int, int]:
        try:
            st = path.stat()
        except OSError:
            return (0, -1)
        return (st.st_mtime_ns, st.st_size)

    def load(self) -> list[ReportFacts]:
        """Blocking (a worker thread): every readable report's facts."""
        with self._lock:
            seen: set[str] = set()
            out = []
            try:
                names = sorted(os.listdir(self.recordings))
            except OSError:
                names = []
            for name in names:
                directory = self.recordings / name
                report = directory / "report" / "report.json"
                r_key = self._stat(report)
                if r_key[1] < 0:
                    continue
                seen.add(name)
                cached = self._cache.get(name)
                if cached is None or cached.key != r_key:
                    cached = self._read(report, r_key)
                    self._cache[name] = cached
                if cached.facts is not None:
                    out.append(cached.facts)
            for gone in set(self._cache) - seen:
                del self._cache[gone]
            return out

    def _read(self, report: Path, key: tuple[int, int]) -> _Cached:
        try:
            facts: ReportFacts | None = facts_from_report(json.loads(report.read_text(encoding="utf-8")))
        except (OSError, ValueError, RecursionError) as exc:  # ReportError is a ValueError
            self.unreadable += 1
            reason = exc if isinstance(exc, ReportError) else f"{type(exc).__name__}: {exc}"
            log.warning("analytics dashboard: %s is left out: %s", report, str(reason)[:300])
            facts = None
        return _Cached(key, facts)


def _date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_date(raw, name)
    except TimeError_ as exc:
        raise bad_request("invalid_time", str(exc), field=name, reason="date") from exc


class AnalyticsApi:
    def __init__(self, store: ScheduleStore, signer: TokenSigner, api: ScheduleApi, cache: ReportCache) -> None:
        self.store = store
        self.signer = signer
        self.api = api
        self.cache = cache
        self._charts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-charts")

    def close(self) -> None:
        self._charts.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ who is asking
    def _find_lesson(self, lesson_id: str) -> Lesson | None:
        for bureau in self.store.list_bureaus():
            lesson = self.store.get_lesson(bureau.id, lesson_id)
            if lesson is not None:
                return lesson
        return None

    async def viewer(self, request: web.Request) -> Viewer:
        token = request.query.get("token")
        if token is None:
            credential = _bearer(request)
            if credential and not credential.startswith(KEY_PREFIX):
                token = credential  # a join token in the header, as the notes API takes it
        if token is None:
            admin = await self.api.admin(request)
            return Viewer(admin.bureau_id)
        try:
            claims = self.signer.verify(token, grace_s=TEACHER_TOKEN_GRACE_S)
        except TokenError as exc:
            raise ApiError(401, exc.code, str(exc)) from exc
        if claims.role != "lead":
            raise ApiError(403, "forbidden", "only a lead classroom's link (the teacher's) opens a teacher's dashboard")
        parsed = split_occurrence_id(claims.lesson_id)
        lesson = None if parsed is None else self._find_lesson(parsed[0])
        if lesson is None or lesson.lead_teacher_id is None:
            raise ApiError(403, "forbidden", "this link's lesson has no teacher in the schedule")
        return Viewer(lesson.bureau_id, lesson.lead_teacher_id)

    def filters(self, request: web.Request, viewer: Viewer) -> Filters:
        start, end = _date(request, "from"), _date(request, "to")
        if start is not None and end is not None and end < start:
            raise bad_request("invalid_time", "to is before from", field="to", reason="order")
        school_id = request.query.get("school_id")
        teacher_id = request.query.get("teacher_id")
        subject = request.query.get("subject")
        if school_id is not None:
            _id(school_id, "school_id")
            if self.store.get_school(viewer.bureau_id, school_id) is None:
                raise not_found("school")
        if teacher_id is not None:
            _id(teacher_id, "teacher_id")
            if viewer.teacher_id is not None and teacher_id != viewer.teacher_id:
                raise ApiError(403, "forbidden", "a teacher sees only their own lessons")
            if self.store.get_teacher(viewer.bureau_id, teacher_id) is None:
                raise not_found("teacher")
        if viewer.teacher_id is not None:
            teacher_id = viewer.teacher_id
        if subject is not None and len(subject) > MAX_SUBJECT:
            raise bad_request("invalid_field", f"subject is longer than {MAX_SUBJECT}", field="subject",
                              reason="too_long")
        return Filters(start, end, school_id, teacher_id, subject)

    # ------------------------------------------------------------------------- the rows
    async def rows(self, request: web.Request) -> list[LessonRow]:
        viewer = await self.viewer(request)
        wanted = self.filters(request, viewer)
        loaded = await asyncio.get_running_loop().run_in_executor(None, self.cache.load)
        return self.join(viewer, wanted, loaded)

    def join(self, viewer: Viewer, wanted: Filters, loaded: list[ReportFacts]) -> list[LessonRow]:
        bureau = viewer.bureau_id
        scores = observation_scores(self.store, bureau)
        lessons = {x.id: x for x in self.store.list_lessons(bureau)}
        classrooms = {c.id: c for c in self.store.list_classrooms(bureau)}
        schools = {s.id: s.name for s in self.store.list_schools(bureau)}
        teachers = {t.id: t.name for t in self.store.list_teachers(bureau)}
        tz = self.store.tz(bureau)

        def place(cid: str) -> Place:
            room = classrooms.get(cid)
            if room is None:
                return Place(cid, cid, "", "")
            return Place(cid, room.name, room.school_id, schools.get(room.school_id, room.school_id))

        out: list[LessonRow] = []
        seen: set[str] = set()
        for facts in loaded:
            if facts.lesson_id in seen:
                continue  # two directories holding a report of one occurrence: counted once
            seen.add(facts.lesson_id)
            parsed = split_occurrence_id(facts.lesson_id)
            if parsed is None:
                continue  # the demo lesson, ad-hoc rooms: no teacher, school or subject to count them by
            lesson = lessons.get(parsed[0])
            if lesson is None:
                continue  # another bureau's, or deleted
            day = parsed[1] or datetime.fromtimestamp(lesson.start, tz).date()
            if wanted.start is not None and day < wanted.start or wanted.end is not None and day > wanted.end:
                continue
            if wanted.teacher_id is not None and lesson.lead_teacher_id != wanted.teacher_id:
                continue
            if wanted.subject is not None and lesson.subject != wanted.subject:
                continue
            remote_ids = list(lesson.remote_classroom_ids)
            remote_ids += [c for c in facts.rooms if c not in remote_ids and c != lesson.lead_classroom_id
                           and c in classrooms]
            lead = place(lesson.lead_classroom_id)
            remotes = tuple(place(c) for c in remote_ids)
            involved = {lead.school_id, *(r.school_id for r in remotes)}
            if wanted.school_id is not None and wanted.school_id not in involved:
                continue
            tid = lesson.lead_teacher_id
            out.append(
                LessonRow(
                    occurrence_id=facts.lesson_id,
                    lesson_id=lesson.id,
                    date=day,
                    subject=lesson.subject,
                    title=lesson.title,
                    teacher_id=tid,
                    teacher_name=teachers.get(tid, tid) if tid else "",
                    lead=lead,
                    remotes=remotes,
                    facts=facts,
                    scores=scores.get(facts.lesson_id, ()),
                )
            )
        return out

    # ---------------------------------------------------------------------- handlers
    async def summary(self, request: web.Request) -> web.Response:
        rows = await self.rows(request)
        return web.json_response({**summarize(rows), "unreadable_reports": self.cache.unreadable})

    async def lessons(self, request: web.Request) -> web.Response:
        rows = await self.rows(request)
        ordered = sorted(rows, key=lambda r: (r.date, r.occurrence_id))
        return web.json_response({"lessons": [lesson_json(r) for r in ordered]})

    async def export(self, request: web.Request) -> web.Response:
        view = request.query.get("view", "lessons")
        if view not in CSV_VIEWS:
            raise bad_request("invalid_field", f"view must be one of {', '.join(CSV_VIEWS)}", field="view",
                              reason="enum")
        rows = await self.rows(request)
        text = csv_text(rows, view)
        return web.Response(
            body=text.encode("utf-8"),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="analytics-{view}.csv"'},
        )

    async def chart(self, request: web.Request) -> web.Response:
        name = request.match_info["chart"]
        if name not in CHARTS:
            raise not_found(f"chart {name[:40]} (one of {', '.join(CHARTS)})")
        rows = await self.rows(request)
        summary = summarize(rows)
        from analytics.dashboard_charts import render_png

        png = await asyncio.get_running_loop().run_in_executor(self._charts, render_png, name, summary)
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "no-store"})


def setup_analytics_api(
    app: web.Application,
    store: ScheduleStore,
    signer: TokenSigner,
    live: LiveStatus,
    recordings: Path,
) -> AnalyticsApi:
    """Add ``/api/analytics/…`` to ``app`` (after :func:`signaling.schedule.setup_schedule`)."""
    api = ScheduleApi(store, signer, live, "", app.get(KEYGATE_KEY))
    analytics = AnalyticsApi(store, signer, api, ReportCache(recordings))

    def add(path: str, handler: Callable[[web.Request], Any], query: tuple[str, ...]) -> None:
        allowed = set(query)

        async def checked(request: web.Request) -> web.StreamResponse:
            unknown = sorted(set(request.query) - allowed)
            if unknown:
                raise bad_request("invalid_field", f"unknown query parameter(s): {', '.join(unknown)[:200]}")
            result: web.StreamResponse = await handler(request)
            return result

        app.router.add_get(path, checked)

    add("/api/analytics/summary", analytics.summary, FILTER_QUERY)
    add("/api/analytics/lessons", analytics.lessons, FILTER_QUERY)
    add("/api/analytics/export.csv", analytics.export, (*FILTER_QUERY, "view"))
    add("/api/analytics/charts/{chart}", analytics.chart, FILTER_QUERY)

    async def close(_app: web.Application) -> None:
        analytics.close()

    app.on_cleanup.append(close)
    return analytics
