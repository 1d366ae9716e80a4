"""The hot path with fakes: an UpTrack fanning synthetic RTP out to DownTracks whose transport
records what would have been protected and sent (no sockets, no aiortc)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfu import lane, rtcp
from sfu.downtrack import DownTrack, now_ms
from sfu.glue import Codec
from sfu.stats import STATS
from sfu.uptrack import UpTrack


@pytest.fixture(autouse=True, params=["c-loop", "python-loop"])
def loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs through the C fan-out call (whose lanes here have no Egress, so it calls
    DownTrack.forward) and through the pure-Python loop used when the extension is not built."""
    if request.param == "python-loop":
        monkeypatch.setattr(lane, "fanout", None)
    return str(request.param)


VP8 = Codec("video/vp8", 96, 90000)
OPUS = Codec("audio/opus", 111, 48000, 2)


class FakeTransport:
    """Stands in for glue.RawTransport: keeps the plain packets instead of sending them. It has
    no Egress, so the C fan-out loop hands every packet to DownTrack.forward."""

    egress = None
    connected = True

    def __init__(self, congested: bool = False) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.congested = congested

    def send_rtp(self, packet: bytes) -> bool:
        self.rtp.append(packet)
        return True

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        return self.send_rtp(header + payload)

    def send_rtcp(self, packet: bytes) -> bool:
        self.rtcp.append(packet)
        return True

    def write_buffer_size(self) -> int:
        return 10**7 if self.congested else 0


def vp8_payload(key: bool, start: bool = True) -> bytes:
    # descriptor: S bit on partition start, PID 0; then a VP8 header whose P bit is 0 for a keyframe
    return bytes([0x10 if start else 0x00, 0x00 if key else 0x01]) + b"\x9d\x01\x2a" + b"v" * 100


