"""Real Chromium: a lesson scheduled through the API without a "recording" field is recorded (the
bureau's default), real aiortc classrooms take part, and the bureau page's 录像 Recordings list
shows it with working playback and report links; the index page's "Recording playback" link
opens that list (#15)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from signaling.schedule import ScheduleStore
from signaling.schedule.cli import create_admin
from tests.e2e.conftest import ServerProcess, start_server_process
from tests.e2e.test_bureau_e2e import call, new_page, wait_for
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.test_recording_policy import recorded_tracks

pytestmark = pytest.mark.e2e

CST = timezone(timedelta(hours=8))


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server_process(tmp_path, {"CLASSROOM_RECORDING_END_GRACE_S": "1",
                                          "CLASSROOM_ANALYTICS_INTERVAL_S": "3"})
    try:
        yield srv
    finally:
        srv.proc.terminate()
        try:
            srv.proc.wait(20)
        except subprocess.TimeoutExpired:
            srv.proc.kill()


async def test_bureau_page_lists_a_default_recorded_lesson(recording_server: ServerProcess, browser: Browser) -> None:
    srv = recording_server
    store = ScheduleStore.open(srv.data_dir)
    try:
        key = create_admin(store, "E2E Recording Bureau", "e2e-admin")
    finally:
        store.close()
    school = call(srv, key, "POST", "/api/schools", {"name": "No. 1 Middle School"})
    lead = call(srv, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲 A"})
    remote = call(srv, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "远端 B",
                                                        "lead_capable": False})
    now = datetime.now(CST).replace(second=0, microsecond=0)
    lesson = call(srv, key, "POST", "/api/lessons", {
        "subject": "数学", "title": "录像课 Recorded", "lead_classroom_id": lead["id"],
        "remote_classroom_ids": [remote["id"]], "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(minutes=40)).isoformat(),
    })
    assert lesson["recording"] is True
    tokens = {x["role"]: x["token"] for x in call(srv, key, "GET", f"/api/lessons/{lesson['id']}/links")["links"]}
    peers = [ClassroomPeer(srv.url, tokens["lead"]), ClassroomPeer(srv.url, tokens["remote"])]
    try:
        for peer in peers:
            assert (await peer.connect())["type"] == "joined"
        await peers[0].publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
        await peers[1].wait_frames("video", 5)
        directory = srv.data_dir / "recordings" / lesson["id"]
        for _ in range(900):  # a recorder process takes seconds to start on a loaded machine
            if recorded_tracks(directory) >= 2:
                break
            await asyncio.sleep(0.1)
        assert recorded_tracks(directory) >= 2, "the lesson is not being recorded"
        await asyncio.sleep(3)
    finally:
        for peer in peers:
            await peer.close()
    report = srv.data_dir / "recordings" / lesson["id"] / "report" / "report.html"
    for _ in range(1200):
        if report.exists():
            break
        await asyncio.sleep(0.1)
    assert report.exists(), "the recording was not analysed"

    page = await new_page(browser, srv.url + "/index.html")
    await page.click('a[href="bureau.html#recordings"]')
    await page.wait_for_url("**/bureau.html#recordings")
    await page.fill("#api-key", key)
    await page.click("#login")
    row = page.locator(f'#recordings li[data-lesson="{lesson["id"]}"]')
    await row.wait_for(timeout=15000)
    assert "录像课 Recorded" in await row.inner_text()
    assert await page.is_checked("#rec-default")
    await page.select_option("#recordings-lesson", lesson["id"])  # one lesson's recordings
    assert await page.locator("#recordings li").count() == 1
    assert await row.locator("a.report-link").count() == 1
    href = await row.locator("a.playback-link").get_attribute("href")
    assert href and href.startswith("/playback.html?manifest=")
    player = await new_page(browser, srv.url + href)

    async def playing_tracks() -> bool:
        return bool(await player.evaluate("document.querySelectorAll('video').length")) > 0

    await wait_for(playing_tracks, 20, "the playback page shows the recording's video")
    # playback.html without manifest= lists the same recordings for the administrator's key
    chooser = await new_page(browser, srv.url + "/playback.html")
    await chooser.wait_for_selector("#choose:not([hidden])")
    await chooser.fill("#choose-key", "cka_wrong")
    await chooser.click("#choose-submit")
    await chooser.wait_for_function("document.getElementById('choose-error').textContent !== ''")
    error = await chooser.text_content("#choose-error") or ""
    assert "密钥无效" in error or "invalid or revoked key" in error, error  # the bureau page's words
    await chooser.fill("#choose-key", key)
    await chooser.click("#choose-submit")
    item = chooser.locator(f'#choose-list li[data-lesson="{lesson["id"]}"]')
    await item.wait_for(timeout=10000)
    assert "录像课 Recorded" in await item.inner_text()
    await item.locator("a.playback-link").click()
    await chooser.wait_for_url("**/playback.html?manifest=*")
    await wait_for(lambda: _has_video(chooser), 20, "the chosen recording plays")
    # the bureau's default off: the new-lesson form starts unticked
    await page.uncheck("#rec-default")
    await wait_for(lambda: _settings_off(srv, key), 10, "the default is saved")
    await page.click("#new-lesson")
    await page.wait_for_selector("#lesson-dialog[open]")
    assert not await page.is_checked("#f-recording")


async def _has_video(page: Page) -> bool:
    return bool(await page.evaluate("document.querySelectorAll('video').length"))


async def _settings_off(srv: ServerProcess, key: str) -> bool:
    return call(srv, key, "GET", "/api/settings/recording")["recording_default"] is False
