"""Fault: a subscriber that stalls (it stops taking in any media; its RTCP goes on) must not slow
down the other classrooms of the lesson, nor keep a new one from joining (issue #14)."""

from __future__ import annotations

import asyncio
import time

from classroom.server import Server
from tests.integration.peers import ClassroomPeer, PatternTrack, make_lossy


async def frames_per_second(peer: ClassroomPeer, seconds: float) -> float:
    mid = peer.mids("video")[0]
    start, t0 = peer.frames[mid], time.monotonic()
    await asyncio.sleep(seconds)
    return (peer.frames[mid] - start) / (time.monotonic() - t0)


async def test_a_stalled_subscriber_does_not_slow_the_others(server: Server) -> None:
    signer = server.signer
    lead = ClassroomPeer(server.base_url, signer.issue("stall", "lead", "lead", "Lead"))
    ok = ClassroomPeer(server.base_url, signer.issue("stall", "r1", "remote", "R1"))
    stalled = ClassroomPeer(server.base_url, signer.issue("stall", "r2", "remote", "R2"))
    try:
        for p in (lead, ok, stalled):
            await p.connect()
        await lead.publish([(PatternTrack(), "teacher")])
        await ok.wait_frames("video", 10)
        await stalled.wait_frames("video", 10)
        before = await frames_per_second(ok, 3.0)
        assert stalled.sub is not None
        make_lossy(stalled.sub, 1.0)  # from now on it takes in no media at all
        during = await frames_per_second(ok, 4.0)
        assert during >= 0.8 * before, (before, during)
        # and the lesson goes on for a classroom that joins now
        late = ClassroomPeer(server.base_url, signer.issue("stall", "r3", "remote", "R3"))
        try:
            await late.connect()
            await late.wait_frames("video", 10, timeout=10)
        finally:
            await late.close()
    finally:
        for p in (lead, ok, stalled):
            await p.close()
