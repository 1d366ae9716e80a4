"""Real aiortc classroom clients for the integration tests: they speak the classroom protocol
over a real WebSocket and negotiate real ICE/DTLS/SRTP with the SFU. Unlike the SFU they do
encode and decode (they stand in for browsers), so the tests can check decoded frames."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)

from agent.sources import PatternTrack, ToneTrack

__all__ = ["ClassroomPeer", "PatternTrack", "ToneTrack", "make_lossy"]


def make_lossy(pc: RTCPeerConnection, loss: float, seed: int = 7) -> None:
    """Drop a share of the incoming SRTP datagrams of ``pc`` (a test fake in the spirit of
    aiortc's own lossy test transports): STUN, DTLS and RTCP pass untouched."""
    import random

    rng = random.Random(seed)
    conn = pc.getTransceivers()[0].receiver.transport.transport._connection
    original = conn.data_received

    def data_received(data: bytes, component: int) -> None:
        is_rtp = 127 < data[0] < 192 and not 192 <= data[1] <= 223
        if is_rtp and rng.random() < loss:
            return
        original(data, component)

    conn.data_received = data_received


class ClassroomPeer:
    def __init__(self, base_url: str, token: str, loss: float = 0.0) -> None:
        self.loss = loss
        self.url = base_url.replace("http", "ws", 1) + "/ws"
        self.token = token
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pub: RTCPeerConnection | None = None
        self.sub: RTCPeerConnection | None = None
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.log: list[dict[str, Any]] = []
        self.tracks: list[dict[str, Any]] = []
        self.frames: dict[str, int] = defaultdict(int)  # mid -> decoded frames
        self.frame_size: dict[str, tuple[int, int]] = {}
        self.audio_rms: dict[str, float] = {}
        self.audio_frames_at: dict[str, list[float]] = defaultdict(list)
        self.joined: dict[str, Any] = {}
        self._reader: asyncio.Task[None] | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._next_id = 1
        self.offers = 0
        self.first_frame_at: dict[str, float] = {}
        self.codec_preferences: dict[str, list[Any]] = {}

    async def connect(self) -> dict[str, Any]:
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(self.url)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send({"type": "join", "token": self.token})
        self.joined = await self.expect("joined", "error")
        return self.joined

    async def send(self, msg: dict[str, Any]) -> int:
        assert self.ws is not None
        msg = {"v": 1, "id": self._next_id, **msg}
        self._next_id += 1
        await self.ws.send_str(json.dumps(msg))
        return int(msg["id"])

    async def send_raw(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def _read(self) -> None:
        assert self.ws is not None
        async for m in self.ws:
            if m.type != aiohttp.WSMsgType.TEXT:
                break
            msg = json.loads(m.data)
            self.log.append(msg)
            if msg["type"] == "subscribe_offer":
                await self._answer(msg)
            elif msg["type"] == "tracks":
                self.tracks = msg["tracks"]
            else:
                await self.messages.put(msg)

    async def expect(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {types} message; log: {self.log[-5:]}")
            msg = await asyncio.wait_for(self.messages.get(), left)
            if msg["type"] in types:
                return msg

    async def publish(self, tracks: list[tuple[MediaStreamTrack, str]]) -> dict[str, Any]:
        self.pub = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        sources = {}
        for track, source in tracks:
            t = self.pub.addTransceiver(track, direction="sendonly")
            if track.kind in self.codec_preferences:
                t.setCodecPreferences(self.codec_preferences[track.kind])
            sources[track] = (t, source)
        offer = await self.pub.createOffer()
        await self.pub.setLocalDescription(offer)
        mids = {t.mid: src for (t, src) in sources.values()}
        await self.send({"type": "publish", "sdp": self.pub.localDescription.sdp, "sources": mids})
        msg = await self.expect("publish_answer", "error")
        if msg["type"] == "publish_answer":
            await self.pub.setRemoteDescription(RTCSessionDescription(msg["sdp"], "answer"))
        return msg

    async def _answer(self, msg: dict[str, Any]) -> None:
        self.offers += 1
        self.tracks = msg["tracks"]
        if self.sub is None:
            self.sub = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

            @self.sub.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                self._consumers.append(asyncio.get_running_loop().create_task(self._consume(track)))

        await self.sub.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
        if self.loss and self.offers == 1:
            make_lossy(self.sub, self.loss)
        answer = await self.sub.createAnswer()
        await self.sub.setLocalDescription(answer)
        await self.send({"type": "subscribe_answer", "sdp": self.sub.localDescription.sdp})

    def _mid_of(self, track: MediaStreamTrack) -> str:
        assert self.sub is not None
        for t in self.sub.getTransceivers():
            if t.receiver.track is track:
                return str(t.mid)
        return "?"

    async def _consume(self, track: MediaStreamTrack) -> None:
        mid = self._mid_of(track)
        try:
            while True:
                frame = await track.recv()
                self.frames[mid] += 1
                self.first_frame_at.setdefault(mid, time.monotonic())
                if isinstance(frame, av.VideoFrame):
                    self.frame_size[mid] = (frame.width, frame.height)
                else:
                    data = frame.to_ndarray().astype(np.float64)
                    self.audio_rms[mid] = float(np.sqrt(np.mean(data**2)))
                    self.audio_frames_at[mid].append(time.monotonic())
        except Exception:
            return

    def mids(self, kind: str | None = None, classroom_id: str | None = None) -> list[str]:
        return [
            t["mid"]
            for t in self.tracks
            if t.get("track_id")
            and (kind is None or t["kind"] == kind)
            and (classroom_id is None or t["classroom_id"] == classroom_id)
        ]

    async def wait_frames(self, kind: str, count: int = 5, timeout: float = 15.0,
                          classroom_id: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mids = self.mids(kind, classroom_id)
            if mids and all(self.frames[m] >= count for m in mids):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{kind} frames: {dict(self.frames)} tracks={self.tracks}")

    async def close(self) -> None:
        for task in self._consumers:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        for pc in (self.pub, self.sub):
            if pc is not None:
                await pc.close()
        if self.session is not None:
            await self.session.close()
