"""How this project starts Debian's Firefox ESR headless for real-browser tests, and drives it
with npm's ``puppeteer-core`` over WebDriver BiDi (Playwright cannot drive a stock Firefox).

Firefox keeps its default settings except what a headless test machine needs: a fake camera and
microphone, no permission prompt for them, and — given ``secure_hosts`` — a plain-HTTP test
server on a namespace address treated as a secure origin (``dom.securecontext.allowlist``, what
Chromium's ``--unsafely-treat-insecure-origin-as-secure`` is; a school server serves HTTPS,
docs/https.md). ICE, mDNS, autoplay and everything else stay as a user's Firefox has them.

:class:`Firefox` starts one Node.js process, ``loadtest/firefox_driver/driver.mjs`` (its
``package.json`` pins ``puppeteer-core``; ``npm ci --ignore-scripts`` in that folder installs it,
``tests/run.sh`` does so), which starts Firefox from :func:`firefox_argv` with the profile written
here, connects ``puppeteer-core`` to Firefox's BiDi server and serves this module's commands as
JSON lines on its stdin/stdout (the protocol is at the top of ``driver.mjs``). Firefox may run
inside a network namespace (``ip netns exec``, e.g. :mod:`loadtest.netem`'s classroom side): the
driver is started in it, so Firefox and the BiDi WebSocket on the namespace's loopback are too,
while the pipes to this process cross no network.

Scripts come back as JSON text (:func:`evaluate_expression`), clicks are real mouse clicks (a user
activation, which a synthetic ``element.click()`` is not: autoplay with sound needs one), and the
page's console errors and warnings reach ``on_console``. Pure parts (prefs, command lines,
expressions, replies) are unit-tested in ``tests/unit/loadtest/test_firefox.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

FIREFOX: Final = "/usr/bin/firefox-esr"

# The only prefs changed from a stock Firefox: fake media devices and their permissions.
FIREFOX_PREFS: Final[dict[str, bool | int | str]] = {
    "media.navigator.streams.fake": True,  # a fake camera and microphone (test pattern + tone)
    "media.navigator.permission.disabled": True,  # no camera/microphone prompt
}
SECURE_HOSTS_PREF: Final = "dom.securecontext.allowlist"  # comma-separated host names


def profile_prefs(secure_hosts: Sequence[str] = (),
                  prefs: dict[str, bool | int | str] | None = None) -> dict[str, bool | int | str]:
    """What the profile's ``user.js`` sets: ``prefs`` (default :data:`FIREFOX_PREFS`), and the
    hosts whose plain-HTTP pages count as secure contexts (camera and microphone allowed)."""
    out = dict(FIREFOX_PREFS if prefs is None else prefs)
    if secure_hosts:
        out[SECURE_HOSTS_PREF] = ",".join(secure_hosts)
    return out

DRIVER_DIR: Final = Path(__file__).resolve().parent / "firefox_driver"
DRIVER: Final = DRIVER_DIR / "driver.mjs"
NODE: Final = "node"


class FirefoxError(RuntimeError):
    """Firefox or its driver did not start, a command failed, or a page script threw."""


def user_js(prefs: dict[str, bool | int | str]) -> str:
    """The profile's ``user.js`` for ``prefs``."""
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def firefox_argv(profile: Path, executable: str = FIREFOX) -> list[str]:
    """Firefox headless with its BiDi server on a free port of (the namespace's) loopback: what
    the driver starts."""
    return [executable, "--headless", "--no-remote", "--profile", str(profile),
            "--remote-debugging-port=0", "about:blank"]


def driver_argv(launch: dict[str, Any], netns: str | None = None, node: str = NODE) -> list[str]:
    """The driver process (in network namespace ``netns`` when given), told how to start Firefox."""
    argv = [node, str(DRIVER), json.dumps(launch)]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def check_driver_installed(node: str = NODE) -> str:
    """The path of ``node``, or a :class:`FirefoxError` saying what to install."""
    path = shutil.which(node)
    if path is None:
        raise FirefoxError("Node.js is not installed: the Firefox driver needs Debian's nodejs and npm "
                           "(tests/apt-packages.txt; bash tests/run.sh installs them)")
    if not (DRIVER_DIR / "node_modules" / "puppeteer-core" / "package.json").is_file():
        raise FirefoxError(f"puppeteer-core is not installed: run `npm ci --ignore-scripts` in {DRIVER_DIR} "
                           "(bash tests/run.sh does)")
    return path


_NO_ARG: Final = object()