def rtp(seq: int, ts: int, payload: bytes, pt: int = 96, ssrc: int = 1234, marker: bool = False,
        ext: bytes = b"") -> bytes:
    b0 = 0x80 | (0x10 if ext else 0)
    head = struct.pack("!BBHII", b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    if ext:
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    return head + payload


def make(kind: str = "video") -> tuple[UpTrack, FakeTransport]:
    sent = FakeTransport()
    up = UpTrack("t1", kind, "teacher", VP8 if kind == "video" else OPUS, 1234, "p1", "c1",
                 send_rtcp=sent.send_rtcp, rtcp_ssrc=99, audio_level_ext=1 if kind == "audio" else 0)
    return up, sent


def down(up: UpTrack, ssrc: int = 555, pt: int = 100, congested: bool = False) -> tuple[DownTrack, FakeTransport]:
    t = FakeTransport(congested)
    d = DownTrack("s1", "0", up.kind, ssrc, pt, up.codec.clock_rate, t)  # type: ignore[arg-type]
    d.fwd.switch(up)
    up.down = (*up.down, d)
    d.up = d.src = up
    return d, t


def header(packet: bytes) -> tuple[int, int, int, int, int]:
    return struct.unpack("!BBHII", packet[:12])  # type: ignore[return-value]


async def test_rewrites_header_and_keeps_payload() -> None:
    up, _ = make()
    d, t = down(up)
    payload = vp8_payload(True)
    up.on_rtp(rtp(1000, 90000, payload, marker=True), 0)
    up.on_rtp(rtp(1001, 93000, vp8_payload(False)), 33)
    assert len(t.rtp) == 2
    b0, b1, seq0, ts0, ssrc = header(t.rtp[0])
    assert ssrc == 555 and b1 == 0x80 | 100 and b0 == 0x80
    assert t.rtp[0][12:] == payload
    _, b1, seq1, ts1, _ = header(t.rtp[1])
    assert b1 == 100 and seq1 == (seq0 + 1) & 0xFFFF and (ts1 - ts0) & 0xFFFFFFFF == 3000


async def test_video_waits_for_keyframe_and_extension_is_stripped() -> None:
    up, _ = make()
    d, t = down(up)
    up.on_rtp(rtp(1, 0, vp8_payload(False)), 0)
    assert t.rtp == []
    up.on_rtp(rtp(2, 3000, vp8_payload(True), ext=b"\x10\x05\x00\x00"), 0)
    assert len(t.rtp) == 1 and not t.rtp[0][0] & 0x10  # no X bit downstream


async def test_nack_is_answered_from_the_cache() -> None:
    up, _ = make()
    d, t = down(up)
    for i in range(10):
        up.on_rtp(rtp(100 + i, 3000 * i, vp8_payload(i == 0)), i)
    out_seq = header(t.rtp[4])[2]
    before = STATS.retransmitted_packets
    d.on_nack([out_seq, (out_seq + 5000) & 0xFFFF])
    assert STATS.retransmitted_packets == before + 1
    assert t.rtp[-1] == t.rtp[4]  # the very same packet again


def test_keyframe_requests_are_throttled() -> None:
    up, sent = make()
    up.request_keyframe.__func__  # noqa: B018 (exists)
    up._kf_interval = 3600.0
    up._send_keyframe_request()
    n = len(sent.rtcp)
    up._kf_last = 10**12  # inside the interval: a new request must not go out at once
    up._kf_pending = object()  # type: ignore[assignment]  # already scheduled
    up.request_keyframe()
    assert len(sent.rtcp) == n
    assert list(rtcp.parse(sent.rtcp[0]))[0] == rtcp.KeyframeRequest(99, 1234, fir=False)


async def test_a_keyframe_request_is_counted_for_what_asked_first() -> None:
    up, sent = make()
    before = (STATS.keyframe_requests_for_switch, STATS.keyframe_requests_for_pli, STATS.keyframe_requests_sent)
    up._kf_last = 10**12  # inside the interval: the requests wait for one send
    up.request_keyframe("switch")
    up.request_keyframe("pli")  # merged into the pending one
    assert up._kf_pending is not None
    up._kf_pending.cancel()
    up._send_keyframe_request()
    assert (STATS.keyframe_requests_for_switch, STATS.keyframe_requests_for_pli, STATS.keyframe_requests_sent) == (
        before[0] + 1, before[1], before[2] + 1)
    up.request_keyframe("pli")  # the next one starts afresh
    up._kf_pending.cancel()
    up._send_keyframe_request()
    assert STATS.keyframe_requests_for_pli == before[1] + 1


def two_layers() -> tuple[UpTrack, UpTrack, FakeTransport]:
    sent = FakeTransport()
    q, f = (UpTrack("t1", "video", "teacher", VP8, ssrc, "p1", "c1", send_rtcp=sent.send_rtcp, rtcp_ssrc=99)
            for ssrc in (1000, 2000))
    f.layer = 1
    q.layers = f.layers = (q, f)
    q.group = f.group = f
    return q, f, sent


def plis_for(sent: FakeTransport, ssrc: int) -> int:
    return sum(1 for p in sent.rtcp for r in rtcp.parse(p) if getattr(r, "media_ssrc", None) == ssrc)


async def test_a_keyframe_nobody_asked_a_layer_for_teaches_that_layers_key_together() -> None:
    q, f, sent = two_layers()
    q.request_keyframe("switch")
    assert plis_for(sent, 1000) == 1 and not f.keys_together
    f.on_rtp(rtp(1, 0, vp8_payload(True), ssrc=2000), 0)  # f keyed too, unasked
    assert q.keys_together and f.keys_together


async def test_a_layer_keyed_together_waits_for_its_siblings_keyframe() -> None:
    q, f, sent = two_layers()
    q.keys_together = f.keys_together = True
    q.request_keyframe("switch")
    f.request_keyframe("join")  # q's request brings f's keyframe: not asked again
    assert plis_for(sent, 2000) == 0
    f.on_rtp(rtp(1, 0, vp8_payload(True), ssrc=2000), 0)
    await asyncio.sleep(0.7)
    assert plis_for(sent, 2000) == 0 and plis_for(sent, 1000) == 1


async def test_a_layer_asks_itself_when_its_siblings_request_brought_nothing() -> None:
    q, f, sent = two_layers()
    q.keys_together = f.keys_together = True
    q.request_keyframe("switch")
    f.request_keyframe("join")
    await asyncio.sleep(0.7)  # no keyframe on f within KEYFRAME_TOGETHER_S
    assert plis_for(sent, 2000) == 1


async def test_a_deferred_request_is_dropped_when_a_keyframe_came_meanwhile() -> None:
    up, sent = make()
    up._kf_interval = 0.3
    up.request_keyframe("join")
    up.request_keyframe("resync")  # inside the interval: deferred
    n = len(sent.rtcp)
    up.on_rtp(rtp(1, 0, vp8_payload(True)), 0)  # the keyframe the first request asked for
    await asyncio.sleep(0.4)
    assert len(sent.rtcp) == n


def test_audio_level_is_read_from_the_extension() -> None:
    up, _ = make("audio")
    up.on_rtp(rtp(1, 0, b"\xfc" + b"o" * 40, pt=111, ext=b"\x10\x1e\x00\x00"), 0)  # id 1, level 30
    assert up.audio_level == 30


async def test_congested_subscriber_loses_video_not_others() -> None:
    up, _ = make()
    ok, t_ok = down(up, ssrc=1)
    slow, t_slow = down(up, ssrc=2, congested=True)
    for i in range(200):
        up.on_rtp(rtp(i, 3000 * i, vp8_payload(i % 100 == 0)), i)
    assert len(t_ok.rtp) == 200
    assert len(t_slow.rtp) < 200


def test_sender_report_maps_publisher_clock() -> None:
    up, _ = make("audio")
    d, t = down(up, pt=111)
    up.on_rtp(rtp(1, 48000, b"\xfc" + b"o" * 40, pt=111), 1000)
    ntp = rtcp.ntp_now()
    up.on_sender_report(rtcp.SenderReport(1234, ntp, 48000, 1, 41))
    sr = d.sender_report(ntp + (1 << 32), 2000)  # one second later
    assert sr is not None
    record = list(rtcp.parse(sr))[0]
    assert isinstance(record, rtcp.SenderReport) and record.ssrc == 555
    first_out_ts = header(t.rtp[0])[3]
    assert (record.rtp_ts - first_out_ts) & 0xFFFFFFFF == 48000


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=12, max_size=80), min_size=1, max_size=20))
def test_garbage_never_raises(packets: list[bytes]) -> None:
    async def run() -> None:
        up, _ = make()
        down(up)
        for p in packets:
            p = bytes([0x80 | (p[0] & 0x3F)]) + p[1:]
            try:
                up.on_rtp(p, 0)
            except (IndexError, struct.error):
                # glue's tap turns these into a counted drop; nothing else may escape
                pass
        up.close()

    asyncio.run(run())


