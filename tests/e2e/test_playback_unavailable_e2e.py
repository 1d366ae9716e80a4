"""Real Chromium opens playback.html for a recording it cannot play — no manifest= at all (the old
"Recording playback" link), a recording whose manifest.json is missing, a damaged manifest (not
JSON, JSON that is not a manifest, a manifest with broken tracks; from the recordings API, which refuses
them with 500 bad_manifest, and served as plain files) — and the page shows one clear
message in its language in place of an empty player, without a JavaScript error (#15)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web
from playwright.async_api import Browser, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from recorder.catalogue import setup_recording_routes, signed_manifest_url

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"e2e-playback-unavailable-secret-01"

pytestmark = pytest.mark.e2e


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def message(browser: Browser, url: str, locale: str) -> str:
    """The page's message for `url`, after checking the player is hidden and nothing threw."""
    page = await browser.new_page(locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("#load-error:not([hidden])", timeout=15000)
    assert await page.is_hidden("main")
    assert await page.is_visible("#load-error h2")
    title = await page.text_content("#load-error h2") or ""
    text = await page.text_content("#load-error-text") or ""
    assert errors == []
    await page.close()
    return f"{title}|{text}"


async def choose_page(browser: Browser, url: str, locale: str) -> str:
    """The text of the page without manifest=, after checking its links and that nothing threw."""
    page = await browser.new_page(locale=locale)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await page.wait_for_selector("#choose:not([hidden])", timeout=15000)
    assert await page.is_hidden("main") and await page.is_hidden("#load-error")
    assert await page.get_attribute("#choose-bureau", "href") == "bureau.html#recordings"
    assert await page.get_attribute("#choose-home", "href") == "index.html"
    assert await page.is_visible("#choose-key") and await page.is_visible("#choose-submit")
    title = await page.text_content("#choose h2") or ""
    text = await page.inner_text("#choose")
    assert errors == []
    await page.close()
    return f"{title}|{text}"


async def test_playback_page_explains_a_recording_it_cannot_play(tmp_path: Path, chromium: Browser) -> None:
    recordings = tmp_path / "recordings"
    (recordings / "no-manifest").mkdir(parents=True)
    (recordings / "not-json").mkdir()
    (recordings / "not-json" / "manifest.json").write_text('{"format": "classroom-recording/1", "tracks": [', "utf-8")
    (recordings / "not-a-manifest").mkdir()
    (recordings / "not-a-manifest" / "manifest.json").write_text(json.dumps([1, 2, 3]), "utf-8")
    (recordings / "broken-tracks").mkdir()
    (recordings / "broken-tracks" / "manifest.json").write_text(json.dumps({
        "format": "classroom-recording/1", "lesson_id": "broken-tracks", "title": "x",
        "started_at": "2026-12-01T08:00:00Z", "duration_ms": 1000,
        "tracks": [{"id": "t1", "kind": "video"}], "events": [],
    }), "utf-8")
    app = web.Application()
    signer = setup_recording_routes(app, tmp_path, SECRET)
    # the same files served as they are (another server, a copied folder): the page's own checks
    async def raw(request: web.Request) -> web.FileResponse:
        return web.FileResponse(recordings / request.match_info["lesson"] / "manifest.json")

    app.router.add_get("/raw/{lesson}/manifest.json", raw)
    app.router.add_static("/", ROOT / "client_web")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/playback.html"

    def url(lesson: str) -> str:
        return f"{base}?manifest={quote(signed_manifest_url(signer, lesson, ttl=600), safe='')}"

    try:
        # no manifest= (zh-CN, the default language; en with ?lang=en): how to get a playback
        # link, a link back, and the administrator's list form (GET /api/recordings)
        zh = await choose_page(chromium, base, "zh-CN")
        assert zh.startswith("选择要回放的录像|") and "没有选择录像" in zh and "教育局排课页面" in zh, zh
        en = await choose_page(chromium, f"{base}?lang=en", "zh-CN")
        assert en.startswith("Choose a recording to play|") and "No recording chosen" in en, en
        assert "bureau page" in en and "API key" in en, en
        # the recording's manifest.json is missing: the HTTP status in the teacher's words
        gone = await message(chromium, url("no-manifest"), "zh-CN")
        assert "没有找到这个录像" in gone, gone
        # a damaged manifest: never the browser's English parser message
        for lesson in ("not-json", "not-a-manifest", "broken-tracks"):
            text = await message(chromium, url(lesson), "zh-CN")
            assert "录像的清单文件已损坏或不完整" in text, (lesson, text)
            assert "JSON" not in text and "Unexpected" not in text, (lesson, text)
            text = await message(chromium, f"{base}?manifest=/raw/{lesson}/manifest.json", "zh-CN")
            assert "录像的清单文件已损坏或不完整" in text, ("raw", lesson, text)
        text = await message(chromium, url("not-json") + "&lang=en", "zh-CN")
        assert "manifest is damaged or incomplete" in text, text
    finally:
        await runner.cleanup()
