"""A WHIP publisher and a WHEP player on real aiortc peers (they encode and decode: they stand
in for OBS or a viewing hall's box). aiortc gathers every candidate before it offers, so no
trickle PATCH is needed."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription


class HttpPeer:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.location = ""
        self.etag = ""
        self.status = 0
        self.headers: Any = None
        self.body: Any = None
        self.created_at = 0.0
        self.last_headers: Any = None

    def auth(self, token: str | None = None) -> dict[str, str]:
        t = token if token is not None else self.token
        return {"Authorization": f"Bearer {t}"} if t else {}

    async def _post(self, path: str) -> int:
        offer = await self.pc.createOffer()
        await self.pc.setLocalDescription(offer)
        headers = {"Content-Type": "application/sdp", **self.auth()}
        async with aiohttp.ClientSession() as s, s.post(self.base_url + path, data=self.pc.localDescription.sdp,
                                                        headers=headers) as r:
            self.status, self.headers = r.status, r.headers
            self.body = await r.text() if r.status == 201 else await r.json()
        if self.status == 201:
            self.created_at = time.monotonic()
            self.location = self.headers["Location"]
            self.etag = self.headers["ETag"]
            await self.pc.setRemoteDescription(RTCSessionDescription(self.body, "answer"))
        return self.status

    async def request(self, method: str, token: str | None = None, **kw: Any) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(method, self.base_url + self.location,
                                                           headers={**self.auth(token), **kw.pop("headers", {})},
                                                           **kw) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            self.last_headers = r.headers
            return r.status, body

    async def restart_ice(self) -> tuple[int, Any]:
        """An ICE restart the RFC 9725 way (section 4.4.2): PATCH a fragment with new credentials
        and our candidates (``If-Match: *``); on ``200`` apply the server's new credentials and
        candidates. aiortc cannot restart ICE itself: the client side uses the same glue step
        as the server (``glue.restart_ice``), with the credentials it sent."""
        from aiortc.sdp import candidate_from_sdp

        from sfu import glue

        ufrag, pwd = glue.new_ice_credentials()
        conn = self.pc.getTransceivers()[0].receiver.transport.transport._connection
        lines = [f"a=ice-ufrag:{ufrag}", f"a=ice-pwd:{pwd}", "m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0"]
        lines += [f"a=candidate:{c.to_sdp()}" for c in conn.local_candidates] + ["a=end-of-candidates"]
        status, body = await self.request("PATCH", data="\r\n".join(lines) + "\r\n",
                                          headers={"Content-Type": "application/trickle-ice-sdpfrag",
                                                   "If-Match": "*"})
        if status != 200:
            return status, body
        self.etag = self.last_headers["ETag"]
        server = {k: v for k, _, v in (line.partition(":") for line in body.splitlines())
                  if k in ("a=ice-ufrag", "a=ice-pwd")}
        glue.restart_ice(self.pc, server["a=ice-ufrag"], server["a=ice-pwd"], local=(ufrag, pwd))
        for line in body.splitlines():
            if line.startswith("a=candidate:"):
                candidate = candidate_from_sdp(line[len("a=candidate:"):])
                candidate.sdpMid = "0"
                await self.pc.addIceCandidate(candidate)
        return status, body

    async def delete(self, token: str | None = None) -> int:
        return (await self.request("DELETE", token))[0]

    async def close(self) -> None:
        await self.pc.close()


class WhipPublisher(HttpPeer):
    async def publish(self, tracks: list[MediaStreamTrack], source: str | None = None) -> int:
        for track in tracks:
            self.pc.addTransceiver(track, direction="sendonly")
        return await self._post("/whip" + (f"?source={source}" if source else ""))


class WhepPlayer(HttpPeer):
    def __init__(self, base_url: str, token: str | None) -> None:
        super().__init__(base_url, token)
        self.frames: dict[str, int] = defaultdict(int)  # kind -> decoded frames
        self.track_frames: dict[str, int] = defaultdict(int)  # receiving track id -> decoded frames
        self.first_frame_at: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._consume(track)))

    async def play(self, kinds: tuple[str, ...] = ("video", "audio")) -> int:
        for kind in kinds:
            self.pc.addTransceiver(kind, direction="recvonly")
        return await self._post("/whep")

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
                self.frames[kind] += 1
                self.track_frames[track.id] += 1
                self.first_frame_at.setdefault(kind, time.monotonic())
        except Exception:
            return

    async def wait_frames(self, kind: str, count: int = 5, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.frames[kind] >= count:
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{kind} frames: {dict(self.frames)}")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await super().close()