async def test_packets_lost_upstream_are_asked_for_again_when_subscribers_nack_them() -> None:
    up, sent = make()
    d, t = down(up)
    for i in range(10):
        if i in (4, 5):
            continue  # lost on the publisher's uplink
        up.on_rtp(rtp(100 + i, 3000 * i, vp8_payload(i == 0)), i)
    first = [r for p in sent.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.Nack)]
    assert len(first) == 1  # the gap itself was NACKed once on arrival
    out4 = (header(t.rtp[3])[2] + 1) & 0xFFFF  # what 104 would have been downstream
    d.on_nack([out4, (out4 + 1) & 0xFFFF])
    nacks = [r for p in sent.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.Nack)]
    assert len(nacks) == 1  # too soon after the first ask: not again yet
    await asyncio.sleep(0.06)
    d.on_nack([out4, (out4 + 1) & 0xFFFF])
    nacks = [r for p in sent.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.Nack)]
    assert len(nacks) == 2 and sorted(nacks[-1].seqs) == [104, 105]
    for _ in range(5):  # at most three asks in all
        await asyncio.sleep(0.06)
        d.on_nack([out4])
    nacks = [r for p in sent.rtcp for r in rtcp.parse(p) if isinstance(r, rtcp.Nack)]
    assert sum(104 in n.seqs for n in nacks) == 3
    # the retransmission arrives: it is forwarded (late), counted, and no longer asked for
    before = STATS.upstream_repaired
    up.on_rtp(rtp(104, 3000 * 4, vp8_payload(False)), 20)
    assert header(t.rtp[-1])[2] == out4
    assert STATS.upstream_repaired == before + 1


def gop(up: UpTrack, start: int = 10, ms: int = 0) -> None:
    """A keyframe in two packets (seq ``start``, ``start+1``) and two delta frames after it."""
    up.on_rtp(rtp(start, 3000, vp8_payload(True)), ms)
    up.on_rtp(rtp(start + 1, 3000, vp8_payload(True, start=False), marker=True), ms)
    up.on_rtp(rtp(start + 2, 6000, vp8_payload(False), marker=True), ms + 33)
    up.on_rtp(rtp(start + 3, 9000, vp8_payload(False), marker=True), ms + 66)


async def test_a_subscriber_that_starts_after_the_keyframe_gets_the_gop_from_the_cache() -> None:
    """FFmpeg's whip muxer answers no PLI: a subscriber that missed its keyframe would wait a
    whole keyframe interval; it gets the current GOP replayed instead, then the live packets."""
    up, _ = make()
    gop(up)
    d, t = down(up)
    replays = STATS.gop_replays
    up.on_rtp(rtp(14, 12000, vp8_payload(False), marker=True), 100)
    assert [p[12:] for p in t.rtp] == [vp8_payload(True), vp8_payload(True, start=False)] + [vp8_payload(False)] * 3
    seqs = [header(p)[2] for p in t.rtp]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(5)]  # one continuous stream
    stamps = [header(p)[3] for p in t.rtp]
    assert [(x - stamps[0]) & 0xFFFFFFFF for x in stamps] == [0, 0, 3000, 6000, 9000]
    assert STATS.gop_replays == replays + 1
    up.on_rtp(rtp(15, 15000, vp8_payload(False)), 133)
    assert len(t.rtp) == 6 and header(t.rtp[-1])[2] == (seqs[-1] + 1) & 0xFFFF


