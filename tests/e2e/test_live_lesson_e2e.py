"""One lead page and three remote pages in real Chromium: every remote plays the lead."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(url)
    return page


async def inbound(page: Page) -> dict[str, Any]:
    return await page.evaluate("window.classroom.stats().then(s => s.inbound)")  # type: ignore[no-any-return]


async def lead_stats(page: Page) -> tuple[int, int, int]:
    """(main video width, video frames decoded, audio packets) of the lead's tracks."""
    width = await page.evaluate("document.getElementById('main').videoWidth")
    stats = await inbound(page)
    frames = sum(s.get("framesDecoded") or 0 for s in stats.values() if s["kind"] == "video")
    audio = sum(s.get("packets") or 0 for s in stats.values() if s["kind"] == "audio")
    return int(width), int(frames), int(audio)


LIVE = "document.getElementById('live').textContent.includes('LIVE')"


def page_url(srv: ServerProcess, page: str, lesson: str, classroom: str, role: str) -> str:
    return f"{srv.url}/{page}?token={srv.token(lesson, classroom, role)}"


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_lead_broadcasts_to_three_remotes(server_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, page_url(server_proc, "lead.html", "e2e", "lead", "lead"))
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
    remotes = []
    for i in range(3):
        token = server_proc.token("e2e", f"remote-{i}", "remote")
        remotes.append(await open_page(browser, f"{server_proc.url}/remote.html?token={token}"))
    for page in remotes:
        async def playing(page: Page = page) -> bool:
            width, frames, audio = await lead_stats(page)
            return width > 0 and frames > 0 and audio > 0
        await wait_for(playing, 30, "remote to play the lead")
    before = [await lead_stats(p) for p in remotes]
    await asyncio.sleep(3)
    after = [await lead_stats(p) for p in remotes]
    for (_w0, f0, a0), (w1, f1, a1) in zip(before, after, strict=True):
        assert w1 > 0
        assert f1 > f0 + 10, (f0, f1)  # frames keep being decoded
        assert a1 > a0 + 50, (a0, a1)  # audio keeps arriving (50 packets/s)
    health = server_proc.get_json("/healthz")
    # Nothing was decoded or encoded in the server (its codec factories raise; the count stays 0).
    assert "classroom_transcodes_total 0.0" in server_proc.get_text("/metrics")
    assert health["classrooms"]["remote"] == 3 and health["classrooms"]["lead"] == 1
    # The lead sees that three classrooms watch.
    viewers = "document.getElementById('viewers').textContent.startsWith('3')"
    await wait_for(lambda: lead.evaluate(viewers), 10, "audience 3")
    # A bureau inspector (巡课) sees the lead and every remote classroom, and nobody sees it.
    observer = await open_page(browser, page_url(server_proc, "observer.html", "e2e", "inspector", "observer"))
    await wait_for(lambda: observer.evaluate("document.getElementById('main').videoWidth > 0"), 20, "observer plays")
    tiles = "[...document.querySelectorAll('#grid video')].filter(v => v.videoWidth > 0).length"
    await wait_for(lambda: observer.evaluate(f"{tiles} === 3"), 20, "observer sees the three classrooms")
    names = await lead.evaluate("window.classroom.joined.participants.map(p => p.role)")
    assert "observer" not in names


async def test_late_joiner_sees_video_quickly(server_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, page_url(server_proc, "lead.html", "late", "lead", "lead"))
    await wait_for(lambda: lead.evaluate(LIVE), 20, "lead live")
    first = await open_page(browser, page_url(server_proc, "remote.html", "late", "r1", "remote"))
    await wait_for(lambda: first.evaluate("window.firstFrameMs !== null"), 30, "first remote video")
    await asyncio.sleep(2)  # the lesson is under way; the publisher's keyframe is long gone
    times = []
    for i in range(2):
        page = await open_page(browser, page_url(server_proc, "remote.html", "late", f"late-{i}", "remote"))
        await wait_for(lambda page=page: page.evaluate("window.firstFrameMs !== null"), 15, "late joiner video")
        times.append(await page.evaluate("window.firstFrameMs"))
        print("timeline", await page.evaluate("window.classroomTimeline"))
        await page.context.close()
    print(f"late joiner first frame after page load: {times} ms")
    # Behaviour, with headroom for a loaded CI machine; the 1.5 s figure is measured on purpose
    # by `python -m loadtest.late_join` (docs/performance.md).
    assert max(times) <= 6000, times
