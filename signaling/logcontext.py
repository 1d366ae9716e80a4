"""Which lesson, classroom and participant the code running now serves, for log records.

A classroom's WebSocket session binds these once it has joined (``bind``); every log call made
afterwards in that connection's task (and in tasks it starts) carries them, without passing them
to each call. ``classroom/logformat.py`` puts them into JSON log lines. A log call may also give
them itself with ``extra={"lesson": …, "classroom": …, "participant": …}``; those win."""

from __future__ import annotations

from contextvars import ContextVar, Token

FIELDS: tuple[str, ...] = ("lesson", "classroom", "participant")

_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("classroom_log_context", default=None)


def bind(*, lesson: str, classroom: str, participant: str) -> Token[dict[str, str] | None]:
    """Set the fields for the current task (and tasks it creates from now on)."""
    return _CONTEXT.set({"lesson": lesson, "classroom": classroom, "participant": participant})


def clear() -> None:
    _CONTEXT.set(None)


def current() -> dict[str, str]:
    """The bound fields (empty when nothing is bound)."""
    return dict(_CONTEXT.get() or {})
