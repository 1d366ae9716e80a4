"""The agent's schedule decisions, pure: no I/O, no clock of its own (every function takes ``now``,
unix seconds), so tests drive it with a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ScheduleError(ValueError):
    """The server's answer is not what ``GET /api/device/lesson`` documents."""


@dataclass(frozen=True)
class Lesson:
    occurrence_id: str
    title: str
    start: float
    end: float
    opens_at: float
    token: str | None  # the classroom's join token, once the join window is open
    role: str | None


@dataclass(frozen=True)
class Wait:
    """Nothing to join now: ask the server again at ``until``."""

    until: float
    reason: str


@dataclass(frozen=True)
class Join:
    lesson: Lesson


Decision = Wait | Join


def _time(value: Any, name: str) -> float:
    if not isinstance(value, str):
        raise ScheduleError(f"lesson.{name} must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ScheduleError(f"lesson.{name} is not ISO 8601: {value!r}") from None
    if parsed.tzinfo is None:
        raise ScheduleError(f"lesson.{name} has no UTC offset: {value!r}")
    return parsed.timestamp()


def parse_answer(answer: Any) -> Lesson | None:
    """The lesson of a ``GET /api/device/lesson`` answer (None when the classroom has none today)."""
    if not isinstance(answer, dict) or "lesson" not in answer:
        raise ScheduleError("the answer has no 'lesson' field")
    raw = answer["lesson"]
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("occurrence_id"), str):
        raise ScheduleError("lesson.occurrence_id is missing")
    link = raw.get("link")
    token = role = None
    if link is not None:
        if not isinstance(link, dict) or not isinstance(link.get("token"), str):
            raise ScheduleError("lesson.link.token is missing")
        token = link["token"]
        role = link.get("role") if isinstance(link.get("role"), str) else None
    start, end = _time(raw.get("start"), "start"), _time(raw.get("end"), "end")
    if end <= start:
        raise ScheduleError("lesson.end is not after lesson.start")
    opens_at = _time(raw["opens_at"], "opens_at") if "opens_at" in raw else start
    title = raw.get("title") if isinstance(raw.get("title"), str) else ""
    return Lesson(str(raw["occurrence_id"]), str(title), start, end, opens_at, token, role)


@dataclass
class Planner:
    """Decides, from the server's latest answer, whether to join now or when to ask again.

    ``lead_time_s``: join that long before the start. ``poll_s``: the longest wait between two
    questions (a lesson scheduled or moved meanwhile is seen within it). Lessons left at their
    end, or ended by the lead, are remembered (``done``) and not joined again."""

    lead_time_s: float = 0.0
    poll_s: float = 30.0
    done: set[str] | None = None

    def __post_init__(self) -> None:
        if self.done is None:
            self.done = set()

    def finished(self, lesson: Lesson) -> None:
        assert self.done is not None
        self.done.add(lesson.occurrence_id)

    def decide(self, lesson: Lesson | None, now: float) -> Decision:
        assert self.done is not None
        later = now + self.poll_s
        if lesson is None:
            return Wait(later, "no lesson today")
        if lesson.occurrence_id in self.done or now >= lesson.end:
            return Wait(min(later, max(lesson.end, now + 1.0)), f"lesson {lesson.occurrence_id} is over")
        join_at = max(lesson.start - self.lead_time_s, lesson.opens_at)
        if now < join_at:
            return Wait(min(later, join_at), f"lesson {lesson.occurrence_id} starts at {lesson.start:.0f}")
        if lesson.token is None:  # the window should be open: ask again soon
            return Wait(min(later, now + 2.0), f"lesson {lesson.occurrence_id} has no join link yet")
        return Join(lesson)


@dataclass
class Backoff:
    """Reconnect delays: ``first`` doubling up to ``cap``; ``reset`` after a success."""

    first: float = 0.5
    cap: float = 3.0
    _next: float = 0.0

    def next(self) -> float:
        delay = self._next or self.first
        self._next = min(delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = 0.0
