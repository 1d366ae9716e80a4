"""Simulcast with fakes: layers of one track as UpTracks, a DownTrack switching between them
(the old layer goes on until the new one's keyframe; sequence numbers stay continuous), and the
SDP that negotiates them."""

from __future__ import annotations

import asyncio
import struct
import time

from sfu import glue
from sfu.downtrack import DownTrack
from sfu.uptrack import UpTrack
from tests.unit.sfu.test_uptrack import VP8, FakeTransport, header, rtp, vp8_payload


def layers() -> tuple[UpTrack, ...]:
    sent = FakeTransport()
    group = tuple(
        UpTrack(f"t:{i}", "video", "teacher", VP8, 1000 + i, "p1", "c1", send_rtcp=sent.send_rtcp, rtcp_ssrc=9)
        for i in range(3)
    )
    for i, t in enumerate(group):
        t.layers, t.group, t.layer = group, group[-1], i
    return group


def seqs(t: FakeTransport) -> list[int]:
    return [header(p)[2] for p in t.rtp]


async def test_switch_keeps_the_old_layer_until_the_new_keyframe() -> None:
    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.attach(top)
    assert d.src is top and d in top.down
    top.on_rtp(rtp(10, 0, vp8_payload(True)), 0)
    top.on_rtp(rtp(11, 3000, vp8_payload(False)), 33)
    d.select_layer(0)
    assert d.target is low and d.src is top
    low.on_rtp(rtp(500, 7000, vp8_payload(False)), 40)  # no keyframe yet: still the top layer
    top.on_rtp(rtp(12, 6000, vp8_payload(False)), 66)
    assert len(t.rtp) == 3
    low.on_rtp(rtp(501, 9000, vp8_payload(True)), 70)  # the low layer's keyframe: switch
    top.on_rtp(rtp(13, 9000, vp8_payload(False)), 99)
    low.on_rtp(rtp(502, 12000, vp8_payload(False)), 100)
    assert d.src is low and d.target is None and d not in top.down and d in low.down
    out = seqs(t)
    assert len(out) == 5
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(out, out[1:], strict=False))  # no gap, no jump
    assert t.rtp[3][12:] == vp8_payload(True)


def l1t3(pid: int, tid: int, key: bool = False) -> bytes:
    """A one-packet VP8 frame with picture id, TL0PICIDX and TID (L1T3)."""
    return bytes([0x90, 0xE0, 0x80 | (pid >> 8), pid & 0xFF, pid // 4 & 0xFF, tid << 6, 0 if key else 1]) + b"f"


def _on_an_l1t3_top_layer() -> tuple[UpTrack, UpTrack, FakeTransport, DownTrack, tuple[int, ...]]:
    """A VP8 subscriber on the top layer of an L1T3 publisher, 8 frames in (TIDs 0, 2, 1, 2, ...)."""
    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.fwd.vp8 = True
    d.attach(top)
    tids = (0, 2, 1, 2)
    for i in range(8):
        top.on_rtp(rtp(10 + i, 3000 * i, l1t3(100 + i, tids[i % 4], key=i == 0)), 33 * i)
    return low, top, t, d, tids


async def test_a_downgrade_with_temporal_layers_thins_the_old_layer_until_the_keyframe() -> None:
    low, top, t, d, tids = _on_an_l1t3_top_layer()
    assert top.has_temporal and len(t.rtp) == 8
    d.select_layer(0)  # not congested: the old layer goes on at half its rate
    assert d.target is low and d.src is top
    for i in range(8, 16):
        top.on_rtp(rtp(10 + i, 3000 * i, l1t3(100 + i, tids[i % 4])), 33 * i)
    assert len(t.rtp) == 8 + 4  # frames 8, 10, 12, 14 (TID 0 and 1) only
    low.on_rtp(rtp(900, 50_000, l1t3(7000, 0, key=True)), 600)
    low.on_rtp(rtp(901, 53_000, l1t3(7001, 2)), 633)
    assert d.src is low and len(t.rtp) == 14  # the new layer at its full rate
    out = seqs(t)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(out, out[1:], strict=False))
    pids = [((p[14] & 0x7F) << 8) | p[15] for p in t.rtp]
    assert all((b - a) & 0x7FFF == 1 for a, b in zip(pids, pids[1:], strict=False))  # across the drops and the switch


async def test_a_congested_downgrade_stops_the_old_layer_at_once_even_with_temporal_layers() -> None:
    """Thinned to its base layer, a 720p layer still overfilled a 60 % line's queue and the new
    layer's keyframe waited behind it (3-s freezes in Chromium): congested, it stops at once."""
    low, top, t, d, tids = _on_an_l1t3_top_layer()
    d.select_layer(0, at_once=True)
    for i in range(8, 16):
        top.on_rtp(rtp(10 + i, 3000 * i, l1t3(100 + i, tids[i % 4])), 33 * i)
    assert len(t.rtp) == 8  # nothing more of the old layer
    low.on_rtp(rtp(900, 50_000, l1t3(7000, 0, key=True)), 600)
    low.on_rtp(rtp(901, 53_000, l1t3(7001, 2)), 633)
    assert d.src is low and len(t.rtp) == 10
    out = seqs(t)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(out, out[1:], strict=False))


