"""``classroom healthcheck`` (the compose health probe) against a real server over plain HTTP and
over HTTPS with the certificate the server made for itself, and against a port nobody serves."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

from classroom.server import start_server
from tests.integration.conftest import server_config


async def _healthcheck(port: int) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "classroom.cli", "healthcheck", "--port", str(port), "--timeout", "3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return int(proc.returncode or 0), out.decode()


async def test_healthy_over_http_and_https(tmp_path: Path) -> None:
    srv = await start_server(server_config(tmp_path / "plain"))
    try:
        code, out = await _healthcheck(srv.port)
        assert code == 0 and "http://127.0.0.1" in out, out
    finally:
        await srv.stop()
    config = server_config(tmp_path / "tls")
    config.server.tls = "on"
    srv = await start_server(config)
    try:
        assert srv.tls is not None
        code, out = await _healthcheck(srv.port)
        assert code == 0 and "https://127.0.0.1" in out, out
    finally:
        await srv.stop()


async def test_unhealthy_when_nothing_answers() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = await _healthcheck(port)  # bound, not listening: connection refused
    assert code == 1 and "UNHEALTHY" in out, out
