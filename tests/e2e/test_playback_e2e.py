"""Real Chromium plays a recorded lesson from a signed manifest URL: the tracks play, the event
timeline lists the lesson's events, clicking an event seeks the video to within 1 s of it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import async_playwright

from recorder.catalogue import setup_recording_routes, signed_manifest_url
from recorder.core import RecordingSession
from tests.integration.recorder.media import (
    FakeClock,
    SendTrack,
    encode_audio,
    encode_video,
    feed,
    schedule,
)

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"e2e-playback-secret-0123456789"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
EVENTS = [
    ("join", "lead", 0),
    ("join", "r1", 200),
    ("hand_raised", "r1", 4_000),
    ("floor_granted", "r1", 6_000),
    ("spotlight", "r1", 6_100),
    ("floor_revoked", "r1", 14_000),
    ("spotlight", None, 14_100),
]


def record(data_dir: Path) -> None:
    duration = 20.0
    cam, dark, mic = (
        encode_video("vp8", duration),
        encode_video("vp8", duration, shade=40),
        (encode_audio(duration)),
    )
    clock = FakeClock()
    session = RecordingSession(
        data_dir / "recordings" / "e2e-lesson", "e2e-lesson", "回放测试", clock=clock
    )
    session.add_classroom("lead", "lead", "主讲课堂")
    session.add_classroom("r1", "remote", "教学点一")
    senders = []
    for track_id, media, classroom, source in (
        ("lead-cam", cam, "lead", "teacher"),
        ("lead-mic", mic, "lead", "teacher"),
        ("r1-cam", dark, "r1", "students"),
        ("r1-mic", mic, "r1", "students"),
    ):
        session.add_track(track_id, media.kind, media.codec, classroom, source)
        senders.append(SendTrack(track_id, media, delay=0.05))
    for type_, classroom, t_ms in EVENTS:
        session.event(type_, classroom, t_ms=t_ms)
    feed(session.rtp, session.poll, clock, schedule(senders, clock.now))
    clock.now += 0.2
    session.close()


@pytest.mark.e2e
async def test_playback_page_plays_and_seeks_from_the_timeline(tmp_path: Path) -> None:
    record(tmp_path)
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
            browser = await p.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            page = await browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(page_url)
            await page.wait_for_function(
                "window.playback && window.playback.manifest", timeout=15000
            )
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
            await page.wait_for_function(
                """() => !document.getElementById('main-video').seeking""", timeout=5000
            )
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
