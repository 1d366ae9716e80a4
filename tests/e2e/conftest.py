"""Real headless Chromium (Debian's chromium, driven by playwright) against a real
``classroom serve`` subprocess. The server runs with aiortc's codec factories made to raise
(``glue.forbid_codecs``), so a page that shows video proves packet forwarding."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from signaling.tokens import TokenSigner

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    signer: TokenSigner
    data_dir: Path

    def token(self, lesson: str, classroom: str, role: str, name: str = "") -> str:
        return self.signer.issue(lesson, classroom, role, name or classroom, lesson_title="E2E lesson")

    def get_json(self, path: str) -> dict:  # type: ignore[type-arg]
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return json.loads(r.read())

    def get_text(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as r:
            return r.read().decode()


def start_server_process(tmp: Path, extra_env: dict[str, str] | None = None, port: int = 0) -> ServerProcess:
    port = port or free_port()
    # the node's one media port on a port the kernel picks, unless the test chooses one
    env = {**os.environ, "CLASSROOM_TOKEN_SECRET": SECRET, "CLASSROOM_MEDIA_UDP_PORT": "0", **(extra_env or {})}
    log = open(tmp / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", str(port),
         "--data-dir", str(tmp / "data"), "--no-demo"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(tmp / 'server.log').read_text()}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    return ServerProcess(url, proc, TokenSigner(SECRET.encode()), tmp / "data")


@pytest.fixture
def server_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path)
    try:
        yield srv
    finally:
        srv.proc.terminate()
        try:
            srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
        log = (tmp_path / "server.log").read_text(errors="replace")
        assert "TranscodeForbidden" not in log, log[-3000:]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()
