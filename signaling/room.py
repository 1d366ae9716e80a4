"""Room: one lesson's live state on this node — participants, the floor, who receives what.

Control only: the media lives in :class:`sfu.node.MediaRoom`. The rule of who receives which
track is here, in :meth:`Room.wanted_for`, and nowhere else (pages only display it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sfu.node import MediaRoom
from sfu.peer import PublisherPeer, SubscriberPeer
from sfu.stats import STATS
from sfu.uptrack import UpTrack
from signaling import permissions
from signaling.floor import Floor, FloorConfig, FloorEvent
from signaling.protocol import server_message

log = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]

SPEAKER_TICK_S = 0.25
SPEAKING_LEVEL = 70  # RFC 6464 level (-dBov) louder than this counts as speaking


@dataclass(eq=False)
class Participant:
    participant_id: str
    lesson_id: str
    classroom_id: str
    role: str
    name: str
    send: Send
    kick: Callable[..., Awaitable[None]]
    publisher: PublisherPeer | None = None
    subscriber: SubscriberPeer | None = None
    joined_at: float = field(default_factory=time.monotonic)
    token_time: float = field(default_factory=time.monotonic)
    first_media_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "participant_id": self.participant_id,
            "classroom_id": self.classroom_id,
            "name": self.name,
            "role": self.role,
        }

    @property
    def visible(self) -> bool:
        return permissions.visible_to_classrooms(self.role)


def now_ms() -> int:
    return int(time.time() * 1000)


class Room:
    def __init__(self, lesson_id: str, title: str, media: MediaRoom, floor_config: FloorConfig) -> None:
        self.lesson_id = lesson_id
        self.title = title
        self.media = media
        self.floor = Floor(config=floor_config)
        self.participants: dict[str, Participant] = {}
        self.started_at = now_ms()
        # The lead ended the lesson (``end_lesson``): no new joins, no presence hooks while it drains.
        self.ended = False
        self.events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._levels: dict[str, int] = {}
        self._audience = -1
        self._refresh_lock = asyncio.Lock()
        # Told after every change of the floor (a cluster node keeps the floor where the lesson's
        # next node finds it: signaling/routing/floorstate.py); None in a single process.
        self.on_floor_change: Callable[[Room], None] | None = None

    # -- membership -----------------------------------------------------------------------------

    def by_classroom(self, classroom_id: str) -> Participant | None:
        for p in self.participants.values():
            if p.classroom_id == classroom_id:
                return p
        return None

    @property
    def lead(self) -> Participant | None:
        return next((p for p in self.participants.values() if p.role == "lead"), None)

    @property
    def recording(self) -> bool:
        """Whether a recorder is in the lesson now."""
        return any(p.role == "recorder" for p in self.participants.values())

    def visible_participants(self) -> list[dict[str, Any]]:
        return [p.public() for p in self.participants.values() if p.visible]

    def add(self, p: Participant) -> list[FloorEvent]:
        """Admit ``p`` (the caller has already replaced an older session of its classroom)."""
        events = self.floor.join(p.classroom_id, p.role, now_ms())
        self.participants[p.participant_id] = p
        self.record(events)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())
        return events

    def remove(self, p: Participant, graceful: bool) -> list[FloorEvent]:
        if self.participants.pop(p.participant_id, None) is None:
            return []
        events: list[FloorEvent] = []
        if self.floor.is_connected(p.classroom_id) and self.by_classroom(p.classroom_id) is None:
            events = self.floor.leave(p.classroom_id, now_ms(), graceful=graceful)
        self.record(events)
        return events

    @property
    def empty(self) -> bool:
        return not self.participants

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def record(self, events: list[FloorEvent]) -> None:
        for e in events:
            self.events.append({**e.to_json(), "hidden": e.hidden})
        if events and self.on_floor_change is not None:
            try:
                self.on_floor_change(self)
            except Exception:
                log.exception("floor-change hook failed in %s", self.lesson_id)

    # -- who receives what -------------------------------------------------------------------

    def wanted_for(self, p: Participant) -> list[UpTrack]:
        """The tracks ``p`` should receive now, the lead's first."""
        lead = self.lead
        lead_classroom = lead.classroom_id if lead else None
        floor = self.floor
        granted = set(floor.granted)
        spotlight = floor.spotlighted
        mine = p.participant_id
        from_lead: list[UpTrack] = []
        others: list[UpTrack] = []
        for t in self.media.tracks.values():
            if t.publisher_id == mine:
                continue
            if p.role == "recorder":
                (from_lead if t.classroom_id == lead_classroom else others).append(t)
            elif t.classroom_id == lead_classroom:
                from_lead.append(t)
            elif t.kind == "audio":
                # A remote classroom is heard only while it holds the floor (and is not muted).
                if floor.audible(t.classroom_id):
                    others.append(t)
            elif p.role in ("lead", "observer") or t.classroom_id == spotlight or t.classroom_id in granted:
                others.append(t)
        return from_lead + others

    async def refresh(self) -> None:
        """Apply :meth:`wanted_for` to every participant's subscriber connection."""
        async with self._refresh_lock:
            jobs = []
            for p in list(self.participants.values()):
                if p.subscriber is not None:
                    p.subscriber.link.spotlight = self.floor.spotlighted
                    jobs.append(p.subscriber.update(self.wanted_for(p)))
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    log.warning("subscription update failed in %s: %r", self.lesson_id, r)

    # -- messages ---------------------------------------------------------------------------------

    async def broadcast(self, msg: dict[str, Any], include_hidden: bool = True) -> None:
        targets = [p for p in self.participants.values() if include_hidden or p.visible]
        await asyncio.gather(*(p.send(msg) for p in targets), return_exceptions=True)

    async def broadcast_floor(self, events: list[FloorEvent]) -> None:
        for e in events:
            await self.broadcast(server_message("floor", **self.floor.snapshot(e)))

    async def _tick(self) -> None:
        """Active speaker a few times a second; audience count and join latency."""
        n = 0
        while True:
            await asyncio.sleep(SPEAKER_TICK_S)
            n += 1
            try:
                await self._speakers()
                if n % 4 == 0:
                    await self._audience_and_latency()
                    self.record(self.floor.expire(now_ms()))
                if n % 8 == 0:
                    await self._links()
            except Exception:
                log.exception("room tick failed in %s", self.lesson_id)

    async def _speakers(self) -> None:
        now = time.monotonic()
        levels: dict[str, int] = {}
        for t in self.media.tracks.values():
            if t.kind != "audio":
                continue
            level = t.audio_level if now - t.level_time < 0.5 else 127
            t.audio_level = min(127, t.audio_level + 6)  # decay until the next packets say otherwise
            levels[t.classroom_id] = min(levels.get(t.classroom_id, 127), level)
        quantized = {k: v // 4 * 4 for k, v in levels.items()}
        if quantized == self._levels:
            return
        self._levels = quantized
        speaking = [(v, k) for k, v in levels.items() if v < SPEAKING_LEVEL]
        active = min(speaking)[1] if speaking else None
        await self.broadcast(server_message("speaker", levels=levels, active=active), include_hidden=False)

    def link_of(self, p: Participant) -> dict[str, Any] | None:
        """What ``p``'s connections look like: the downlink as the SFU estimates it, and the
        loss on what it publishes (upstream)."""
        if p.subscriber is None:
            return None
        snap = p.subscriber.link.snapshot(time.monotonic())
        if p.publisher is not None:
            losses = [t.upstream_loss for t in p.publisher.all_tracks() if t.packets]
            snap["up_loss"] = round(max(losses), 3) if losses else 0.0
            snap["up_estimate_kbps"] = round(p.publisher.remb_estimate(time.monotonic()) / 1000)
        return snap

    async def _links(self) -> None:
        """Every classroom hears its own link quality; the lead hears everybody's."""
        lead = self.lead
        table: dict[str, Any] = {}
        jobs = []
        for p in list(self.participants.values()):
            snap = self.link_of(p)
            if snap is None or p.role == "recorder":
                continue
            table[p.classroom_id] = snap
            jobs.append(p.send(server_message("link", **snap)))
        if lead is not None and table:
            jobs.append(lead.send(server_message("links", classrooms=table)))
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _audience_and_latency(self) -> None:
        lead = self.lead
        watching = 0
        for p in self.participants.values():
            sub = p.subscriber
            if sub is None:
                continue
            downs = sub.downtracks()
            if p.first_media_at is None:
                firsts = [d.first_sent_at for d in downs if d.packets]
                if firsts:
                    p.first_media_at = min(firsts)
                    STATS.join_latency.observe_ms((p.first_media_at - p.token_time) * 1000.0)
            if p.role == "remote" and lead and any(
                d.up is not None and d.up.publisher_id == lead.participant_id and d.packets > 0 for d in downs
            ):
                watching += 1
        if lead is not None and watching != self._audience:
            self._audience = watching
            await lead.send(server_message("audience", viewers=watching))
