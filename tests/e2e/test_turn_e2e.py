"""A classroom behind a strict firewall: Chromium forced to relay every packet through a real
coturn (time-limited credentials from a shared secret) still plays the lead."""

from __future__ import annotations

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


@pytest.fixture
def turn_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    binary = shutil.which("turnserver")
    assert binary, "coturn is missing: tests/run.sh installs it"
    proc = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         "--use-auth-secret", f"--static-auth-secret={TURN_SECRET}", "--realm=classroom",
         "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout",
         "--min-port=49160", "--max-port=49400"],
        stdout=open(tmp_path / "turn.log", "wb"), stderr=subprocess.STDOUT,
    )
    time.sleep(0.5)
    assert proc.poll() is None, (tmp_path / "turn.log").read_text()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def turn_server_proc(tmp_path: Path, turn_port: int) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path, {
        "CLASSROOM_MEDIA_TURN_URL": f"turn:127.0.0.1:{turn_port}",
        "CLASSROOM_MEDIA_TURN_SECRET": TURN_SECRET,
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
    # Every candidate pair the page used is a relay one.
    kinds = await remote.evaluate("""async () => {
        const r = await window.classroom.sub.getStats(); const out = [];
        r.forEach(s => { if (s.type === 'candidate-pair' && s.state === 'succeeded') {
            const local = r.get(s.localCandidateId); out.push(local.candidateType); } });
        return out; }""")
    assert kinds and set(kinds) == {"relay"}, kinds