def evaluate_expression(source: str, arg: Any = _NO_ARG) -> str:
    """A BiDi ``script.evaluate`` expression that evaluates ``source`` (or, given ``arg``, calls the
    function ``source`` with it, as Playwright's ``page.evaluate(fn, arg)``), awaits the value
    and returns it as JSON text."""
    call = f"({source.strip()})" if arg is _NO_ARG else f"({source.strip()})({json.dumps(arg)})"
    return ("(async () => { const v = await " + call
            + "; return v === undefined ? 'null' : JSON.stringify(v); })()")


# FirefoxPage.fill: the value through the element's own prototype setter (what a framework-free
# page reads back), then the events a user's input fires; throws when nothing matches.
FILL_SOURCE: Final = """({selector, value}) => {
  const e = document.querySelector(selector);
  if (!e) throw new Error('no element matches ' + selector);
  const proto = Object.getPrototypeOf(e);
  const setter = Object.getOwnPropertyDescriptor(proto, 'value');
  if (setter && setter.set) setter.set.call(e, value); else e.value = value;
  if (e.value !== value) throw new Error(selector + ' did not take the value ' + value);
  e.dispatchEvent(new Event('input', {bubbles: true}));
  e.dispatchEvent(new Event('change', {bubbles: true}));
  return true;
}"""


# FirefoxPage.click: where to click, once the element is clickable, or null after the timeout.
# setTimeout, not requestAnimationFrame: a background tab runs no animation frames.
CLICK_TARGET_SOURCE: Final = """async ({selector, timeout_ms}) => {
  const deadline = performance.now() + timeout_ms;
  let last = null;
  for (;;) {
    const e = document.querySelector(selector);
    if (e) {
      e.scrollIntoView({block: 'center'});
      const r = e.getBoundingClientRect();
      const box = {x: r.left + r.width / 2, y: r.top + r.height / 2};
      if (r.width > 0 && r.height > 0 && last && Math.abs(last.x - box.x) < 1 && Math.abs(last.y - box.y) < 1) {
        const hit = document.elementFromPoint(box.x, box.y);
        if (hit && (hit === e || e.contains(hit))) return box;
      }
      last = box;
    } else {
      last = null;
    }
    if (performance.now() > deadline) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}"""


def decode_result(value: Any) -> Any:
    """The value of an ``evaluate`` made by :func:`evaluate_expression` (JSON text)."""
    if not isinstance(value, str):
        raise FirefoxError(f"unexpected script result: {value!r}")
    return json.loads(value)


def decode_reply(reply: dict[str, Any]) -> Any:
    """The result of one driver reply, or the :class:`FirefoxError` it carries."""
    if "error" in reply:
        raise FirefoxError(str(reply["error"]))
    return reply.get("result")


@dataclass
class FirefoxPage:
    """One tab, with the calls the e2e tests use on a Playwright page."""

    browser: Firefox
    page: str  # the driver's page id

    async def goto(self, url: str) -> None:
        """Navigate and wait for the page's ``load`` event."""
        await self.browser.command("goto", {"page": self.page, "url": url})

    async def evaluate(self, source: str, arg: Any = _NO_ARG) -> Any:
        try:
            value = await self.browser.command("evaluate", {
                "page": self.page, "expression": evaluate_expression(source, arg)})
        except FirefoxError as exc:
            raise FirefoxError(f"page script threw: {exc}") from None
        return decode_result(value)

    async def click(self, selector: str, timeout: float = 10.0) -> None:
        """A real mouse click (user activation) in the middle of the first element ``selector``
        matches, once it is there, visible, in the same place twice in a row and not covered
        (what Playwright's click waits for: a page still laying itself out moves its buttons)."""
        box = await self.evaluate(CLICK_TARGET_SOURCE, {"selector": selector, "timeout_ms": timeout * 1000})
        if box is None:
            raise FirefoxError(f"no visible, settled, uncovered element matches {selector!r} after {timeout:.0f} s")
        await self.browser.command("click", {"page": self.page, "x": int(box["x"]), "y": int(box["y"])})

    async def fill(self, selector: str, value: str) -> None:
        """Set the value of the form control ``selector`` matches (an input of any type, a select,
        a textarea) and fire ``input`` and ``change``, as a user's typing or choosing would."""
        await self.evaluate(FILL_SOURCE, {"selector": selector, "value": value})

    async def text(self, selector: str) -> str:
        """The ``textContent`` of the first element ``selector`` matches ('' when none does)."""
        return str(await self.evaluate(
            "(sel) => { const e = document.querySelector(sel); return e ? e.textContent : ''; }", selector))

    async def screenshot(self, path: Path) -> None:
        """A PNG of the tab's viewport."""
        await self.browser.command("screenshot", {"page": self.page, "path": str(Path(path).resolve())})

    async def set_viewport(self, width: int, height: int) -> None:
        await self.browser.command("viewport", {"page": self.page, "width": width, "height": height})

    async def close(self) -> None:
        await self.browser.command("closePage", {"page": self.page})


