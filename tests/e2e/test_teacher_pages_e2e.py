"""The teacher-facing pages in real Chromium against a real ``classroom serve`` with its demo
lesson: the lead page's spotlight state and errors in the teacher's words, the absent list,
the keyboard shortcuts, ending the lesson; the remote page's controls; no page scrolls sideways
on a phone; and the message dictionary covers every error code the server documents."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize

from classroom.server import DEMO_LESSON_ID
from signaling.floor import ERROR_CODES as FLOOR_ERROR_CODES
from signaling.tokens import TokenSigner
from tests.e2e.conftest import ROOT, SECRET, ServerProcess, free_port
from tests.e2e.test_live_lesson_e2e import wait_for

pytestmark = pytest.mark.e2e

PHONE: ViewportSize = {"width": 390, "height": 844}
NO_SIDEWAYS = "document.documentElement.scrollWidth <= innerWidth"


@pytest.fixture
def demo_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    """``classroom serve`` with its demo lesson (three expected remote classrooms), not recorded."""
    port = free_port()
    env = {**os.environ, "CLASSROOM_TOKEN_SECRET": SECRET, "CLASSROOM_RECORDING_ENABLED": "false",
           "CLASSROOM_MEDIA_UDP_PORT": "0"}  # the one media port on a port the kernel picks (runs side by side)
    log = open(tmp_path / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    try:
        yield ServerProcess(url, proc, TokenSigner(SECRET.encode()), tmp_path / "data")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def link(srv: ServerProcess, page: str, classroom: str, role: str, query: str = "") -> str:
    token = srv.signer.issue(DEMO_LESSON_ID, classroom, role, classroom.replace("demo-", "课堂 "),
                             lesson_title="演示课")
    return f"{srv.url}/{page}.html?token={token}{query}"


async def open_page(browser: Browser, url: str, locale: str = "zh-CN", viewport: ViewportSize | None = None) -> Page:
    context = await browser.new_context(locale=locale, viewport=viewport or {"width": 1280, "height": 800})
    page = await context.new_page()
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(url)
    return page


def tile(cid: str) -> str:
    return f'#grid [data-classroom="{cid}"]'


async def js(page: Page, expr: str) -> object:
    return await page.evaluate(expr)


async def until(page: Page, expr: str, what: str, timeout: float = 15) -> None:
    await wait_for(lambda: page.evaluate(expr), timeout, what)


async def test_lead_spotlight_hands_mute_absent_and_shortcuts(demo_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, link(demo_proc, "lead", "demo-lead", "lead"))
    await until(lead, "document.getElementById('live').classList.contains('live')", "lead live", 20)
    # Nobody has come: all three expected classrooms are listed as absent.
    await until(lead, "document.querySelectorAll('#absent li').length === 3", "three absent")
    r1 = await open_page(browser, link(demo_proc, "remote", "demo-remote-1", "remote"))
    r2 = await open_page(browser, link(demo_proc, "remote", "demo-remote-2", "remote"))
    await until(lead, "document.querySelectorAll('#absent li').length === 1", "one absent")
    assert await js(lead, "document.querySelector('#absent li').dataset.classroom") == "demo-remote-3"
    assert await js(lead, "document.getElementById('absent-count').textContent") == "1 / 3"
    await until(lead, f"!!document.querySelector('{tile('demo-remote-2')}')", "tiles")
    # Not recorded: no recording badge, no recording link.
    assert await js(lead, "document.getElementById('recording-link').offsetParent === null") is True
    assert await js(lead, "document.getElementById('rec').offsetParent === null") is True
    # The lesson timer runs.
    first = await js(lead, "document.getElementById('timer').textContent")
    assert re.fullmatch(r"\d\d:\d\d", str(first)), first
    await asyncio.sleep(1.2)
    assert await js(lead, "document.getElementById('timer').textContent") != first

    # A raised hand shows on the tile as an icon.
    await until(r1, "!document.getElementById('hand').disabled", "r1 joined")
    await r1.click("#hand")
    hand_icon = f"document.querySelector('{tile('demo-remote-1')} .icon.hand')"
    await until(lead, f"!{hand_icon}.classList.contains('hidden')", "hand icon on r1's tile")
    assert await js(lead, f"{hand_icon}.getAttribute('aria-label')") == "已举手"
    assert await js(lead, f"document.querySelector('{tile('demo-remote-2')} .icon.hand').classList.contains('hidden')")

    # G gives the floor to the first raised hand; the spotlight follows the floor and its button says so.
    await lead.keyboard.press("g")
    spot = f"document.querySelector('{tile('demo-remote-1')} [data-act=\"spot\"]')"
    r1_tile = f"document.querySelector('{tile('demo-remote-1')}')"
    await until(lead, f"{r1_tile}.classList.contains('floor')", "r1 has the floor")
    await until(lead, f"{spot}.getAttribute('aria-pressed') === 'true'", "spotlight on r1 shown")
    assert await js(lead, f"{spot}.textContent") == "★ 已聚焦"
    assert await js(lead, f"{hand_icon}.classList.contains('hidden')")  # granting lowered the hand
    # Clicking Spotlight on the classroom that holds it clears it (no bad_state), and again sets it.
    await lead.click(f"{tile('demo-remote-1')} [data-act='spot']")
    await until(lead, f"{spot}.getAttribute('aria-pressed') === 'false'", "spotlight cleared")
    assert await js(lead, "document.getElementById('toast').classList.contains('show')") is False
    await lead.click(f"{tile('demo-remote-1')} [data-act='spot']")
    await until(lead, f"{spot}.getAttribute('aria-pressed') === 'true'", "spotlight on again")
    # A refusal the page could not prevent is shown in the teacher's words, not the server's.
    await lead.evaluate("void window.leadAct('spotlight', 'demo-remote-1')")
    await until(lead, "document.getElementById('toast').classList.contains('show')", "toast")
    toast = str(await js(lead, "document.getElementById('toast').textContent"))
    assert toast == "该课堂已经在聚焦中。", toast
    body = str(await js(lead, "document.body.innerText"))
    assert "bad_state" not in body and "spotlight is already" not in body

    # Mute shows on the tile (icon) and on the remote page.
    await lead.click(f"{tile('demo-remote-1')} [data-act='mute']")
    mic_off = f"document.querySelector('{tile('demo-remote-1')} .icon.mic-off')"
    await until(lead, f"!{mic_off}.classList.contains('hidden')", "muted icon")
    await until(r1, "!document.getElementById('muted-badge').classList.contains('hidden')", "r1 sees it is muted")

    # R revokes; a digit gives / revokes the floor of that tile's classroom.
    await lead.keyboard.press("r")
    await until(lead, f"!document.querySelector('{tile('demo-remote-1')}').classList.contains('floor')", "revoked by R")
    order = await js(lead, "[...document.querySelectorAll('#grid .tile')].map(t => t.dataset.classroom)")
    assert isinstance(order, list) and len(order) == 2
    second = order[1]
    await lead.keyboard.press("2")
    await until(lead, f"document.querySelector('{tile(second)}').classList.contains('floor')", "granted by 2")
    await until(r2 if second == "demo-remote-2" else r1,
                "document.getElementById('floor-banner').classList.contains('show')", "the remote has the floor")
    await lead.keyboard.press("2")
    await until(lead, f"!document.querySelector('{tile(second)}').classList.contains('floor')", "revoked by 2")
    # S spotlights nobody when nobody holds the floor, and clears an existing spotlight.
    await lead.keyboard.press("s")
    await until(lead, "document.getElementById('spot-off').disabled", "spotlight cleared by S")
    # ? shows the shortcuts; Esc closes them.
    await lead.keyboard.press("?")
    await until(lead, "document.getElementById('help').open", "help open")
    help_text = str(await js(lead, "document.getElementById('help').innerText"))
    for key in ("G", "R", "1", "S", "?", "Esc"):
        assert key in help_text
    assert "连麦" in help_text and "下麦" in help_text
    await lead.keyboard.press("Escape")
    await until(lead, "!document.getElementById('help').open", "help closed")
    # Keys typed into a field are not shortcuts.
    await lead.evaluate(
        "(() => { const i = document.createElement('input'); i.id = 'typing'; document.body.append(i); })()")
    await lead.focus("#typing")
    await lead.keyboard.press("g")
    await asyncio.sleep(0.5)
    assert await js(lead, "document.querySelectorAll('#grid .tile.floor').length") == 0

    # The phone layout of the lead page does not scroll sideways either.
    await lead.set_viewport_size(PHONE)
    await asyncio.sleep(0.5)
    assert await js(lead, NO_SIDEWAYS), await js(lead, "document.documentElement.scrollWidth")
    # ... and its header takes two lines (it took three, four in English), every control still on it
    for lang in ("zh-CN", "en"):
        await lead.evaluate("(lang) => import('/i18n.js').then((m) => m.setLang(lang))", lang)
        await asyncio.sleep(0.2)
        height = await js(lead, "document.querySelector('header').getBoundingClientRect().height")
        # two lines are ~70 px, three were ~101
        assert isinstance(height, (int, float)) and height <= 80, f"lead header ({lang}) is {height}px high"
        for control in ("#screen", "#help-button", "#lang", "#end", "#viewers", "#timer", "#live"):
            assert await lead.is_visible(control), (lang, control)
    for page in (lead, r1, r2):
        await page.context.close()


async def test_end_lesson_for_everybody(demo_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, link(demo_proc, "lead", "demo-lead", "lead"))
    r1 = await open_page(browser, link(demo_proc, "remote", "demo-remote-1", "remote"))
    observer = await open_page(browser, link(demo_proc, "observer", "demo-observer", "observer"))
    await until(lead, "!document.getElementById('end').disabled", "end enabled", 20)
    for page in (r1, observer):
        await until(page, "window.classroom.state === 'joined'", "joined", 20)
    # Cancel first: nothing happens.
    await lead.click("#end")
    await until(lead, "document.getElementById('end-dialog').open", "confirmation")
    await lead.click("#end-cancel")
    await asyncio.sleep(0.5)
    assert await js(r1, "window.classroom.state") == "joined"
    # A hand raised before the end: its request is answered by a floor event, never by an error.
    await until(r1, "!document.getElementById('hand').disabled", "r1 may raise its hand")
    await r1.click("#hand")
    await until(lead, "document.querySelectorAll('#queue li').length === 1", "the hand reached the lead")
    # Then end it.
    await lead.click("#end")
    await lead.click("#end-ok")
    for page in (r1, observer):
        await until(page, "document.getElementById('notice').classList.contains('show')", "ended notice")
        text = str(await js(page, "document.getElementById('notice').textContent"))
        assert "结束" in text, text
        assert await js(page, "document.getElementById('state').textContent") == "已下课"
    assert "结束" in str(await js(lead, "document.getElementById('notice').textContent"))
    await asyncio.sleep(3.0)  # pages would have reconnected by now
    for page in (lead, r1, observer):
        assert await js(page, "window.classroom.state") == "left"
    assert await js(r1, "document.getElementById('hand').disabled") is True
    for page in (lead, r1, observer):  # no "connection lost" or other message beside the ended notice
        shown = "!!document.getElementById('toast') && document.getElementById('toast').classList.contains('show')"
        assert await js(page, shown) is False
    assert await js(lead, "document.getElementById('end').disabled") is True
    stats = demo_proc.get_json("/healthz")
    assert stats.get("lessons", 0) == 0, stats
    for page in (lead, r1, observer):
        await page.context.close()


async def test_remote_controls_and_phone_layout(demo_proc: ServerProcess, browser: Browser) -> None:
    lead = await open_page(browser, link(demo_proc, "lead", "demo-lead", "lead"))
    await until(lead, "document.getElementById('live').classList.contains('live')", "lead live", 20)
    r1 = await open_page(browser, link(demo_proc, "remote", "demo-remote-1", "remote"), viewport=PHONE)
    await until(r1, "window.firstFrameMs !== null", "remote plays the lead", 30)
    await until(r1, "!document.getElementById('mic').disabled", "own mic published", 15)
    await until(r1, "document.querySelectorAll('#audio audio').length > 0", "lead audio", 15)
    # Phone: no sideways scroll, the header on at most two lines, the tiles below the picture.
    assert await js(r1, NO_SIDEWAYS), await js(r1, "document.documentElement.scrollWidth")
    height = await js(r1, "document.querySelector('header').getBoundingClientRect().height")
    assert isinstance(height, (int, float)) and height <= 96, f"header is {height}px high: more than two lines"
    overlap = await js(r1, """(() => { const s = document.getElementById('stage').getBoundingClientRect();
      return [...document.querySelectorAll('#side .tile')].filter(t => t.offsetParent !== null)
        .some(t => { const r = t.getBoundingClientRect();
          return r.top < s.bottom - 1 && r.bottom > s.top + 1 && r.left < s.right && r.right > s.left; }); })()""")
    assert overlap is False
    # Volume: every audio element follows the slider.
    await r1.evaluate(
        "(() => { const v = document.getElementById('volume'); v.value = '30';"
        " v.dispatchEvent(new Event('input')); })()")
    volumes = await r1.evaluate("[...document.querySelectorAll('#audio audio')].map(a => a.volume)")
    assert volumes and all(abs(v - 0.3) < 0.01 for v in volumes), volumes
    # Own mic: off disables the published audio track (silence), on again enables it.
    await r1.click("#mic")
    assert await js(r1, "window.localStream.getAudioTracks().every(t => !t.enabled)") is True
    assert await js(r1, "document.getElementById('mic').getAttribute('aria-pressed')") == "true"
    assert await js(r1, "document.querySelector('#mic .txt').textContent") == "话筒已关"
    await r1.click("#mic")
    assert await js(r1, "window.localStream.getAudioTracks().every(t => t.enabled)") is True
    # Full screen: the picture fills the screen, and back.
    await r1.click("#fullscreen")
    await until(r1, "document.fullscreenElement && document.fullscreenElement.id === 'stage'", "full screen", 5)
    await until(r1, "document.querySelector('#fullscreen .txt').textContent === '退出全屏'", "exit label", 5)
    await r1.click("#fs-exit")  # the header is not on screen now: the picture has its own button
    await until(r1, "document.fullscreenElement === null", "full screen left", 5)
    # Language: the toggle switches every label at once; ?lang=en opens in English.
    assert await js(r1, "document.querySelector('#hand .txt').textContent") == "举手"
    await r1.click("#lang")
    await until(r1, "document.querySelector('#hand .txt').textContent === 'Raise hand'", "English labels")
    assert await js(r1, "document.documentElement.lang") == "en"
    assert await js(r1, "document.getElementById('state').textContent") == "Connected"
    await r1.click("#lang")
    await until(r1, "document.querySelector('#hand .txt').textContent === '举手'", "Chinese labels again")
    # Tablet and classroom TV: no sideways scroll, the picture beside the tiles.
    sizes: list[ViewportSize] = [{"width": 820, "height": 1180}, {"width": 1920, "height": 1080}]
    for size in sizes:
        await r1.set_viewport_size(size)
        await asyncio.sleep(0.4)
        assert await js(r1, NO_SIDEWAYS), (size, await js(r1, "document.documentElement.scrollWidth"))
    for page in (lead, r1):
        await page.context.close()


@pytest.mark.parametrize("path", ["/", "/observer.html", "/playback.html", "/remote.html?lang=en", "/lead.html"])
async def test_no_sideways_scroll_on_a_phone(demo_proc: ServerProcess, browser: Browser, path: str) -> None:
    url = demo_proc.url + path
    if path == "/observer.html":
        url = link(demo_proc, "observer", "demo-observer", "observer")
    page = await open_page(browser, url, viewport=PHONE)
    await asyncio.sleep(1.0)
    assert await js(page, NO_SIDEWAYS), await js(page, "document.documentElement.scrollWidth")
    text = str(await js(page, "document.body.innerText"))
    if path == "/playback.html":  # no recording chosen: said in the teacher's words
        assert "没有选择录像" in text, text
    if path.startswith("/remote.html"):  # no token: said in English (?lang=en)
        assert "no join token" in text, text
    await page.context.close()


async def test_dictionary_covers_every_error_code(demo_proc: ServerProcess, browser: Browser) -> None:
    page = await open_page(browser, demo_proc.url + "/")
    doc = (ROOT / "docs" / "protocol.md").read_text()
    section = doc.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    words = {"join", "message", "recorder", "code", "max_granted"}  # backquoted in the prose, not codes
    documented = set(re.findall(r"`([a-z_]+)`", section)) - words | set(FLOOR_ERROR_CODES)
    result = await page.evaluate("""async (codes) => {
      const m = await import('/i18n.js');
      const missing = [];
      for (const lang of m.LANGS) for (const code of codes)
        if (!(('err.' + code) in m.MESSAGES[lang])) missing.push(lang + ':' + code);
      const keys = (lang) => Object.keys(m.MESSAGES[lang]).sort().join(',');
      return { missing, listed: m.ERROR_CODES, same: keys('zh-CN') === keys('en'),
               onlyZh: Object.keys(m.MESSAGES['zh-CN']).filter(k => !(k in m.MESSAGES.en)),
               onlyEn: Object.keys(m.MESSAGES.en).filter(k => !(k in m.MESSAGES['zh-CN'])) };
    }""", sorted(documented))
    assert result["missing"] == [], result["missing"]
    assert set(documented) <= set(result["listed"]), set(documented) - set(result["listed"])
    assert result["same"], (result["onlyZh"], result["onlyEn"])
    await page.context.close()
