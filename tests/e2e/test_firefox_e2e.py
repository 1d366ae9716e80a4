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
One server, one Firefox and one Chromium serve the three (a tab and a lesson each) to keep the
module's time small.
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from loadtest.firefox import Firefox, FirefoxPage
from loadtest.netem import Link, LinkSpec, free_index
from loadtest.serverproc import ServerProcess, start_server
from sfu import glue

# one event loop for the module: the browsers and the server are shared by the three cases
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PREFIX = "ff"
Pageish = Page | FirefoxPage


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
