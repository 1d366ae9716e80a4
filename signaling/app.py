"""The aiohttp application: the classroom WebSocket, the static pages, health and metrics."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from sfu.peer import PeerSettings
from signaling.bucket import TokenBucket
from signaling.connguard import ConnectionGuard, refusal_response
from signaling.ice_servers import IceServerSource
from signaling.limits import Limits
from signaling.routing.base import Router
from signaling.session import ClassroomSocket, Session
from signaling.tokens import TokenSigner

log = logging.getLogger(__name__)

CLIENT_DIR = Path(__file__).resolve().parent.parent / "client_web"

ROUTER_KEY = web.AppKey("router", Router)
SIGNER_KEY = web.AppKey("signer", TokenSigner)
GUARD_KEY = web.AppKey("connection_guard", ConnectionGuard)


def create_app(
    router: Router,
    signer: TokenSigner,
    settings: PeerSettings,
    ice_servers: IceServerSource | None = None,
    max_message_bytes: int = 64 * 1024,
    client_dir: Path = CLIENT_DIR,
    limits: Limits | None = None,
) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    limits = limits or Limits()
    guard = ConnectionGuard(limits)
    app[ROUTER_KEY] = router
    app[SIGNER_KEY] = signer
    app[GUARD_KEY] = guard
    servers: IceServerSource = ice_servers if ice_servers is not None else []
    # The transport's frame limit is well above the protocol's message limit: an oversized
    # message arrives whole and gets `message_too_large` while the connection stays.
    frame_limit = max(limits.max_frame_bytes, max_message_bytes)

    def publish_bucket() -> TokenBucket | None:
        if limits.publish_burst > 0 and limits.publish_per_s > 0:
            return TokenBucket(limits.publish_burst, limits.publish_per_s)
        return None

    async def websocket(request: web.Request) -> web.StreamResponse:
        slot = guard.slot(request.remote or "")
        if not callable(slot):
            log.info("classroom WebSocket from %s refused: %s", request.remote, slot.message)
            return refusal_response(slot)
        try:
            ws = ClassroomSocket(heartbeat=20.0, max_msg_size=frame_limit)
            await ws.prepare(request)
            session = Session(ws, router, signer, settings, servers, max_message_bytes,
                              join_timeout_s=limits.join_timeout_s, on_joined=slot,
                              publish_bucket=publish_bucket())  # fmt: skip
            try:
                await session.run()
            finally:
                ws.stop_heartbeat()
            if session.join_timed_out:
                guard.join_timeouts += 1
        finally:
            slot()
        return ws

    # a connection relayed from another node (signaling/routing/redis.py) gets a session here too,
    # with the same per-connection publish limit (its connection caps are the edge node's)
    router.set_session_factory(lambda sock: Session(sock, router, signer, settings, servers, max_message_bytes,
                                                    publish_bucket=publish_bucket()))

    async def health(request: web.Request) -> web.Response:
        # "tasks": the server's live asyncio tasks (read-only; the soak test watches it return to baseline)
        return web.json_response({"status": "ok", **router.health(), "tasks": len(asyncio.all_tasks())})

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(client_dir / "index.html")

    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", health)
    app.router.add_get("/", index)
    return app


def add_static_pages(app: web.Application, client_dir: Path = CLIENT_DIR) -> None:
    """Serve client_web/ at ``/``. Register it last: it answers every path it is asked."""
    app.router.add_static("/", client_dir, show_index=False, append_version=False)
