"""SDP fuzzing through ``publish`` and ``subscribe_answer`` against a real ``classroom serve``:
mutations of real aiortc offers and answers (truncations, duplicated, swapped and garbled lines,
absurd numbers) from a lead and a remote classroom that publish and from a remote classroom that
answers the server's subscribe offers, while a real lesson (a publishing lead bot and a receiving
remote bot) goes on beside them. Every ``publish`` must be answered (``publish_answer`` or
``sdp_invalid``), never ``internal``; the lesson's media must keep flowing; a classroom that joins
afterwards still gets media."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.bots import SubscriberBot
from tests.fuzz.harness import (
    SEED,
    Counts,
    Live,
    budget,
    media_lesson,
    read_until_pong,
    report,
    still_flowing,
    watch_figures,
)
from tests.fuzz.mutate import absurd_numbers, garble_text, mutate_lines
from tests.fuzz.offers import real_offer

LESSON = "fuzz-sdp"


def mutate_sdp(rng: random.Random, sdp: str) -> str:
    op = rng.randrange(10)
    if op == 0:
        return sdp[: rng.randrange(len(sdp))]  # truncated anywhere
    if op == 1:
        return absurd_numbers(rng, sdp)
    if op == 2:
        return sdp.replace("\r\n", "\n")
    if op == 3:  # one m-section repeated many times
        head, *sections = sdp.split("m=")
        if sections:
            return head + "m=" + "m=".join(sections + [rng.choice(sections)] * rng.randint(2, 60))
    if op == 4:
        return garble_text(rng, sdp)
    if op == 5:  # absurd attribute values
        extra = rng.choice([
            "a=rtpmap:96 VP8/0", "a=rtpmap:300 opus/48000/2", "a=ssrc:99999999999 cname:x", "a=fmtp:96",
            "a=setup:sideways", "a=fingerprint:sha-999 00", "a=ice-ufrag:", "a=mid:" + "m" * 300,
            "a=rid:q send", "a=simulcast:send q;h;f", "a=extmap:0 urn:x", "a=extmap:15000 urn:ietf:x",
            "m=video 0 RTP/AVP 96", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP6 ::",
            "a=candidate:1 1 udp 1 999.1.1.1 1 typ host", "a=group:BUNDLE " + " ".join(map(str, range(300))),
            "a=ssrc-group:FID 1 2 3 4 5", "a=rtcp-fb:96 nack " + "x" * 1000, "a=msid:" + "\u202e" * 50,
        ])
        lines = sdp.split("\r\n")
        i = rng.randrange(len(lines))
        lines.insert(i, extra)
        return "\r\n".join(lines)
    return mutate_lines(rng, sdp)


async def real_answer(offer: str) -> str:
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy="max-bundle"))  # type: ignore[arg-type]
    try:
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def fuzz_sdp(live: Live, token: str, kind: str, seeds: list[str], rng: random.Random, end: float,
                   counts: Counts) -> None:
    """``kind`` ``publish``: mutated offers; ``subscribe_answer``: mutated answers to the
    server's latest subscribe offer (made real with aiortc once per offer)."""
    url = live.base_url.replace("http", "ws", 1) + "/ws"
    latest_offer: dict[str, str] = {}

    def on_message(data: dict[str, Any]) -> None:
        if data.get("type") == "subscribe_offer":
            latest_offer["sdp"] = data["sdp"]

    async with aiohttp.ClientSession() as session:
        while time.monotonic() < end:
            async with session.ws_connect(url) as ws:
                ref = 1
                await ws.send_str(json.dumps({"v": 1, "id": ref, "type": "join", "token": token}))
                answers: dict[str, str] = {}
                while time.monotonic() < end and not ws.closed:
                    if kind == "subscribe_answer":
                        offer = latest_offer.get("sdp")
                        if offer is not None and offer not in answers:
                            answers.clear()
                            answers[offer] = await real_answer(offer)
                        base = answers.get(offer or "", seeds[0])
                    else:
                        base = rng.choice(seeds)
                    sdp = base if rng.random() < 0.08 else mutate_sdp(rng, base)
                    msg: dict[str, Any] = {"v": 1, "id": ref + 1, "type": kind, "sdp": sdp}
                    if kind == "publish" and rng.random() < 0.5:
                        msg["sources"] = {str(i): rng.choice(["teacher", "students", "screen"]) for i in range(3)}
                    ref += 2
                    counts.inputs += 1
                    live.sent(msg)
                    try:
                        await ws.send_str(json.dumps(msg))
                        await ws.send_str(json.dumps({"v": 1, "id": ref, "type": "ping"}))
                    except (ConnectionError, RuntimeError):
                        break
                    if not await read_until_pong(live, ws, ref, counts, msg, on_message):
                        break
            counts.reconnects += 1


@pytest.mark.timeout(240)
async def test_sdp_offers_and_answers(live: Live, record_property: Callable[[str, object], None]) -> None:
    seconds = budget(8.0)
    pub, sub = await media_lesson(live, LESSON)
    late: SubscriberBot | None = None
    try:
        assert pub.pc is not None and pub.pc.localDescription is not None
        offers = [pub.pc.localDescription.sdp, await real_offer(1, 1), await real_offer(2, 1), await real_offer(0, 1),
                  await real_offer(1, 0)]
        counts = Counts()
        started = time.monotonic()
        end = started + seconds
        rng = random.Random(SEED)
        await asyncio.gather(
            fuzz_sdp(live, live.token(LESSON, "r2", "remote"), "publish", offers, random.Random(rng.random()), end,
                     counts),
            fuzz_sdp(live, live.token("fuzz-sdp-2", "lead", "lead"), "publish", offers, random.Random(rng.random()),
                     end, counts),
            fuzz_sdp(live, live.token(LESSON, "r3", "remote"), "subscribe_answer", offers,
                     random.Random(rng.random()), end, counts),
        )
        elapsed = time.monotonic() - started
        await still_flowing(sub)
        late = SubscriberBot(live.base_url, live.token(LESSON, "r4", "remote"))
        await late.start()
        await late.wait_receiving(packets=20)
        res = live.check()
        report(record_property, "sdp", counts.inputs, elapsed, reconnects=counts.reconnects, **watch_figures(res))
        print("  replies:", dict(sorted(counts.replies.items())))
        assert counts.replies.get("publish_answer", 0) > 0 and counts.replies.get("error:sdp_invalid", 0) > 0
    finally:
        for bot in (late, sub, pub):
            if bot is not None:
                await bot.stop()
