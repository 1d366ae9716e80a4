"""Behind a reverse proxy (``server.behind_proxy``): the proxy terminates TLS and tells the server
who the client was and what it opened with ``X-Forwarded-For`` / ``-Proto`` / ``-Host``.

Only what the proxy itself appended is believed: the *last* ``X-Forwarded-For`` entry (a client can
send its own header, which the proxy extends rather than replaces), and ``-Proto``/``-Host`` only
when they hold one plausible value. Bind the server to 127.0.0.1 in this set-up so that nothing but
the proxy reaches it (deploy/nginx/classroom.conf, docs/https.md).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler


def _last_hop(value: str) -> str | None:
    hop = value.split(",")[-1].strip()
    if hop.startswith("[") and "]" in hop:  # "[2001:db8::1]:1234"
        hop = hop[1 : hop.index("]")]
    elif hop.count(":") == 1:  # "192.0.2.7:1234"
        hop = hop.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def _plausible_host(value: str) -> bool:
    return 0 < len(value) <= 255 and "," not in value and all(c.isalnum() or c in ".-:[]" for c in value)


def forwarded_changes(headers: Any) -> dict[str, str]:
    """What ``request.clone`` should change, from the proxy's headers (pure; unit-tested)."""
    changes: dict[str, str] = {}
    remote = _last_hop(headers.get("X-Forwarded-For", ""))
    if remote:
        changes["remote"] = remote
    proto = headers.get("X-Forwarded-Proto", "").strip().lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    host = headers.get("X-Forwarded-Host", "").strip()
    if host and _plausible_host(host):
        changes["host"] = host
    return changes


@web.middleware
async def forwarded_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    changes = forwarded_changes(request.headers)
    if changes:
        request = request.clone(
            remote=changes.get("remote", request.remote or ""),
            scheme=changes.get("scheme", request.scheme),
            host=changes.get("host", request.host),
        )
    return await handler(request)
