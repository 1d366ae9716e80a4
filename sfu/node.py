"""The media state of one node: lessons' tracks and peers, and the 1 Hz RTCP duties.

A :class:`MediaRoom` is one lesson's media: which UpTracks exist and which peers belong to it.
Rooms never share tracks, so lessons are isolated by construction. Which tracks each
subscriber should receive is decided by the signaling side (roles, floor) and applied with
:meth:`SubscriberPeer.update`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sfu import rtcp
from sfu.peer import PeerSettings, PublisherPeer, SubscriberPeer
from sfu.stats import LOOP_LAG
from sfu.uptrack import UpTrack

log = logging.getLogger(__name__)


class MediaRoom:
    def __init__(self, lesson_id: str) -> None:
        self.lesson_id = lesson_id
        self.tracks: dict[str, UpTrack] = {}
        self.publishers: dict[str, PublisherPeer] = {}
        self.subscribers: dict[str, SubscriberPeer] = {}

    def add_track(self, track: UpTrack) -> None:
        self.tracks[track.track_id] = track

    def remove_tracks_of(self, participant_id: str) -> list[UpTrack]:
        gone = [t for t in self.tracks.values() if t.publisher_id == participant_id]
        for t in gone:
            del self.tracks[t.track_id]
            t.close()
        return gone


class MediaNode:
    def __init__(self, settings: PeerSettings, remb_bitrate: int = 2_500_000) -> None:
        self.settings = settings
        self.remb_bitrate = remb_bitrate
        self.rooms: dict[str, MediaRoom] = {}
        self._task: asyncio.Task[None] | None = None

    def room(self, lesson_id: str) -> MediaRoom:
        room = self.rooms.get(lesson_id)
        if room is None:
            room = self.rooms[lesson_id] = MediaRoom(lesson_id)
        return room

    def drop_room_if_empty(self, lesson_id: str) -> None:
        room = self.rooms.get(lesson_id)
        if room is not None and not room.publishers and not room.subscribers:
            del self.rooms[lesson_id]

    def track_count(self) -> int:
        return sum(len(r.tracks) for r in self.rooms.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._rtcp_loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # The reports of every peer are due once a second; they are sent in RTCP_SLICES slices spread
    # over that second so a node with hundreds of subscribers never stalls its forwarding for one
    # long round.
    RTCP_SLICES = 10

    async def _rtcp_loop(self) -> None:
        """Receiver reports + REMB upstream, sender reports downstream, once a second each."""
        tick = 0
        period = 1.0 / self.RTCP_SLICES
        while True:
            before = time.monotonic()
            await asyncio.sleep(period)
            after = time.monotonic()
            LOOP_LAG.note(after - before - period, after)
            try:
                self.send_reports(tick % self.RTCP_SLICES, self.RTCP_SLICES)
            except Exception:  # one bad peer must not stop RTCP for every lesson
                log.exception("RTCP round failed")
            tick += 1

    def send_reports(self, part: int = 0, parts: int = 1) -> None:
        """Send the reports of every ``parts``-th peer, starting at ``part`` (all by default)."""
        ntp = rtcp.ntp_now()
        now_ms = int(time.monotonic() * 1000)
        i = 0
        for room in list(self.rooms.values()):
            for pub in list(room.publishers.values()):
                if i % parts == part:
                    pub.send_reports(self.remb_bitrate)
                i += 1
            for sub in list(room.subscribers.values()):
                if i % parts == part:
                    sub.send_reports(ntp, now_ms)
                i += 1
