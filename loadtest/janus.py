"""Janus (the C SFU from Debian) for the side-by-side benchmark: install, configure, run, drive.

* :func:`ensure_installed` installs ``janus`` with apt-get if it is missing.
* :func:`write_config` fills the templates in ``deploy/janus/`` into a temporary folder.
* :class:`JanusProcess` runs it (pinned with taskset if asked) and waits for the HTTP API.
* :class:`JanusSession` speaks the Janus HTTP API (create/attach/message, long-poll events).
* :class:`VideoRoom` creates a room, adds a *remote publisher* (plain RTP in on a UDP port;
  Janus demultiplexes its streams by SSRC ``1000 + 10 × mindex``), subscribes real WebRTC
  subscribers (Janus offers, the subscriber answers), and sets up ``rtp_forward`` with SRTP.

Everything listens on 127.0.0.1, except Janus's ICE candidates, which it never gathers on
loopback: those are restricted to ``ice_enforce_list`` (the benchmark gives it the address of
a network namespace that has no route out).
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.serverproc import REPO_ROOT, wrap_command

TEMPLATE_DIR = REPO_ROOT / "deploy" / "janus"
LIB_DIR = "/usr/lib/x86_64-linux-gnu/janus"
REMOTE_PUBLISHER_BASE_SSRC = 1000
REMOTE_PUBLISHER_SSRC_STEP = 10


class JanusError(RuntimeError):
    pass


def ensure_installed() -> str:
    """The path of the ``janus`` binary, installing the Debian package if needed."""
    path = shutil.which("janus")
    if path:
        return path
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "janus"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    path = shutil.which("janus")
    if not path:
        raise JanusError("could not install janus:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return path


def janus_version() -> str:
    path = ensure_installed()
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        if "version" in line.lower():
            return line.split("(")[-1].rstrip(")").strip() if "(" in line else line.strip()
    return "?"


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    dest: Path,
    http_port: int,
    ice_enforce_list: str,
    rtp_port_range: str = "30000-39999",
    debug_level: int = 3,
) -> Path:
    """Render ``deploy/janus/*.jcfg.in`` into ``dest``; returns the path of janus.jcfg."""
    dest.mkdir(parents=True, exist_ok=True)
    lib_dir = LIB_DIR
    if not Path(lib_dir).exists():  # another architecture: find the plugin folder
        found = sorted(Path("/usr/lib").glob("*/janus/plugins"))
        if found:
            lib_dir = str(found[0].parent)
    values = {
        "@CONFIG_DIR@": str(dest),
        "@LIB_DIR@": lib_dir,
        "@DEBUG_LEVEL@": str(debug_level),
        "@RTP_PORT_RANGE@": rtp_port_range,
        "@ICE_ENFORCE_LIST@": ice_enforce_list,
        "@HTTP_PORT@": str(http_port),
    }
    for template in sorted(TEMPLATE_DIR.glob("*.jcfg.in")):
        text = template.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(key, value)
        (dest / template.name[: -len(".in")]).write_text(text, encoding="utf-8")
    return dest / "janus.jcfg"


@dataclass
class JanusProcess:
    proc: subprocess.Popen[bytes]
    http_port: int
    config_dir: Path
    log_path: Path
    own_dir: bool = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/janus"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.own_dir:
            shutil.rmtree(self.config_dir, ignore_errors=True)


def start_janus(
    ice_enforce_list: str,
    cpu: int | None = None,
    timeout: float = 30.0,
    debug_level: int = 3,
    nice: int = 0,
) -> JanusProcess:
    """Start Janus with a fresh config on a free HTTP port and wait until its API answers."""
    binary = ensure_installed()
    conf = Path(tempfile.mkdtemp(prefix="classroom-janus-"))
    port = free_tcp_port()
    config = write_config(conf, port, ice_enforce_list, debug_level=debug_level)
    log_path = conf / "janus.log"
    cmd = [binary, "-C", str(config), "-F", str(conf), "-o", "-L", str(log_path), "-N"]
    cmd = wrap_command(cmd, cpu, nice)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(conf)
    )
    jp = JanusProcess(proc, port, conf, log_path)
    deadline = time.monotonic() + timeout
    import urllib.request

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = jp.log_tail()
            jp.stop()
            raise JanusError("janus exited at start:\n" + tail)
        try:
            with urllib.request.urlopen(jp.url + "/info", timeout=2) as resp:
                if resp.status == 200:
                    return jp
        except OSError:
            pass
        time.sleep(0.2)
    tail = jp.log_tail()
    jp.stop()
    raise JanusError("janus HTTP API did not come up:\n" + tail)


# --- the HTTP API ---------------------------------------------------------------------------


