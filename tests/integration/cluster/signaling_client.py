"""A classroom that only joins (no media): the placement tests' bots."""

from __future__ import annotations

from typing import Any

import aiohttp


class JoinOnly:
    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.replace("http", "ws", 1) + "/ws"
        self.token = token
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def join(self, timeout: float = 20.0) -> dict[str, Any]:
        self.http = aiohttp.ClientSession()
        self.ws = await self.http.ws_connect(self.url)
        await self.ws.send_json({"v": 1, "id": 1, "type": "join", "token": self.token})
        while True:
            msg = await self.ws.receive_json(timeout=timeout)
            if msg.get("type") in ("joined", "error"):
                return dict(msg)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()
