"""Firefox (Debian's firefox-esr, default settings but fake media) in every classroom role.

Firefox runs inside a network namespace (``loadtest.netem``'s classroom side, ``10.88.X.2``, no
route out): a classroom PC on the school LAN. ``classroom serve`` listens on the host side,
``10.88.X.1``, and offers it as its ICE candidate (``CLASSROOM_MEDIA_ICE_ADDRESSES``); Chromium
runs in the root namespace. Firefox hides its host candidates behind ``.local`` mDNS names, and
nothing answers mDNS across the veth: the server reaches Firefox through the peer-reflexive
candidates it learns from Firefox's own checks (``sfu/glue.py``, ``robust_mdns_ice``).

Cases: Firefox as a remote classroom decodes the lead's video and audio (and, as an observer,
plays the same lesson); Firefox as the lead is decoded by a Chromium remote; a Firefox remote
raises its hand, the lead grants it the floor and hears it. Each prints its first-frame time.
Then the two pages that are not a classroom's: the bureau page in Firefox (log in, schedule a
lesson, a conflict shown inline in both languages, the join links, the lesson shown live once its
lead joins from Firefox) and the playback page (a recorded lesson plays — VP8/Opus WebM and
H.264 Matroska —, its timeline seeks, the sound starts after a click).
One server, one Firefox and one Chromium serve them all (a tab and a lesson each) to keep the
module's time small.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from loadtest.firefox import Firefox, FirefoxPage
from loadtest.netem import Link, LinkSpec, free_index
from loadtest.serverproc import ServerProcess, start_server
from recorder.catalogue import setup_recording_routes, signed_manifest_url
from sfu import glue
from signaling.schedule import ScheduleStore
from signaling.schedule.cli import create_admin
from tests.integration.recorder.media import SHORT_LESSON_EVENTS, record_short_lesson

# one event loop for the module: the browsers and the server are shared by the three cases
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "ff"
Pageish = Page | FirefoxPage
ROOT = Path(__file__).resolve().parents[2]
CST = timezone(timedelta(hours=8))


@dataclass
class Lan:
    link: Link
    server: ServerProcess
    base: str

    def url(self, page: str, lesson: str, classroom: str, role: str) -> str:
        tok = self.server.signer.issue(lesson, classroom, role, classroom, lesson_title="Firefox e2e")
        return f"{self.base}/{page}?token={tok}"


def ice_counters(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
            if line.startswith(("classroom_ice_mdns_unresolved_total", "classroom_ice_prflx_learned_total"))}


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    index = free_index(start=160, prefix=PREFIX)
    with Link(LinkSpec(index, prefix=PREFIX)) as link:
        host = link.spec.host_ip
        env = {**os.environ, "CLASSROOM_MEDIA_ICE_ADDRESSES": host}
        server = start_server(extra_args=["--host", host, "--tls", "off"], env=env, log_level="INFO")
        base = f"http://{host}:{server.port}"
        try:
            yield Lan(link, server, base)
            # Firefox's .local names never resolve here (no multicast route across the veth): every
            # connection above came up through peer-reflexive candidates learned from its checks
            deadline = time.monotonic() + sum(glue.MDNS_ATTEMPTS_S) + 2  # lookups still running
            while (ice := ice_counters(base))["classroom_ice_mdns_unresolved_total"] == 0 \
                    and time.monotonic() < deadline:
                time.sleep(0.25)
            print(f"server ICE: {ice}")
            assert ice["classroom_ice_mdns_unresolved_total"] > 0 and ice["classroom_ice_prflx_learned_total"] > 0
        finally:
            server.stop()
            log = "\n".join(server.lines)
            errors = [line for line in server.lines if " ERROR " in line or "Traceback" in line]
            assert not errors, "\n".join(errors[-20:])
            assert "TranscodeForbidden" not in log, log[-3000:]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def firefox(lan: Lan) -> AsyncIterator[Firefox]:
    ff = await Firefox.launch(netns=lan.link.spec.netns, secure_hosts=[lan.link.spec.host_ip])
    print(f"Firefox {ff.version} in namespace {lan.link.spec.netns}")
    try:
        yield ff
    finally:
        await ff.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium(lan: Lan) -> AsyncIterator[Browser]:
    args = [*CHROMIUM_ARGS, f"--unsafely-treat-insecure-origin-as-secure={lan.base}"]
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield b
        finally:
            await b.close()


async def chromium_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    page.on("console", lambda m: print(f"[chromium] {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    await page.goto(url)
    return page


async def wait_for(page: Pageish, expr: str, timeout: float, what: str, arg: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await (page.evaluate(expr, arg) if arg is not None else page.evaluate(expr))
        if value:
            return value
        if time.monotonic() > deadline:
            state = await page.evaluate(
                "({timeline: window.classroomTimeline, notice: (document.getElementById('notice') || {}).textContent,"
                " state: (document.getElementById('state') || {}).textContent})")
            raise AssertionError(f"timed out waiting for {what}: {state}")
        await asyncio.sleep(0.2)


LIVE = "document.getElementById('live').textContent.includes('LIVE')"
# Video frames decoded and audio packets received from one classroom's tracks (by its id).
MEDIA_FROM = """async (cid) => {
  const s = await window.classroom.stats();
  const out = {frames: 0, width: 0, audio: 0, level: 0};
  for (const t of window.classroom.tracks.filter(t => t.classroom_id === cid)) {
    const x = s.inbound[t.mid];
    if (!x) continue;
    if (t.kind === 'video') { out.frames += x.framesDecoded || 0; out.width = Math.max(out.width, x.frameWidth || 0); }
    else { out.audio += x.packets || 0; out.level = Math.max(out.level, x.audioLevel || 0); }
  }
  return out;
}"""


AUDIO_PLAYING = "[...document.querySelectorAll('#audio audio')].map(a => ({paused: a.paused, t: a.currentTime}))"
UNLOCK_VISIBLE = ("(() => { const b = document.getElementById('audio-unlock');"
                  " return !!b && b.getBoundingClientRect().width > 0; })()")
UNLOCK_SHOWN = f"window.audioBlocked && {UNLOCK_VISIBLE}"


async def media_from(page: Pageish, classroom: str) -> dict[str, Any]:
    return await page.evaluate(MEDIA_FROM, classroom)  # type: ignore[no-any-return]


async def test_firefox_remote_decodes_the_lead(lan: Lan, firefox: Firefox, chromium: Browser) -> None:
    lead = await chromium_page(chromium, lan.url("lead.html", "ff-remote", "lead", "lead"))
    await wait_for(lead, LIVE, 20, "lead live")
    t0 = time.monotonic()
    ff = await firefox.new_page(lan.url("remote.html", "ff-remote", "ff-r1", "remote"))
    try:
        await wait_for(ff, "window.firstFrameMs !== null", 20, "Firefox remote playing")
        first = await ff.evaluate("window.firstFrameMs")
        print(f"Firefox remote: first frame {first:.0f} ms after navigation start "
              f"({time.monotonic() - t0:.2f} s after the tab was opened)")
        m = await wait_for(ff, f"({MEDIA_FROM})('lead').then(m => m.frames > 10 && m.audio > 50 && m)", 15,
                           "lead's video and audio in Firefox")
        print("Firefox remote receives", m)
        # Firefox's default autoplay policy refuses sound before a click: the page says so, and one
        # real click starts the lesson's audio
        await wait_for(ff, UNLOCK_SHOWN, 10, "the 'click to start audio' button")
        print("Firefox remote audio before the click", await ff.evaluate(AUDIO_PLAYING))
        await ff.click("#audio-unlock")
        await wait_for(ff, f"({AUDIO_PLAYING}).every(a => !a.paused && a.t > 0.2) && !window.audioBlocked",
                       10, "the lead's audio playing in Firefox after the click")
        assert not await ff.evaluate(UNLOCK_VISIBLE)
        await ff.close()
        # the same lesson in Firefox as an inspector (巡课): the lead's picture, the sound button
        ff = await firefox.new_page(lan.url("observer.html", "ff-remote", "ff-inspector", "observer"))
        await wait_for(ff, "document.getElementById('main').videoWidth > 0", 15, "Firefox observer plays the lead")
        first = await ff.evaluate("window.firstFrameMs")
        print(f"Firefox observer: first frame {first:.0f} ms after navigation start")
        await wait_for(ff, UNLOCK_SHOWN, 10, "the observer's 'click to start audio' button")
    finally:
        await ff.close()
        await lead.context.close()




async def test_firefox_lead_is_decoded_by_a_chromium_remote(lan: Lan, firefox: Firefox, chromium: Browser) -> None:
    ff = await firefox.new_page(lan.url("lead.html", "ff-lead", "ff-lead", "lead"))
    try:
        await wait_for(ff, LIVE, 20, "Firefox lead live")
        t0 = time.monotonic()
        remote = await chromium_page(chromium, lan.url("remote.html", "ff-lead", "cr-r1", "remote"))
        await wait_for(remote, "window.firstFrameMs !== null", 20, "Chromium remote playing the Firefox lead")
        first = await remote.evaluate("window.firstFrameMs")
        print(f"Chromium remote of a Firefox lead: first frame {first:.0f} ms after navigation start "
              f"({time.monotonic() - t0:.2f} s after the page was opened)")
        m = await wait_for(remote, f"({MEDIA_FROM})('ff-lead').then(m => m.frames > 10 && m.audio > 50 && m)", 15,
                           "the Firefox lead's video and audio in Chromium")
        print("Chromium remote receives", m)
        await remote.context.close()
    finally:
        await ff.close()


async def test_firefox_remote_raises_its_hand_and_the_lead_hears_it(lan: Lan, firefox: Firefox,
                                                                     chromium: Browser) -> None:
    lead = await chromium_page(chromium, lan.url("lead.html", "ff-hand", "lead", "lead"))
    await wait_for(lead, LIVE, 20, "lead live")
    ff = await firefox.new_page(lan.url("remote.html", "ff-hand", "ff-r2", "remote"))
    try:
        await wait_for(ff, "window.firstFrameMs !== null", 20, "Firefox remote playing")
        print(f"Firefox remote (hand case): first frame {await ff.evaluate('window.firstFrameMs'):.0f} ms")
        await wait_for(ff, "!document.getElementById('hand').disabled", 10, "hand button enabled")
        await ff.click("#hand")
        await wait_for(lead, "document.getElementById('queue').textContent.includes('ff-r2')", 10,
                       "the Firefox classroom's hand in the lead's queue")
        await lead.click("#queue button")
        t_grant = time.monotonic()
        await wait_for(ff, "document.getElementById('floor-banner').classList.contains('show')", 10,
                       "Firefox told it has the floor")
        a = await wait_for(lead, f"({MEDIA_FROM})('ff-r2').then(m => m.audio > 20 && m.level > 0.001 && m)", 15,
                           "the lead hears the Firefox classroom")
        print(f"the lead hears the Firefox classroom {time.monotonic() - t_grant:.2f} s after the grant: {a}")
    finally:
        await ff.close()
        await lead.context.close()


def api(lan: Lan, key: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(lan.base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def fill_lesson(page: FirefoxPage, title: str, lead: str, remote: str, start: str, end: str) -> None:
    await page.click("#new-lesson")
    await wait_for(page, "document.getElementById('lesson-dialog').open", 10, "the lesson dialog")
    await wait_for(page, "document.querySelectorAll('#f-lead option').length > 1", 10, "the classrooms in the form")
    await page.fill("#f-subject", "数学 Maths")
    await page.fill("#f-title", title)
    await page.fill("#f-lead", lead)
    if not await page.evaluate(f"document.querySelector('#f-remotes input[value=\"{remote}\"]').checked"):
        await page.click(f'#f-remotes input[value="{remote}"]')
    await page.fill("#f-start", start)
    await page.fill("#f-end", end)
    await page.click("#f-save")


async def test_firefox_bureau_page_schedules_a_lesson_and_shows_it_live(lan: Lan, firefox: Firefox) -> None:
    store = ScheduleStore.open(lan.server.data_dir)
    try:
        key = create_admin(store, "Firefox County Bureau", "ff-admin")
    finally:
        store.close()
    school = api(lan, key, "POST", "/api/schools", {"name": "No. 2 Middle School"})
    rural = api(lan, key, "POST", "/api/schools", {"name": "Hill School"})
    lead = api(lan, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲 F"})
    remote = api(lan, key, "POST", "/api/classrooms", {"school_id": rural["id"], "name": "远端 G"})
    other_lead = api(lan, key, "POST", "/api/classrooms", {"school_id": school["id"], "name": "主讲 H"})
    now = datetime.now(CST)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(day_start, now - timedelta(minutes=5)).strftime("%H:%M")
    end = min(day_start + timedelta(hours=23, minutes=59), now + timedelta(minutes=40)).strftime("%H:%M")

    page = await firefox.new_page(f"{lan.base}/bureau.html?lang=zh-CN")
    lead_page: FirefoxPage | None = None
    try:
        await page.fill("#api-key", key)
        await page.click("#login")
        await wait_for(page, "!document.getElementById('app').classList.contains('hidden')", 15, "the bureau app")
        assert "Firefox County Bureau" in await page.text("#bureau-name")
        # the page has loaded the district and drawn today's (empty) list
        await wait_for(page, "!document.getElementById('today-empty').classList.contains('hidden')", 15,
                       "the district and today's lessons loaded")
        await fill_lesson(page, "Firefox fractions", lead["id"], remote["id"], start, end)
        await wait_for(page, "[...document.querySelectorAll('.lesson[data-lesson]')]"
                             ".some(e => e.textContent.includes('Firefox fractions'))", 10, "the lesson in the list")
        assert not await page.evaluate("document.getElementById('lesson-dialog').open")
        # the same remote classroom at the same time from another lead: refused, shown inline
        await fill_lesson(page, "Clash", other_lead["id"], remote["id"], start, end)
        await wait_for(page, "document.getElementById('form-error').textContent.includes('Firefox fractions')", 10,
                       "the conflict in the form")
        error = await page.text("#form-error")
        assert "时间冲突" in error and "远端 G" in error, error
        await page.evaluate("import('/i18n.js').then((m) => m.setLang('en'))")
        await page.click("#f-save")
        await wait_for(page, "document.getElementById('form-error').textContent.includes('Scheduling conflict')",
                       10, "the conflict in English")
        assert await page.evaluate(
            f"document.querySelectorAll('#f-remotes label.invalid[data-classroom=\"{remote['id']}\"]').length") == 1
        await page.click("#f-close")
        lessons = api(lan, key, "GET", "/api/lessons")["lessons"]
        assert [x["title"] for x in lessons] == ["Firefox fractions"]
        # today's list: join links; the lead joins from one (in Firefox), the list shows it live
        links = await wait_for(page, """(() => { const a = (r) => document.querySelector(
            `#today a.join-link[data-role="${r}"]`); return a('lead') && a('remote') &&
            {lead: a('lead').href, remote: a('remote').href}; })()""", 10, "the join links")
        assert links["lead"].startswith(lan.base + "/lead.html?token="), links
        assert links["remote"].startswith(lan.base + "/remote.html?token="), links
        lead_page = await firefox.new_page(links["lead"])
        await wait_for(lead_page, LIVE, 20, "the Firefox lead live from the bureau's link")
        room = f'#today li[data-status="live"] .room.on[data-classroom="{lead["id"]}"]'
        await wait_for(page, f"!!document.querySelector('{room}')", 20, "the bureau page showing the lead connected")
        print("bureau page in Firefox: lesson scheduled, conflict shown, lead shown live")
    finally:
        if lead_page is not None:
            await lead_page.close()
        await page.close()


PLAYBACK_PLAYING = """(() => { const v = document.getElementById('main-video');
  return v.readyState >= 2 && v.currentTime > 1.0 && !v.paused; })()"""


async def test_firefox_plays_a_recorded_lesson(tmp_path: Path) -> None:
    """Its own Firefox, with no pref changed at all: the shared one marks the test host a secure
    origin (dom.securecontext.allowlist), and a page made secure that way gets no plain-HTTP media
    ("Failed to open media" on every element; docs/browsers.md). Playback needs no camera, so no
    such pref, and no namespace: the recording is served on loopback."""
    await asyncio.get_running_loop().run_in_executor(
        None, record_short_lesson, tmp_path / "recordings" / "ff-lesson", "ff-lesson")
    app = web.Application()
    signer = setup_recording_routes(app, tmp_path, b"firefox-e2e-playback-secret-0123")
    app.router.add_static("/", ROOT / "client_web")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    manifest = quote(signed_manifest_url(signer, "ff-lesson", ttl=600), safe="")
    firefox = await Firefox.launch(prefs={})
    page = await firefox.new_page(f"http://127.0.0.1:{port}/playback.html?manifest={manifest}&lang=zh-CN")
    try:
        await wait_for(page, "window.playback && !!window.playback.manifest", 15, "the recording's manifest")
        count = "document.querySelectorAll(%r).length"
        assert await page.evaluate(count % "#events button.event") == len(SHORT_LESSON_EVENTS)
        assert await page.evaluate(count % "#timeline .marker") == len(SHORT_LESSON_EVENTS)
        await wait_for(page, PLAYBACK_PLAYING, 20, "the lead camera playing")
        times = await wait_for(page, "(() => { const t = window.playback.elementTimes();"
                                     " return t.every(x => x.readyState >= 2) && t; })()", 15,
                               "every track loaded (VP8/Opus WebM, H.264 Matroska)")
        print("Firefox playback elements", times)
        assert {x["kind"] for x in times} == {"video", "audio"} and len(times) == 5, times
        # the playing tracks in sync; an element whose sound Firefox refuses stays paused and is
        # only re-seeked when it lags the clock by more than playback.js's DRIFT_PLAYING (0.3 s,
        # every 250 ms): it is not counted until the click below has started it
        playing = [x["t_ms"] for x in times if not x["paused"]]
        assert len(playing) >= 2 and max(playing) - min(playing) < 400, times
        # Firefox refuses the recording's sound until a click: the page says so, one click starts it
        await wait_for(page, UNLOCK_SHOWN, 10, "the 'click to start audio' button")
        await page.click("#audio-unlock")
        await wait_for(page, "[...document.querySelectorAll('#audio audio')].every(a => !a.paused)"
                             " && !window.audioBlocked", 10, "the recording's sound playing after the click")
        # then every track, sound included, on one clock
        await wait_for(page, "(() => { const t = window.playback.elementTimes().filter(x => !x.paused)"
                             ".map(x => x.t_ms); return t.length === 5 && Math.max(...t) - Math.min(...t) < 400"
                             " && t; })()", 5, "every track playing within 400 ms of the others")
        # a click on an event seeks there (paused: exact)
        await page.evaluate("window.playback.pause()")
        await page.click("#events button.event[data-type='hand_raised']")
        await wait_for(page, "!document.getElementById('main-video').seeking", 5, "the seek")
        video_ms = await page.evaluate(
            "window.playback.manifest.tracks.find(t => t.id === 'lead-cam').start_ms"
            " + document.getElementById('main-video').currentTime * 1000")
        assert abs(video_ms - 4_000) < 1000, video_ms
        await page.fill("#speed", "2")
        await page.evaluate("window.playback.play()")
        await wait_for(page, "document.getElementById('main-video').playbackRate === 2", 5, "2x speed")
        print(f"Firefox playback: plays, seeks to the hand at {video_ms:.0f} ms, 2x")
    finally:
        await firefox.close()
        await runner.cleanup()
