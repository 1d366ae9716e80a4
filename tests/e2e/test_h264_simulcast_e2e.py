"""Real Chromium: a lead page publishing H.264 simulcast (?codec=h264): the server negotiates and
demultiplexes its layers by RID like VP8's, and a remote page decodes the H.264 it forwards
(the layer choice is codec-blind: the same path as VP8)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_live_lesson_e2e import LIVE, open_page, wait_for

pytestmark = pytest.mark.e2e


async def video(page: Page, direction: str) -> list[dict[str, Any]]:
    stats = await page.evaluate(f"window.classroom.stats().then(s => s.{direction})")
    return [s for s in stats.values() if s["kind"] == "video"]


async def test_h264_simulcast_is_forwarded(server_proc: ServerProcess, browser: Browser) -> None:
    srv = server_proc
    lead = await open_page(browser, f"{srv.url}/lead.html?token={srv.token('h264', 'lead', 'lead')}&codec=h264")
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")

    async def three_layers() -> bool:
        out = await video(lead, "outbound")
        return len([s for s in out if (s.get("bytes") or 0) > 0]) >= 2

    await wait_for(three_layers, 30, "the lead to send H.264 simulcast layers")
    out = await video(lead, "outbound")
    assert all((s.get("codec") or "").lower() == "video/h264" for s in out), out
    assert {s.get("rid") for s in out} >= {"q", "h"}, out

    remote = await open_page(browser, f"{srv.url}/remote.html?token={srv.token('h264', 'remote-1', 'remote')}")

    async def decoding() -> bool:
        inb = await video(remote, "inbound")
        return any((s.get("framesDecoded") or 0) > 20 and (s.get("frameWidth") or 0) > 0 for s in inb)

    await wait_for(decoding, 40, "the remote to decode the lead's H.264")
    inb = await video(remote, "inbound")
    assert any((s.get("codec") or "").lower() == "video/h264" for s in inb), inb
    assert "classroom_transcodes_total 0.0" in srv.get_text("/metrics")
