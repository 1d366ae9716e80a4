"""A classroom behind a strict firewall: Chromium forced to relay every packet through a real
coturn (time-limited credentials from a shared secret) still plays the lead."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import ServerProcess, free_port, start_server_process
from tests.e2e.test_live_lesson_e2e import LIVE, open_page, page_url, wait_for

pytestmark = pytest.mark.e2e
TURN_SECRET = secrets.token_hex(16)


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def turn_secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "turn_secret"
    path.write_text(TURN_SECRET + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


@pytest.fixture
def turn_port(tmp_path: Path, turn_secret_file: Path) -> Iterator[int]:
    """coturn as deploy/compose.yaml starts it (deploy/coturn/entrypoint.sh + turnserver.conf, the
    secret from a file, never on a command line), on loopback."""
    port = free_port()
    assert shutil.which("turnserver"), "coturn is missing: tests/run.sh installs it"
    env = dict(os.environ, TURN_CONFIG=str(REPO / "deploy/coturn/turnserver.conf"),
               TURN_SECRET_FILE=str(turn_secret_file), TURN_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        ["sh", str(REPO / "deploy/coturn/entrypoint.sh"), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--allow-loopback-peers", f"--pidfile={tmp_path}/turn.pid"],
        env=env, stdout=open(tmp_path / "turn.log", "wb"), stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "turn.log").read_text()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def turn_server_proc(tmp_path: Path, turn_port: int, turn_secret_file: Path) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path, {
        "CLASSROOM_MEDIA_TURN_URL": f"turn:127.0.0.1:{turn_port}",
        "CLASSROOM_MEDIA_TURN_SECRET_FILE": str(turn_secret_file),
    })
    try:
        yield srv
    finally:
        srv.proc.terminate()
        srv.proc.wait(10)


async def test_relay_only_classroom_plays_the_lead(turn_server_proc: ServerProcess, browser: Browser) -> None:
    srv = turn_server_proc
    lead = await open_page(browser, page_url(srv, "lead.html", "turn", "lead", "lead"))
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
    remote = await open_page(browser, page_url(srv, "remote.html", "turn", "r1", "remote") + "&relay=1")
    await wait_for(lambda: remote.evaluate("document.getElementById('main').videoWidth > 0"), 30,
                   "the relayed classroom plays the lead")
    # Every candidate pair the page used is a relay one. The stats of the pair that carries the
    # video can lag the first decoded frame (and a rejoin replaces `sub`): poll for them.
    succeeded = """async () => {
        const r = await window.classroom.sub.getStats(); const out = [];
        r.forEach(s => { if (s.type === 'candidate-pair' && s.state === 'succeeded') {
            const local = r.get(s.localCandidateId); out.push(local.candidateType); } });
        return out; }"""
    kinds: list[str] = []

    async def pairs_known() -> bool:
        nonlocal kinds
        kinds = await remote.evaluate(succeeded)
        return bool(kinds)

    await wait_for(pairs_known, 15, "a succeeded candidate pair in the page's stats")
    assert set(kinds) == {"relay"}, kinds
