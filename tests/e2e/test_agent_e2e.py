"""The lead's page in real Chromium shows the classroom agent's video (issue #17's acceptance), and
the agent decodes the page's camera: a lesson scheduled through the API, the agent process running
before it starts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import free_port
from tests.integration.test_agent import CST, status, until
from tests.integration.test_faults_restart import KEY, ROOT, api, start

pytestmark = pytest.mark.e2e
TILES = "[...document.querySelectorAll('#grid video')].filter(v => v.videoWidth > 0).length"


async def test_the_lead_page_shows_the_agent_and_the_agent_decodes_the_page(tmp_path: Path, browser: Browser) -> None:
    data, server_log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port, server_log)
    agent: subprocess.Popen[bytes] | None = None
    try:
        m = KEY.search(server_log.read_text())
        assert m, server_log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1", "kind": "hardware"})["id"]
        device = api(port, key, "POST", "/api/devices", {"classroom_id": room, "name": "PC"})
        key_file = tmp_path / "device.key"
        key_file.write_text(device["credential"])
        key_file.chmod(0o600)
        status_file, agent_log = tmp_path / "agent.json", tmp_path / "agent.log"
        agent = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "agent", "--server", url, "--device-key-file", str(key_file),
             "--lead-time", "0", "--poll-interval", "2", "--test-source", "--size", "320x240", "--no-display",
             "--hand-port", "0", "--status-file", str(status_file), "--ice-address", "127.0.0.1"],
            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "CLASSROOM_DEVICE_KEY"},
            stdout=agent_log.open("wb"), stderr=subprocess.STDOUT)
        await until(lambda: status(status_file).get("state") == "waiting", 20, "agent waiting", agent_log)
        start_at = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=12)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "agent e2e", "lead_classroom_id": lead_room, "remote_classroom_ids": [room],
            "start": start_at.isoformat(), "end": (start_at + timedelta(seconds=60)).isoformat(),
            "recording": False})["id"]
        link = next(x for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"] if x["role"] == "lead")
        page = await (await browser.new_context()).new_page()
        await page.goto(link["url"])

        st = await until(lambda: status(status_file) if status(status_file).get("joins", 0) >= 1 else None,
                         30, "agent joined", agent_log)
        assert st["last_joined_at"] - start_at.timestamp() <= 10.0

        async def shown() -> bool:
            return bool(await page.evaluate(TILES))

        end = time.monotonic() + 20.0
        while not await shown():
            assert time.monotonic() < end, "the lead page never showed the agent's video\n" + agent_log.read_text()
            await asyncio.sleep(0.3)
        await until(lambda: status(status_file)["frames_received"]["video"] >= 20, 20, "agent decodes the page",
                    agent_log)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        proc.terminate()
        proc.wait(10)
