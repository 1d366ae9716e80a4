"""SDP and ICE candidates beyond the bounds of sfu/sdpshape.py and sfu/peer.py get ``sdp_invalid``
at once on a real server, without stalling a joined classroom of another lesson (issue #14: one
32 KB offer kept aiortc's parser — and every lesson — busy for 3.2 s); ``publish`` offers beyond a
connection's token bucket (``limits.publish_burst`` / ``publish_per_s``) get ``rate_limited``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from sfu.peer import MAX_REMOTE_CANDIDATES
from tests.fuzz.offers import real_offer
from tests.integration.hostile import PingingClassroom, running_server


def swollen(offer: str) -> str:
    """``offer`` with 700 a=rtpmap and 700 a=rtcp-fb:* lines in its video section (32 KB)."""
    head, tail = offer.split("m=video", 1)
    first, rest = tail.split("\r\n", 1)
    extra = "".join(f"a=rtpmap:{i} VP8/90000\r\n" for i in range(200, 900)) + "a=rtcp-fb:* nack\r\n" * 700
    return head + "m=video" + first + "\r\n" + extra + rest


async def test_a_swollen_offer_is_refused_without_stalling_other_lessons(tmp_path: Path) -> None:
    offer = await real_offer()
    sdp = swollen(offer)
    assert 30_000 < len(sdp) < 64 * 1024
    async with running_server(tmp_path) as srv:
        watch = PingingClassroom(srv.base_url, srv.signer.issue("other", "w", "remote", "w"))
        lead = PingingClassroom(srv.base_url, srv.signer.issue("big", "lead", "lead", "lead"))
        try:
            assert (await watch.join())["type"] == "joined"
            assert (await lead.join())["type"] == "joined"
            pinger = asyncio.create_task(watch.ping_for(1.0, every=0.01))
            await asyncio.sleep(0.05)
            assert lead.ws is not None
            for ref in range(10, 15):
                await lead.ws.send_str(json.dumps({"v": 1, "id": ref, "type": "publish", "sdp": sdp}))
                reply = await lead.reply(ref)
                assert reply["type"] == "error" and reply["code"] == "sdp_invalid", reply
                assert "a=rtpmap" in reply["message"], reply
            await pinger
            assert watch.rtts and max(watch.rtts) < 0.1, max(watch.rtts)
            # the connection is fine: a real offer is answered
            await lead.ws.send_str(json.dumps({"v": 1, "id": 20, "type": "publish", "sdp": offer}))
            assert (await lead.reply(20))["type"] == "publish_answer"
        finally:
            await watch.close()
            await lead.close()


async def test_ice_candidates_beyond_the_cap_are_refused(tmp_path: Path) -> None:
    offer = await real_offer()
    async with running_server(tmp_path) as srv:
        lead = PingingClassroom(srv.base_url, srv.signer.issue("ice", "lead", "lead", "lead"))
        try:
            assert (await lead.join())["type"] == "joined"
            assert lead.ws is not None
            await lead.ws.send_str(json.dumps({"v": 1, "id": 2, "type": "publish", "sdp": offer}))
            assert (await lead.reply(2))["type"] == "publish_answer"
            codes = []
            for i in range(MAX_REMOTE_CANDIDATES + 3):
                ref = 100 + i
                cand = {"candidate": f"candidate:{i} 1 udp 2130706431 127.0.0.1 {20000 + i} typ host",
                        "sdpMid": "0", "sdpMLineIndex": 0}
                await lead.ws.send_str(json.dumps({"v": 1, "id": ref, "type": "ice", "target": "publish",
                                                   "candidate": cand}))
                await lead.ws.send_str(json.dumps({"v": 1, "id": ref + 10_000, "type": "ping"}))
                while True:
                    msg = json.loads((await lead.ws.receive(timeout=10)).data)
                    if msg.get("re") == ref and msg["type"] == "error":
                        codes.append(msg["code"])
                        assert "too many ICE candidates" in msg["message"], msg
                    if msg.get("re") == ref + 10_000:
                        break
            assert codes == ["sdp_invalid"] * 3, codes
        finally:
            await lead.close()


async def test_publish_offers_beyond_the_bucket_are_rate_limited(tmp_path: Path) -> None:
    offer = await real_offer()
    async with running_server(tmp_path, publish_burst=3, publish_per_s=2.0) as srv:
        lead = PingingClassroom(srv.base_url, srv.signer.issue("flood", "lead", "lead", "lead"))
        try:
            assert (await lead.join())["type"] == "joined"
            assert lead.ws is not None
            replies = []
            for ref in range(10, 16):
                await lead.ws.send_str(json.dumps({"v": 1, "id": ref, "type": "publish", "sdp": offer}))
                replies.append(await lead.reply(ref))
            kinds = [r["type"] if r["type"] != "error" else r["code"] for r in replies]
            assert kinds[:3] == ["publish_answer"] * 3 and "rate_limited" in kinds[3:], kinds
            limited = next(r for r in replies if r.get("code") == "rate_limited")
            assert "retry in" in limited["message"], limited
            await asyncio.sleep(0.6)  # refilled: the page's next publish goes through
            await lead.ws.send_str(json.dumps({"v": 1, "id": 30, "type": "publish", "sdp": offer}))
            assert (await lead.reply(30))["type"] == "publish_answer"
        finally:
            await lead.close()
