"""Real Chromium plays a recorded lesson from a signed manifest URL: the tracks play, the event
timeline lists the lesson's events, clicking an event seeks the video to within 1 s of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from recorder.catalogue import setup_recording_routes, signed_manifest_url
from tests.integration.recorder.media import SHORT_LESSON_EVENTS, record_short_lesson

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"e2e-playback-secret-0123456789"
EVENTS = SHORT_LESSON_EVENTS


@pytest.mark.e2e
async def test_playback_page_plays_and_seeks_from_the_timeline(tmp_path: Path) -> None:
    record_short_lesson(tmp_path / "recordings" / "e2e-lesson", "e2e-lesson")
    app = web.Application()
    signer = setup_recording_routes(app, tmp_path, SECRET)
    app.router.add_static("/", ROOT / "client_web")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    manifest_url = signed_manifest_url(signer, "e2e-lesson", ttl=600)
    page_url = f"http://127.0.0.1:{port}/playback.html?manifest={quote(manifest_url, safe='')}"
    errors: list[str] = []
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(locale="zh-CN")  # the labels checked below are the zh-CN ones
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(page_url)
            await page.wait_for_function("window.playback && window.playback.manifest", timeout=15000)
            # the timeline shows every event
            assert await page.locator("#events button.event").count() == len(EVENTS)
            assert await page.locator("#timeline .marker").count() == len(EVENTS)
            texts = await page.locator("#events button.event").all_inner_texts()
            assert any("举手" in t and "教学点一" in t for t in texts)
            # it plays: the lead camera advances
            await page.wait_for_function(
                """() => { const v = document.getElementById('main-video');
                           return v.readyState >= 2 && v.currentTime > 1.0 && !v.paused; }""",
                timeout=20000,
            )
            times = await page.evaluate("window.playback.elementTimes()")
            assert {t["kind"] for t in times} == {"video", "audio"}
            assert len(times) == 5 and all(t["readyState"] >= 2 for t in times), times
            # every element (VP8/Opus WebM, H.264 Matroska) plays, in sync with the others
            spread = max(t["t_ms"] for t in times) - min(t["t_ms"] for t in times)
            assert spread < 400, times
            # click "floor_revoked" (14.0 s): the video seeks there
            await page.locator("#events button.event[data-type='floor_revoked']").click()
            await page.wait_for_timeout(1200)
            state = await page.evaluate(
                """() => { const v = document.getElementById('main-video');
                           const tr = window.playback.manifest.tracks
                               .find(t => t.id === 'lead-cam');
                           return {video_ms: tr.start_ms + v.currentTime * 1000,
                                   clock_ms: window.playback.time(), ready: v.readyState}; }"""
            )
            # 1.2 s of playback after the click at 1x
            assert abs(state["video_ms"] - 14_000 - 1_200) < 1000, state
            assert abs(state["clock_ms"] - 15_200) < 600, state
            # paused seek is exact
            await page.evaluate("window.playback.pause()")
            await page.locator("#events button.event[data-type='hand_raised']").click()
            await page.wait_for_function("""() => !document.getElementById('main-video').seeking""", timeout=5000)
            video_ms = await page.evaluate(
                """() => window.playback.manifest.tracks.find(t => t.id === 'lead-cam').start_ms
                         + document.getElementById('main-video').currentTime * 1000"""
            )
            assert abs(video_ms - 4_000) < 1000
            # spotlight highlights the remote tile while it lasts
            await page.evaluate("window.playback.seek(8000)")
            await page.wait_for_timeout(100)
            assert await page.locator(".tile.spotlight[data-classroom='r1']").count() == 1
            # playback speed
            await page.select_option("#speed", "2")
            await page.evaluate("window.playback.play()")
            await page.wait_for_timeout(500)
            rate = await page.evaluate("document.getElementById('main-video').playbackRate")
            assert rate == 2
            await browser.close()
    finally:
        await runner.cleanup()
    assert not errors, errors
    await asyncio.sleep(0)


@pytest.mark.e2e
async def test_unfinished_recording_plays_segment_by_segment(tmp_path: Path) -> None:
    """A recording left by a killed recorder (not repaired): tracks are played from segments."""
    import json

    directory = tmp_path / "recordings" / "crashed"
    record_short_lesson(directory, "crashed", duration=12.0)
    raw = json.loads((directory / "manifest.json").read_text())
    raw["complete"] = False
    for track in raw["tracks"]:
        track["complete"] = False
        track["file"] = track["segments"][0]["file"]
    (directory / "manifest.json").write_text(json.dumps(raw))
    app = web.Application()
    signer = setup_recording_routes(app, tmp_path, SECRET)
    app.router.add_static("/", ROOT / "client_web")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = signed_manifest_url(signer, "crashed", ttl=600)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(locale="zh-CN")  # the labels checked below are the zh-CN ones
            await page.goto(f"http://127.0.0.1:{port}/playback.html?manifest={quote(url, safe='')}&t=7")
            await page.wait_for_function(
                """() => { const v = document.getElementById('main-video');
                           return v.readyState >= 2 && !v.paused && v.src.includes('segments'); }""",
                timeout=20000,
            )
            await page.wait_for_timeout(800)
            times = await page.evaluate("window.playback.elementTimes()")
            clock = await page.evaluate("window.playback.time()")
            video = next(t for t in times if t["track"] == "lead-cam")
            assert abs(video["t_ms"] - clock) < 500, (video, clock)
            assert 7000 < clock < 10000
            await browser.close()
    finally:
        await runner.cleanup()
