"""Caps on unauthenticated connections, and the HTTP runner that enforces them (docs/security.md).

A connection is *unauthenticated* from its TCP accept until it has sent a complete request
head, and a classroom WebSocket again from its upgrade until it has joined. Both kinds count
against one global cap and one cap per client address (``signaling/limits.py``). Over a cap a
new TCP connection gets ``503`` (global) / ``429`` (its address) with ``Retry-After`` and a JSON
error, and is closed; a WebSocket upgrade gets the same answer instead of the upgrade.

:class:`GuardedRunner` is aiohttp's ``AppRunner`` with the guard hooked into the server's
connection callbacks, and with the keep-alive timeout set to ``http_header_timeout_s``: aiohttp
arms that timer when a connection is made and after each response, and closes a connection that
is still waiting for a complete request head when it fires (the slow-header guard).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from signaling.limits import Limits

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Refused:
    status: int  # 503: the server's cap; 429: this address's cap
    message: str

    def body(self) -> dict[str, Any]:
        return {"error": {"code": "too_many_connections", "message": self.message,
                          "retry_after": RETRY_AFTER_S}}  # fmt: skip


class ConnectionGuard:
    """Counts unauthenticated connections per address; pure bookkeeping."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.by_address: dict[str, int] = {}
        self.total = 0
        self.refused = 0
        self.join_timeouts = 0

    def acquire(self, address: str) -> Refused | None:
        lim = self.limits
        if lim.max_unauthenticated and self.total >= lim.max_unauthenticated:
            self.refused += 1
            return Refused(503, f"the server has {self.total} unauthenticated connections already "
                                f"(limits.max_unauthenticated); retry in {RETRY_AFTER_S} s")  # fmt: skip
        mine = self.by_address.get(address, 0)
        if lim.max_unauthenticated_per_address and mine >= lim.max_unauthenticated_per_address:
            self.refused += 1
            return Refused(429, f"{address} has {mine} unauthenticated connections already "
                                f"(limits.max_unauthenticated_per_address); retry in {RETRY_AFTER_S} s")  # fmt: skip
        self.by_address[address] = mine + 1
        self.total += 1
        return None

    def release(self, address: str) -> None:
        mine = self.by_address.get(address, 0)
        if mine <= 0:
            return
        self.total -= 1
        if mine == 1:
            del self.by_address[address]
        else:
            self.by_address[address] = mine - 1

    def slot(self, address: str) -> Callable[[], None] | Refused:
        """Acquire one slot; returns its (idempotent) release, or the refusal."""
        refused = self.acquire(address)
        if refused is not None:
            return refused
        held = [True]

        def release() -> None:
            if held[0]:
                held[0] = False
                self.release(address)

        return release


def refusal_response(refused: Refused) -> web.Response:
    return web.json_response(refused.body(), status=refused.status,
                             headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip


def _raw_refusal(refused: Refused) -> bytes:
    body = json.dumps(refused.body()).encode()
    reason = "Service Unavailable" if refused.status == 503 else "Too Many Requests"
    head = (
        f"HTTP/1.1 {refused.status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _peer_address(transport: Any) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer or "")


def guard_server(server: web.Server, guard: ConnectionGuard) -> None:
    """Hook ``guard`` into ``server``'s connection callbacks (before it accepts connections)."""
    waiting: dict[RequestHandler, str] = {}  # connections that have sent no request head yet
    made, lost, factory = server.connection_made, server.connection_lost, server.request_factory

    def connection_made(handler: RequestHandler, transport: Any) -> None:
        made(handler, transport)
        address = _peer_address(transport)
        refused = guard.acquire(address)
        if refused is not None:
            log.info("connection from %s refused: %s", address, refused.message)
            transport.write(_raw_refusal(refused))
            handler.force_close()
            return
        waiting[handler] = address

    def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
        address = waiting.pop(handler, None)
        if address is not None:
            guard.release(address)
        lost(handler, exc)
        # aiohttp leaves a WebSocket's heartbeat callback on the closed connection's handler:
        # handler -> WebSocketResponse -> request -> handler, a cycle that only a full garbage
        # collection frees (~40 objects per closed classroom connection; the fuzzers' bursts of
        # reconnects made those collections the longest event-loop stalls, docs/reliability.md).
        if getattr(handler, "_data_received_cb", None) is not None:
            handler._data_received_cb = None

    def request_factory(message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> Any:
        address = waiting.pop(protocol, None)
        if address is not None:
            guard.release(address)
        return factory(message, payload, protocol, writer, task)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]
    server.request_factory = request_factory


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` with the connection guard and the request-head timeout."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", guard.limits.http_header_timeout_s or 3630.0)
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        guard_server(server, self.guard)
        return server
