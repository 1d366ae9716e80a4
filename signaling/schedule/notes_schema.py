"""The schedule database's tables for observation notes (听评课) and each bureau's rubric.

Plain, portable SQL (TEXT / INTEGER / REAL, no AUTOINCREMENT, no SQLite-only syntax), so the
same migration runs on SQLite and PostgreSQL. It is one entry of the store's migration list
(``signaling/schedule/store.py``: ``MIGRATIONS``).

- ``observation_notes``: one row per note; ``lesson_id`` is the live room's id (an occurrence id
  ``<lesson>@<date>`` for a scheduled lesson, ``demo-lesson`` for the demo), ``bureau_id`` the
  lesson's bureau (NULL for rooms the schedule does not govern). ``at_ms`` is the server's clock
  (ms since the epoch) of the moment the note is about, ``t_ms`` where that is on the lesson's
  media timeline (the recording's, docs/recording-format.md) when it was saved.
- ``observation_rubrics``: a bureau's own rubric (its dimension names as a JSON list); a bureau
  without a row uses the default rubric (``signaling/notes.py``).
"""

from __future__ import annotations

NOTES_MIGRATION = """
    CREATE TABLE observation_notes (
        id TEXT PRIMARY KEY,
        lesson_id TEXT NOT NULL,
        bureau_id TEXT,
        at_ms INTEGER NOT NULL,
        t_ms INTEGER NOT NULL,
        author TEXT NOT NULL,
        author_id TEXT NOT NULL,
        author_role TEXT NOT NULL,
        text TEXT NOT NULL,
        dimension TEXT,
        score INTEGER,
        moment INTEGER NOT NULL DEFAULT 0,
        origin TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX observation_notes_lesson ON observation_notes(lesson_id, at_ms);
    CREATE INDEX observation_notes_bureau ON observation_notes(bureau_id, at_ms);
    CREATE TABLE observation_rubrics (
        bureau_id TEXT PRIMARY KEY REFERENCES bureaus(id),
        dimensions TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
"""
