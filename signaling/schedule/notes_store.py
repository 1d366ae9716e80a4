"""Observation notes and rubrics in the schedule database (tables: ``notes_schema.py``).

``ScheduleNotes`` is the live path's :class:`signaling.notes.NoteBook` and what the notes API
reads. :func:`notes_for_bureau` is the one reader for other features (the term dashboard's
"observation scores per dimension over time")."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from signaling.notes import DEFAULT_RUBRIC, Note

from .store import ScheduleStore
from .timing import split_occurrence_id

log = logging.getLogger(__name__)

_COLUMNS = ("id, lesson_id, bureau_id, at_ms, t_ms, author, author_id, author_role, text, dimension, score, "
            "moment, origin")


def _note(row: Any) -> Note:
    return Note(
        id=row["id"], lesson_id=row["lesson_id"], at_ms=int(row["at_ms"]), t_ms=int(row["t_ms"]),
        author=row["author"], author_id=row["author_id"], author_role=row["author_role"], text=row["text"],
        dimension=row["dimension"], score=None if row["score"] is None else int(row["score"]),
        moment=bool(row["moment"]), origin=row["origin"], bureau_id=row["bureau_id"],
    )


def bureau_of_lesson(store: ScheduleStore, lesson_id: str) -> str | None:
    """The bureau of a live room id (an occurrence of a scheduled lesson); ``None`` for rooms
    the schedule does not govern (the demo lesson)."""
    parsed = split_occurrence_id(lesson_id)
    if parsed is None:
        return None
    lesson = store._lesson_any_bureau(parsed[0])
    return lesson.bureau_id if lesson is not None else None


def get_rubric(store: ScheduleStore, bureau_id: str | None) -> list[str]:
    if bureau_id is None:
        return list(DEFAULT_RUBRIC)
    rows = store._q("SELECT dimensions FROM observation_rubrics WHERE bureau_id = ?", (bureau_id,))
    if not rows:
        return list(DEFAULT_RUBRIC)
    try:
        value = json.loads(rows[0]["dimensions"])
    except ValueError:
        log.error("bureau %s: stored rubric unreadable; using the default", bureau_id)
        return list(DEFAULT_RUBRIC)
    return [str(v) for v in value] if isinstance(value, list) and value else list(DEFAULT_RUBRIC)


def set_rubric(store: ScheduleStore, bureau_id: str, dimensions: list[str]) -> list[str]:
    text = json.dumps(dimensions, ensure_ascii=False)
    with store._tx() as db:
        db.execute("DELETE FROM observation_rubrics WHERE bureau_id = ?", (bureau_id,))
        db.execute("INSERT INTO observation_rubrics (bureau_id, dimensions, updated_at) VALUES (?, ?, ?)",
                   (bureau_id, text, store.clock()))
    log.info("bureau %s: rubric set to %s", bureau_id, dimensions)
    return dimensions


def add_note(store: ScheduleStore, note: Note) -> Note:
    with store._tx() as db:
        db.execute(
            f"INSERT INTO observation_notes ({_COLUMNS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (note.id, note.lesson_id, note.bureau_id, note.at_ms, note.t_ms, note.author, note.author_id,
             note.author_role, note.text, note.dimension, note.score, 1 if note.moment else 0, note.origin,
             store.clock()),
        )
    return note


def lesson_notes(store: ScheduleStore, lesson_id: str) -> list[Note]:
    """One live room's notes (an occurrence's, the demo lesson's), in time order."""
    rows = store._q(f"SELECT {_COLUMNS} FROM observation_notes WHERE lesson_id = ? ORDER BY at_ms, id", (lesson_id,))
    return [_note(r) for r in rows]


def notes_for_bureau(store: ScheduleStore, bureau_id: str, since_ms: int | None = None,
                     until_ms: int | None = None) -> list[Note]:
    """Every note on the bureau's lessons, optionally with ``since_ms <= at_ms < until_ms`` (ms
    since the epoch), in time order. Each note has ``lesson_id`` (the occurrence id: the schedule
    lesson and its date, ``timing.split_occurrence_id``), ``dimension`` and ``score`` (both may be
    None). For the term dashboard's observation scores per dimension over time."""
    sql = f"SELECT {_COLUMNS} FROM observation_notes WHERE bureau_id = ?"
    params: list[Any] = [bureau_id]
    if since_ms is not None:
        sql += " AND at_ms >= ?"
        params.append(since_ms)
    if until_ms is not None:
        sql += " AND at_ms < ?"
        params.append(until_ms)
    rows = store._q(sql + " ORDER BY at_ms, id", tuple(params))
    return [_note(r) for r in rows]


class ScheduleNotes:
    """The live path's note book: the schedule database, plus where a lesson's media timeline
    begins (``origin``: the recording's start, given by the composition root)."""

    def __init__(self, store: ScheduleStore, origin: Callable[[str], int | None] | None = None) -> None:
        self.store = store
        self._origin = origin

    def rubric_for_lesson(self, lesson_id: str) -> list[str]:
        return get_rubric(self.store, bureau_of_lesson(self.store, lesson_id))

    def save_note(self, note: Note) -> Note:
        if note.bureau_id is None:
            bureau = bureau_of_lesson(self.store, note.lesson_id)
            if bureau is not None:
                note = replace(note, bureau_id=bureau)
        return add_note(self.store, note)

    def notes_of(self, lesson_id: str) -> list[Note]:
        return lesson_notes(self.store, lesson_id)

    def timeline_origin_ms(self, lesson_id: str) -> int | None:
        return self._origin(lesson_id) if self._origin is not None else None
