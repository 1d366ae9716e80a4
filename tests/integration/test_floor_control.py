"""Roles and floor control through the real server: the server enforces who may publish what,
who may control the floor, and that a remote classroom is heard only while it holds the floor."""

from __future__ import annotations

import asyncio
import time

from classroom.server import Server
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


def tok(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_roles_are_enforced(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "roles", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "roles", "r1", "remote"))
    observer = ClassroomPeer(server.base_url, tok(server, "roles", "inspector", "observer"))
    second_lead = ClassroomPeer(server.base_url, tok(server, "roles", "lead-2", "lead"))
    try:
        await lead.connect()
        await remote.connect()
        await observer.connect()
        # A remote classroom cannot publish as the lead's teacher camera or courseware.
        for source in ("teacher", "screen"):
            reply = await remote.publish([(PatternTrack(), source)])
            assert reply["type"] == "error" and reply["code"] == "forbidden", reply
            assert "remote" in reply["message"] and source in reply["message"]
        # A remote classroom cannot grant the floor, spotlight or mute.
        for action in ("grant_floor", "revoke_floor", "mute", "spotlight"):
            await remote.send({"type": action, "classroom_id": "r1"})
            err = await remote.expect("error")
            assert err["code"] == "forbidden" and action.split("_")[0] in err["message"], err
        # An observer cannot publish anything, nor raise its hand.
        reply = await observer.publish([(PatternTrack(), "students")])
        assert reply["type"] == "error" and reply["code"] == "forbidden"
        await observer.send({"type": "raise_hand"})
        assert (await observer.expect("error"))["code"] == "forbidden"
        # The lead cannot raise its hand; a second lead classroom is refused.
        await lead.send({"type": "raise_hand"})
        assert (await lead.expect("error"))["code"] == "forbidden"
        reply = await second_lead.connect()
        assert reply["type"] == "error" and reply["code"] == "lead_present"
        # The observer is invisible to classrooms.
        assert all(p["role"] != "observer" for p in remote.joined["participants"])
    finally:
        for p in (lead, remote, observer, second_lead):
            await p.close()


async def audio_mids_from(peer: ClassroomPeer, classroom: str) -> list[str]:
    return [t["mid"] for t in peer.tracks if t.get("classroom_id") == classroom and t["kind"] == "audio"]


async def test_floor_gates_remote_audio(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "floor", "lead", "lead"))
    r1 = ClassroomPeer(server.base_url, tok(server, "floor", "r1", "remote"))
    r2 = ClassroomPeer(server.base_url, tok(server, "floor", "r2", "remote"))
    try:
        for p in (lead, r1, r2):
            await p.connect()
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(220), "teacher")])
        reply = await r1.publish([(PatternTrack(160, 120), "students"), (ToneTrack(880), "students")])
        assert reply["type"] == "publish_answer", reply
        await r2.wait_frames("audio", 10)
        # Without the floor, r1's camera reaches the lead, but its audio reaches nobody.
        await lead.wait_frames("video", 5, classroom_id="r1")
        await asyncio.sleep(1.0)
        assert await audio_mids_from(lead, "r1") == []
        assert await audio_mids_from(r2, "r1") == []
        assert r2.mids("video", "r1") == []  # not spotlighted either
        # 举手 → the lead sees the queue → 连麦.
        await r1.send({"type": "raise_hand"})
        floor = await lead.expect("floor")
        assert floor["queue"] == ["r1"] and floor["event"]["type"] == "hand_raised"
        await lead.send({"type": "grant_floor", "classroom_id": "r1"})
        floor = await r2.expect("floor")
        while floor["event"]["type"] != "floor_granted":
            floor = await r2.expect("floor")
        assert floor["granted"] == ["r1"]
        # Now the lead and r2 hear r1 (its tone, above silence) and r2 sees r1's camera.
        for listener in (lead, r2):
            await listener.wait_frames("audio", 20, classroom_id="r1")
            mid = (await audio_mids_from(listener, "r1"))[0]
            assert listener.audio_rms[mid] > 1000, listener.audio_rms
        await r2.wait_frames("video", 5, classroom_id="r1")
        # Revoke: r1's audio stops reaching the others within a second.
        mids = {id(p): (await audio_mids_from(p, "r1"))[0] for p in (lead, r2)}
        await lead.send({"type": "revoke_floor", "classroom_id": "r1"})
        t_revoke = time.monotonic()
        await asyncio.sleep(2.0)
        for p in (lead, r2):
            last = p.audio_frames_at[mids[id(p)]][-1]
            assert last - t_revoke < 1.0, f"audio still arrived {last - t_revoke:.2f}s after revoke"
    finally:
        for p in (lead, r1, r2):
            await p.close()


async def test_active_speaker_from_audio_levels(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "spk", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "spk", "r1", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        await lead.publish([(ToneTrack(amplitude=0.5), "teacher")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = await remote.expect("speaker")
            if msg["active"] == "lead":
                break
        assert msg["active"] == "lead" and msg["levels"]["lead"] < 70, msg
    finally:
        await lead.close()
        await remote.close()