async def test_no_replay_of_an_old_gop_or_one_with_a_hole() -> None:
    up, _ = make()
    gop(up)
    d, t = down(up)
    up.on_rtp(rtp(14, 12000, vp8_payload(False)), 1500)  # the keyframe arrived 1.5 s ago
    assert t.rtp == [] and d.fwd.waiting_keyframe
    up2, _ = make()
    up2.on_rtp(rtp(10, 3000, vp8_payload(True), marker=True), 0)
    up2.on_rtp(rtp(12, 6000, vp8_payload(False), marker=True), 33)  # 11 never arrived
    d2, t2 = down(up2)
    up2.on_rtp(rtp(13, 9000, vp8_payload(False)), 66)
    assert t2.rtp == [] and d2.fwd.waiting_keyframe
    up2.on_rtp(rtp(14, 12000, vp8_payload(True), marker=True), 99)  # the next keyframe starts it
    assert len(t2.rtp) == 1


async def test_the_replay_waits_for_the_connection_and_happens_once() -> None:
    up, _ = make()
    gop(up)
    d, t = down(up)
    t.connected = False  # type: ignore[misc]  # the subscriber's ICE/DTLS is not up yet
    up.on_rtp(rtp(14, 12000, vp8_payload(False)), 100)
    assert t.rtp == []
    t.connected = True  # type: ignore[misc]
    up.on_rtp(rtp(15, 15000, vp8_payload(False)), 133)
    assert len(t.rtp) == 6  # the GOP (10-13), 14 and 15
    # a started subscriber that loses a packet waits for the next keyframe: no second replay
    d.fwd.switch(up)
    up.on_rtp(rtp(16, 18000, vp8_payload(False)), 166)
    assert len(t.rtp) == 6 and d.fwd.waiting_keyframe


async def test_a_switch_at_once_onto_a_layer_just_keyed_replays_its_gop_instead_of_asking() -> None:
    """A congested downgrade lands on a layer whose keyframe has just passed (the previous
    switch's request keyed every layer): its young GOP is replayed, no new keyframe is asked
    for (each would stall every viewer of the top layer again)."""
    q, f, sent = two_layers()
    d, t = down(f)
    ms = now_ms()
    f.on_rtp(rtp(1, 3000, vp8_payload(True), ssrc=2000, marker=True), ms)
    assert len(t.rtp) == 1
    gop(q, ms=ms)
    asked = plis_for(sent, 1000)
    d.select_layer(0, at_once=True)
    assert plis_for(sent, 1000) == asked
    q.on_rtp(rtp(14, 12000, vp8_payload(False), marker=True), ms + 100)
    assert len(t.rtp) == 1 + 4 + 1  # f's packet, q's GOP (10-13), 14
    seqs = [header(p)[2] for p in t.rtp]
    assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(6)]  # one continuous stream


async def test_a_switch_at_once_onto_an_old_gop_asks_for_a_keyframe() -> None:
    q, f, sent = two_layers()
    d, t = down(f)
    ms = now_ms()
    f.on_rtp(rtp(1, 3000, vp8_payload(True), ssrc=2000, marker=True), ms)
    gop(q, ms=ms - 2000)
    asked = plis_for(sent, 1000)
    d.select_layer(0, at_once=True)
    assert plis_for(sent, 1000) == asked + 1
    q.on_rtp(rtp(14, 12000, vp8_payload(False), marker=True), ms)
    assert len(t.rtp) == 1 and d.fwd.waiting_keyframe


async def test_a_switch_at_once_does_not_replay_a_large_gop() -> None:
    """A young GOP of a big layer would be a burst into a line found too narrow: asked instead."""
    q, f, sent = two_layers()
    d, t = down(f)
    ms = now_ms()
    f.on_rtp(rtp(1, 3000, vp8_payload(True), ssrc=2000, marker=True), ms)
    q.on_rtp(rtp(10, 3000, vp8_payload(True)), ms)
    for i in range(1, 200):  # one keyframe of 200 packets (~23 KB)
        q.on_rtp(rtp(10 + i, 3000, vp8_payload(True, start=False), marker=i == 199), ms)
    asked = plis_for(sent, 1000)
    d.select_layer(0, at_once=True)
    q.on_rtp(rtp(210, 6000, vp8_payload(False), marker=True), ms + 50)
    assert len(t.rtp) == 1 and d.fwd.waiting_keyframe
    await asyncio.sleep(0)
    assert plis_for(sent, 1000) == asked + 1
