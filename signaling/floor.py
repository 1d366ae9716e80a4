"""Floor control (举手/连麦) for one lesson: a pure state machine.

No I/O, no asyncio, no clock: every call takes the time ``t_ms`` (milliseconds; the server
passes its monotonic or wall clock, the recording keeps it) and returns the list of
:class:`FloorEvent` it caused, or raises :class:`FloorError` and changes nothing.

Rules
-----
- Members join with a role (``lead``, ``remote``, ``observer``, ``recorder``). A lesson has at
  most one *connected* lead classroom: another lead classroom joining while it is connected gets
  ``lead_present``; if the old lead is disconnected, the new one replaces it.
- Only ``remote`` classrooms are ever in the hand queue, hold the floor, are muted or
  spotlighted. Only the lead grants, revokes, mutes, unmutes, spotlights and dismisses hands
  (checked with ``signaling/permissions.py``; a violation is ``forbidden`` naming role and action).
- ``raise_hand`` appends to the queue (raise order); ``lower_hand`` removes (the classroom itself,
  or the lead dismissing it).
- ``grant`` gives the floor to a connected remote classroom (hand raised or not), up to
  ``max_granted`` holders at once (else ``floor_full``). With ``grant_lowers_hand`` its hand is
  lowered. With ``spotlight_follows_floor`` the spotlight moves to it; when a spotlighted holder
  loses the floor, the spotlight moves to the most recently granted remaining connected holder,
  or to nobody.
- ``mute``/``unmute``: the lead mutes any remote classroom, whether it holds the floor or not;
  the mute lasts until ``unmute`` (granting and revoking do not change it) or until the
  classroom is gone for good.
- ``spotlight(by, id | None)``: the lead spotlights a connected remote classroom (with or
  without the floor) or nobody.
- ``audible(id)``: the server forwards a remote classroom's audio only while it holds the floor,
  is not muted and is connected.

Disconnects
-----------
``leave(id, t)`` is a *disconnect*: the classroom keeps its place in the queue, its floor and its
mute for ``reconnect_grace_ms``, so that a page reconnecting (``join`` with the same id and role)
finds everything as it was. While disconnected it is not audible and not spotlighted (the
spotlight moves as if it had lost the floor, and comes back on reconnect unless the lead has
changed the spotlight in between). ``expire(t)`` — called by the server now and then, there are
no timers in here — drops every classroom disconnected for at least the grace: hand lowered,
floor revoked, mute lifted, each as an event with ``by=None`` (the server). ``leave(id, t,
graceful=True)`` (the page said ``leave``) drops the classroom at once.

Carry-over
----------
``carried()`` is what must outlive the node that holds the lesson: the lead and remote members
(id → role), the hand queue, the granted floor, the muted classrooms and the spotlight, as plain
JSON. ``restore(state, t)`` on a fresh ``Floor`` (the lesson's new node) rebuilds it with every
member *disconnected* since ``t``: they get the reconnect grace to join again, and when they do
(``join`` with the same id and role) their hand, floor, mute and spotlight are theirs again, as
after any disconnect. Observers and recorders are not carried (they hold no floor state).

A ``join`` of a classroom that is still connected (the server replaced its session) is a
reconnect too. A ``join`` with a different role than before drops the old state first.

Events
------
Every change is one :class:`FloorEvent` (``hand_raised``, ``hand_lowered``, ``floor_granted``,
``floor_revoked``, ``spotlight``, ``mute``, ``unmute``, ``join``, ``leave``); replaying them in
order on the previous state yields the new state (tests check this). ``by`` is the acting
classroom, or ``None`` when the server itself made the change (disconnect, expiry). ``join`` and
``leave`` of observers and recorders have ``hidden=True``: keep them for the recording, do not
send them to classrooms. Everything is also appended to :attr:`Floor.history`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from signaling import permissions
from signaling.tokens import ROLES

EVENT_TYPES = (
    "hand_raised",
    "hand_lowered",
    "floor_granted",
    "floor_revoked",
    "spotlight",
    "mute",
    "unmute",
    "join",
    "leave",
)
# ``reason`` of a ``hand_lowered`` that is a side effect (see :class:`FloorEvent`)
HAND_LOWERED_GRANTED = "granted"
HAND_LOWERED_GONE = "gone"
ERROR_CODES = ("forbidden", "bad_state", "unknown_classroom", "floor_full", "lead_present")


class FloorError(Exception):
    """A floor request that cannot be done; ``code`` is a protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FloorConfig:
    max_granted: int = 1
    grant_lowers_hand: bool = True
    spotlight_follows_floor: bool = True
    # how long a disconnected classroom keeps its hand, floor and mute (see ``Floor.expire``)
    reconnect_grace_ms: int = 30_000

    def __post_init__(self) -> None:
        if self.max_granted < 1:
            raise ValueError("max_granted must be at least 1")
        if self.reconnect_grace_ms < 0:
            raise ValueError("reconnect_grace_ms must not be negative")


