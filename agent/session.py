"""One stay of the agent in one lesson: the classroom protocol (docs/protocol.md) over a WebSocket,
a publish connection (camera + microphone) and a subscribe connection (what the classroom receives,
decoded and counted)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from agent.display import FramebufferDisplay
from agent.sources import CountingTrack, SourceSpec, open_sources
from agent.speaker import Speaker

log = logging.getLogger("agent.session")

# Errors after which joining this lesson again cannot help.
FINAL_CODES = frozenset({
    "lesson_unavailable", "token_expired", "token_invalid", "token_malformed", "token_missing",
    "forbidden", "lead_present", "replaced",
})


CONNECT_TIMEOUT_S = 8.0


class ConnectionLost(Exception):
    """The server went away (restart, network): join again."""


class Refused(Exception):
    """The server refused this lesson for good (``code``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Counters:
    """Frames sent (encoded from our sources) and received (decoded), by kind; they only grow."""

    sent: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    received: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})

    def count_sent(self, kind: str) -> None:
        self.sent[kind] = self.sent.get(kind, 0) + 1


@dataclass
class Floor:
    queue: list[str] = field(default_factory=list)
    granted: list[str] = field(default_factory=list)
    spotlight: str | None = None
    muted: list[str] = field(default_factory=list)

    def describe(self, me: str) -> str:
        hand = "raised" if me in self.queue else "down"
        speaking = "yes" if me in self.granted else "no"
        return (f"hand {hand}, has the floor: {speaking}, queue={self.queue}, granted={self.granted}, "
                f"spotlight={self.spotlight}, muted={self.muted}")


def ws_url(server: str) -> str:
    base = server.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + "/ws"
    raise ValueError(f"--server must start with http:// or https://, not {server!r}")


def sources_for(role: str) -> tuple[str, str]:
    """(video source label, audio source label) a classroom of ``role`` publishes."""
    return ("teacher", "teacher") if role == "lead" else ("students", "students")


