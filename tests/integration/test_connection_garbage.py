"""A closed classroom WebSocket leaves little cyclic garbage (issue #14): what only a full garbage
collection frees is what made those collections the longest event-loop stalls under the fuzzers'
bursts of reconnects. aiohttp's heartbeat callback kept each closed connection's handler, socket,
request and ~40 objects in a cycle; ``signaling/connguard.py`` breaks it."""

from __future__ import annotations

import asyncio
import gc
import json
from collections import Counter
from pathlib import Path

import aiohttp

from tests.integration.hostile import running_server

CONNECTIONS = 30


async def test_closed_classroom_connections_leave_little_cyclic_garbage(tmp_path: Path) -> None:
    async with running_server(tmp_path) as srv:
        url = srv.base_url.replace("http", "ws", 1) + "/ws"
        token = srv.signer.issue("garbage", "r1", "remote", "r1")

        async def once(http: aiohttp.ClientSession) -> None:
            async with http.ws_connect(url) as ws:
                await ws.send_str(json.dumps({"v": 1, "id": 1, "type": "join", "token": token}))
                await ws.send_str(json.dumps({"v": 1, "id": 2, "type": "ping"}))
                while json.loads((await ws.receive(timeout=10)).data).get("re") != 2:
                    pass

        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                await once(http)  # warm: lazily made objects
            gc.collect()
            gc.set_debug(gc.DEBUG_SAVEALL)
            try:
                for _ in range(CONNECTIONS):
                    await once(http)
                await asyncio.sleep(0.3)
                gc.collect()
                kinds = Counter(type(o).__name__ for o in gc.garbage)
            finally:
                gc.garbage.clear()
                gc.set_debug(0)
    # (this counts the test's own client side too: its sockets and transports)
    assert kinds["RequestHandler"] == 0 and kinds["ClassroomSocket"] == 0, kinds.most_common(12)
    assert sum(kinds.values()) / CONNECTIONS < 25, kinds.most_common(12)
