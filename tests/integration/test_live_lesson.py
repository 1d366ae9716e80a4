"""A lead publishes, remote classrooms receive, through the packet-forwarding SFU."""

from __future__ import annotations

import asyncio

from classroom.server import Server
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


def token(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_lead_to_two_remotes(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, token(server, "l1", "lead", "lead"))
    remotes = [ClassroomPeer(server.base_url, token(server, "l1", f"r{i}", "remote")) for i in range(2)]
    try:
        assert (await lead.connect())["type"] == "joined"
        for r in remotes:
            assert (await r.connect())["type"] == "joined"
        answer = await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        assert answer["type"] == "publish_answer", answer
        for r in remotes:
            await r.wait_frames("video", 10)
            await r.wait_frames("audio", 10)
            mid = r.mids("video")[0]
            assert r.frame_size[mid] == (320, 240)
    finally:
        for p in [lead, *remotes]:
            await p.close()


async def test_republish_adds_a_screen_share(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, token(server, "l2", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, token(server, "l2", "r1", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await remote.wait_frames("video", 5)
        old_pub = lead.pub
        reply = await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher"),
                                    (PatternTrack(160, 120), "screen")])
        assert reply["type"] == "publish_answer", reply
        assert old_pub is not None
        await old_pub.close()
        for _ in range(100):
            sources = sorted(t["source"] for t in remote.tracks if t.get("track_id"))
            if sources == ["screen", "teacher", "teacher"]:
                break
            await asyncio.sleep(0.1)
        assert sources == ["screen", "teacher", "teacher"], remote.tracks
        screen_mid = next(t["mid"] for t in remote.tracks if t.get("source") == "screen")
        before = remote.frames[screen_mid]
        await asyncio.sleep(2)
        assert remote.frames[screen_mid] > before + 5
        assert remote.frame_size[screen_mid] == (160, 120)
        # the lead may not publish a fourth video source
        reply = await lead.publish([(PatternTrack(), "teacher"), (PatternTrack(), "screen"),
                                    (PatternTrack(), "students"), (PatternTrack(), "students")])
        assert reply["type"] == "error" and reply["code"] == "forbidden"
    finally:
        await lead.close()
        await remote.close()


async def test_join_latency_is_measured_to_the_first_packet(server: Server) -> None:
    from sfu.stats import STATS

    lead = ClassroomPeer(server.base_url, token(server, "l3", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, token(server, "l3", "r1", "remote"))
    try:
        await lead.connect()
        await lead.publish([(PatternTrack(), "teacher")])
        before = STATS.join_latency.count
        await remote.connect()
        await remote.wait_frames("video", 5)
        await asyncio.sleep(1.5)  # the room's 1 s tick records it
        assert STATS.join_latency.count > before
        room = server.router.rooms["l3"]
        p = next(p for p in room.participants.values() if p.classroom_id == "r1")
        assert p.first_media_at is not None and 0 < p.first_media_at - p.token_time < 5
    finally:
        await lead.close()
        await remote.close()