async def test_pause_and_resume_and_cancel() -> None:
    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.attach(top, layer=1)
    assert d.src is mid
    d.select_layer(2)
    d.select_layer(1)  # back to the current one: the pending switch is cancelled
    assert d.target is None and d not in top._pending
    d.select_layer(-1)
    assert d.layer_index() == -1 and d not in mid.down
    mid.on_rtp(rtp(1, 0, vp8_payload(True)), 0)
    assert t.rtp == []
    d.select_layer(0)  # from a pause: start on the layer at its keyframe
    low.on_rtp(rtp(1, 0, vp8_payload(True)), 0)
    assert d.src is low and len(t.rtp) == 1
    top.close()  # closing the track closes every layer
    assert low.closed and d.src is None


OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendonly", "a=rtpmap:111 opus/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=sendonly",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=rtpmap:96 VP8/90000",
    "a=rid:q send", "a=rid:h send", "a=rid:f send", "a=simulcast:send q;h;f",
]) + "\r\n"
ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=recvonly",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:1", "a=recvonly", "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=rtpmap:96 VP8/90000",
]) + "\r\n"


def test_simulcast_offer_and_answer() -> None:
    offered = glue.simulcast_offer(OFFER)
    assert offered == {"1": glue.SimulcastOffer("1", ("q", "h", "f"), 10, 4)}
    answer = glue.simulcast_answer(ANSWER, offered)
    video = answer.split("m=video")[1]
    for line in ("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "a=rid:q recv", "a=rid:f recv",
                 "a=simulcast:recv q;h;f"):
        assert line in video
    assert "a=simulcast" not in answer.split("m=video")[0]
    assert video.count("sdes:mid") == 1
    assert glue.simulcast_answer(ANSWER, {}) == ANSWER


def test_malformed_simulcast_is_single_layer() -> None:
    for bad in (
        OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:recv q;h;f"),
        OFFER.replace("a=simulcast:send q;h;f", "a=simulcast:"),
        OFFER.replace("a=rid:h send\r\na=rid:f send\r\n", ""),  # only one declared RID
        OFFER.replace("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", ""),
        OFFER.replace("q;h;f", "q;<script>;f").replace("a=rid:h send", "a=rid:<script> send")
        .replace("a=rid:f send", ""),
    ):
        assert glue.simulcast_offer(bad) == {}
    assert glue.simulcast_offer("garbage\r\nm=video\r\n") == {}


def test_rid_extension_is_found_in_a_packet() -> None:
    from sfu.rtp import find_extension, parse_header

    ext = bytes([0xA0, ord("h"), 0x40, ord("1")]) + b"\x00" * 0  # id 10 len 1 "h", id 4 len 1 "1"
    data = struct.pack("!BBHII", 0x90, 96, 1, 1, 42) + b"\xbe\xde\x00\x01" + ext + b"payload"
    h = parse_header(data)
    assert find_extension(data, h, 10) == b"h" and find_extension(data, h, 4) == b"1"


def test_opus_fec_is_asked_for_in_the_answer() -> None:
    answer = ANSWER.replace("a=recvonly\r\nm=video", "a=recvonly\r\na=rtpmap:111 opus/48000/2\r\nm=video")
    out = glue.opus_fec_answer(answer)
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in out.split("m=video")[0]
    again = glue.opus_fec_answer(out.replace("minptime=10;useinbandfec=1", "minptime=10;useinbandfec=0"))
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in again
    assert glue.opus_fec_answer(out) == out


