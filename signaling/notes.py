"""Observation notes (听评课): what an observer writes about a live lesson, anchored on the
lesson's media timeline. Pure: the note, its checks, the rubric, the CSV form. Where notes are
kept is ``signaling/schedule/notes_store.py``; the live path is ``signaling/session.py``
(protocol ``note`` / ``note_saved``, docs/protocol.md); the REST API and the playback page's
use of it is ``signaling/schedule/notes_api.py`` (docs/observation.md)."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Protocol

# The default rubric (听评课 dimensions); a bureau may set its own (PUT /api/settings/rubric).
DEFAULT_RUBRIC: tuple[str, ...] = ("教学目标", "师生互动", "学生参与", "远端关注", "信息技术运用")
MAX_TEXT_CHARS = 2000
MAX_DIMENSIONS = 20
MAX_DIMENSION_CHARS = 40
SCORE_MIN, SCORE_MAX = 1, 5
# A ``moment`` may lie at most this far ahead of the server's clock (a page's clock is a little
# off); anything later is refused.
MOMENT_AHEAD_MS = 2000
ORIGINS = ("live", "playback")
CSV_FIELDS = ("t_ms", "time", "author", "dimension", "score", "moment", "text", "origin", "id")


def new_note_id() -> str:
    return f"note_{secrets.token_hex(8)}"


class NoteError(ValueError):
    """A note that cannot be saved; ``field`` names the bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NoteInput:
    """What an observer sent, checked (``check_note``)."""

    text: str
    dimension: str | None = None
    score: int | None = None


@dataclass(frozen=True)
class Note:
    id: str
    lesson_id: str
    at_ms: int  # the server's clock (ms since the epoch) of the moment the note is about
    t_ms: int  # that moment on the lesson's media timeline (the recording's, else the live room's)
    author: str
    author_id: str  # the observer's classroom id, or the administrator's id
    author_role: str  # observer, admin
    text: str
    dimension: str | None
    score: int | None
    moment: bool  # the observer marked the moment (the note is anchored there, not at sending)
    origin: str  # live (during the lesson) or playback (added afterwards)
    bureau_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("bureau_id")
        return out

    def event(self) -> dict[str, Any]:
        """The manifest timeline's ``observation_note`` event (docs/recording-format.md)."""
        return {"t_ms": self.t_ms, "type": "observation_note", "classroom_id": None, "author": self.author,
                "text": self.text, "dimension": self.dimension, "score": self.score, "note_id": self.id,
                "moment": self.moment}


class NoteBook(Protocol):
    """Where the live path keeps notes (the schedule database)."""

    def rubric_for_lesson(self, lesson_id: str) -> list[str]: ...

    def save_note(self, note: Note) -> Note: ...

    def notes_of(self, lesson_id: str) -> list[Note]:
        """The live room's notes so far (a recorder that joins late gets them)."""
        ...

    def timeline_origin_ms(self, lesson_id: str) -> int | None:
        """Where the lesson's media timeline begins (ms since the epoch): the recording's
        ``started_at``, or ``None`` when there is no recording (the live room's start is used)."""
        ...


def check_note(data: dict[str, Any], rubric: list[str] | tuple[str, ...]) -> NoteInput:
    """Check ``text`` / ``dimension`` / ``score`` of a note; raise :class:`NoteError`."""
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise NoteError("text", "text must be a non-empty string")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise NoteError("text", f"text is longer than {MAX_TEXT_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise NoteError("text", "text holds control characters")
    if not _utf8(text):  # a lone surrogate (JSON allows "\udfff"): not storable text
        raise NoteError("text", "text is not valid Unicode")
    dimension = data.get("dimension")
    if dimension is not None:
        if not isinstance(dimension, str):
            raise NoteError("dimension", "dimension must be a string or null")
        dimension = dimension.strip() or None
        if dimension is not None and dimension not in rubric:
            raise NoteError("dimension", f"dimension {dimension[:60]!r} is not in the rubric {list(rubric)}")
    score = data.get("score")
    if score is not None:
        if not isinstance(score, int) or isinstance(score, bool) or not SCORE_MIN <= score <= SCORE_MAX:
            raise NoteError("score", f"score must be an integer {SCORE_MIN}..{SCORE_MAX} or null")
    return NoteInput(text, dimension, score)


def check_rubric(value: Any) -> list[str]:
    """A bureau's rubric: 1..20 distinct, non-empty names of at most 40 characters."""
    if not isinstance(value, list) or not value:
        raise NoteError("dimensions", "dimensions must be a non-empty list of names")
    if len(value) > MAX_DIMENSIONS:
        raise NoteError("dimensions", f"at most {MAX_DIMENSIONS} dimensions")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise NoteError("dimensions", "every dimension must be a non-empty string")
        name = item.strip()
        if len(name) > MAX_DIMENSION_CHARS or any(ord(c) < 32 for c in name) or not _utf8(name):
            raise NoteError("dimensions", f"dimension names are at most {MAX_DIMENSION_CHARS} printable characters")
        if name in out:
            raise NoteError("dimensions", f"dimension {name!r} is given twice")
        out.append(name)
    return out


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def moment_at_ms(moment: int | None, room_started_ms: int, now_ms: int) -> int:
    """The server-clock time a note is about: ``moment`` (ms on the lesson clock, as ``joined``'s
    ``elapsed_ms`` counts) or now. Refuses a moment in the future."""
    if moment is None:
        return now_ms
    if isinstance(moment, bool) or not isinstance(moment, int) or moment < 0:
        raise NoteError("moment", "moment must be an integer >= 0 (ms on the lesson clock) or null")
    at = room_started_ms + moment
    if at > now_ms + MOMENT_AHEAD_MS:
        raise NoteError("moment", "moment is in the future")
    return min(at, now_ms)


def timeline_ms(at_ms: int, origin_ms: int) -> int:
    return max(0, at_ms - origin_ms)


def clock_text(t_ms: int) -> str:
    s = max(0, t_ms) // 1000
    return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"


def notes_csv(notes: list[Note]) -> str:
    """Notes as CSV (UTF-8 with a BOM so spreadsheet programs read the Chinese), time order."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for n in sorted(notes, key=lambda n: (n.t_ms, n.id)):
        text = n.text
        if text[:1] in ("=", "+", "-", "@"):  # never a formula in a spreadsheet
            text = "'" + text
        writer.writerow([n.t_ms, clock_text(n.t_ms), n.author, n.dimension or "", "" if n.score is None else n.score,
                         "1" if n.moment else "0", text, n.origin, n.id])
    return "\ufeff" + buf.getvalue()