@dataclass
class JanusSession:
    """One Janus session over the HTTP API, with a long-poll task for asynchronous events."""

    url: str
    http: aiohttp.ClientSession
    session_id: int = 0
    events: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _poller: asyncio.Task[None] | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @classmethod
    async def create(cls, url: str) -> JanusSession:
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        s = cls(url, http)
        reply = await s._post(s.url, {"janus": "create"})
        s.session_id = int(reply["data"]["id"])
        s._poller = asyncio.get_running_loop().create_task(s._poll())
        return s

    def _tid(self) -> str:
        return f"t{next(self._ids)}"

    async def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        body.setdefault("transaction", self._tid())
        async with self.http.post(url, json=body) as resp:
            reply: dict[str, Any] = await resp.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {reply.get('error')}")
        return reply

    async def _poll(self) -> None:
        """Long-poll GET: delivers events to whoever waits on their transaction; keeps alive."""
        url = f"{self.url}/{self.session_id}?maxev=10"
        while True:
            try:
                async with self.http.get(url) as resp:
                    data = await resp.json(content_type=None)
            except (TimeoutError, aiohttp.ClientError, ValueError):
                await asyncio.sleep(0.2)
                continue
            for ev in data if isinstance(data, list) else [data]:
                fut = self.events.get(str(ev.get("transaction")))
                if fut is not None and not fut.done() and ev.get("janus") != "ack":
                    fut.set_result(ev)

    async def attach(self, plugin: str = "janus.plugin.videoroom") -> int:
        body = {"janus": "attach", "plugin": plugin}
        reply = await self._post(f"{self.url}/{self.session_id}", body)
        return int(reply["data"]["id"])

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous plugin request (room management): the plugin's data."""
        reply = await self._post(
            f"{self.url}/{self.session_id}/{handle}", {"janus": "message", "body": body}
        )
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if data.get("error"):
            raise JanusError(f"{body.get('request')}: {data.get('error')}")
        return data

    async def message(
        self,
        handle: int,
        body: dict[str, Any],
        jsep: dict[str, Any] | None = None,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """An asynchronous plugin request: the event that answers it (with ``jsep`` if any)."""
        tid = self._tid()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.events[tid] = fut
        msg: dict[str, Any] = {"janus": "message", "body": body, "transaction": tid}
        if jsep is not None:
            msg["jsep"] = jsep
        try:
            reply = await self._post(f"{self.url}/{self.session_id}/{handle}", msg)
            if reply.get("janus") == "success":  # answered synchronously after all
                return reply
            ev = await asyncio.wait_for(fut, timeout)
        finally:
            self.events.pop(tid, None)
        data = ev.get("plugindata", {}).get("data", {})
        if data.get("error"):
            raise JanusError(f"{body.get('request')}: {data.get('error')}")
        return ev

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        try:
            await self._post(f"{self.url}/{self.session_id}", {"janus": "destroy"})
        except (TimeoutError, aiohttp.ClientError, JanusError, ValueError):
            pass
        await self.http.close()


@dataclass
class RemoteStream:
    kind: str
    mindex: int
    payload_type: int

    @property
    def ssrc(self) -> int:
        return REMOTE_PUBLISHER_BASE_SSRC + REMOTE_PUBLISHER_SSRC_STEP * self.mindex


class VideoRoom:
    """One VideoRoom with one remote (plain RTP) publisher: VP8 on mindex 0, Opus on 1."""

    def __init__(self, session: JanusSession, room_id: int = 4242) -> None:
        self.session = session
        self.room_id = room_id
        self.admin_handle = 0
        self.publisher_id = 0
        self.rtp_port = 0
        self.streams = [RemoteStream("video", 0, 96), RemoteStream("audio", 1, 111)]

    async def create(self) -> None:
        self.admin_handle = await self.session.attach()
        await self.session.request(
            self.admin_handle,
            {
                "request": "create", "room": self.room_id, "publishers": 4,
                "videocodec": "vp8", "audiocodec": "opus", "bitrate": 0, "fir_freq": 0,
                "notify_joining": False, "audiolevel_event": False, "record": False,
            },
        )

    async def add_remote_publisher(self, publisher_id: int = 777) -> int:
        """Register the remote publisher; returns the UDP port to send its RTP to."""
        data = await self.session.request(
            self.admin_handle,
            {
                "request": "add_remote_publisher", "room": self.room_id, "id": publisher_id,
                "display": "lead", "iface": "127.0.0.1", "port": 0,
                "streams": [
                    {"type": s.kind, "mindex": s.mindex, "mid": str(s.mindex),
                     "codec": "vp8" if s.kind == "video" else "opus"}
                    for s in self.streams
                ],
            },
        )
        self.publisher_id = int(data.get("id", publisher_id))
        self.rtp_port = int(data["port"])
        return self.rtp_port

    async def subscribe(self) -> tuple[int, str]:
        """A new subscriber handle and Janus's SDP offer for it."""
        handle = await self.session.attach()
        ev = await self.session.message(
            handle,
            {"request": "join", "ptype": "subscriber", "room": self.room_id,
             "streams": [{"feed": self.publisher_id}]},
        )
        jsep = ev.get("jsep")
        if not jsep or jsep.get("type") != "offer":
            raise JanusError(f"subscriber join: no offer in {ev}")
        return handle, str(jsep["sdp"])

    async def start(self, handle: int, answer_sdp: str) -> None:
        await self.session.message(
            handle, {"request": "start", "room": self.room_id},
            jsep={"type": "answer", "sdp": answer_sdp},
        )

    async def rtp_forward(
        self, host: str, video_port: int, audio_port: int, srtp_crypto: str | None
    ) -> list[int]:
        """Forward the publisher's streams (plain UDP, SRTP if ``srtp_crypto``); returns the
        forwarder ids."""
        body: dict[str, Any] = {
            "request": "rtp_forward", "room": self.room_id, "publisher_id": self.publisher_id,
            "host": host,
            "streams": [
                {"mid": "0", "port": video_port},
                {"mid": "1", "port": audio_port},
            ],
        }
        if srtp_crypto:
            body["srtp_suite"] = 80
            body["srtp_crypto"] = srtp_crypto
        data = await self.session.request(self.admin_handle, body)
        return [int(f.get("stream_id", 0)) for f in data.get("forwarders", [])]
