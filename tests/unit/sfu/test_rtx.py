"""Retransmissions from publishers (RFC 4588 RTX): the offer's RTX streams, and a PublisherPeer
unwrapping an RTX packet into the packet it repairs (synthetic packets, no network)."""

from __future__ import annotations

import struct

from sfu import glue
from sfu.peer import PeerSettings, PublisherPeer
from sfu.stats import STATS
from sfu.uptrack import UpTrack
from tests.unit.sfu.test_uptrack import VP8, down, header, rtp, vp8_payload

OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n"
    "a=ssrc-group:FID 1111 2222\r\na=ssrc:1111 cname:x\r\na=ssrc:2222 cname:x\r\n"
)


def test_the_offer_s_rtx_streams() -> None:
    rtx = glue.rtx_offer(OFFER)
    assert rtx == {"1": glue.RtxOffer(apt={97: 96}, ssrcs={2222: 1111})}
    assert glue.rtx_offer(OFFER.replace("a=fmtp:97 apt=96\r\n", "")) == {}


def rtx_packet(osn: int, seq: int, ts: int, payload: bytes, ssrc: int = 2222, pt: int = 97) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, ts, ssrc) + struct.pack("!H", osn) + payload


async def test_an_rtx_packet_repairs_the_packet_it_carries() -> None:
    peer = PublisherPeer("p1", "c1", PeerSettings(), lambda t: None)
    try:
        up = UpTrack("p1:1", "video", "teacher", VP8, 1111, "p1", "c1", send_rtcp=lambda b: True, rtcp_ssrc=9)
        peer.tracks["1"] = up
        peer._by_ssrc[1111] = up
        peer._rtx = glue.rtx_offer(OFFER)
        d, t = down(up)
        for i in range(6):
            if i != 3:
                peer._on_rtp(rtp(100 + i, 3000 * i, vp8_payload(i == 0), ssrc=1111), i)
        assert len(t.rtp) == 5
        before, repaired = STATS.rtx_packets_in, STATS.upstream_repaired
        lost = vp8_payload(False)
        peer._on_rtp(rtx_packet(103, 7, 3000 * 3, lost), 10)  # the publisher's retransmission
        assert STATS.rtx_packets_in == before + 1 and STATS.upstream_repaired == repaired + 1
        assert len(t.rtp) == 6 and t.rtp[-1][12:] == lost  # forwarded, the OSN stripped
        assert header(t.rtp[-1])[2] == (header(t.rtp[2])[2] + 1) & 0xFFFF  # as packet 103
        assert peer._rtx_by_ssrc[2222] is up
        # a copy of a packet already here (a browser's redundant-payload probe): not forwarded
        redundant = STATS.rtx_redundant
        peer._on_rtp(rtx_packet(104, 9, 3000 * 4, vp8_payload(False)), 12)
        assert len(t.rtp) == 6 and STATS.rtx_redundant == redundant + 1
        # a padding-only RTX packet (a probe) is not media
        peer._on_rtp(struct.pack("!BBHII", 0xA0, 97, 8, 0, 2222) + bytes(9) + b"\x0a", 11)
        assert len(t.rtp) == 6
        # their abs-send-time still reaches the uplink estimate
        seen: list[int] = []
        up.on_arrival = lambda ast, ms, n: seen.append(ast)
        up._abs_send_time_ext = 3
        ext = struct.pack("!HH", 0xBEDE, 1) + bytes([(3 << 4) | 2, 1, 2, 3])
        peer._on_rtp(struct.pack("!BBHII", 0x90, 97, 10, 0, 2222) + ext + struct.pack("!H", 101) + b"x", 13)
        assert seen == [0x010203]
    finally:
        await peer.close()
