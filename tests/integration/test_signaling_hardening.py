"""Oversized frames, wrongly typed ICE candidates and failed publishes on the real server: each is
answered with an ``error``, and nothing is left behind (issue #14, item 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
from aiortc import RTCPeerConnection

from tests.integration.hostile import PingingClassroom, running_server
from tests.integration.peers import PatternTrack

CANDIDATE = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"


async def unsupported_codec_offer() -> str:
    """An offer that parses but cannot be negotiated: its only video codec is unknown."""
    pc = RTCPeerConnection()
    pc.addTransceiver(PatternTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    lines = [line for line in sdp.split("\r\n") if not re.match(r"a=(rtpmap|rtcp-fb|fmtp)", line)]
    sdp = "\r\n".join(lines)
    sdp = re.sub(r"(m=video \d+ UDP/TLS/RTP/SAVPF)[ \d]+", r"\1 96", sdp)
    return sdp.replace("a=mid:0", "a=mid:0\r\na=rtpmap:96 FOO/90000")


async def test_an_oversized_frame_gets_an_error_and_the_classroom_stays(tmp_path: Path) -> None:
    async with running_server(tmp_path) as srv:
        classroom = PingingClassroom(srv.base_url, srv.signer.issue("big", "r1", "remote", "r1"))
        assert (await classroom.join())["type"] == "joined"
        assert classroom.ws is not None
        await classroom.ws.send_str(json.dumps({"v": 1, "id": 5, "type": "ping", "pad": "x" * 300_000}))
        error = await classroom.next_error()  # (too large to be read: no ``re``)
        assert error["type"] == "error" and error["code"] == "message_too_large", error
        await classroom.ping_for(0.1)
        assert srv.router.connected("big") == ["r1"]
        # Over the transport's own limit (limits.max_frame_bytes): the error first, then 1009.
        await classroom.ws.send_str("y" * (srv.config.limits.max_frame_bytes + 10))
        msg = await classroom.ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        assert json.loads(msg.data)["code"] == "message_too_large"
        assert (await classroom.ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert classroom.ws.close_code == 1009
        await classroom.close()


async def test_failed_publish_is_torn_down_and_bad_candidates_get_errors(tmp_path: Path) -> None:
    async with running_server(tmp_path) as srv:
        lead = PingingClassroom(srv.base_url, srv.signer.issue("pub", "lead", "lead", "lead"))
        joined = await lead.join()
        assert lead.ws is not None
        room = srv.router.room("pub")
        participant = room.participants[joined["participant_id"]]

        await lead.ws.send_str(json.dumps({"v": 1, "id": 2, "type": "publish", "sdp": await unsupported_codec_offer()}))
        error = await lead.reply(2, timeout=15)
        assert error["type"] == "error" and error["code"] == "sdp_invalid", error
        assert participant.publisher is None
        assert participant.participant_id not in room.media.publishers

        cases = [
            ({"candidate": CANDIDATE, "sdpMid": 7}, "bad_field"),
            ({"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": "x"}, "bad_field"),
            ({"candidate": 5}, "bad_field"),
            ({"candidate": CANDIDATE, "sdpMLineIndex": True}, "bad_field"),
            ({"candidate": CANDIDATE, "sdpMid": "0"}, "bad_field"),  # nothing published: refused too
        ]
        for n, (candidate, code) in enumerate(cases, start=10):
            for target in ("publish", "subscribe"):
                await lead.ws.send_str(json.dumps({"v": 1, "id": n, "type": "ice", "target": target,
                                                   "candidate": candidate}))  # fmt: skip
                if target == "subscribe" and n == 14:
                    continue  # a well-typed candidate for the subscribe connection is applied
                reply = await lead.reply(n)
                assert reply["type"] == "error" and reply["code"] == code, (candidate, target, reply)
                assert "ice" in reply["message"]
        await lead.ping_for(0.1)
        await lead.close()
