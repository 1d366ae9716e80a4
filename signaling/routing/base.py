"""The router interface: what the signaling (sessions, WHIP/WHEP, the schedule API) needs from
whatever holds the lessons. ``LocalRouter`` (in memory, one process) and ``RedisRouter``
(several nodes through Redis) implement it; one scenario suite runs against both
(tests/integration/cluster/test_scenarios.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from signaling.tokens import TokenClaims

if TYPE_CHECKING:
    from aiohttp import web

    from sfu.node import MediaNode
    from signaling.notes import NoteBook
    from signaling.recorder_access import RecorderAccess
    from signaling.room import Room


class Admission(Protocol):
    """The schedule's say on a join (a cancelled or ended lesson is refused)."""

    def admit(self, claims: TokenClaims) -> None: ...

    def on_joined(self, lesson_id: str, classroom_id: str) -> None: ...

    def on_left(self, lesson_id: str, classroom_id: str) -> None: ...


class OpenAdmission:
    """Admits every validly signed token (used when no schedule is wired in)."""

    def admit(self, claims: TokenClaims) -> None:
        return None

    def on_joined(self, lesson_id: str, classroom_id: str) -> None:
        return None

    def on_left(self, lesson_id: str, classroom_id: str) -> None:
        return None


class ClusterUnavailable(Exception):
    """A join needs the cluster (Redis) to find its lesson's node, and the cluster cannot be
    reached: the classroom gets ``cluster_unavailable`` and its page retries."""

    code = "cluster_unavailable"


class RelayTo(Exception):  # noqa: N818 - a control-flow signal, not an error
    """The lesson is held by another node: the session hands its connection to the relay."""

    def __init__(self, node_id: str, lesson_id: str) -> None:
        super().__init__(f"lesson {lesson_id} is held by node {node_id}")
        self.node_id = node_id
        self.lesson_id = lesson_id


SessionFactory = Callable[[Any], Any]


class Router(Protocol):
    """Where rooms live. A node serves a join itself when ``place`` says the lesson is its own
    (``None``); otherwise the session's connection is relayed to the owning node."""

    media: MediaNode
    admission: Admission
    recorders: RecorderAccess
    rooms: dict[str, Room]
    notes: NoteBook | None
    on_room_closed: list[Callable[[Room], Any]]
    on_presence: list[Callable[[Room], Any]]
    expected_sources: list[Callable[[str], list[dict[str, str]] | None]]
    on_lesson_ended: list[Callable[[str], Any]]

    def room(self, lesson_id: str, title: str = "") -> Room: ...

    async def place(self, lesson_id: str) -> str | None:
        """``None``: this node holds (or now takes) the lesson; else the id of the node that
        does. Raises :class:`ClusterUnavailable` when that cannot be known."""
        ...

    async def relay(self, ws: web.WebSocketResponse, node_id: str, lesson_id: str, first: str) -> None:
        """Serve ``ws`` by relaying its messages (``first``: the join) to ``node_id``."""
        ...

    def node_url(self, node_id: str) -> str | None:
        """A live node's own URL (WHIP/WHEP redirect there); ``None`` when unknown."""
        ...

    def set_session_factory(self, factory: SessionFactory) -> None:
        """How this node makes a session for a connection relayed to it from another node."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def presence_changed(self, room: Room) -> None: ...

    def expected_classrooms(self, lesson_id: str) -> list[dict[str, str]]: ...

    def lesson_ended(self, lesson_id: str) -> None: ...

    async def release(self, room: Room) -> None: ...

    async def close_all(self, reason: str = "the server is shutting down") -> None: ...

    def connected(self, lesson_id: str) -> list[str]: ...

    def stats(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]:
        """``/healthz``: this node's figures (and the cluster's, with Redis)."""
        ...

    def links(self, limit: int = 500) -> list[dict[str, Any]]: ...
