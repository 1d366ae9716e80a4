"""loadtest.firefox against a real Firefox ESR through its npm driver (loadtest/firefox_driver,
puppeteer-core): what the Firefox e2e cases rely on, on one small page served on loopback.

The contract that matters most: a script the test evaluates is not a user activation (puppeteer's
own ``page.evaluate`` is one, and Firefox would then allow autoplay with sound before any click),
a click is one; and the profile keeps only the project's prefs (puppeteer's launch would add its
own)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from loadtest.firefox import Firefox, FirefoxError, profile_prefs, user_js

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PAGE = """<!doctype html><meta charset="utf-8"><title>driver</title>
<button id="b" style="width:200px;height:80px" onclick="window.clicked = (window.clicked || 0) + 1">b</button>
<input id="i"><p id="t">Hello 课堂</p>"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base() -> AsyncIterator[str]:
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


def processes_using(path: Path) -> list[int]:
    """Pids whose command line names ``path`` (Firefox is started with ``--profile PATH``)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            out.append(int(pid))
    return out


async def test_driver_evaluates_clicks_fills_and_closes(base: str, tmp_path: Path) -> None:
    console: list[str] = []
    t0 = time.monotonic()
    ff = await Firefox.launch(on_console=console.append)
    launched = time.monotonic() - t0
    profile = ff.profile
    try:
        assert ff.version[:3].isdigit(), ff.version
        # puppeteer-core connected to a Firefox it did not launch: the profile is the project's
        assert (profile / "user.js").read_text() == user_js(profile_prefs())
        t1 = time.monotonic()
        page = await ff.new_page(base)
        opened = time.monotonic() - t1
        print(f"Firefox {ff.version}: driver + Firefox up in {launched:.2f} s, a page loaded in {opened:.2f} s")
        assert await page.evaluate("document.title") == "driver"
        assert await page.evaluate("(x) => x.n * 2", {"n": 21}) == 42
        assert await page.evaluate("new Promise((r) => setTimeout(() => r([1, 'a']), 10))") == [1, "a"]
        assert await page.evaluate("undefined") is None
        assert await page.text("#t") == "Hello 课堂"
        # evaluating is not a user activation (Firefox's autoplay policy would count it as one)
        assert await page.evaluate("navigator.userActivation.hasBeenActive") is False
        await page.fill("#i", "09:30")
        assert await page.evaluate("document.getElementById('i').value") == "09:30"
        assert await page.evaluate("navigator.userActivation.hasBeenActive") is False
        # a click is a real one
        await page.click("#b")
        assert await page.evaluate("[window.clicked, navigator.userActivation.hasBeenActive]") == [1, True]
        with pytest.raises(FirefoxError, match="page script threw: .*ReferenceError"):
            await page.evaluate("no_such_function()")
        with pytest.raises(FirefoxError, match="no visible"):
            await page.click("#missing", timeout=0.5)
        await page.evaluate("console.error('driver test error')")
        deadline = time.monotonic() + 5
        while not any("driver test error" in c for c in console) and time.monotonic() < deadline:
            await page.evaluate("1")
        assert any(c == "[firefox] error: driver test error" for c in console), console
        shot = tmp_path / "shot.png"
        await page.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        second = await ff.new_page()
        await second.goto(base + "?two")
        assert await second.evaluate("location.search") == "?two"
        await second.close()
        assert await page.evaluate("location.search") == ""
        assert processes_using(profile)
    finally:
        await ff.close()
    assert ff.proc.returncode is not None
    assert not processes_using(profile)
    assert not profile.exists()
    with pytest.raises(FirefoxError, match="not running"):
        await ff.new_page()


async def test_firefox_that_cannot_start_is_a_clear_error() -> None:
    """A Firefox that exits at once: the error says so (with its log) and nothing is left."""
    with pytest.raises(FirefoxError, match="did not start"):
        await Firefox.launch(timeout=10, prefs={}, on_console=None, executable="/bin/false")
