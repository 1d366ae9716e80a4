"""A lead publishes, remote classrooms receive, through the packet-forwarding SFU."""

from __future__ import annotations

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
