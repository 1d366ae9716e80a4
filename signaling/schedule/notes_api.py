"""Observation notes over HTTP (docs/observation.md):

- ``GET /api/lessons/{lesson_id}/notes[?format=csv]`` — one live room's notes (``lesson_id``: an
  occurrence id ``les_…@YYYY-MM-DD``, a one-off ``les_…``, or ``demo-lesson``), in time order, with
  the lesson's rubric and, once analysed, ``observation_url`` (the report's observation section,
  signed for an hour); ``format=csv`` answers the same notes as a CSV file;
- ``POST /api/lessons/{lesson_id}/notes`` ``{text, dimension?, score?, t_ms}`` — a note added
  afterwards on the playback page, stamped with the playback position ``t_ms`` on the recording's
  timeline; written to the database and into the recording's manifest;
- ``GET /api/settings/rubric`` / ``PUT /api/settings/rubric`` ``{"dimensions": [...]}`` — the
  bureau's rubric (administrators).

Who: a bureau administrator of the lesson's bureau (``Authorization: Bearer cka_…``; rooms the
schedule does not govern, the demo lesson, are every administrator's), or a join token of that
very lesson (``Authorization: Bearer <token>``, accepted up to 30 days after it expired) with the
role ``observer`` (read and add) or ``lead`` (the lesson's teacher: read). A remote classroom's or
the recorder's token, or another lesson's, is refused (``403 forbidden``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from signaling.notes import Note, NoteError, check_note, check_rubric, new_note_id, notes_csv
from signaling.tokens import TokenError, TokenSigner

from .api import KEYGATE_KEY, ScheduleApi, _bearer, _unknown_fields, bad_request
from .errors import ApiError, not_found
from .notes_store import ScheduleNotes, bureau_of_lesson, get_rubric, lesson_notes, set_rubric
from .store import ScheduleStore
from .timing import split_occurrence_id

log = logging.getLogger(__name__)

TOKEN_GRACE_S = 30 * 86400
MAX_T_MS = 24 * 3600 * 1000


class RecordingNotes(Protocol):
    """What the notes API needs from the recordings (the composition root gives it)."""

    def origin_ms(self, lesson_id: str) -> int | None:
        """The recording's ``started_at`` (ms since the epoch), ``None`` without a recording."""
        ...

    async def add_to_recording(self, note: Note) -> None:
        """Put the note into the recording's manifest timeline (and its observation section)."""
        ...

    def observation_url(self, lesson_id: str) -> str | None:
        """A signed link to the report's observation section, if it was written."""
        ...