@dataclass
class Firefox:
    """A headless Firefox and the driver process that holds its BiDi session.
    ``await Firefox.launch()``, then :meth:`new_page`; :meth:`close` ends both (and removes the
    temporary profile)."""

    proc: asyncio.subprocess.Process
    profile: Path
    netns: str | None
    version: str = ""
    on_console: Callable[[str], None] | None = print
    _reader: asyncio.Task[None] | None = None
    _ready: asyncio.Future[dict[str, Any]] | None = None
    _next_id: int = 0
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    async def launch(cls, netns: str | None = None, secure_hosts: Sequence[str] = (),
                     prefs: dict[str, bool | int | str] | None = None, timeout: float = 30.0,
                     on_console: Callable[[str], None] | None = print,
                     extra_env: dict[str, str] | None = None, executable: str = FIREFOX) -> Firefox:
        node = check_driver_installed()
        profile = Path(tempfile.mkdtemp(prefix="ff-profile-"))
        (profile / "user.js").write_text(user_js(profile_prefs(secure_hosts, prefs)))
        launch = {"argv": firefox_argv(profile, executable), "log": str(profile / "firefox.log"),
                  "timeout_ms": int(timeout * 1000)}
        env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1", "PUPPETEER_SKIP_DOWNLOAD": "1",
               **(extra_env or {})}
        with open(profile / "driver.log", "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *driver_argv(launch, netns, node), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log, env=env, cwd=DRIVER_DIR,
                start_new_session=True, limit=64 * 1024 * 1024)
        ff = cls(proc, profile, netns, on_console=on_console)
        ff._ready = asyncio.get_running_loop().create_future()
        ff._reader = asyncio.create_task(ff._read())
        try:
            ready = await asyncio.wait_for(asyncio.shield(ff._ready), timeout + 10)
            if not ready.get("ready"):
                raise FirefoxError(f"Firefox did not start: {ready.get('error')}: {ff.log_tail()}")
            ff.version = str(ready.get("version", ""))
        except BaseException:
            await ff.close()
            raise
        return ff

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if "ready" in data:
                if self._ready is not None and not self._ready.done():
                    self._ready.set_result(data)
            elif "event" in data:
                self._event(data)
            else:
                fut = self._pending.pop(data.get("id", -1), None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
        gone = FirefoxError(f"the Firefox driver exited: {self.log_tail()}")
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(gone)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(gone)
        self._pending.clear()

    def _event(self, data: dict[str, Any]) -> None:
        if data.get("event") == "console" and self.on_console is not None:
            self.on_console(f"[firefox] {data.get('level')}: {data.get('text')}")

    async def command(self, op: str, params: dict[str, Any], timeout: float = 70.0) -> Any:
        """One driver command (``driver.mjs``'s list); its result."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing() or self.proc.returncode is not None:
            raise FirefoxError("the Firefox driver is not running")
        self._next_id += 1
        cid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        try:
            stdin.write(json.dumps({**params, "id": cid, "op": op}).encode() + b"\n")
            await stdin.drain()
            reply = await asyncio.wait_for(fut, timeout)
        except (ConnectionError, BrokenPipeError) as exc:
            raise FirefoxError(f"the Firefox driver is gone: {exc}") from None
        finally:
            self._pending.pop(cid, None)
        try:
            return decode_reply(reply)
        except FirefoxError as exc:
            raise FirefoxError(f"{op}: {exc}") from None

    async def new_page(self, url: str | None = None) -> FirefoxPage:
        page = FirefoxPage(self, str(await self.command("newPage", {})))
        if url is not None:
            await page.goto(url)
        return page

    def log_tail(self, n: int = 2000) -> str:
        out = []
        for name in ("driver.log", "firefox.log"):
            try:
                text = (self.profile / name).read_text(errors="replace")[-n:]
            except OSError:
                continue
            if text.strip():
                out.append(f"{name}: {text}")
        return "\n".join(out)

    async def close(self) -> None:
        """Close Firefox (the driver's ``close``), then make sure both processes have ended."""
        if self.proc.returncode is None:
            try:
                await self.command("close", {}, timeout=20)
            except (FirefoxError, TimeoutError):
                pass
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)  # the driver's session: it and its Firefox
                    except ProcessLookupError:
                        break
                    try:
                        await asyncio.wait_for(self.proc.wait(), 5)
                        break
                    except TimeoutError:
                        continue
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._reader.cancel()
        if self._ready is not None and not self._ready.done():
            self._ready.cancel()
        shutil.rmtree(self.profile, ignore_errors=True)


def firefox_version(executable: str = FIREFOX) -> str:
    import subprocess  # only here: the rest of the module is asyncio

    out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()