@dataclass(frozen=True)
class FloorEvent:
    t_ms: int
    type: str
    classroom_id: str | None  # ``None`` only for ``spotlight`` on nobody
    by: str | None  # acting classroom; ``None`` = the server (disconnect, expiry)
    hidden: bool = False  # join/leave of an observer or recorder: not for classrooms
    # why a hand was lowered when nobody asked for it: ``granted`` (the grant lowered it; the
    # ``floor_granted`` follows at the same ``t_ms``) or ``gone`` (the classroom left for good).
    # ``None``: lowered by the classroom itself or dismissed by the lead (``by`` tells which).
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "t_ms": self.t_ms,
            "type": self.type,
            "classroom_id": self.classroom_id,
            "by": self.by,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class _Member:
    role: str
    connected: bool = True
    left_at: int | None = None


@dataclass
class Floor:
    """The floor of one lesson. See the module docstring for the rules."""

    config: FloorConfig = field(default_factory=FloorConfig)
    # every event ever emitted, in order (for the recording)
    history: list[FloorEvent] = field(default_factory=list, init=False, repr=False)
    _members: dict[str, _Member] = field(default_factory=dict, init=False)
    _queue: list[str] = field(default_factory=list, init=False)
    _granted: list[str] = field(default_factory=list, init=False)  # in grant order
    _muted: set[str] = field(default_factory=set, init=False)
    _spotlight: str | None = field(default=None, init=False)
    # (classroom that lost the spotlight by disconnecting, the spotlight right after that)
    _restore: tuple[str, str | None] | None = field(default=None, init=False, repr=False)
    _last: FloorEvent | None = field(default=None, init=False, repr=False)

    # ---------------------------------------------------------------- queries
    @property
    def queue(self) -> list[str]:
        """Classroom ids with a raised hand, in raise order."""
        return list(self._queue)

    @property
    def granted(self) -> list[str]:
        """Classroom ids holding the floor, in grant order."""
        return list(self._granted)

    @property
    def spotlighted(self) -> str | None:
        return self._spotlight

    @property
    def muted(self) -> frozenset[str]:
        return frozenset(self._muted)

    @property
    def lead(self) -> str | None:
        """The lead classroom id (connected or within its grace), if any."""
        for cid, m in self._members.items():
            if m.role == "lead":
                return cid
        return None

    @property
    def away(self) -> frozenset[str]:
        """Classrooms disconnected but within their grace."""
        return frozenset(cid for cid, m in self._members.items() if not m.connected)

    def role_of(self, classroom_id: str) -> str | None:
        m = self._members.get(classroom_id)
        return m.role if m else None

    def is_connected(self, classroom_id: str) -> bool:
        m = self._members.get(classroom_id)
        return bool(m and m.connected)

    def members(self) -> dict[str, str]:
        """classroom id -> role, of everybody connected or within grace."""
        return {cid: m.role for cid, m in self._members.items()}

    def audible(self, classroom_id: str) -> bool:
        """Whether the server forwards this classroom's audio to the others now."""
        return (
            classroom_id in self._granted
            and classroom_id not in self._muted
            and self.is_connected(classroom_id)
        )

    def snapshot(self, event: FloorEvent | None = None) -> dict[str, Any]:
        """The body of the ``floor`` message (docs/protocol.md), with ``event`` (default: the
        latest one) as ``event``."""
        ev = event if event is not None else self._last
        return {
            "queue": list(self._queue),
            "granted": list(self._granted),
            "spotlight": self._spotlight,
            "muted": sorted(self._muted),
            "event": ev.to_json() if ev is not None else None,
        }

    # ------------------------------------------------------------- carry-over
    def carried(self) -> dict[str, Any]:
        """The state a new node needs to rebuild this floor (see *Carry-over*), JSON-ready."""
        members = {cid: m.role for cid, m in self._members.items() if m.role in ("lead", "remote")}
        spotlight = self._spotlight
        if spotlight is None and self._restore is not None and self._restore[1] is None:
            spotlight = self._restore[0]  # away just now: it gets the spotlight back on its return
        return {
            "members": members,
            "queue": [c for c in self._queue if c in members],
            "granted": [c for c in self._granted if c in members],
            "muted": sorted(c for c in self._muted if c in members),
            "spotlight": spotlight if spotlight in members else None,
        }

    def restore(self, state: dict[str, Any], t_ms: int) -> None:
        """Rebuild from :meth:`carried` (an empty floor only): every member disconnected since
        ``t_ms``. Emits no events (nothing changed for the lesson). Raises ``ValueError`` on a
        state that is not one :meth:`carried` makes."""
        if self._members:
            raise ValueError("restore() needs an empty floor")
        members = state.get("members")
        if not isinstance(members, dict):
            raise ValueError("carried floor state: 'members' must be an object")

        def ids(name: str) -> list[str]:
            value = state.get(name) or []
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise ValueError(f"carried floor state: {name!r} must be a list of classroom ids")
            return [c for c in value if members.get(c) == "remote"]

        leads = [c for c, r in members.items() if r == "lead"]
        if len(leads) > 1 or any(r not in ("lead", "remote") or not isinstance(c, str) for c, r in members.items()):
            raise ValueError("carried floor state: members must be remote classrooms and at most one lead")
        queue, granted, muted = ids("queue"), ids("granted"), ids("muted")
        spotlight = state.get("spotlight")
        for cid, role in members.items():
            self._members[cid] = _Member(role, connected=False, left_at=t_ms)
        self._queue = list(dict.fromkeys(queue))
        self._granted = list(dict.fromkeys(granted))[: self.config.max_granted]
        self._muted = set(muted)
        # nobody is connected yet: the spotlighted classroom gets it back when it joins again
        self._spotlight = None
        self._restore = (spotlight, None) if isinstance(spotlight, str) and members.get(spotlight) == "remote" else None

    # ------------------------------------------------------------- membership
    def join(self, classroom_id: str, role: str, t_ms: int) -> list[FloorEvent]:
        if role not in ROLES:
            raise FloorError("forbidden", f"unknown role {role!r} may not join")
        events: list[FloorEvent] = []
        if role == "lead":
            other = self.lead
            if other is not None and other != classroom_id:
                if self._members[other].connected:
                    raise FloorError(
                        "lead_present", f"lead classroom {other} is already in the lesson"
                    )
                self._drop(other, t_ms, events)
        m = self._members.get(classroom_id)
        if m is not None and m.role != role:
            self._drop(classroom_id, t_ms, events)
            m = None
        hidden = not permissions.visible_to_classrooms(role)
        if m is None:
            self._members[classroom_id] = _Member(role)
            self._emit(events, t_ms, "join", classroom_id, classroom_id, hidden)
            return events
        was_away = not m.connected
        m.connected, m.left_at = True, None
        self._emit(events, t_ms, "join", classroom_id, classroom_id, hidden)
        if was_away and self._restore is not None and self._restore[0] == classroom_id:
            if self._spotlight == self._restore[1]:
                self._set_spotlight(classroom_id, t_ms, None, events)
            self._restore = None
        return events

    def leave(self, classroom_id: str, t_ms: int, *, graceful: bool = False) -> list[FloorEvent]:
        """A disconnect (kept for the grace) or, with ``graceful``, a departure for good."""
        m = self._member(classroom_id)
        if not m.connected:
            raise FloorError("bad_state", f"classroom {classroom_id} is not connected")
        events: list[FloorEvent] = []
        m.connected, m.left_at = False, t_ms
        hidden = not permissions.visible_to_classrooms(m.role)
        self._emit(events, t_ms, "leave", classroom_id, classroom_id, hidden)
        if self._spotlight == classroom_id:
            successor = self._successor(exclude=classroom_id)
            self._set_spotlight(successor, t_ms, None, events)
            self._restore = (classroom_id, successor)
        if graceful:
            self._drop(classroom_id, t_ms, events)
        return events

    def expire(self, t_ms: int) -> list[FloorEvent]:
        """Drop everybody disconnected for at least ``reconnect_grace_ms``."""
        events: list[FloorEvent] = []
        grace = self.config.reconnect_grace_ms
        for cid, m in list(self._members.items()):
            if not m.connected and m.left_at is not None and t_ms - m.left_at >= grace:
                self._drop(cid, t_ms, events)
        return events

    # ------------------------------------------------------------------ hands
    def raise_hand(self, classroom_id: str, t_ms: int) -> list[FloorEvent]:
        self._actor(classroom_id, "raise_hand")
        if classroom_id in self._queue:
            raise FloorError("bad_state", f"classroom {classroom_id} has already raised its hand")
        if self.config.grant_lowers_hand and classroom_id in self._granted:
            raise FloorError("bad_state", f"classroom {classroom_id} already holds the floor")
        events: list[FloorEvent] = []
        self._queue.append(classroom_id)
        self._emit(events, t_ms, "hand_raised", classroom_id, classroom_id)
        return events

    def lower_hand(self, classroom_id: str, t_ms: int, by: str | None = None) -> list[FloorEvent]:
        """The classroom lowers its own hand, or (``by`` = the lead) the lead dismisses it."""
        actor = classroom_id if by is None else by
        self._actor(actor, "lower_hand" if actor == classroom_id else "dismiss_hand")
        self._member(classroom_id)
        if classroom_id not in self._queue:
            raise FloorError("bad_state", f"classroom {classroom_id} has not raised its hand")
        events: list[FloorEvent] = []
        self._queue.remove(classroom_id)
        self._emit(events, t_ms, "hand_lowered", classroom_id, actor)
        return events

    # ------------------------------------------------------------------ floor
    def grant(self, by: str, classroom_id: str, t_ms: int) -> list[FloorEvent]:
        self._actor(by, "grant_floor")
        self._target(classroom_id, "hold the floor", connected=True)
        if classroom_id in self._granted:
            raise FloorError("bad_state", f"classroom {classroom_id} already holds the floor")
        if len(self._granted) >= self.config.max_granted:
            raise FloorError(
                "floor_full",
                f"the floor is full ({self.config.max_granted} classroom(s)); revoke first",
            )
        events: list[FloorEvent] = []
        if self.config.grant_lowers_hand and classroom_id in self._queue:
            self._queue.remove(classroom_id)
            self._emit(events, t_ms, "hand_lowered", classroom_id, by, reason=HAND_LOWERED_GRANTED)
        self._granted.append(classroom_id)
        self._emit(events, t_ms, "floor_granted", classroom_id, by)
        if self.config.spotlight_follows_floor and self._spotlight != classroom_id:
            self._set_spotlight(classroom_id, t_ms, by, events)
            self._restore = None
        return events

    def revoke(self, by: str, classroom_id: str, t_ms: int) -> list[FloorEvent]:
        self._actor(by, "revoke_floor")
        self._member(classroom_id)
        if classroom_id not in self._granted:
            raise FloorError("bad_state", f"classroom {classroom_id} does not hold the floor")
        events: list[FloorEvent] = []
        self._revoke(classroom_id, t_ms, by, events)
        return events

    def mute(self, by: str, classroom_id: str, t_ms: int) -> list[FloorEvent]:
        self._actor(by, "mute")
        self._target(classroom_id, "be muted", connected=False)
        if classroom_id in self._muted:
            raise FloorError("bad_state", f"classroom {classroom_id} is already muted")
        events: list[FloorEvent] = []
        self._muted.add(classroom_id)
        self._emit(events, t_ms, "mute", classroom_id, by)
        return events

    def unmute(self, by: str, classroom_id: str, t_ms: int) -> list[FloorEvent]:
        self._actor(by, "unmute")
        self._member(classroom_id)
        if classroom_id not in self._muted:
            raise FloorError("bad_state", f"classroom {classroom_id} is not muted")
        events: list[FloorEvent] = []
        self._muted.discard(classroom_id)
        self._emit(events, t_ms, "unmute", classroom_id, by)
        return events

    def spotlight(self, by: str, classroom_id: str | None, t_ms: int) -> list[FloorEvent]:
        """Spotlight a connected remote classroom's camera to all remote classrooms, or nobody."""
        self._actor(by, "spotlight")
        if classroom_id is not None:
            self._target(classroom_id, "be spotlighted", connected=True)
        if classroom_id == self._spotlight:
            raise FloorError("bad_state", f"the spotlight is already on {classroom_id}")
        events: list[FloorEvent] = []
        self._set_spotlight(classroom_id, t_ms, by, events)
        self._restore = None
        return events

    # -------------------------------------------------------------- internals
    def _member(self, classroom_id: str) -> _Member:
        m = self._members.get(classroom_id)
        if m is None:
            raise FloorError("unknown_classroom", f"classroom {classroom_id} is not in the lesson")
        return m

    def _actor(self, classroom_id: str, action: str) -> _Member:
        m = self._member(classroom_id)
        try:
            permissions.check(m.role, action)
        except permissions.PermissionDenied as exc:
            raise FloorError("forbidden", exc.message) from None
        if not m.connected:
            raise FloorError("bad_state", f"classroom {classroom_id} is not connected")
        return m

    def _target(self, classroom_id: str, what: str, *, connected: bool) -> _Member:
        m = self._member(classroom_id)
        if not permissions.may_hold_floor(m.role):
            raise FloorError("forbidden", f"role {m.role} may not {what}")
        if connected and not m.connected:
            raise FloorError("bad_state", f"classroom {classroom_id} is not connected")
        return m

    def _emit(
        self,
        events: list[FloorEvent],
        t_ms: int,
        type_: str,
        classroom_id: str | None,
        by: str | None,
        hidden: bool = False,
        reason: str | None = None,
    ) -> None:
        ev = FloorEvent(t_ms=t_ms, type=type_, classroom_id=classroom_id, by=by, hidden=hidden, reason=reason)
        events.append(ev)
        self.history.append(ev)
        if not hidden:
            self._last = ev

    def _set_spotlight(
        self, classroom_id: str | None, t_ms: int, by: str | None, events: list[FloorEvent]
    ) -> None:
        if classroom_id == self._spotlight:
            return
        self._spotlight = classroom_id
        self._emit(events, t_ms, "spotlight", classroom_id, by)

    def _successor(self, exclude: str) -> str | None:
        """Who gets the spotlight when ``exclude`` loses it (``spotlight_follows_floor``)."""
        if not self.config.spotlight_follows_floor:
            return None
        for cid in reversed(self._granted):
            if cid != exclude and self.is_connected(cid):
                return cid
        return None

    def _revoke(self, classroom_id: str, t_ms: int, by: str | None, ev: list[FloorEvent]) -> None:
        self._granted.remove(classroom_id)
        self._emit(ev, t_ms, "floor_revoked", classroom_id, by)
        if self.config.spotlight_follows_floor and self._spotlight == classroom_id:
            self._set_spotlight(self._successor(exclude=classroom_id), t_ms, by, ev)

    def _drop(self, classroom_id: str, t_ms: int, events: list[FloorEvent]) -> None:
        """Forget a classroom for good, undoing its hand, floor, mute and spotlight."""
        if classroom_id in self._queue:
            self._queue.remove(classroom_id)
            self._emit(events, t_ms, "hand_lowered", classroom_id, None, reason=HAND_LOWERED_GONE)
        if classroom_id in self._granted:
            self._revoke(classroom_id, t_ms, None, events)
        if classroom_id in self._muted:
            self._muted.discard(classroom_id)
            self._emit(events, t_ms, "unmute", classroom_id, None)
        if self._spotlight == classroom_id:
            self._set_spotlight(self._successor(exclude=classroom_id), t_ms, None, events)
        if self._restore is not None and self._restore[0] == classroom_id:
            self._restore = None
        m = self._members.pop(classroom_id)
        if m.connected:  # dropped while connected (role change): it is gone for the pages
            hidden = not permissions.visible_to_classrooms(m.role)
            self._emit(events, t_ms, "leave", classroom_id, None, hidden)
