"""WHIP/WHEP interop with a WebRTC stack we did not write: GStreamer 1.22's ``webrtcbin``
(Debian 12's gstreamer1.0-plugins-bad, libnice, python3-gst-1.0), driven by
tests/integration/gst_webrtc.py under Debian's own ``/usr/bin/python3``.

GStreamer publishes VP8 + Opus test video and audio as the lead of a lesson over WHIP (its
candidates trickled with PATCH); a WebSocket remote classroom (a real aiortc peer) decodes both;
a second GStreamer process plays the lesson over WHEP as an observer and decodes the lead's video
and audio (GStreamer → SFU → GStreamer, no aiortc codec in between)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from classroom.server import Server
from tests.integration.peers import ClassroomPeer

CLIENT = Path(__file__).with_name("gst_webrtc.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-gst-1.0 is built for Debian's interpreter


class GstClient:
    """One gst_webrtc.py process: its JSON events, read as they come."""

    def __init__(self, mode: str, url: str, token: str, seconds: float, trickle: bool = False) -> None:
        self.args = [mode, url, "--seconds", str(seconds)] + (["--trickle"] if trickle else [])
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert Path(SYSTEM_PYTHON).exists(), "Debian's python3 (with python3-gst-1.0) is needed"
        self.proc = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON, str(CLIENT), *self.args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stdin is not None
        self.proc.stdin.write(self.token.encode() + b"\n")  # the token never on a command line
        await self.proc.stdin.drain()
        self.proc.stdin.close()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue

    def last(self, event: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == event), None)

    async def wait_for(self, event: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.last(event)
            if found is not None:
                return found
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event!r} from GStreamer: {self.events[-5:]} {await self._stderr()}")

    async def wait_frames(self, video: int, audio_ms: int, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames = self.last("frames")
            if frames and frames["video"] >= video and frames["audio_ms"] >= audio_ms:
                return frames
            if self.proc is not None and self.proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"GStreamer player decoded too little: {self.events[-3:]} {await self._stderr()}")

    async def _stderr(self) -> str:
        if self.proc is not None and self.proc.returncode is not None and self.proc.stderr is not None:
            self.stderr += await self.proc.stderr.read()
        lines = [x for x in self.stderr.decode(errors="replace").splitlines() if x.strip()]
        return "\n".join(lines[-15:])

    async def finish(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            rc = await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            if self._reader is not None:
                await asyncio.wait_for(self._reader, 5)
        return rc

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def token(server: Server, lesson: str, classroom: str, role: str) -> str:
    return server.signer.issue(lesson, classroom, role, classroom)


async def test_gstreamer_publishes_over_whip_and_plays_over_whep(server: Server) -> None:
    remote = ClassroomPeer(server.base_url, token(server, "gs1", "r1", "remote"))
    lead = GstClient("whip", server.base_url + "/whip", token(server, "gs1", "gst-lead", "lead"), 9, trickle=True)
    player = GstClient("whep", server.base_url + "/whep", token(server, "gs1", "hall", "observer"), 4)
    try:
        assert (await remote.connect())["type"] == "joined"
        await lead.start()
        created = await lead.wait_for("created")
        assert created["status"] == 201, created
        assert created["location"].startswith("/whip/")
        # webrtcbin offered actpass; the SFU took the DTLS server role (docs/whip-whep.md)
        assert "a=setup:actpass" in created["offer"]
        room = server.router.rooms["gs1"]
        assert room.lead is not None and room.lead.classroom_id == "gst-lead"
        await remote.wait_frames("video", 10, classroom_id="gst-lead")
        await remote.wait_frames("audio", 10, classroom_id="gst-lead")
        first = min(remote.first_frame_at.values()) - created["t"]
        print(f"\nGStreamer WHIP 201 -> first frame decoded by the aiortc remote: {first:.3f} s")
        assert first <= 1.5, first
        patched = [e for e in lead.events if e["event"] == "patched"]
        assert patched and all(e["status"] == 204 for e in patched), patched  # trickled candidates
        sources = sorted(t["source"] for t in remote.tracks if t.get("classroom_id") == "gst-lead")
        assert sources == ["teacher", "teacher"], remote.tracks

        await player.start()
        answered = await player.wait_for("created")
        assert answered["status"] == 201, answered
        frames = await player.wait_frames(video=15, audio_ms=1000)
        print(f"GStreamer WHEP 201 -> first frame decoded by GStreamer: video {frames['first']['video']:.3f} s, "
              f"audio {frames['first']['audio']:.3f} s")
        assert frames["size"] == [320, 240], frames  # the GStreamer lead's own picture
        assert await player.finish() == 0, (player.events[-3:], await player._stderr())
        assert (player.last("deleted") or {}).get("status") == 200, player.events[-3:]
        assert await lead.finish() == 0, (lead.events[-3:], await lead._stderr())
        assert (lead.last("deleted") or {}).get("status") == 200, lead.events[-3:]
        left = await remote.expect("participant_left")
        assert left["participant"]["classroom_id"] == "gst-lead"
        assert "gs1" not in server.router.rooms or server.router.rooms["gs1"].lead is None
    finally:
        await lead.kill()
        await player.kill()
        await remote.close()
