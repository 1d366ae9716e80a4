"""Plain (unencrypted) RTP ingest over UDP, one port per track.

For tests, load tests and debugging: ``classroom record --udp-track ...`` records RTP sent
straight to it (e.g. by ``recorder.packetize`` or ``ffmpeg -f rtp``). Keyframe requests go back
as RTCP PLI to the address the track's packets come from. The live path is :mod:`recorder.worker`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import cast

from recorder.core import RecordingSession
from recorder.depacketize import build_pli

log = logging.getLogger(__name__)


@dataclass
class UdpTrack:
    track_id: str
    kind: str
    codec: str
    classroom_id: str
    source: str
    port: int

    @classmethod
    def parse(cls, text: str) -> UdpTrack:
        """``ID,KIND,CODEC,CLASSROOM,SOURCE,PORT``"""
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 6:
            raise ValueError(f"--udp-track wants ID,KIND,CODEC,CLASSROOM,SOURCE,PORT, got {text!r}")
        try:
            port = int(parts[5])
        except ValueError as exc:
            raise ValueError(f"--udp-track: bad port {parts[5]!r}") from exc
        if parts[1] not in ("audio", "video"):
            raise ValueError(f"--udp-track: kind must be audio or video, got {parts[1]!r}")
        return cls(parts[0], parts[1], parts[2].lower(), parts[3], parts[4], port)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RecordingSession, track_id: str) -> None:
        self.session = session
        self.track_id = track_id
        self.peer: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.peer = addr
        self.session.rtp(self.track_id, data)


async def run_udp(
    session: RecordingSession,
    tracks: list[UdpTrack],
    host: str,
    stop: asyncio.Event,
    poll_interval: float = 0.02,
) -> None:
    loop = asyncio.get_running_loop()
    protocols: dict[str, _Protocol] = {}
    for spec in tracks:
        track = session.add_track(spec.track_id, spec.kind, spec.codec, spec.classroom_id, spec.source)
        _, proto = await loop.create_datagram_endpoint(
            lambda tid=track.info.track_id: _Protocol(session, tid),  # type: ignore[misc]
            local_addr=(host, spec.port),
        )
        protocols[track.info.track_id] = proto
    log.info("recording %d UDP track(s) into %s", len(tracks), session.directory)
    try:
        while not stop.is_set():
            for track_id in session.poll():
                target = protocols.get(track_id)
                track = session.tracks[track_id]
                if target and target.peer and target.transport and track.ssrcs:
                    for ssrc in track.ssrcs:
                        target.transport.sendto(build_pli(1, ssrc), target.peer)
            try:
                await asyncio.wait_for(stop.wait(), poll_interval)
            except TimeoutError:
                pass
    finally:
        for proto in protocols.values():
            if proto.transport:
                proto.transport.close()
