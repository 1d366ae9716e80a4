"""Records of the schedule: bureaus, schools, classrooms, teachers, lessons and occurrences.

Times are unix seconds (UTC) inside the program and ISO 8601 with an offset on the wire.
A bureau has an IANA time zone (default ``Asia/Shanghai``); "today", "this week" and the
wall-clock time a weekly lesson repeats at are taken in that zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

CLASSROOM_KINDS = ("browser", "hardware")
# What a classroom can be in a lesson: "lead" (主讲, may also receive) or "remote" (接收 only).
CLASSROOM_ROLES = ("lead", "remote")
LESSON_STATUSES = ("scheduled", "live", "ended", "cancelled")


@dataclass(frozen=True)
class Bureau:
    id: str
    name: str
    timezone: str
    created_at: float


@dataclass(frozen=True)
class Admin:
    id: str
    bureau_id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class School:
    id: str
    bureau_id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class Classroom:
    id: str
    school_id: str
    bureau_id: str
    name: str
    kind: str  # one of CLASSROOM_KINDS
    created_at: float
    lead_capable: bool = True  # may be a lesson's lead classroom (主讲课堂)

    @property
    def role(self) -> str:
        return "lead" if self.lead_capable else "remote"


@dataclass(frozen=True)
class AdminInfo:
    """An administrator as listings show it (never its key)."""

    id: str
    name: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class Device:
    """Room hardware (a classroom PC, a hardware terminal) bound to one classroom, with its own
    credential ``ckd_<device id>.<secret>`` (stored hashed, like administrators' keys)."""

    id: str
    bureau_id: str
    classroom_id: str
    name: str
    created_at: float
    revoked_at: float | None = None


@dataclass(frozen=True)
class Teacher:
    id: str
    school_id: str
    bureau_id: str
    name: str
    created_at: float


@dataclass(frozen=True)
class Recurrence:
    """Weekly on the weekday and wall-clock time of the first start, up to ``until`` inclusive."""

    until: date
    exceptions: tuple[date, ...] = ()


@dataclass(frozen=True)
class LessonSpec:
    """What a client asks for when creating or replacing a lesson (validated)."""

    subject: str
    title: str
    lead_classroom_id: str
    lead_teacher_id: str | None
    remote_classroom_ids: tuple[str, ...]
    start: float
    end: float
    recurrence: Recurrence | None = None
    recording: bool = False


@dataclass(frozen=True)
class Lesson:
    id: str
    bureau_id: str
    subject: str
    title: str
    lead_classroom_id: str
    lead_teacher_id: str | None
    remote_classroom_ids: tuple[str, ...]
    start: float
    end: float
    recurrence: Recurrence | None
    recording: bool
    cancelled: bool
    created_at: float
    updated_at: float

    @property
    def classroom_ids(self) -> tuple[str, ...]:
        return (self.lead_classroom_id, *self.remote_classroom_ids)


@dataclass(frozen=True)
class Occurrence:
    """One sitting of a lesson. ``occurrence_id`` is what join tokens and live rooms use:
    the lesson id for a one-off lesson, ``<lesson_id>@<YYYY-MM-DD>`` (bureau-local date) for
    one week of a recurring lesson."""

    lesson_id: str
    occurrence_id: str
    date: date
    start: float
    end: float


@dataclass(frozen=True)
class JoinEvent:
    occurrence_id: str
    classroom_id: str
    joined_at: float
    left_at: float | None


@dataclass
class OccurrenceView:
    """An occurrence with its lesson and its lifecycle status, for listings."""

    lesson: Lesson
    occurrence: Occurrence
    status: str
    started_at: float | None = None
    ended_at: float | None = None
    connected: list[str] = field(default_factory=list)