class LessonSession:
    def __init__(self, server: str, token: str, sources: SourceSpec, counters: Counters,
                 on_floor: Callable[[Floor], None] | None = None,
                 http: aiohttp.ClientSession | None = None, display: FramebufferDisplay | None = None,
                 speaker: Speaker | None = None) -> None:
        self.url = ws_url(server)
        self.token = token
        self.sources = sources
        self.counters = counters
        self.on_floor = on_floor
        self.http = http
        self.display = display
        self.speaker = speaker  # every received audio track is mixed and played on it
        self._main_video: str | None = None  # the track shown on the display
        self.joined: dict[str, Any] = {}
        self.floor = Floor()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pub: RTCPeerConnection | None = None
        self.sub: RTCPeerConnection | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._next_id = 1
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._lost = asyncio.Event()
        self._floor_changed = asyncio.Event()
        self.ended_by_lead = False
        self.final: str | None = None
        self.link: dict[str, Any] = {}  # the latest ``link`` message: this classroom's downlink
        self.joined_at: float | None = None

    @property
    def classroom_id(self) -> str:
        return str(self.joined.get("classroom_id", ""))

    async def send(self, msg: dict[str, Any]) -> asyncio.Future[Any]:
        if self.ws is None or self.ws.closed:
            raise ConnectionLost("not connected")
        rid = self._next_id
        self._next_id += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[rid] = fut
        try:
            await self.ws.send_str(json.dumps({"v": 1, "id": rid, **msg}))
        except (ConnectionError, RuntimeError) as exc:
            raise ConnectionLost(str(exc)) from exc
        return fut

    async def request(self, msg: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        fut = await self.send(msg)
        lost: asyncio.Future[Any] = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait({fut, lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if fut in done:
            return dict(fut.result())
        raise ConnectionLost(f"no reply to {msg['type']}")

    async def run(self, until: float) -> str:
        """Join, publish, receive until ``until`` (unix time). Returns ``"end"`` (the scheduled end)
        or ``"ended"`` (the lead ended the lesson); raises ConnectionLost or Refused."""
        session = self.http or aiohttp.ClientSession()
        try:
            try:
                # bounded: on a dropped network a connect can otherwise hang for minutes
                self.ws = await asyncio.wait_for(
                    session.ws_connect(self.url, heartbeat=5.0, timeout=aiohttp.ClientWSTimeout(ws_close=2)),
                    CONNECT_TIMEOUT_S)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise ConnectionLost(f"cannot reach {self.url}: {exc!r}") from exc
            self._tasks.append(asyncio.ensure_future(self._read()))
            reply = await self.request({"type": "join", "token": self.token})
            if reply["type"] == "error":
                raise Refused(str(reply.get("code")), str(reply.get("message")))
            self.joined = reply
            self.joined_at = time.time()
            self._set_floor(reply.get("floor") or {})
            log.info("joined lesson %s (%s) as %s %s", reply.get("lesson_id"), reply.get("lesson_title"),
                     reply.get("role"), reply.get("classroom_id"))
            if reply.get("role") in ("lead", "remote"):
                await self._publish(str(reply["role"]))
            left = until - time.time()
            if left > 0:
                try:
                    await asyncio.wait_for(self._lost.wait(), left)
                except TimeoutError:
                    pass
            if self.ended_by_lead:
                return "ended"
            if self.final is not None:
                raise Refused(self.final, "the server closed this classroom's connection for good")
            if self._lost.is_set():
                raise ConnectionLost("the connection to the server dropped")
            await self._leave()
            return "end"
        finally:
            await self.close()
            if self.http is None:
                await session.close()

    async def raise_hand(self, up: bool) -> dict[str, Any]:
        """Raise (or lower) this classroom's hand; the answer is the ``floor`` event that follows
        (floor events carry no ``re``) or the request's ``error``."""
        self._floor_changed.clear()
        fut = await self.send({"type": "raise_hand" if up else "lower_hand"})
        changed: asyncio.Future[Any] = asyncio.ensure_future(self._floor_changed.wait())
        try:
            await asyncio.wait({fut, changed}, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
        if fut.done():
            return dict(fut.result())
        self._replies.pop(next((k for k, v in self._replies.items() if v is fut), -1), None)
        return {"type": "floor"}

    # -- internals
    def _ice_servers(self) -> list[RTCIceServer]:
        servers = []
        for s in self.joined.get("ice_servers") or []:
            if isinstance(s, dict) and s.get("urls"):
                servers.append(RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")))
        return servers

    def _pc(self) -> RTCPeerConnection:
        config = RTCConfiguration(iceServers=self._ice_servers(), bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        pc = RTCPeerConnection(config)

        @pc.on("connectionstatechange")
        def changed() -> None:
            if pc.connectionState == "failed":
                log.warning("a media connection failed")
                self._lost.set()

        return pc

    async def _publish(self, role: str) -> None:
        video, audio = open_sources(self.sources)
        vlabel, alabel = sources_for(role)
        self.pub = self._pc()
        labels: list[tuple[Any, str]] = []
        for track, label in ((video, vlabel), (audio, alabel)):
            if track is None:
                continue
            t = self.pub.addTransceiver(CountingTrack(track, self.counters.count_sent), direction="sendonly")
            labels.append((t, label))
        if not labels:
            log.warning("nothing to publish (no --camera, --mic or --test-source)")
            return
        offer = await self.pub.createOffer()
        await self.pub.setLocalDescription(offer)
        sources = {t.mid: label for t, label in labels}
        reply = await self.request({"type": "publish", "sdp": self.pub.localDescription.sdp, "sources": sources})
        if reply["type"] == "error":
            log.error("publish refused: %s %s", reply.get("code"), reply.get("message"))
            return
        await self.pub.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        log.info("publishing %s", ", ".join(f"{t.kind if hasattr(t, 'kind') else '?'}:{label}" for t, label in labels))

    async def _answer(self, msg: dict[str, Any]) -> None:
        if self.sub is None:
            self.sub = self._pc()

            @self.sub.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._tasks.append(asyncio.ensure_future(self._consume(track)))

        await self.sub.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
        answer = await self.sub.createAnswer()
        await self.sub.setLocalDescription(answer)
        await self.send({"type": "subscribe_answer", "sdp": self.sub.localDescription.sdp})

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
                self.counters.received[kind] = self.counters.received.get(kind, 0) + 1
                if (self.display is not None and isinstance(frame, av.VideoFrame)
                        and self._main_video in (None, track.id)):
                    self._main_video = track.id  # the first video the server sends: the lead's
                    try:
                        self.display.show(frame)
                    except Exception:  # noqa: BLE001 - a display fault must not stop the lesson
                        log.exception("the display failed: counting decoded frames from now on")
                        self.display = None
                elif self.speaker is not None and isinstance(frame, av.AudioFrame):
                    self.speaker.feed(track.id, frame)
        except Exception:  # the track ended (MediaStreamError) or the connection closed
            return
        finally:
            if self.speaker is not None and track.kind == "audio":
                self.speaker.remove(track.id)
            if self._main_video == track.id:
                self._main_video = None  # the next video track takes the screen

    def _set_floor(self, f: dict[str, Any]) -> None:
        def ids(v: Any) -> list[str]:
            return [str(x) for x in v] if isinstance(v, list) else []

        self.floor = Floor(ids(f.get("queue")), ids(f.get("granted")),
                           f.get("spotlight") if isinstance(f.get("spotlight"), str) else None, ids(f.get("muted")))
        self._floor_changed.set()
        log.info("floor: %s", self.floor.describe(self.classroom_id))
        if self.on_floor is not None:
            self.on_floor(self.floor)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for m in self.ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    break
                try:
                    msg = json.loads(m.data)
                except (ValueError, RecursionError):
                    log.warning("a message that is not JSON from the server, ignored")
                    continue
                if not isinstance(msg, dict):
                    continue
                await self._handle(msg)
        except Exception as exc:  # noqa: BLE001 - any failure of the reader is a lost connection
            log.warning("signaling reader stopped: %r", exc)
        finally:
            self._lost.set()

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        re_id = msg.get("re")
        if isinstance(re_id, int) and re_id in self._replies:
            fut = self._replies.pop(re_id)
            if not fut.done():
                fut.set_result(msg)
        if kind == "subscribe_offer":
            try:
                await self._answer(msg)
            except Exception as exc:  # noqa: BLE001 - a bad offer must not end the agent
                log.error("cannot answer the subscribe offer: %r", exc)
        elif kind == "floor":
            self._set_floor(msg)
        elif kind == "lesson_ended":
            log.info("the lead ended the lesson")
            self.ended_by_lead = True
            self._lost.set()
        elif kind == "error" and re_id is None:
            code = str(msg.get("code"))
            log.warning("server error %s: %s", code, msg.get("message"))
            if code == "replaced":
                log.error("another connection of this classroom took over: not joining this lesson again")
                self.final = code
                self._lost.set()
            if code == "shutting_down":
                self._lost.set()
        elif kind == "link":
            self.link = msg
        elif kind in ("participant_joined", "participant_left"):
            p = msg.get("participant") or {}
            log.info("%s: %s", kind, p.get("name") if isinstance(p, dict) else p)

    async def _leave(self) -> None:
        try:
            await self.send({"type": "leave"})
        except ConnectionLost:
            pass
        log.info("left the lesson at its scheduled end")

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for pc in (self.pub, self.sub):
            if pc is not None:
                await pc.close()
        self.pub = self.sub = None
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