@dataclass(frozen=True)
class Reader:
    """Who asks: ``role`` ``admin`` / ``observer`` (may add notes) or ``lead`` (reads only)."""

    role: str
    id: str
    name: str

    @property
    def may_write(self) -> bool:
        return self.role in ("admin", "observer")


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def setup_notes_api(app: web.Application, store: ScheduleStore, signer: TokenSigner, notes: ScheduleNotes,
                    recordings: RecordingNotes) -> None:
    api = ScheduleApi(store, signer, _NoLive(), "", app.get(KEYGATE_KEY))

    async def reader(request: web.Request, lesson_id: str) -> Reader:
        credential = _bearer(request)
        if not credential:
            raise ApiError(401, "unauthorized", "an API key or the lesson's join token is required "
                           "(Authorization: Bearer ...)")
        if credential.startswith("cka_"):
            admin = await api.admin(request)
            bureau = bureau_of_lesson(store, lesson_id)
            if split_occurrence_id(lesson_id) is not None and bureau != admin.bureau_id:
                raise not_found(f"lesson {lesson_id}")  # another bureau's lesson: as if it did not exist
            return Reader("admin", admin.id, admin.name)
        try:
            claims = signer.verify(credential, grace_s=TOKEN_GRACE_S)
        except TokenError as exc:
            raise ApiError(401, exc.code, str(exc)) from None
        if claims.lesson_id != lesson_id:
            raise _forbidden("this join token is for another lesson")
        if claims.role not in ("observer", "lead"):
            raise _forbidden(f"role {claims.role} may not read observation notes")
        return Reader(claims.role, claims.classroom_id, claims.name)

    def lesson_of(request: web.Request) -> str:
        lesson_id = request.match_info["lesson_id"]
        if len(lesson_id) > 128:
            raise not_found("lesson")
        return lesson_id

    async def list_notes(request: web.Request) -> web.StreamResponse:
        lesson_id = lesson_of(request)
        who = await reader(request, lesson_id)
        unknown = sorted(set(request.query) - {"format"})
        if unknown:
            raise bad_request("invalid_field", f"unknown query parameter(s): {', '.join(unknown)[:200]}")
        fmt = request.query.get("format", "json")
        if fmt not in ("json", "csv"):
            raise bad_request("invalid_field", "format must be json or csv")
        found = _on_timeline(lesson_notes(store, lesson_id), recordings.origin_ms(lesson_id))
        if fmt == "csv":
            return web.Response(
                body=notes_csv(found).encode("utf-8"), content_type="text/csv", charset="utf-8",
                headers={"Content-Disposition": f'attachment; filename="notes-{_file_safe(lesson_id)}.csv"',
                         "Cache-Control": "private, no-store"},
            )
        return web.json_response(
            {"lesson_id": lesson_id, "notes": [n.to_json() for n in found],
             "rubric": notes.rubric_for_lesson(lesson_id), "may_add": who.may_write,
             "observation_url": recordings.observation_url(lesson_id)},
            headers={"Cache-Control": "private, no-store"},
        )

    async def add_note(request: web.Request) -> web.Response:
        lesson_id = lesson_of(request)
        who = await reader(request, lesson_id)
        if not who.may_write:
            raise _forbidden(f"role {who.role} may not add observation notes")
        body = await api.body(request)
        _unknown_fields(body, {"text", "dimension", "score", "t_ms"})
        try:
            checked = check_note(body, notes.rubric_for_lesson(lesson_id))
        except NoteError as exc:
            raise bad_request("invalid_field", str(exc), field=exc.field) from None
        t_ms = body.get("t_ms")
        if not isinstance(t_ms, int) or isinstance(t_ms, bool) or not 0 <= t_ms <= MAX_T_MS:
            raise bad_request("invalid_field", "t_ms (the playback position, ms) must be an integer >= 0",
                              field="t_ms")
        origin = recordings.origin_ms(lesson_id)
        if origin is None:
            raise ApiError(409, "no_recording", "this lesson has no recording to place the note on")
        note = Note(
            id=new_note_id(), lesson_id=lesson_id, at_ms=origin + t_ms, t_ms=t_ms, author=who.name,
            author_id=who.id, author_role=who.role, text=checked.text, dimension=checked.dimension,
            score=checked.score, moment=True, origin="playback",
        )  # fmt: skip
        note = notes.save_note(note)
        log.info("note %s added on the playback of %s by %s %s at t=%d ms", note.id, lesson_id, who.role, who.id,
                 t_ms)
        try:
            await recordings.add_to_recording(note)
        except Exception:  # the note is saved; the manifest copy is best effort and says so
            log.exception("note %s: could not be written into the recording of %s", note.id, lesson_id)
        return web.json_response({"note": note.to_json()}, status=201)

    async def get_rubric_settings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        return web.json_response({"dimensions": get_rubric(store, admin.bureau_id)})

    async def put_rubric_settings(request: web.Request) -> web.Response:
        admin = await api.admin(request)
        body = await api.body(request)
        _unknown_fields(body, {"dimensions"})
        try:
            dims = check_rubric(body.get("dimensions"))
        except NoteError as exc:
            raise bad_request("invalid_field", str(exc), field=exc.field) from None
        return web.json_response({"dimensions": set_rubric(store, admin.bureau_id, dims)})

    app.router.add_get("/api/lessons/{lesson_id}/notes", list_notes)
    app.router.add_post("/api/lessons/{lesson_id}/notes", add_note)
    app.router.add_get("/api/settings/rubric", get_rubric_settings)
    app.router.add_put("/api/settings/rubric", put_rubric_settings)


def _on_timeline(found: list[Note], origin: int | None) -> list[Note]:
    """Notes placed on the recording's timeline (a note written before the recorder started is
    moved to where it belongs in the recording); without a recording, as saved."""
    if origin is None:
        return found
    from dataclasses import replace

    out = [n if n.t_ms == max(0, n.at_ms - origin) else replace(n, t_ms=max(0, n.at_ms - origin)) for n in found]
    return sorted(out, key=lambda n: (n.t_ms, n.id))


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:80]


class _NoLive:
    def connected(self, lesson_id: str) -> list[str]:
        return []
