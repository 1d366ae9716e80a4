"""How this project starts Debian's Firefox ESR headless for real-browser tests, and a small
WebDriver BiDi client to drive it (Playwright cannot drive a stock Firefox).

Firefox keeps its default settings except what a headless test machine needs: a fake camera and
microphone, no permission prompt for them, and — given ``secure_hosts`` — a plain-HTTP test
server on a namespace address treated as a secure origin (``dom.securecontext.allowlist``, what
Chromium's ``--unsafely-treat-insecure-origin-as-secure`` is; a school server serves HTTPS,
docs/https.md). ICE, mDNS, autoplay and everything else stay as a user's Firefox has them.

Firefox may run inside a network namespace (``ip netns exec``, e.g. :mod:`loadtest.netem`'s
classroom side): its BiDi server listens on that namespace's loopback, so the client opens its
WebSocket from a socket created inside the namespace (``setns`` in a short-lived thread; a socket
keeps the namespace it was created in).

The client speaks the protocol's JSON commands over one WebSocket (aiohttp): ``session.new``,
``browsingContext.create``/``navigate``, ``script.evaluate`` (results come back as JSON text, so
no BiDi value deserialisation is needed), ``input.performActions`` for real clicks (a user
activation, which a synthetic ``element.click()`` is not: autoplay with sound needs one) and
``log.entryAdded`` for the page's console. Pure parts (prefs, command lines, expressions,
result decoding) are unit-tested in ``tests/unit/test_firefox.py``.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

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

CLONE_NEWNET: Final = 0x40000000


class FirefoxError(RuntimeError):
    """Firefox did not start, a BiDi command failed, or a page script threw."""


def user_js(prefs: dict[str, bool | int | str]) -> str:
    """The profile's ``user.js`` for ``prefs``."""
    return "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())


def firefox_argv(profile: Path, netns: str | None = None, executable: str = FIREFOX) -> list[str]:
    """Firefox headless with its BiDi server on a free port of (the namespace's) loopback."""
    argv = [executable, "--headless", "--no-remote", "--profile", str(profile),
            "--remote-debugging-port=0", "about:blank"]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


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


def decode_result(reply: dict[str, Any]) -> Any:
    """The value of a ``script.evaluate`` reply made by :func:`evaluate_expression`."""
    if reply.get("type") == "exception":
        details = reply.get("exceptionDetails") or {}
        raise FirefoxError(f"page script threw: {details.get('text', details)}")
    result = reply.get("result") or {}
    if result.get("type") != "string":
        raise FirefoxError(f"unexpected script result: {result}")
    return json.loads(result["value"])


def _netns_socket_factory(netns: str) -> Callable[[Any], socket.socket]:
    """An aiohttp socket factory whose sockets live in network namespace ``netns``."""
    libc = ctypes.CDLL(None, use_errno=True)

    def make(addr_info: Any) -> socket.socket:
        family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
        out: list[socket.socket | BaseException] = []

        def inside() -> None:  # this thread alone enters the namespace, then ends
            try:
                fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns({netns})")
                finally:
                    os.close(fd)
                out.append(socket.socket(family, type_, proto))
            except BaseException as exc:  # handed to the caller
                out.append(exc)

        t = threading.Thread(target=inside, name=f"setns-{netns}")
        t.start()
        t.join()
        if isinstance(out[0], BaseException):
            raise out[0]
        out[0].setblocking(False)
        return out[0]

    return make


@dataclass
class FirefoxPage:
    """One tab (a BiDi browsing context), with the calls the e2e tests use on a Playwright page."""

    browser: Firefox
    context: str

    async def goto(self, url: str) -> None:
        await self.browser.command("browsingContext.navigate",
                                   {"context": self.context, "url": url, "wait": "complete"})

    async def evaluate(self, source: str, arg: Any = _NO_ARG) -> Any:
        reply = await self.browser.command("script.evaluate", {
            "expression": evaluate_expression(source, arg),
            "target": {"context": self.context},
            "awaitPromise": True,
            "resultOwnership": "none",
        })
        return decode_result(reply)

    async def click(self, selector: str, timeout: float = 10.0) -> None:
        """A real mouse click (user activation) in the middle of the first element ``selector``
        matches, once it is there, visible, in the same place twice in a row and not covered
        (what Playwright's click waits for: a page still laying itself out moves its buttons)."""
        box = await self.evaluate(CLICK_TARGET_SOURCE, {"selector": selector, "timeout_ms": timeout * 1000})
        if box is None:
            raise FirefoxError(f"no visible, settled, uncovered element matches {selector!r} after {timeout:.0f} s")
        await self.browser.command("input.performActions", {"context": self.context, "actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "x": int(box["x"]), "y": int(box["y"])},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0},
            ]}]})

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
        r = await self.browser.command("browsingContext.captureScreenshot", {"context": self.context})
        path.write_bytes(base64.b64decode(r["data"]))

    async def set_viewport(self, width: int, height: int) -> None:
        await self.browser.command("browsingContext.setViewport", {
            "context": self.context, "viewport": {"width": width, "height": height}})

    async def close(self) -> None:
        await self.browser.command("browsingContext.close", {"context": self.context})


