"""A WHIP lead (an aiortc publisher standing in for OBS) and remote pages in real Chromium: the
remote page decodes the lead within 1.5 s of the WHIP ``201`` (the server forwards packets only:
its codecs raise). And a WHEP player page in Chromium (a few lines of fetch) plays the lead."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser

from sfu import glue
from tests.e2e.conftest import ServerProcess
from tests.e2e.test_live_lesson_e2e import inbound, open_page, wait_for
from tests.integration.peers import PatternTrack, ToneTrack
from tests.integration.whip_client import WhipPublisher

pytestmark = pytest.mark.e2e

WHEP_PAGE = """
window.whep = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  const video = document.createElement("video");
  video.autoplay = true; video.muted = true; document.body.appendChild(video);
  pc.ontrack = (e) => { if (e.track.kind === "video") video.srcObject = new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === "complete") ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok(); });
  const r = await fetch(url, {method: "POST", body: pc.localDescription.sdp,
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token}});
  if (r.status !== 201) throw new Error("WHEP " + r.status + " " + await r.text());
  await pc.setRemoteDescription({type: "answer", sdp: await r.text()});
  window.whepPc = pc;
  return r.headers.get("Location");
};
window.whepStats = async () => {
  const out = {video: 0, audio: 0, width: 0};
  (await window.whepPc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") { out.video = s.framesDecoded || 0; out.width = s.frameWidth || 0; }
    else out.audio = s.packetsReceived || 0;
  });
  return out;
};
true;  // not a function: playwright would call the script's last value
"""


async def test_whip_lead_decoded_by_a_remote_page(server_proc: ServerProcess, browser: Browser) -> None:
    glue.configure_ice(["127.0.0.1"])  # this process's aiortc publisher on loopback
    remote = await open_page(browser, f"{server_proc.url}/remote.html?token="
                             f"{server_proc.token('whip-e2e', 'remote-1', 'remote')}")
    await wait_for(lambda: remote.evaluate("!!window.classroom.joined"), 20, "remote joined")
    lead = WhipPublisher(server_proc.url, server_proc.token("whip-e2e", "obs", "lead"))
    try:
        assert await lead.publish([PatternTrack(), ToneTrack()]) == 201, lead.body
        created = lead.created_at
        first = 0.0
        while time.monotonic() - created < 10:
            stats = await inbound(remote)
            if any((s.get("framesDecoded") or 0) > 0 for s in stats.values() if s["kind"] == "video"):
                first = time.monotonic() - created
                break
            await asyncio.sleep(0.02)
        print(f"\nWHIP 201 -> first frame decoded by the Chromium remote page: {first:.3f} s")
        assert 0 < first <= 1.5, first
        width = await remote.evaluate("document.getElementById('main').videoWidth")
        assert width == 320
        # the WHEP player page in Chromium
        # a page of another origin (about:blank): the POST goes through CORS preflight
        player = await (await browser.new_context()).new_page()
        player.on("console", lambda m: print(f"[whep page] {m.type}: {m.text}"))
        await player.set_content("<html><body></body></html>")
        await player.evaluate(WHEP_PAGE)
        hall = server_proc.token("whip-e2e", "hall", "observer")
        location = await player.evaluate("([u, t]) => window.whep(u, t)", [f"{server_proc.url}/whep", hall])
        assert location.startswith("/whep/")

        async def playing() -> bool:
            s = await player.evaluate("window.whepStats()")
            return bool(s["video"] > 10 and s["audio"] > 10 and s["width"] == 320)

        await wait_for(playing, 15, "the WHEP page to decode the lead's video and receive its audio")
        # the lead's grid: the WHIP classroom is a participant like any other
        names = await remote.evaluate("window.classroom.joined.participants.map(p => p.classroom_id)")
        assert "obs" in names, names
        assert await lead.delete() == 200
    finally:
        await lead.close()
