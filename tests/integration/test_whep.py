"""WHEP egress (POST /whep) against a real server: an aiortc player with a recvonly offer
receives the lead's video and audio RTP and decodes it; bad input gets its 4xx."""

from __future__ import annotations

import asyncio

import aiohttp

from classroom.server import Server
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.whip_client import WhepPlayer, WhipPublisher


def token(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_whep_player_receives_the_lead(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, token(server, "e1", "lead", "lead"))
    player = WhepPlayer(server.base_url, token(server, "e1", "hall", "observer"))
    try:
        assert (await lead.connect())["type"] == "joined"
        assert (await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")]))["type"] == "publish_answer"
        assert await player.play() == 201, player.body
        assert player.location.startswith("/whep/") and player.etag
        await player.wait_frames("video", 10)
        await player.wait_frames("audio", 10)
        print(f"\nWHEP 201 -> first decoded video frame: {player.first_frame_at['video'] - player.created_at:.3f} s")
        room = server.router.rooms["e1"]
        assert any(p.role == "observer" for p in room.participants.values())
        assert await player.delete() == 200
        assert all(p.role != "observer" for p in room.participants.values())
    finally:
        await player.close()
        await lead.close()


async def test_whep_player_before_the_lead_follows_without_renegotiation(server: Server) -> None:
    """A remote classroom's player joins first; the lead (over WHIP) arrives later: the
    player's m-lines are assigned the lead's tracks, no new offer is needed."""
    player = WhepPlayer(server.base_url, token(server, "e2", "box", "remote"))
    lead = WhipPublisher(server.base_url, token(server, "e2", "obs", "lead"))
    try:
        assert await player.play() == 201, player.body
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        await player.wait_frames("video", 10)
        await player.wait_frames("audio", 10)
        # the lead restarts its encoder (a new WHIP session): the player follows
        await lead.delete()
        await lead.close()
        before = player.frames["video"]
        lead = WhipPublisher(server.base_url, token(server, "e2", "obs", "lead"))
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        await player.wait_frames("video", before + 10)
    finally:
        await lead.close()
        await player.close()


async def test_whep_remote_follows_the_spotlight(server: Server) -> None:
    """A remote classroom's player that offered two video m-lines gets the lead's camera on one
    and, once the lead spotlights another classroom, that classroom's camera on the other; the
    player never renegotiates."""
    lead = ClassroomPeer(server.base_url, token(server, "e4", "lead", "lead"))
    r1 = ClassroomPeer(server.base_url, token(server, "e4", "r1", "remote"))
    player = WhepPlayer(server.base_url, token(server, "e4", "box", "remote"))
    try:
        await lead.connect()
        await r1.connect()
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await r1.publish([(PatternTrack(160, 120), "students"), (ToneTrack(), "students")])
        assert await player.play(("video", "video", "audio")) == 201, player.body
        await player.wait_frames("video", 10)
        await asyncio.sleep(1)
        assert len([n for n in player.track_frames.values() if n > 0]) == 2  # the lead's video and audio
        await lead.send({"type": "spotlight", "classroom_id": "r1"})
        for _ in range(150):
            if len([n for n in player.track_frames.values() if n > 5]) == 3:
                break
            await asyncio.sleep(0.1)
        assert len([n for n in player.track_frames.values() if n > 5]) == 3, dict(player.track_frames)
    finally:
        for p in (player, lead, r1):
            await p.close()


async def _post(server: Server, path: str, body: str, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(server.base_url + path, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_whep_bad_input(server: Server) -> None:
    sdp = {"Content-Type": "application/sdp"}
    status, body = await _post(server, "/whep", "v=0", sdp)
    assert status == 401 and body["error"]["code"] == "token_missing"
    # a lead plays nothing over WHEP (it publishes); nor does a recorder
    for role in ("lead", "recorder"):
        status, body = await _post(server, "/whep", "v=0",
                                   {**sdp, "Authorization": f"Bearer {token(server, 'e3', 'x', role)}"})
        assert status == 403 and body["error"]["code"] == "forbidden", (role, body)
    auth = {"Authorization": f"Bearer {token(server, 'e3', 'o1', 'observer')}"}
    status, body = await _post(server, "/whep", "garbage", {**sdp, **auth})
    assert status == 400 and body["error"]["code"] == "sdp_invalid"
    # a sendonly offer is not a player's
    sender = WhipPublisher(server.base_url, None)
    sender.pc.addTransceiver(PatternTrack(), direction="sendonly")
    offer = await sender.pc.createOffer()
    await sender.pc.setLocalDescription(offer)
    status, body = await _post(server, "/whep", sender.pc.localDescription.sdp, {**sdp, **auth})
    await sender.close()
    assert status == 422 and "recvonly" in body["error"]["message"]
    assert "e3" not in server.router.rooms  # nothing left behind
    # another classroom's token cannot delete a player
    player = WhepPlayer(server.base_url, token(server, "e3", "o1", "observer"))
    try:
        assert await player.play() == 201
        assert await player.delete(token=token(server, "e3", "o2", "observer")) == 403
        status, body = await player.request("PATCH", data="a=ice-ufrag:x\r\n",
                                            headers={"Content-Type": "application/trickle-ice-sdpfrag",
                                                     "If-Match": '"wrong"'})
        assert status == 412 and body["error"]["code"] == "etag_mismatch"
        assert await player.delete() == 200
    finally:
        await player.close()
