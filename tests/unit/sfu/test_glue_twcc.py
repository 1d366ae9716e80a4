"""transport-cc in the SDP text (sfu/glue.py) and in the headers we write (sfu/downtrack.py)."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from sfu import glue, lane
from sfu.downtrack import restamp, rtp_header
from sfu.rtp import parse_header


def _offer() -> str:
    async def make() -> str:
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = str(pc.localDescription.sdp)
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_offer_gets_transport_cc_on_video_only_with_a_stable_id() -> None:
    sdp = glue.twcc_subscribe_offer(_offer())
    audio, video = sdp.split("m=video")
    assert glue.TWCC_URI not in audio and "transport-cc" not in audio
    assert f"a=extmap:5 {glue.TWCC_URI}" in video
    pts = [line.split()[0].split(":")[1] for line in video.split("\r\n") if line.startswith("a=rtpmap:")
           and "rtx/" not in line]
    assert pts and all(f"a=rtcp-fb:{pt} transport-cc" in video for pt in pts)
    assert glue.twcc_subscribe_offer(sdp) == sdp  # a renegotiation keeps it as it was


def test_answer_that_took_it_and_one_that_did_not() -> None:
    offer = glue.twcc_subscribe_offer(_offer())
    mid = next(line.split(":")[1] for line in offer.split("m=video")[1].split("\r\n") if line.startswith("a=mid:"))
    assert glue.twcc_answered(offer) == {mid: 5}  # (an answer echoing both lines)
    without = "\r\n".join(line for line in offer.split("\r\n") if "transport-cc" not in line) + "\r\n"
    assert glue.twcc_answered(without) == {}


def test_header_carries_the_transport_wide_number_after_abs_send_time() -> None:
    for ast in (0, 3):
        header = rtp_header(0x80, 96, 1000, 90_000, 0xABCDEF, ast, 12_345, twcc_id=5, twcc_seq=0xBEEF)
        h = parse_header(header + b"payload")
        assert h.payload_offset == len(header) == (24 if ast else 20)
        ext = header[16:]
        assert ext[-4:] == bytes((0x51, 0xBE, 0xEF, 0))
        if ast:
            assert ext[0] == 0x32


def test_restamp_takes_a_new_number_and_time() -> None:
    egress = lane._PyEgress()
    egress.twcc_enable()
    egress.twcc_take(100)
    header = rtp_header(0x80, 96, 1, 2, 3, 3, 0, twcc_id=5, twcc_seq=0)
    again = restamp(header, 120, egress.twcc_take, 1000)
    assert again[-3:-1] == (1).to_bytes(2, "big") and again[17:20] == ((1000 << 18) // 1000).to_bytes(3, "big")
    sent = egress.twcc_sent(1)
    assert sent is not None and sent[1] == 120
    assert egress.twcc_sent(2) is None


def test_c_egress_remembers_what_it_numbered() -> None:
    e = lane.Egress()
    e.twcc_enable()
    seqs = [e.twcc_take(500 + i) for i in range(3)]
    assert seqs == [0, 1, 2] and e.twcc_next == 3
    got = e.twcc_sent(1)
    assert got is not None and got[1] == 501
    assert e.twcc_sent(3) is None and e.twcc_sent(70000) is None


def test_the_numbering_remembers_which_packet_each_number_carried() -> None:
    from sfu import lane

    for egress in (lane.Egress(), lane._PyEgress()):
        egress.twcc_enable()
        first = egress.twcc_take(500)
        second = egress.twcc_take(600, 0xDEADBEEF, 70000)  # (the RTP sequence number is 16 bits)
        assert egress.twcc_packet(first) == (0, 0)
        assert egress.twcc_packet(second) == (0xDEADBEEF, 70000 & 0xFFFF)
        assert egress.twcc_packet(second + 1) is None and egress.twcc_packet(-1) is None


def test_offer_gets_rrtr_on_every_video_codec_but_rtx() -> None:
    sdp = glue.rrtr_subscribe_offer(glue.twcc_subscribe_offer(_offer()))
    audio, video = sdp.split("m=video")
    assert "rrtr" not in audio
    pts = [line.split()[0].split(":")[1] for line in video.split("\r\n") if line.startswith("a=rtpmap:")]
    rtx = {line.split()[0].split(":")[1] for line in video.split("\r\n") if line.startswith("a=rtpmap:")
           and "rtx/" in line}
    assert rtx and all(f"a=rtcp-fb:{pt} rrtr" in video for pt in pts if pt not in rtx)
    assert not any(f"a=rtcp-fb:{pt} rrtr" in video for pt in rtx)
    assert glue.rrtr_subscribe_offer(sdp) == sdp  # a renegotiation keeps it as it was
