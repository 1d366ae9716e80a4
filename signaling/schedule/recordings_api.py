"""The bureau's recordings and recording settings (administrators only):

- ``GET /api/recordings`` — every recording this bureau may see, newest first: its scheduled
  lessons' (every week of a weekly lesson), and those of rooms the schedule does not govern (the
  demo lesson, ad-hoc lessons), which every administrator sees;
- ``GET /api/lessons/{lesson_id}/recordings[?date=YYYY-MM-DD]`` — one lesson's (one week's);
  ``demo-lesson`` (and any other room the schedule does not govern) answers with its own;
- ``GET /api/settings/recording`` — the bureau's default for new lessons, and the server's policy:
  master switch, retention, the free-disk guard's state;
- ``PUT /api/settings/recording`` ``{"recording_default": bool}``.

Each recording carries ``playback_url`` (``/playback.html?manifest=<signed URL>``) and, once the
analysis ran, ``report_url``: signed, valid for an hour.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from aiohttp import web

from signaling.tokens import TokenSigner

from .api import KEYGATE_KEY, LiveStatus, ScheduleApi, _unknown_fields, bad_request
from .errors import not_found
from .models import Admin
from .recording_policy import POLICY_KEY, RecordingPolicy
from .store import ScheduleStore
from .timing import TimeError_, parse_date, split_occurrence_id


class RecordingsSource(Protocol):
    def entries(self) -> list[dict[str, Any]]:
        """Every recording on disk (blocking: called in a worker thread); each has ``lesson_id``,
        the live room's id (an occurrence id for a scheduled lesson)."""
        ...

    def status(self) -> dict[str, Any]:
        """The server's recording policy and the free-disk guard's state (JSON)."""
        ...


def describe(entry: dict[str, Any], store: ScheduleStore, admin: Admin) -> dict[str, Any] | None:
    """``entry`` with its schedule lesson and occurrence date, or None if ``admin`` may not see it."""
    parsed = split_occurrence_id(str(entry["lesson_id"]))
    if parsed is None:  # not a schedule room (the demo lesson, ad-hoc): every administrator
        return {**entry, "schedule_lesson_id": None, "occurrence_id": entry["lesson_id"],
                "date": str(entry["started_at"])[:10]}
    lesson = store.get_lesson(admin.bureau_id, parsed[0])
    if lesson is None:
        return None
    day = parsed[1]
    if day is None:  # a one-off lesson: its date in the bureau's zone
        day = datetime.fromtimestamp(lesson.start, store.tz(admin.bureau_id)).date()
    return {**entry, "schedule_lesson_id": lesson.id, "occurrence_id": entry["lesson_id"],
            "date": day.isoformat(), "subject": lesson.subject}


def setup_recordings_api(
    app: web.Application,
    store: ScheduleStore,
    signer: TokenSigner,
    live: LiveStatus,
    source: RecordingsSource,
    policy: RecordingPolicy,
) -> None:
    api = ScheduleApi(store, signer, live, "", app.get(KEYGATE_KEY))
    app[POLICY_KEY] = policy

    async def visible(admin: Admin) -> list[dict[str, Any]]:
        entries = await asyncio.get_running_loop().run_in_executor(None, source.entries)
        out = []
        for entry in entries:
            described = describe(entry, store, admin)
            if described is not None:
                out.append(with_notes_token(described, admin))
        return out

    def with_notes_token(entry: dict[str, Any], admin: Admin) -> dict[str, Any]:
        """The playback link of an administrator also reads and adds the lesson's observation
        notes (docs/observation.md): an observer token of that lesson in the administrator's name,
        as long-lived as the link."""
        url = entry.get("playback_url")
        if not isinstance(url, str):
            return entry
        token = signer.issue(str(entry["lesson_id"]), admin.id, "observer", admin.name, expires=time.time() + 3600)
        return {**entry, "playback_url": f"{url}&token={quote(token, safe='')}"}

    def check_query(request: web.Request, allowed: set[str]) -> None:
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise bad_request("invalid_field", f"unknown query parameter(s): {', '.join(unknown)[:200]}")

    async def all_recordings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        check_query(request, set())
        return web.json_response({"recordings": await visible(admin)})

    async def lesson_recordings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        check_query(request, {"date"})
        lesson_id = request.match_info["lesson_id"]
        day = None
        if "date" in request.query:
            try:
                day = parse_date(request.query["date"], "date").isoformat()
            except TimeError_ as exc:
                raise bad_request("invalid_time", str(exc)) from exc
        if split_occurrence_id(lesson_id) is not None:
            if store.get_lesson(admin.bureau_id, lesson_id) is None:
                raise not_found(f"lesson {lesson_id}")
            found = [e for e in await visible(admin) if e["schedule_lesson_id"] == lesson_id]
        else:  # the demo lesson and other rooms the schedule does not govern
            found = [e for e in await visible(admin) if e["schedule_lesson_id"] is None and e["lesson_id"] == lesson_id]
            if not found:
                raise not_found(f"lesson {lesson_id} (no such schedule lesson, and no recording of a room by that id)")
        if day is not None:
            found = [e for e in found if e["date"] == day]
        return web.json_response({"lesson_id": lesson_id, "recordings": found})

    def settings_json(admin: Admin) -> dict[str, Any]:
        return {**policy.get(admin.bureau_id).to_json(), **source.status()}

    async def get_settings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        check_query(request, set())
        return web.json_response(settings_json(admin))

    async def put_settings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        check_query(request, set())
        body = await api.body(request)
        _unknown_fields(body, {"recording_default"})
        value = body.get("recording_default")
        if not isinstance(value, bool):
            raise bad_request("invalid_field", "recording_default must be true or false")
        policy.set(admin.bureau_id, value)
        return web.json_response(settings_json(admin))

    app.router.add_get("/api/recordings", all_recordings)
    app.router.add_get("/api/lessons/{lesson_id}/recordings", lesson_recordings)
    app.router.add_get("/api/settings/recording", get_settings)
    app.router.add_put("/api/settings/recording", put_settings)
