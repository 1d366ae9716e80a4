"""What each role may do: one table, checked server-side on every client message.

Pure: no I/O. ``check(role, action, source, kind)`` returns ``None`` or raises
:class:`PermissionDenied` whose ``code`` is the protocol error code ``forbidden`` and whose
``message`` names the role and the action, e.g. ``role remote may not publish source teacher``.

Roles (see ``signaling/tokens.py``):

- ``lead`` (主讲): publishes video ``teacher``/``screen``/``students`` and audio
  ``teacher``/``students`` (at most 3 video and 2 audio tracks), controls the floor.
- ``remote`` (听讲/互动): publishes one video and one audio track, both source ``students``
  (whether that audio is *forwarded* is the floor's business, see ``signaling/floor.py``);
  raises and lowers its own hand.
- ``observer`` (巡课) and ``recorder``: receive only, invisible to classrooms; an observer may post
  observation notes (``note``), which only the other observers and the recorder receive.
"""

from __future__ import annotations

from collections.abc import Iterable

from signaling.tokens import ROLES

KINDS = ("video", "audio")

# role -> kind -> the sources that role may publish with that kind
PUBLISH_SOURCES: dict[str, dict[str, frozenset[str]]] = {
    "lead": {
        "video": frozenset({"teacher", "screen", "students"}),
        "audio": frozenset({"teacher", "students"}),
    },
    "remote": {
        "video": frozenset({"students"}),
        "audio": frozenset({"students"}),
    },
    "observer": {"video": frozenset(), "audio": frozenset()},
    "recorder": {"video": frozenset(), "audio": frozenset()},
}

# role -> kind -> the maximum number of tracks of that kind published at once
TRACK_LIMITS: dict[str, dict[str, int]] = {
    "lead": {"video": 3, "audio": 2},
    "remote": {"video": 1, "audio": 1},
    "observer": {"video": 0, "audio": 0},
    "recorder": {"video": 0, "audio": 0},
}

# action -> roles allowed (``publish`` is further limited by PUBLISH_SOURCES)
ACTION_ROLES: dict[str, frozenset[str]] = {
    "publish": frozenset({"lead", "remote"}),
    "subscribe": frozenset(ROLES),
    "raise_hand": frozenset({"remote"}),
    "lower_hand": frozenset({"remote"}),
    # the lead lowering somebody else's hand (dismissing a request)
    "dismiss_hand": frozenset({"lead"}),
    "grant_floor": frozenset({"lead"}),
    "revoke_floor": frozenset({"lead"}),
    "mute": frozenset({"lead"}),
    "unmute": frozenset({"lead"}),
    "spotlight": frozenset({"lead"}),
    # ends the live lesson for every classroom (docs/protocol.md, ``end_lesson``)
    "end_lesson": frozenset({"lead"}),
    # posts an observation note (docs/protocol.md, ``note``; docs/observation.md)
    "note": frozenset({"observer"}),
}
ACTIONS = tuple(ACTION_ROLES)

_VISIBLE_ROLES = frozenset({"lead", "remote"})
_FLOOR_ROLES = frozenset({"remote"})


class PermissionDenied(Exception):
    """A role may not do an action. ``code`` is always ``forbidden``."""

    def __init__(self, message: str, code: str = "forbidden") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check(role: str, action: str, source: str | None = None, kind: str | None = None) -> None:
    """Raise :class:`PermissionDenied` unless ``role`` may do ``action``.

    For ``publish``, ``source`` (``teacher``/``screen``/``students``) and ``kind``
    (``video``/``audio``) are checked when given; either may be omitted to ask about
    publishing in general, or about a source of any kind.
    """
    if role not in ROLES:
        raise PermissionDenied(f"unknown role {role!r} may not {action}")
    allowed = ACTION_ROLES.get(action)
    if allowed is None:
        raise PermissionDenied(f"role {role} may not {action}: unknown action")
    if role not in allowed:
        raise PermissionDenied(f"role {role} may not {action}")
    if action != "publish":
        return
    sources = PUBLISH_SOURCES[role]
    if kind is not None and kind not in KINDS:
        raise PermissionDenied(f"role {role} may not publish kind {kind}")
    if source is None:
        return
    if kind is None:
        if not any(source in by_kind for by_kind in sources.values()):
            raise PermissionDenied(f"role {role} may not publish source {source}")
        return
    if source not in sources[kind]:
        if any(source in by_kind for by_kind in sources.values()):
            raise PermissionDenied(f"role {role} may not publish source {source} as {kind}")
        raise PermissionDenied(f"role {role} may not publish source {source}")


def allowed(role: str, action: str, source: str | None = None, kind: str | None = None) -> bool:
    """``check`` as a boolean."""
    try:
        check(role, action, source, kind)
    except PermissionDenied:
        return False
    return True


def check_publish(role: str, tracks: Iterable[tuple[str, str]]) -> None:
    """Check a whole publish request: ``tracks`` is ``(kind, source)`` per offered track.

    Every track must be allowed and the number per kind must stay within ``TRACK_LIMITS``.
    """
    check(role, "publish")
    counts = dict.fromkeys(KINDS, 0)
    for kind, source in tracks:
        check(role, "publish", source=source, kind=kind)
        counts[kind] += 1
    for kind, count in counts.items():
        limit = TRACK_LIMITS[role][kind]
        if count > limit:
            raise PermissionDenied(
                f"role {role} may not publish more than {limit} {kind} track(s) (got {count})"
            )


def track_limit(role: str, kind: str) -> int:
    """How many tracks of ``kind`` the role may publish at once (0 for unknown roles/kinds)."""
    return TRACK_LIMITS.get(role, {}).get(kind, 0)


def visible_to_classrooms(role: str) -> bool:
    """Whether classrooms see this participant (observers and recorders are invisible)."""
    return role in _VISIBLE_ROLES


def may_hold_floor(role: str) -> bool:
    """Whether this role may be in the hand queue, hold the floor, be muted or spotlighted."""
    return role in _FLOOR_ROLES