@dataclass
class Firefox:
    """A headless Firefox process and its BiDi session. ``await Firefox.launch()``, then
    :meth:`new_page`; :meth:`close` ends both (and removes the temporary profile)."""

    proc: subprocess.Popen[bytes]
    profile: Path
    netns: str | None
    version: str = ""
    on_console: Callable[[str], None] | None = print
    _http: aiohttp.ClientSession | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None
    _reader: asyncio.Task[None] | None = None
    _next_id: int = 0
    _pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    async def launch(cls, netns: str | None = None, secure_hosts: Sequence[str] = (),
                     prefs: dict[str, bool | int | str] | None = None, timeout: float = 30.0,
                     on_console: Callable[[str], None] | None = print,
                     extra_env: dict[str, str] | None = None) -> Firefox:
        profile = Path(tempfile.mkdtemp(prefix="ff-profile-"))
        (profile / "user.js").write_text(user_js(profile_prefs(secure_hosts, prefs)))
        log = open(profile / "firefox.log", "wb")  # noqa: SIM115 (the process writes it)
        env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1", **(extra_env or {})}
        proc = subprocess.Popen(firefox_argv(profile, netns), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        ff = cls(proc, profile, netns, on_console=on_console)
        try:
            port = await ff._wait_port(timeout)
            await ff._connect(port, timeout)
        except BaseException:
            await ff.close()
            raise
        return ff

    async def _wait_port(self, timeout: float) -> int:
        info = self.profile / "WebDriverBiDiServer.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FirefoxError(f"firefox exited {self.proc.returncode}: {self.log_tail()}")
            try:
                return int(json.loads(info.read_text())["ws_port"])
            except (OSError, ValueError, KeyError):
                await asyncio.sleep(0.1)
        raise FirefoxError(f"firefox's BiDi server did not start in {timeout:.0f} s: {self.log_tail()}")

    async def _connect(self, port: int, timeout: float) -> None:
        connector = aiohttp.TCPConnector(
            socket_factory=_netns_socket_factory(self.netns) if self.netns else None)
        self._http = aiohttp.ClientSession(connector=connector)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._ws = await self._http.ws_connect(f"ws://127.0.0.1:{port}/session",
                                                       max_msg_size=64 * 1024 * 1024)
                break
            except (aiohttp.ClientError, OSError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self._reader = asyncio.create_task(self._read())
        caps = await self.command("session.new", {"capabilities": {}})
        self.version = str(caps.get("capabilities", {}).get("browserVersion", ""))
        await self.command("session.subscribe", {"events": ["log.entryAdded"]})

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "event":
                self._event(data)
                continue
            fut = self._pending.pop(data.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(data)
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(FirefoxError("the BiDi connection closed"))
        self._pending.clear()

    def _event(self, data: dict[str, Any]) -> None:
        if data.get("method") == "log.entryAdded" and self.on_console is not None:
            p = data.get("params") or {}
            if p.get("level") in ("error", "warn"):
                self.on_console(f"[firefox] {p.get('level')}: {p.get('text')}")

    async def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        if self._ws is None or self._ws.closed:
            raise FirefoxError("the BiDi connection is closed")
        self._next_id += 1
        cid = self._next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        await self._ws.send_str(json.dumps({"id": cid, "method": method, "params": params}))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(cid, None)
        if reply.get("type") == "error":
            raise FirefoxError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return dict(reply.get("result") or {})

    async def new_page(self, url: str | None = None) -> FirefoxPage:
        r = await self.command("browsingContext.create", {"type": "tab"})
        page = FirefoxPage(self, str(r["context"]))
        if url is not None:
            await page.goto(url)
        return page

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.profile / "firefox.log").read_text(errors="replace")[-n:]
        except OSError:
            return ""

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await asyncio.wait_for(self.command("browser.close", {}, timeout=5), 6)
            except (FirefoxError, TimeoutError, aiohttp.ClientError, ConnectionError):
                pass
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._http is not None:
            await self._http.close()
        await asyncio.get_running_loop().run_in_executor(None, self._stop_process)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _stop_process(self) -> None:
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, 15)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def firefox_version(executable: str = FIREFOX) -> str:
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()

