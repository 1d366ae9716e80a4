"""The aiohttp application: the classroom WebSocket, the static pages, health and metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from sfu.peer import PeerSettings
from signaling.router import LocalRouter
from signaling.session import Session
from signaling.tokens import TokenSigner

log = logging.getLogger(__name__)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "client_web"

ROUTER_KEY = web.AppKey("router", LocalRouter)
SIGNER_KEY = web.AppKey("signer", TokenSigner)


def create_app(
    router: LocalRouter,
    signer: TokenSigner,
    settings: PeerSettings,
    ice_servers: list[dict[str, Any]] | None = None,
    max_message_bytes: int = 64 * 1024,
    client_dir: Path = CLIENT_DIR,
) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[ROUTER_KEY] = router
    app[SIGNER_KEY] = signer
    servers = list(ice_servers or [])

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        # The frame limit is a little above the message limit so an oversized message still
        # arrives whole and gets a proper error reply instead of a closed socket.
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=max_message_bytes * 4)
        await ws.prepare(request)
        session = Session(ws, router, signer, settings, servers, max_message_bytes)
        await session.run()
        return ws

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **router.stats()})

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(client_dir / "index.html")

    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", health)
    app.router.add_get("/", index)
    return app


def add_static_pages(app: web.Application, client_dir: Path = CLIENT_DIR) -> None:
    """Serve client_web/ at ``/``. Register it last: it answers every path it is asked."""
    app.router.add_static("/", client_dir, show_index=False, append_version=False)
