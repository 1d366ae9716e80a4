"""``LocalRouter`` keeps every lesson of this node in memory: the embedded, single-machine
default (no Redis needed). Every join is served here (``place`` is always ``None``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sfu.node import MediaNode
from signaling.floor import FloorConfig
from signaling.notes import NoteBook
from signaling.recorder_access import RecorderAccess
from signaling.room import Room
from signaling.routing.base import Admission, OpenAdmission, SessionFactory

log = logging.getLogger(__name__)


class LocalRouter:
    def __init__(
        self,
        media: MediaNode,
        floor_config: FloorConfig | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.media = media
        self.floor_config = floor_config or FloorConfig()
        self.admission: Admission = admission or OpenAdmission()
        # Recorder joins: only the launches the server made (signaling/recorder_access.py).
        self.recorders = RecorderAccess()
        self.rooms: dict[str, Room] = {}
        self.on_room_closed: list[Callable[[Room], Any]] = []
        # Called after a classroom (lead/remote) joined or left: e.g. recording starts and ends.
        self.on_presence: list[Callable[[Room], Any]] = []
        # The remote classrooms a lesson expects, ``[{classroom_id, name}]`` (the schedule, the
        # demo lesson): the first source that knows the lesson answers; the lead sees who is absent.
        self.expected_sources: list[Callable[[str], list[dict[str, str]] | None]] = []
        # Called with the lesson id when the lead ended the lesson (``end_lesson``): the schedule
        # marks it ended (new joins are refused), the recorder stops.
        self.on_lesson_ended: list[Callable[[str], Any]] = []
        # Where observation notes are kept (the schedule database); None: notes are relayed and
        # written to the recording only (a bare signaling app in tests).
        self.notes: NoteBook | None = None

    def room(self, lesson_id: str, title: str = "") -> Room:
        room = self.rooms.get(lesson_id)
        if room is None:
            room = Room(lesson_id, title or lesson_id, self.media.room(lesson_id), self.floor_config)
            self.rooms[lesson_id] = room
        return room

    async def place(self, lesson_id: str) -> str | None:
        return None

    async def relay(self, ws: web.WebSocketResponse, node_id: str, lesson_id: str, first: str) -> None:
        raise RuntimeError("a local router holds every lesson itself; there is nothing to relay to")

    def set_session_factory(self, factory: SessionFactory) -> None:
        return None

    def node_url(self, node_id: str) -> str | None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def health(self) -> dict[str, Any]:
        return self.stats()

    def presence_changed(self, room: Room) -> None:
        if room.ended:  # the lesson was ended: its classrooms are leaving, nothing starts again
            return
        for cb in self.on_presence:
            try:
                cb(room)
            except Exception:
                log.exception("presence hook failed")

    def expected_classrooms(self, lesson_id: str) -> list[dict[str, str]]:
        for source in self.expected_sources:
            try:
                found = source(lesson_id)
            except Exception:
                log.exception("expected-classrooms source failed for %s", lesson_id)
                continue
            if found is not None:
                return found
        return []

    def lesson_ended(self, lesson_id: str) -> None:
        for cb in self.on_lesson_ended:
            try:
                cb(lesson_id)
            except Exception:
                log.exception("lesson-ended hook failed")

    async def release(self, room: Room) -> None:
        if room.empty and self.rooms.get(room.lesson_id) is room:
            del self.rooms[room.lesson_id]
            await room.close()
            self.media.drop_room_if_empty(room.lesson_id)
            for cb in self.on_room_closed:
                try:
                    cb(room)
                except Exception:
                    log.exception("room-closed hook failed")

    async def close_all(self, reason: str = "the server is shutting down") -> None:
        """Close every classroom's connection (pages reconnect by themselves)."""
        import asyncio

        kicks = [
            p.kick(reason, "shutting_down")
            for room in list(self.rooms.values())
            for p in list(room.participants.values())
        ]
        await asyncio.gather(*kicks, return_exceptions=True)

    # LiveStatus for the schedule API
    def connected(self, lesson_id: str) -> list[str]:
        room = self.rooms.get(lesson_id)
        if room is None:
            return []
        return sorted({p.classroom_id for p in room.participants.values() if p.visible})

    def stats(self) -> dict[str, Any]:
        roles: dict[str, int] = {"lead": 0, "remote": 0, "observer": 0, "recorder": 0}
        for room in self.rooms.values():
            for p in room.participants.values():
                roles[p.role] = roles.get(p.role, 0) + 1
        return {"lessons": len(self.rooms), "classrooms": roles, "tracks": self.media.track_count(),
                "links": self.links()}

    def links(self, limit: int = 500) -> list[dict[str, Any]]:
        """Each classroom's link (estimate, loss, RTT, quality) for /metrics; at most ``limit``
        rows so the label set stays bounded."""
        out: list[dict[str, Any]] = []
        for room in self.rooms.values():
            for p in room.participants.values():
                if p.role == "recorder" or len(out) >= limit:
                    continue
                snap = room.link_of(p)
                if snap is not None:
                    out.append({"lesson": room.lesson_id, "classroom": p.classroom_id, **snap})
        return out
