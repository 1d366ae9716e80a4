"""A remote classroom's page rejoins by itself: the server goes away mid-lesson (a restart, a
dropped link) and comes back; the lead republishes and the remote plays again, untouched."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.e2e.conftest import start_server_process
from tests.e2e.test_live_lesson_e2e import LIVE, lead_stats, open_page, page_url, wait_for

pytestmark = pytest.mark.e2e


async def test_pages_rejoin_after_the_server_comes_back(tmp_path: Path, browser: Browser) -> None:
    srv = start_server_process(tmp_path)
    port = int(srv.url.rsplit(":", 1)[1])
    try:
        lead = await open_page(browser, page_url(srv, "lead.html", "rc", "lead", "lead"))
        await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
        remote = await open_page(browser, page_url(srv, "remote.html", "rc", "r1", "remote"))
        await wait_for(lambda: remote.evaluate("document.getElementById('main').videoWidth > 0"), 30, "playing")

        srv.proc.terminate()
        srv.proc.wait(10)
        await wait_for(lambda: remote.evaluate("window.classroom.state === 'reconnecting'"), 10, "reconnecting")
        await asyncio.sleep(1.0)
        srv = start_server_process(tmp_path, port=port)

        await wait_for(lambda: remote.evaluate("window.classroom.state === 'joined'"), 20, "rejoined")

        async def playing_again() -> bool:
            width, frames, audio = await lead_stats(remote)
            return width > 0 and frames > 10 and audio > 10
        await wait_for(playing_again, 30, "the remote plays the lead again")
    finally:
        srv.proc.terminate()
        try:
            srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
