"""A WHIP lead (an aiortc publisher standing in for OBS) and remote pages in real Chromium: the
remote page decodes the lead within 1.5 s of the WHIP ``201`` (the server forwards packets only:
its codecs raise). And a WHEP player page in Chromium (a few lines of fetch) plays the lead."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

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
window.whepRestart = async (url, token) => {  // RFC 9725 4.4.2, the way a WHEP player does it
  const pc = window.whepPc;
  pc.restartIce();
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === "complete") ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok(); });
  const offer = pc.localDescription.sdp.split("\\r\\n");
  const pick = (lines, name) => lines.find((l) => l.startsWith("a=" + name + ":"));
  const frag = [pick(offer, "ice-ufrag"), pick(offer, "ice-pwd"), "m=audio 9 UDP/TLS/RTP/SAVPF 0",
    pick(offer, "mid"), ...offer.filter((l) => l.startsWith("a=candidate:")), "a=end-of-candidates", ""];
  const r = await fetch(url, {method: "PATCH", body: frag.join("\\r\\n"), headers: {
    "Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*", "Authorization": "Bearer " + token}});
  if (r.status !== 200) throw new Error("ICE restart " + r.status + " " + await r.text());
  const answer = (await r.text()).split("\\r\\n");
  const ufrag = pick(answer, "ice-ufrag"), pwd = pick(answer, "ice-pwd");
  const cands = answer.filter((l) => l.startsWith("a=candidate:"));
  const out = [];
  for (const line of pc.remoteDescription.sdp.split("\\r\\n")) {
    if (line.startsWith("a=ice-ufrag:")) out.push(ufrag);
    else if (line.startsWith("a=ice-pwd:")) { out.push(pwd); out.push(...cands); }
    else if (!line.startsWith("a=candidate:")) out.push(line);
  }
  await pc.setRemoteDescription({type: "answer", sdp: out.join("\\r\\n")});
  return {etag: r.headers.get("ETag"), ufrag: ufrag};
};
window.whepTransport = async () => {  // the local ufrag and the selected pair: id, local port, bytes
  const stats = await window.whepPc.getStats();
  let out = null;
  stats.forEach((s) => { if (s.type === "transport") out = {ufrag: s.iceLocalUsernameFragment,
    state: s.iceState, pair: s.selectedCandidatePairId}; });
  const pair = out && stats.get(out.pair);
  const local = pair && stats.get(pair.localCandidateId);
  if (out) { out.port = local ? local.port : 0; out.bytes = pair ? pair.bytesReceived || 0 : 0; }
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
        # Chromium restarts ICE on its WHEP session (pc.restartIce() + PATCH): the server answers
        # 200 with new credentials, Chromium takes them (its local ufrag changes), its
        # new-generation pair (new sockets) connects and carries the lead's video from then on
        # (glue.restart_ice disconnects the server's ICE socket: connected to the old pair's
        # address it dropped the new checks; docs/whip-whep.md, "ICE restart").
        before = await player.evaluate("window.whepTransport()")
        started = time.monotonic()
        restarted = await player.evaluate("([u, t]) => window.whepRestart(u, t)",
                                          [f"{server_proc.url}{location}", hall])
        assert restarted["etag"] and restarted["ufrag"].startswith("a=ice-ufrag:")

        new_pair: dict[str, Any] = {}

        async def on_the_new_pair() -> bool:
            t = await player.evaluate("window.whepTransport()")
            new_pair.update(t or {})
            return bool(t and t["ufrag"] != before["ufrag"] and t["state"] == "connected"
                        and t["pair"] != before["pair"] and t["bytes"] > 0)

        await wait_for(on_the_new_pair, 10, "Chromium's new-generation pair to be selected and carry media")
        took = time.monotonic() - started
        print(f"\nChromium WHEP ICE restart: the new pair (local port {before['port']} -> {new_pair['port']}) "
              f"selected and carrying media {took:.3f} s after the restart")
        decoded = (await player.evaluate("window.whepStats()"))["video"]

        async def still_playing() -> bool:
            return bool((await player.evaluate("window.whepStats()"))["video"] > decoded + 20)

        await wait_for(still_playing, 10, "the WHEP page to go on decoding after the ICE restart")
        after = await player.evaluate("window.whepTransport()")
        # the video decoded since came over the new pair (it is still the selected one, its bytes grew)
        assert after["pair"] == new_pair["pair"] and after["bytes"] > new_pair["bytes"], (new_pair, after)
        counts: dict[str, float] = {}

        async def restart_counted() -> bool:
            # /metrics is a copy made once a second (classroom/metrics.py): poll, do not read once
            metrics = server_proc.get_text("/metrics")
            counts.update({name: float(value) for name, value in re.findall(
                r"^(classroom_ice_restarts(?:_failed)?_total) (\S+)$", metrics, re.M)})
            return counts.get("classroom_ice_restarts_total", 0) >= 1

        # at least our restart (Chromium may PATCH again for the same restartIce()), none failed
        await wait_for(restart_counted, 5, "classroom_ice_restarts_total >= 1 in /metrics")
        assert counts.get("classroom_ice_restarts_failed_total") == 0, counts
        # the lead's grid: the WHIP classroom is a participant like any other
        names = await remote.evaluate("window.classroom.joined.participants.map(p => p.classroom_id)")
        assert "obs" in names, names
        assert await lead.delete() == 200
    finally:
        await lead.close()
