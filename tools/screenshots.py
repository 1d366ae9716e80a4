"""Screenshots of every page at 1280×800 and 390×844 into docs/screenshots/.

A real ``classroom serve`` (its demo lesson, in a temporary data directory) and real headless
Chromium with a fake camera and microphone: the lead classroom and two of the three remote
classrooms join (the third is absent), one raises its hand, the lead gives the other the floor
and mutes it, an observer watches; then the lead ends the lesson and the recording is opened in
the playback page (and, without a manifest, its list of recordings).
The bureau page is shown logged in with the first administrator's key.

    python3 tools/screenshots.py [--out docs/screenshots] [--lang zh-CN|en]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SIZES = {"1280": (1280, 800), "390": (390, 844)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    env["CLASSROOM_RECORDING_END_GRACE_S"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "classroom.cli", "serve", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            if (data / "demo-links.txt").exists():
                return proc, url
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def demo_links(data: Path) -> dict[str, str]:
    links = {}
    for line in (data / "demo-links.txt").read_text().splitlines():
        name, url = line.split(" ", 1)
        links[name] = url
    return links


def admin_key(log: Path) -> str:
    found = re.search(r"API key[^\n]*\n\s+(\S+)", log.read_text())
    return found.group(1) if found else ""


async def open_page(browser: Browser, url: str, lang: str) -> Page:
    context = await browser.new_context(locale=lang, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.on("console", lambda m: print(f"[page] {m.type}: {m.text}") if m.type == "error" else None)
    await page.goto(url)
    return page


async def wait_js(page: Page, expr: str, timeout: float = 30.0) -> None:
    try:
        await page.wait_for_function(expr, timeout=timeout * 1000, polling=200)
    except Exception as exc:
        raise RuntimeError(f"{page.url.split('?')[0]}: not true within {timeout:g} s: {expr}") from exc


async def shoot(page: Page, out: Path, name: str) -> None:
    for size, (w, h) in SIZES.items():
        await page.set_viewport_size({"width": w, "height": h})
        await asyncio.sleep(0.8)
        path = out / f"{name}-{size}.png"
        await page.screenshot(path=str(path), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - innerWidth")
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"{where}{f'  SIDEWAYS SCROLL {overflow} px' if overflow > 0 else ''}")
    await page.set_viewport_size({"width": 1280, "height": 800})


async def main(out: Path, lang: str) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="h5-shots-") as tmp:
        data, log = Path(tmp) / "data", Path(tmp) / "server.log"
        proc, url = start_server(data, log)
        try:
            links = demo_links(data)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    await shots(browser, url, links, admin_key(log), out, lang)
                except Exception:
                    traceback.print_exc()
                    print(log.read_text()[-3000:])
                    return 1
                finally:
                    await browser.close()
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


async def shots(browser: Browser, url: str, links: dict[str, str], key: str, out: Path, lang: str) -> None:
    index = await open_page(browser, f"{url}/", lang)
    await shoot(index, out, "index")

    lead = await open_page(browser, links["lead"], lang)
    await wait_js(lead, "document.getElementById('live').classList.contains('live')")
    r1 = await open_page(browser, links["remote-1"], lang)
    r2 = await open_page(browser, links["remote-2"], lang)
    for r in (r1, r2):
        await wait_js(r, "window.firstFrameMs !== null")
    await wait_js(lead, "document.querySelectorAll('#grid .tile video').length >= 2")
    await r1.click("#hand")
    await wait_js(lead, "document.querySelectorAll('#queue li').length === 1")
    await lead.evaluate("void window.leadAct('grant_floor', 'demo-remote-2')")
    await lead.evaluate("void window.leadAct('mute', 'demo-remote-2')")
    await wait_js(lead, "document.querySelector('[data-classroom=\"demo-remote-2\"]').classList.contains('muted')")
    await wait_js(r1, "document.getElementById('spotlight').videoWidth > 0")
    observer = await open_page(browser, links["observer"], lang)
    await wait_js(observer, "document.querySelectorAll('#grid .tile').length >= 2")
    await asyncio.sleep(2.5)  # link dots, the timer
    await shoot(lead, out, "lead")
    await shoot(r1, out, "remote")
    await shoot(r2, out, "remote-floor")
    await shoot(observer, out, "observer")
    await lead.click("#help-button")
    await asyncio.sleep(0.3)
    await lead.screenshot(path=str(out / "lead-shortcuts-1280.png"))
    await lead.keyboard.press("Escape")

    bureau = await open_page(browser, f"{url}/bureau.html", lang)
    if key:
        await bureau.fill("#api-key", key)
        await bureau.press("#api-key", "Enter")
        await asyncio.sleep(2.0)
    await shoot(bureau, out, "bureau")

    # End the lesson: the other pages say so; the recording is then played back.
    await lead.click("#end")
    await lead.click("#end-ok")
    await wait_js(r1, "document.getElementById('notice').classList.contains('show')")
    await r1.set_viewport_size({"width": 390, "height": 844})
    await r1.screenshot(path=str(out / "remote-ended-390.png"), full_page=True)
    token = links["remote-1"].split("token=", 1)[1]
    playback_url = await recording_url(f"{url}/api/recordings/demo-lesson/playback?token={token}")
    if playback_url is None:
        print("no recording of the demo lesson: playback page shown without one")
        playback_url = f"{url}/playback.html"
    else:
        playback_url = url + playback_url if playback_url.startswith("/") else playback_url
        playback_url += "&autoplay=0"
    playback = await open_page(browser, playback_url, lang)
    # a moment at which every recorded video has begun
    await playback.evaluate("""window.playback.ready.then((m) => window.playback.seek(
        Math.max(0, ...m.tracks.filter((t) => t.kind === 'video').map((t) => t.start_ms)) + 1500)).catch(() => {})""")
    await asyncio.sleep(3.0)
    tracks = await playback.evaluate(
        "window.playback.manifest ?"
        " window.playback.manifest.tracks.map(t => `${t.classroom_id}/${t.source}/${t.kind}`) : []")
    print("recording:", ", ".join(tracks) or "none")
    await shoot(playback, out, "playback")

    # playback.html without manifest=: how to get a link, and the administrator's list of recordings
    chooser = await open_page(browser, f"{url}/playback.html", lang)
    await wait_js(chooser, "!document.getElementById('choose').hidden")
    if key:
        await chooser.fill("#choose-key", key)
        await chooser.click("#choose-submit")
        await wait_js(chooser, "!document.getElementById('choose-count').hidden")
    await shoot(chooser, out, "playback-choose")


async def recording_url(api: str, timeout: float = 60.0) -> str | None:
    """Where the classroom's playback link redirects once the recording is listed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opener.open(api, timeout=5)
        except urllib.error.HTTPError as exc:
            if exc.code == 302:
                return str(exc.headers["Location"])
        await asyncio.sleep(1.0)
    return None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", default="zh-CN", choices=["zh-CN", "en"])
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.out, args.lang)))