async def test_probe_padding_goes_after_a_frame_and_keeps_numbers_continuous() -> None:
    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.attach(top)
    top.on_rtp(rtp(10, 0, vp8_payload(True)), 0)
    d.set_probe(2_000_000)
    d.send_probe(1.0)  # starts the clock
    top.on_rtp(rtp(11, 3000, vp8_payload(False)), 33)  # no marker: no padding
    assert len(t.rtp) == 2
    d._probe_at = time.monotonic() - 0.1  # 0.1 s of 2 Mbit/s owed = 25 kB, capped at one burst
    top.on_rtp(rtp(12, 6000, vp8_payload(False), marker=True), 66)
    padding = [p for p in t.rtp if p[0] & 0x20]
    assert 1 <= len(padding) <= 24 and all(p[-1] == 255 and len(p) == 12 + 255 for p in padding)
    top.on_rtp(rtp(13, 9000, vp8_payload(False)), 99)
    out = seqs(t)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(out, out[1:], strict=False))
    # a NACK of a padding number retransmits nothing; of a media number, that very packet
    before = len(t.rtp)
    d.on_nack([header(padding[0])[2]])
    assert len(t.rtp) == before
    d.on_nack([out[-1]])
    assert t.rtp[-1][12:] == t.rtp[before - 1][12:]
    d.set_probe(0)
    assert d not in top._probes


async def test_probe_padding_also_goes_between_frames_but_never_inside_one() -> None:
    from sfu.downtrack import PROBE_MID_S

    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.attach(top)
    top.on_rtp(rtp(10, 0, vp8_payload(True), marker=True), 0)
    d.set_probe(2_000_000)
    d.send_probe(time.monotonic())
    after_frame = len(t.rtp)
    await asyncio.sleep(PROBE_MID_S + 0.02)  # nothing forwarded since: padding again, between frames
    between = [p for p in t.rtp[after_frame:] if p[0] & 0x20]
    assert between and len(between) == len(t.rtp) - after_frame
    # a frame under way when the timer fires: no padding inside it
    top.on_rtp(rtp(11, 3000, vp8_payload(True), marker=True), 50)
    top.on_rtp(rtp(12, 6000, vp8_payload(False)), 100)  # the next frame's first packet
    count = len(t.rtp)
    await asyncio.sleep(PROBE_MID_S + 0.02)
    assert len(t.rtp) == count
    out = seqs(t)
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(out, out[1:], strict=False))
    d.close()


def test_abs_send_time_header() -> None:
    from sfu.downtrack import rtp_header
    from sfu.rtp import find_extension, parse_header

    plain = rtp_header(0x80, 100, 7, 9000, 555, 0, 1000)
    assert plain == struct.pack("!BBHII", 0x80, 100, 7, 9000, 555)
    h = rtp_header(0x80, 100, 7, 9000, 555, 3, 1000)
    assert len(h) == 20 and h[0] == 0x90
    parsed = parse_header(h + b"x")
    assert parsed.sequence == 7 and find_extension(h + b"x", parsed, 3) == b"\x04\x00\x00"  # 1 s in 6.18
    assert rtp_header(0xA0, 100, 7, 9000, 555, 3, 64_000)[0] == 0xB0  # padding keeps its P bit


async def test_a_congested_downgrade_stops_the_old_layer_at_once() -> None:
    low, mid, top = layers()
    t = FakeTransport()
    d = DownTrack("s1", "0", "video", 555, 100, 90000, t)  # type: ignore[arg-type]
    d.attach(top)
    top.on_rtp(rtp(10, 0, vp8_payload(True)), 0)
    d.select_layer(0, at_once=True)
    assert d.src is low and d not in top.down and d.target is None
    top.on_rtp(rtp(11, 3000, vp8_payload(False)), 33)
    assert len(t.rtp) == 1  # nothing more from the top layer
    low.on_rtp(rtp(1, 0, vp8_payload(True)), 40)
    assert len(t.rtp) == 2 and (header(t.rtp[1])[2] - header(t.rtp[0])[2]) & 0xFFFF == 1
    d.select_layer(2, at_once=True)  # up is never "at once": the low layer goes on meanwhile
    assert d.target is top and d.src is low
