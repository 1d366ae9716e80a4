"""WHIP leads on two WebRTC stacks we did not write, decoded by a remote page in real Chromium
(issue #17): GStreamer 1.22's ``webrtcbin`` (VP8 + Opus, tests/integration/gst_webrtc.py) and
FFmpeg 8's ``whip`` muxer (H.264 + Opus, tests/integration/ffmpeg_whip.py, with its default
options: FFmpeg the DTLS server). The server forwards packets only (its codecs raise). The remote
page decodes the lead's video within 1.5 s of the WHIP ``201`` and receives its audio."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_live_lesson_e2e import inbound, open_page, wait_for
from tests.integration.test_whip_ffmpeg import FFmpegClient, p256_certificate
from tests.integration.test_whip_gstreamer import GstClient

pytestmark = pytest.mark.e2e

FIRST_FRAME_LIMIT = 1.5  # issue #17: first frame at a remote page <= 1.5 s after the WHIP 201


async def remote_page(server_proc: ServerProcess, browser: Browser, lesson: str) -> Page:
    page = await open_page(browser, f"{server_proc.url}/remote.html?token="
                           f"{server_proc.token(lesson, 'remote-1', 'remote')}")
    await wait_for(lambda: page.evaluate("!!window.classroom.joined"), 20, "remote joined")
    return page


TIMELINE: list[str] = []  # the video receiver's stats while waiting, shown when a check fails


async def first_frame_after(page: Page, created: float, timeout: float = 10.0) -> float:
    """Seconds from ``created`` (a monotonic time: the WHIP 201) to the page's first decoded
    video frame; polled every 20 ms, so the figure is at most that late."""
    TIMELINE.clear()
    while time.monotonic() - created < timeout:
        stats = await inbound(page)
        video = [s for s in stats.values() if s["kind"] == "video"]
        TIMELINE.append(f"{time.monotonic() - created:.3f} {video}")
        if any((s.get("framesDecoded") or 0) > 0 for s in video):
            return time.monotonic() - created
        await asyncio.sleep(0.02)
    return 0.0


def gop_replays(server_proc: ServerProcess) -> str:
    metrics = server_proc.get_text("/metrics")  # a copy made once a second: may lag by that
    found = dict(re.findall(r"^classroom_(gop_replay\w+)_total (\S+)$", metrics, re.M))
    return f"{found.get('gop_replays', '?')} ({found.get('gop_replayed_packets', '?')} packets)"


async def plays(page: Page) -> tuple[int, int, int]:
    """(main video width, video frames decoded, audio packets received) on the remote page."""
    width = await page.evaluate("document.getElementById('main').videoWidth")
    stats = await inbound(page)
    frames = sum(s.get("framesDecoded") or 0 for s in stats.values() if s["kind"] == "video")
    audio = sum(s.get("packets") or 0 for s in stats.values() if s["kind"] == "audio")
    return int(width), int(frames), int(audio)


async def assert_keeps_playing(page: Page) -> None:
    async def playing() -> bool:
        width, frames, audio = await plays(page)
        return width == 320 and frames > 20 and audio > 50

    await wait_for(playing, 15, "the remote page to play the lead's video (320 wide) and audio")


async def test_gstreamer_whip_lead_decoded_by_a_chromium_remote(server_proc: ServerProcess,
                                                               browser: Browser) -> None:
    remote = await remote_page(server_proc, browser, "gst-e2e")
    lead = GstClient("whip", server_proc.url + "/whip", server_proc.token("gst-e2e", "gst-lead", "lead"), 12,
                     trickle=True)
    try:
        await lead.start()
        created = await lead.wait_for("created")
        assert created["status"] == 201, created
        first = await first_frame_after(remote, created["t"])
        print(f"\nGStreamer webrtcbin WHIP 201 -> first frame decoded by the Chromium remote page: {first:.3f} s")
        assert 0 < first <= FIRST_FRAME_LIMIT, (first, lead.events[-5:])
        await assert_keeps_playing(remote)
        names = await remote.evaluate("window.classroom.joined.participants.map(p => p.classroom_id)")
        assert "gst-lead" in names, names
        assert await lead.finish() == 0, (lead.events[-3:], await lead._stderr())
        assert (lead.last("deleted") or {}).get("status") == 200, lead.events[-3:]
    finally:
        await lead.kill()


async def test_ffmpeg_whip_lead_decoded_by_a_chromium_remote(server_proc: ServerProcess, browser: Browser,
                                                            tmp_path: Path) -> None:
    """FFmpeg's defaults (no ``whip_flags``): its offer says ``a=setup:passive``, FFmpeg is the
    DTLS server. Only a P-256 certificate is given (its own P-224 one cannot work with OpenSSL 4:
    docs/whip-whep.md)."""
    remote = await remote_page(server_proc, browser, "ff-e2e")
    cert, key = p256_certificate(tmp_path)
    lead = FFmpegClient(server_proc.url + "/whip?source=teacher", server_proc.token("ff-e2e", "ffmpeg-lead", "lead"),
                        10, "--cert", str(cert), "--key", str(key))
    try:
        await lead.start()
        deadline = time.monotonic() + 20
        answered = None
        while answered is None and time.monotonic() < deadline:
            answered = lead.log_at("Got state=3, answer")  # FFmpeg logs the 201's answer as it gets it
            await asyncio.sleep(0.01)
        assert answered is not None, lead.tail()
        first = await first_frame_after(remote, answered)
        handshake = lead.log_at("DTLS handshake is done")
        print(f"\nFFmpeg whip muxer (defaults) 201 -> DTLS done "
              f"{(handshake - answered) if handshake else -1:.3f} s, first frame decoded by the Chromium "
              f"remote page: {first:.3f} s")
        assert lead.log_at("a=setup:passive") is not None, lead.tail()  # FFmpeg's default offer
        assert 0 < first <= FIRST_FRAME_LIMIT, (first, "\n".join(TIMELINE[::5]), lead.tail())
        await assert_keeps_playing(remote)
        # FFmpeg answers no PLI: a remote whose subscription came up after FFmpeg's first IDR
        # starts on the GOP replayed from the SFU's cache (sfu/downtrack.py, _replay_gop)
        print(f"GOP replays (remote started from the cache): {gop_replays(server_proc)}")
        assert await lead.finish() == 0, lead.tail()
        assert lead.log_at("Dispose resource") is not None, lead.tail()  # the muxer's DELETE
    finally:
        await lead.kill()
