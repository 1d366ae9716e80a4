"""Helpers for the attack tests: a real server with chosen limits, raw HTTP over a socket (to
send bytes a client library would refuse), a classroom that only joins and pings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from classroom.config import Config
from classroom.server import Server, start_server


@asynccontextmanager
async def running_server(tmp_path: Path, **limits: Any) -> AsyncIterator[Server]:
    config = Config()
    config.server.port = 0
    config.media.udp_port = 0  # the node's one media port, on a port the kernel picks (tests may run side by side)
    config.server.data_dir = str(tmp_path / "data")
    config.server.demo_lesson = False
    for name, value in limits.items():
        assert hasattr(config.limits, name), name
        setattr(config.limits, name, value)
    srv = await start_server(config)
    try:
        yield srv
    finally:
        await srv.stop()


def admin_key(srv: Server) -> tuple[str, str]:
    """A fresh administrator key of the server's first bureau, and the administrator id."""
    store = srv.extras["schedule"]
    bureau = store.list_bureaus()[0]
    admin, key = store.create_admin(bureau.id, "tester")
    return key, admin.id


async def raw_http(
    port: int, head: bytes, body: bytes = b"", timeout: float = 10.0
) -> tuple[int, dict[str, str], bytes]:
    """Send one request exactly as given (``head`` without the final blank line) and read the
    whole answer; returns status, headers (lower-case names), body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        extra = b"Content-Length: %d\r\n" % len(body) if body else b""
        writer.write(head.rstrip(b"\r\n") + b"\r\n" + extra + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


class PingingClassroom:
    """A classroom that joins over a real WebSocket and measures ping → pong round trips."""

    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.replace("http", "ws", 1) + "/ws"
        self.token = token
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.rtts: list[float] = []

    async def join(self) -> dict[str, Any]:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url)
        await self.ws.send_str(json.dumps({"v": 1, "id": 1, "type": "join", "token": self.token}))
        return await self.reply(1)

    async def reply(self, ref: int, timeout: float = 10.0) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data.get("re") == ref:
                return dict(data)

    async def next_error(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["type"] == "error":
                return dict(data)

    async def ping_for(self, seconds: float, every: float = 0.02) -> None:
        assert self.ws is not None
        end = time.monotonic() + seconds
        ref = 1000
        while time.monotonic() < end:
            ref += 1
            sent = time.monotonic()
            await self.ws.send_str(json.dumps({"v": 1, "id": ref, "type": "ping"}))
            reply = await self.reply(ref)
            assert reply["type"] == "pong"
            self.rtts.append(time.monotonic() - sent)
            await asyncio.sleep(every)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
