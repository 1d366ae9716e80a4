"""Unauthenticated connections cost bounded resources on the real server: a WebSocket that never
joins is told and closed at the join deadline, too many of them (per address) are refused with a
JSON 429, a slow request head is cut off, and the counts return to zero (issue #14, item 7)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from signaling.app import GUARD_KEY
from tests.integration.hostile import PingingClassroom, raw_http, running_server


async def test_a_websocket_that_never_joins_is_closed_at_the_deadline(tmp_path: Path) -> None:
    async with running_server(tmp_path, join_timeout_s=1.0) as srv:
        guard = srv.app[GUARD_KEY]
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(srv.base_url.replace("http", "ws") + "/ws")
            opened = time.monotonic()
            msg = await ws.receive(timeout=5)
            assert msg.type == aiohttp.WSMsgType.TEXT
            error = json.loads(msg.data)
            assert error["type"] == "error" and error["code"] == "join_timeout", error
            assert "join" in error["message"]
            closing = await ws.receive(timeout=5)
            assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1008
            assert 0.9 < time.monotonic() - opened < 3.0
            # a classroom that joins in time stays past the deadline
            classroom = PingingClassroom(srv.base_url, srv.signer.issue("lim", "r1", "remote", "r1"))
            assert (await classroom.join())["type"] == "joined"
            await asyncio.sleep(1.5)
            await classroom.ping_for(0.1)
            await classroom.close()
        assert guard.join_timeouts == 1
        await asyncio.sleep(0.1)
        assert guard.total == 0


async def test_unjoined_websockets_are_capped_per_address(tmp_path: Path) -> None:
    async with running_server(tmp_path, max_unauthenticated_per_address=20) as srv:
        guard = srv.app[GUARD_KEY]
        url = srv.base_url.replace("http", "ws") + "/ws"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            held = [await http.ws_connect(url) for _ in range(20)]
            assert guard.total == 20
            try:
                await http.ws_connect(url)
                raise AssertionError("the 21st unjoined WebSocket was accepted")
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 429
            async with http.get(url) as resp:  # the same refusal as plain HTTP shows its body
                assert resp.status == 429
                assert int(resp.headers["Retry-After"]) >= 1
                body = await resp.json()
                assert body["error"]["code"] == "too_many_connections"
                assert "unauthenticated" in body["error"]["message"]
            # a joined classroom no longer counts: it frees its slot
            await held[0].send_str(json.dumps({"v": 1, "id": 1, "type": "join",
                                               "token": srv.signer.issue("cap", "r1", "remote", "r1")}))  # fmt: skip
            while json.loads((await held[0].receive(timeout=5)).data)["type"] != "joined":
                pass
            assert guard.total == 19
            extra = await http.ws_connect(url)
            for ws in [*held, extra]:
                await ws.close()
        await asyncio.sleep(0.2)
        assert guard.total == 0 and not guard.by_address


async def test_slow_request_heads_are_cut_off_and_capped(tmp_path: Path) -> None:
    async with running_server(tmp_path, http_header_timeout_s=1.0, max_unauthenticated_per_address=5) as srv:
        guard = srv.app[GUARD_KEY]
        # a slow-header client: one header line every 0.3 s, never finishing
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        for i in range(20):
            await asyncio.sleep(0.3)
            writer.write(b"X-Slow-%d: y\r\n" % i)
            try:
                await writer.drain()
                data = await asyncio.wait_for(reader.read(100), 0.01)
            except (TimeoutError, ConnectionError):
                continue
            if data == b"":
                closed_after = time.monotonic() - started
                break
        writer.close()
        assert closed_after is not None and closed_after < 2.5, closed_after
        # connections that send nothing count against the per-address cap
        idle = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(5)]
        await asyncio.sleep(0.1)
        assert guard.total == 5
        status, headers, body = await raw_http(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x")
        assert status == 429 and json.loads(body)["error"]["code"] == "too_many_connections"
        assert headers["retry-after"]
        for _, w in idle:
            w.close()
        await asyncio.sleep(0.2)
        assert guard.total == 0
        status, _, _ = await raw_http(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x")
        assert status == 200
