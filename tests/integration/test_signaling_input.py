"""Bad input on the classroom WebSocket: every malformed message gets a clear error, is counted,
and neither the connection nor any lesson is disturbed."""

from __future__ import annotations

import json

from classroom.server import Server
from sfu.stats import SIGNALING
from tests.integration.peers import ClassroomPeer, PatternTrack


def tok(server: Server, lesson: str, classroom: str, role: str, **kw: float) -> str:
    return server.signer.issue(lesson, classroom, role, classroom, **kw)  # type: ignore[arg-type]


async def errors_of(peer: ClassroomPeer) -> dict[str, object]:
    return await peer.expect("error")


async def test_malformed_messages_get_errors_and_the_lesson_goes_on(server: Server) -> None:
    lead = ClassroomPeer(server.base_url, tok(server, "bad", "lead", "lead"))
    remote = ClassroomPeer(server.base_url, tok(server, "bad", "r1", "remote"))
    attacker = ClassroomPeer(server.base_url, tok(server, "bad", "r2", "remote"))
    try:
        await lead.connect()
        await remote.connect()
        await lead.publish([(PatternTrack(), "teacher")])
        await remote.wait_frames("video", 5)
        await attacker.connect()
        cases = [
            ("not json", "bad_json"),
            ("[1,2]", "bad_json"),
            (json.dumps({"type": "ping"}), "bad_version"),
            (json.dumps({"v": 2, "type": "ping"}), "bad_version"),
            (json.dumps({"v": 1, "type": "teleport"}), "unknown_type"),
            (json.dumps({"v": 1, "type": "publish"}), "bad_field"),
            (json.dumps({"v": 1, "type": "publish", "sdp": 5}), "bad_field"),
            (json.dumps({"v": 1, "type": "ice", "target": "moon", "candidate": None}), "bad_field"),
            (json.dumps({"v": 1, "type": "publish", "sdp": "v=0\r\ngarbage"}), "sdp_invalid"),
            (json.dumps({"v": 1, "type": "subscribe_answer", "sdp": "nonsense"}), "sdp_invalid"),
            (json.dumps({"v": 1, "type": "ice", "target": "subscribe",
                         "candidate": {"candidate": "candidate:garbage", "sdpMid": "0"}}), "sdp_invalid"),
            (json.dumps({"v": 1, "type": "join", "token": "x"}), "already_joined"),
            ("x" * 70_000, "message_too_large"),
        ]
        for text, code in cases:
            before = SIGNALING.errors.get(code, 0)
            await attacker.send_raw(text)
            err = await errors_of(attacker)
            assert err["code"] == code, (text[:60], err)
            assert err["message"]
            assert SIGNALING.errors.get(code, 0) == before + 1
        assert attacker.ws is not None
        await attacker.ws.send_bytes(b"\x00\x01")
        assert (await errors_of(attacker))["code"] == "binary_not_supported"
        # The connection still works, and the lesson never stopped.
        await attacker.send({"type": "ping"})
        await attacker.expect("pong")
        mid = remote.mids("video")[0]
        n = remote.frames[mid]
        await remote.wait_frames("video", n + 10)
    finally:
        for p in (lead, remote, attacker):
            await p.close()


async def test_messages_before_join_are_refused(server: Server) -> None:
    peer = ClassroomPeer(server.base_url, "")
    try:
        import aiohttp

        peer.session = aiohttp.ClientSession()
        peer.ws = await peer.session.ws_connect(peer.url)
        import asyncio

        peer._reader = asyncio.get_running_loop().create_task(peer._read())
        await peer.send({"type": "raise_hand"})
        assert (await peer.expect("error"))["code"] == "not_joined"
        await peer.send({"type": "join", "token": "garbage"})
        assert (await peer.expect("error"))["code"] == "token_malformed"
    finally:
        await peer.close()


async def test_token_checks(server: Server) -> None:
    import time

    cases = {
        "token_expired": tok(server, "t", "r1", "remote", not_before=time.time() - 7200,
                             expires=time.time() - 3600),
        "token_not_yet_valid": tok(server, "t", "r1", "remote", not_before=time.time() + 3600,
                                   expires=time.time() + 7200),
        "token_invalid": tok(server, "t", "r1", "remote")[:-4] + "AAAA",
    }
    for code, token in cases.items():
        peer = ClassroomPeer(server.base_url, token)
        try:
            reply = await peer.connect()
            assert reply["type"] == "error" and reply["code"] == code, reply
        finally:
            await peer.close()
