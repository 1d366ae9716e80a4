"""WHIP ingest (POST /whip) against a real server: an aiortc peer publishes as the lead, a
WebSocket remote classroom (a real aiortc peer) decodes it; every bad input gets its 4xx."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from classroom.server import Server, start_server
from sfu.stats import SIGNALING
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.whip_client import WhipPublisher


def token(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_whip_lead_reaches_a_websocket_remote(server: Server) -> None:
    remote = ClassroomPeer(server.base_url, token(server, "w1", "r1", "remote"))
    lead = WhipPublisher(server.base_url, token(server, "w1", "obs", "lead"))
    try:
        assert (await remote.connect())["type"] == "joined"
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        assert lead.headers["Content-Type"].startswith("application/sdp")
        assert lead.location.startswith("/whip/") and lead.etag.startswith('"')
        assert lead.headers["Access-Control-Allow-Origin"] == "*"
        assert "Link" not in lead.headers  # no TURN configured
        joined = await remote.expect("participant_joined")
        while joined["participant"]["classroom_id"] != "obs":  # its own join first
            joined = await remote.expect("participant_joined")
        assert joined["participant"]["classroom_id"] == "obs" and joined["participant"]["role"] == "lead"
        await remote.wait_frames("video", 10, classroom_id="obs")
        await remote.wait_frames("audio", 10, classroom_id="obs")
        first = min(remote.first_frame_at.values())
        print(f"\nWHIP 201 -> first decoded frame at the WebSocket remote: {first - lead.created_at:.3f} s")
        sources = sorted(t["source"] for t in remote.tracks if t.get("track_id"))
        assert sources == ["teacher", "teacher"]
        assert server.router.rooms["w1"].lead is not None
        # a trickled candidate (same ufrag) is accepted; a PATCH of the same ETag works
        status, _ = await lead.request("PATCH", data="a=ice-ufrag:" + _ufrag(lead) +
                                       "\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n",
                                       headers={"Content-Type": "application/trickle-ice-sdpfrag",
                                                "If-Match": lead.etag})
        assert status == 204
        assert await lead.delete() == 200
        left = await remote.expect("participant_left")
        assert left["participant"]["classroom_id"] == "obs"
        assert "w1" not in server.router.rooms or server.router.rooms["w1"].lead is None
    finally:
        await lead.close()
        await remote.close()


async def test_whip_ice_restart(server: Server) -> None:
    """RFC 9725 section 4.4.2: PATCH with a new ice-ufrag/ice-pwd restarts ICE on the live
    session; the answer is 200 with the server's new credentials and candidates and a new ETag;
    the DTLS/SRTP session is kept and the remote keeps decoding the lead."""
    remote = ClassroomPeer(server.base_url, token(server, "wr", "r1", "remote"))
    lead = WhipPublisher(server.base_url, token(server, "wr", "obs", "lead"))
    try:
        assert (await remote.connect())["type"] == "joined"
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        await remote.wait_frames("video", 10, classroom_id="obs")
        publisher = server.router.rooms["wr"].lead.publisher  # type: ignore[union-attr]
        conn = publisher.pc.getTransceivers()[0].receiver.transport.transport._connection
        for _ in range(50):  # the restart needs the first negotiation to be over
            if conn._check_list_done and conn._nominated:
                break
            await asyncio.sleep(0.1)
        old_etag, old_pair, old_local = lead.etag, conn._nominated[1], conn.local_username
        for round_ in range(2):
            started = time.monotonic()
            status, body = await lead.restart_ice()
            assert status == 200, body
            assert lead.last_headers["Content-Type"].startswith("application/trickle-ice-sdpfrag")
            assert lead.etag != old_etag and "a=candidate:" in body and "a=end-of-candidates" in body
            assert f"a=ice-ufrag:{conn.local_username}" in body and conn.local_username != old_local
            for _ in range(100):
                if conn._nominated.get(1) not in (None, old_pair):
                    break
                await asyncio.sleep(0.05)
            assert conn._nominated.get(1) not in (None, old_pair), "no new pair nominated"
            print(f"\nICE restart {round_ + 1}: new pair nominated {time.monotonic() - started:.3f} s after the PATCH")
            before = remote.frames[remote.mids("video", classroom_id="obs")[0]]
            await remote.wait_frames("video", before + 10, classroom_id="obs")  # media flows on
            old_etag, old_pair, old_local = lead.etag, conn._nominated[1], conn.local_username
        # the old ETag no longer matches; the session is still the same participant
        status, body = await lead.request("PATCH", data="a=end-of-candidates\r\n",
                                          headers={"Content-Type": "application/trickle-ice-sdpfrag",
                                                   "If-Match": '"0000"'})
        assert status == 412
        assert server.router.rooms["wr"].lead is not None
        # a restart the client never follows leaves ICE connecting: a second one is refused
        frag = {"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*"}
        status, body = await lead.request("PATCH", data="a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n",
                                          headers=frag)
        assert status == 200, body
        status, body = await lead.request("PATCH", data="a=ice-ufrag:efgh\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n",
                                          headers=frag)
        assert status == 422 and body["error"]["code"] == "ice_restart_unsupported", body
        assert "still connecting" in body["error"]["message"]
        assert await lead.delete() == 200
    finally:
        await lead.close()
        await remote.close()


def _ufrag(peer: WhipPublisher) -> str:
    sdp = peer.pc.localDescription.sdp
    return next(line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=ice-ufrag:"))


async def _post(server: Server, path: str, body: str | bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as s, s.post(server.base_url + path, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_whip_bad_input(server: Server) -> None:
    SIGNALING.reset()
    sdp = {"Content-Type": "application/sdp"}
    lead_token = token(server, "w2", "lead", "lead")
    # no token, a bad token
    status, body = await _post(server, "/whip", "v=0", sdp)
    assert status == 401 and body["error"]["code"] == "token_missing"
    status, body = await _post(server, "/whip", "v=0", {**sdp, "Authorization": "Bearer nonsense"})
    assert status == 401 and body["error"]["code"]
    # wrong role: an observer (and a recorder) may not publish
    status, body = await _post(server, "/whip", "v=0",
                               {**sdp, "Authorization": f"Bearer {token(server, 'w2', 'o1', 'observer')}"})
    assert status == 403 and body["error"]["code"] == "forbidden"
    # garbage SDP, a wrong content type, an oversized body
    auth = {"Authorization": f"Bearer {lead_token}"}
    status, body = await _post(server, "/whip", "this is not SDP\x00", {**sdp, **auth})
    assert status == 400 and body["error"]["code"] == "sdp_invalid"
    status, body = await _post(server, "/whip", "v=0", {"Content-Type": "text/plain", **auth})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    status, body = await _post(server, "/whip", "v=0\r\n" + "a=x\r\n" * 20000, {**sdp, **auth})
    assert status == 413 and body["error"]["code"] == "body_too_large"
    # a remote's label decides what it may publish, as on the WebSocket
    remote = WhipPublisher(server.base_url, token(server, "w2", "r1", "remote"))
    assert await remote.publish([PatternTrack()], source="teacher") == 403
    assert remote.body["error"]["code"] == "forbidden" and "teacher" in remote.body["error"]["message"]
    await remote.close()
    # a WebSocket lead is in the lesson: a WHIP lead of another classroom is refused
    ws_lead = ClassroomPeer(server.base_url, token(server, "w2", "lead-ws", "lead"))
    first = WhipPublisher(server.base_url, lead_token)
    other = WhipPublisher(server.base_url, token(server, "w2", "r2", "remote"))
    try:
        assert (await ws_lead.connect())["type"] == "joined"
        assert await first.publish([PatternTrack(), ToneTrack()]) == 409
        assert first.body["error"]["code"] == "lead_present"
        await ws_lead.close()
        await asyncio.sleep(0.3)
        first = WhipPublisher(server.base_url, lead_token)
        assert await first.publish([PatternTrack(), ToneTrack()]) == 201, first.body
        second = WhipPublisher(server.base_url, token(server, "w2", "lead2", "lead"))
        assert await second.publish([PatternTrack()]) == 409 and second.body["error"]["code"] == "lead_present"
        await second.close()
        assert await other.publish([PatternTrack(), ToneTrack()]) == 201, other.body
        # PATCH: a wrong ETag, an ICE restart without its password or with bad credentials,
        # the wrong content type
        frag = {"Content-Type": "application/trickle-ice-sdpfrag"}
        status, body = await first.request("PATCH", data="a=ice-ufrag:x\r\n", headers={**frag, "If-Match": '"nope"'})
        assert status == 412 and body["error"]["code"] == "etag_mismatch"
        status, body = await first.request("PATCH", data="a=ice-ufrag:zzzz\r\n", headers={**frag, "If-Match": "*"})
        assert status == 400 and body["error"]["code"] == "sdp_invalid" and "ice-pwd" in body["error"]["message"]
        status, body = await first.request("PATCH", data="a=ice-ufrag:zzzz\r\na=ice-pwd:short\r\n",
                                           headers={**frag, "If-Match": "*"})
        assert status == 422 and body["error"]["code"] == "ice_restart_unsupported", body
        status, body = await first.request("PATCH", data="x", headers={"Content-Type": "application/sdp"})
        assert status == 415
        status, body = await first.request("PATCH", data="a=candidate:garbage\r\n", headers=frag)
        assert status == 422 and body["error"]["code"] == "candidate_invalid"
        # DELETE of another's resource, without a token, of nothing
        assert await first.delete(token=other.token) == 403
        status, body = await first.request("DELETE", token="")
        assert status == 401
        async with aiohttp.ClientSession() as s, s.delete(server.base_url + "/whip/nothing-here", headers=auth) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        # the refusals disturbed nothing: both publishers are still in the lesson
        room = server.router.rooms["w2"]
        assert {p.classroom_id for p in room.participants.values()} == {"lead", "r2"}
        assert await first.delete() == 200
        assert await first.delete() == 404  # gone
        for code in ("token_missing", "forbidden", "sdp_invalid", "lead_present", "etag_mismatch", "not_found"):
            assert SIGNALING.errors.get(code, 0) >= 1, (code, SIGNALING.errors)
    finally:
        for peer in (first, other):
            await peer.close()
        await ws_lead.close()


async def test_whip_cors_preflight(server: Server) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.options(server.base_url + "/whip", headers={"Origin": "https://obs.example",
                                                                 "Access-Control-Request-Method": "POST"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "*"
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            assert r.headers["Accept-Post"] == "application/sdp"
            assert "Location" in r.headers["Access-Control-Expose-Headers"]


async def test_whip_link_headers_for_turn(tmp_path: Path) -> None:
    config = server_config(tmp_path)
    config.media.turn_url = "turn:127.0.0.1:3478"
    config.media.turn_secret = "s3cret-for-the-test"
    srv = await start_server(config)
    lead = WhipPublisher(srv.base_url, token(srv, "w3", "lead", "lead"))
    try:
        assert await lead.publish([PatternTrack()]) == 201, lead.body
        links = lead.headers.getall("Link")
        assert len(links) == 2 and links[0].startswith('<turn:127.0.0.1:3478>; rel="ice-server"; username="')
        assert links[1].startswith('<turn:127.0.0.1:3478?transport=tcp>; rel="ice-server"')  # media.turn_tcp
        assert 'credential-type="password"' in links[0]
        username = links[0].split('username="')[1].split('"')[0]
        assert int(username.split(":")[0]) > time.time()  # time-limited credentials
    finally:
        await lead.close()
        await srv.stop()


async def test_whip_lead_is_recorded_and_analysed(tmp_path: Path) -> None:
    """A WHIP publisher is a classroom like any other: the recorder records its tracks and the
    report counts it."""
    srv = await start_server(server_config(tmp_path, recording=True))
    lead = WhipPublisher(srv.base_url, token(srv, "wrec", "obs", "lead"))
    remote = ClassroomPeer(srv.base_url, token(srv, "wrec", "r1", "remote"))
    try:
        assert (await remote.connect())["type"] == "joined"
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        await remote.wait_frames("video", 5, classroom_id="obs")
        await asyncio.sleep(4)
        assert await lead.delete() == 200
        await remote.close()
        directory = srv.config.data_path / "recordings" / "wrec"
        for _ in range(300):
            if (directory / "report" / "report.html").exists():
                break
            await asyncio.sleep(0.1)
        manifest = json.loads((directory / "manifest.json").read_text())
        kinds = sorted((t["kind"], t["source"], t["classroom_id"]) for t in manifest["tracks"])
        assert ("audio", "teacher", "obs") in kinds and ("video", "teacher", "obs") in kinds, kinds
        report = json.loads((directory / "report" / "report.json").read_text())
        assert report["lesson_id"] == "wrec"
        assert "obs" in json.dumps(report)
    finally:
        await lead.close()
        await remote.close()
        await srv.stop()


async def test_whip_body_that_never_arrives_is_cut_off(server: Server) -> None:
    """A client that sends headers and then too little of its body gets 408 within the read
    timeout; the server goes on answering."""
    host, port = server.base_url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (f"POST /whip HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token(server, 'w4', 'lead', 'lead')}\r\n"
            "Content-Type: application/sdp\r\nContent-Length: 1000\r\n\r\nv=0\r\n")
    started = time.monotonic()
    writer.write(head.encode())
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 15)
    elapsed = time.monotonic() - started
    writer.close()
    assert b" 408 " in status, status
    assert 4 < elapsed < 8, elapsed
    async with aiohttp.ClientSession() as s, s.get(server.base_url + "/healthz") as r:
        assert r.status == 200
