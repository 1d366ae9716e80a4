"""Hand raising and floor control in real Chromium: one lead, two remote classrooms."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_live_lesson_e2e import LIVE, open_page, page_url, wait_for

pytestmark = pytest.mark.e2e

AUDIO_FROM = """async (cid) => {
  const s = await window.classroom.stats();
  const mids = window.classroom.tracks.filter(t => t.classroom_id === cid && t.kind === 'audio')
    .map(t => t.mid);
  let packets = 0, level = 0;
  for (const m of mids) {
    const x = s.inbound[m];
    if (x) { packets += x.packets || 0; level = Math.max(level, x.audioLevel || 0); }
  }
  return {mids: mids.length, packets, level};
}"""


async def audio_from(page: Page, classroom: str) -> dict[str, Any]:
    return await page.evaluate(AUDIO_FROM, classroom)  # type: ignore[no-any-return]


async def audio_mids(page: Page, classroom: str) -> list[str]:
    return await page.evaluate(  # type: ignore[no-any-return]
        "(cid) => window.classroom.tracks.filter(t => t.classroom_id === cid && t.kind === 'audio').map(t => t.mid)",
        classroom)


async def packets_on(page: Page, mids: list[str]) -> int:
    return await page.evaluate(  # type: ignore[no-any-return]
        "async (mids) => { const s = await window.classroom.stats();"
        " return mids.reduce((n, m) => n + ((s.inbound[m] || {}).packets || 0), 0); }", mids)


async def test_raise_hand_grant_and_revoke(server_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, page_url(server_proc, "lead.html", "floor", "lead", "lead"))
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
    r1 = await open_page(browser, page_url(server_proc, "remote.html", "floor", "r1", "remote"))
    r2 = await open_page(browser, page_url(server_proc, "remote.html", "floor", "r2", "remote"))
    for page in (r1, r2):
        await wait_for(lambda page=page: page.evaluate("window.firstFrameMs !== null"), 30, "remote playing")
    # r1's camera reaches the lead's grid, but nobody hears r1 without the floor.
    await wait_for(lambda: lead.evaluate(
        "!!document.querySelector('[data-classroom=\"r1\"] video') && "
        "document.querySelector('[data-classroom=\"r1\"] video').videoWidth > 0"), 20, "r1 in the lead's grid")
    assert (await audio_from(lead, "r1"))["mids"] == 0
    assert (await audio_from(r2, "r1"))["mids"] == 0

    # 举手: r1 raises its hand; the lead page shows it in the queue.
    await r1.click("#hand")
    await wait_for(lambda: lead.evaluate("document.getElementById('queue').textContent.includes('r1')"), 5,
                   "hand in the lead's queue")
    # 连麦: the lead grants the floor from the queue.
    await lead.click("#queue button")
    await wait_for(lambda: r1.evaluate("document.getElementById('floor-banner').classList.contains('show')"), 5,
                   "r1 told it has the floor")

    async def hears_r1(page: Page) -> bool:
        a = await audio_from(page, "r1")
        return bool(a["packets"] > 20 and a["level"] > 0.001)

    await wait_for(lambda: hears_r1(lead), 15, "the lead hears r1")
    await wait_for(lambda: hears_r1(r2), 15, "r2 hears r1")
    await wait_for(lambda: r2.evaluate("document.getElementById('spotlight').videoWidth > 0"), 15,
                   "r2 sees r1 spotlighted")

    # Revoke: within a second r1's audio stops reaching the others (counted on the m-lines that
    # carried it, whatever the page is told about them afterwards).
    mids = {"lead": await audio_mids(lead, "r1"), "r2": await audio_mids(r2, "r1")}
    assert mids["lead"] and mids["r2"]
    await lead.click('[data-classroom="r1"] [data-act="grant"]')
    t_revoke = time.monotonic()
    await wait_for(lambda: r1.evaluate("!document.getElementById('floor-banner').classList.contains('show')"), 5,
                   "r1 told the floor is gone")
    await asyncio.sleep(max(0.0, t_revoke + 1.0 - time.monotonic()))
    counts = [await packets_on(lead, mids["lead"]), await packets_on(r2, mids["r2"])]
    await asyncio.sleep(1.5)
    later = [await packets_on(lead, mids["lead"]), await packets_on(r2, mids["r2"])]
    assert min(counts) > 20
    assert later == counts, f"r1's audio still arriving after revoke: {counts} -> {later}"
