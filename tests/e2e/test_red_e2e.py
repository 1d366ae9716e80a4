"""Real Chromium: the lead's audio goes out as RED (audio/red), the server passes the containers
through to a remote page, which keeps hearing the lead; with ?red=0 on both pages nothing is
RED. (Chromium's getStats names the Opus codec either way, so the server's counters tell.)"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_live_lesson_e2e import LIVE, open_page, wait_for

pytestmark = pytest.mark.e2e


async def audio_in(page: Page) -> dict[str, Any]:
    stats = await page.evaluate("window.classroom.stats().then(s => s.inbound)")
    return next((s for s in stats.values() if s["kind"] == "audio"), {})


def counter(srv: ServerProcess, name: str) -> float:
    m = re.search(rf"^classroom_{name}_total (\S+)$", srv.get_text("/metrics"), re.M)
    assert m, name
    return float(m.group(1))


async def hear(srv: ServerProcess, browser: Browser, lesson: str, query: str) -> dict[str, Any]:
    lead = await open_page(browser, f"{srv.url}/lead.html?token={srv.token(lesson, 'lead', 'lead')}{query}")
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
    remote = await open_page(browser, f"{srv.url}/remote.html?token={srv.token(lesson, 'remote-1', 'remote')}{query}")

    async def hearing() -> bool:
        return ((await audio_in(remote)).get("packets") or 0) > 150

    await wait_for(hearing, 30, "remote to hear the lead")
    first = await audio_in(remote)
    await asyncio.sleep(4)
    last = await audio_in(remote)
    stats = {k: (last.get(k) or 0) - (first.get(k) or 0) for k in ("concealedSamples", "totalSamplesReceived")}
    await lead.context.close()
    await remote.context.close()
    return stats


async def test_lead_audio_is_passed_through_as_red(server_proc: ServerProcess, browser: Browser) -> None:
    stats = await hear(server_proc, browser, "red-on", "")
    red_in, red_out = counter(server_proc, "red_packets_in"), counter(server_proc, "red_packets_out")
    assert red_in > 100 and red_out > 100, (red_in, red_out)
    assert (stats.get("totalSamplesReceived") or 0) > 0
    # the remote decoded it: over 4 s after the start, concealment stays small on a loopback
    assert (stats.get("concealedSamples") or 0) <= 0.05 * stats["totalSamplesReceived"], stats

    await asyncio.sleep(2)  # the first lesson's pages are gone: what was in flight has arrived
    before = counter(server_proc, "red_packets_in")
    await hear(server_proc, browser, "red-off", "&red=0")
    assert counter(server_proc, "red_packets_in") <= before + 5, (before, red_in)
