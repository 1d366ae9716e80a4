"""sfu/sdpshape.py: SDP beyond the bounds is refused before any parser sees it; real offers pass."""

from __future__ import annotations

import time

import pytest

from sfu.sdpshape import DEFAULT_SHAPE, SdpShapeError, answer_shape, check_sdp_shape

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=mid:0", "a=sendonly",
    "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli", "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96", "a=ssrc-group:FID 1 2", "a=ssrc:1 cname:x", "a=ssrc:2 cname:x",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:1", "a=sendonly",
    "a=rtpmap:111 opus/48000/2", "a=ssrc:3 cname:x",
]) + "\r\n"


def with_video_lines(extra: list[str]) -> str:
    head, tail = OFFER.split("a=mid:0\r\n", 1)
    return head + "a=mid:0\r\n" + "".join(line + "\r\n" for line in extra) + tail


def test_a_real_offer_passes() -> None:
    check_sdp_shape(OFFER)
    check_sdp_shape("")  # empty / garbage is the parser's to refuse, not this check's


@pytest.mark.parametrize(("extra", "words"), [
    ([f"a=rtpmap:{i} VP8/90000" for i in range(65)], "a=rtpmap"),
    ([f"a=ssrc:{i} cname:x" for i in range(63)], "a=ssrc"),
    ([f"a=rtpmap:{i} VP8/90000" for i in range(40)] + ["a=rtcp-fb:* nack"] * 26, "feedback"),
    (["a=rtcp-fb:96 nack"] * 1025, "feedback"),
    (["a=candidate:1 1 udp 1 127.0.0.1 9 typ host"] * 32, "a=candidate"),
    (["a=x"] * DEFAULT_SHAPE.max_lines, "lines"),
    (["m=video 9 UDP/TLS/RTP/SAVPF 96"] * 15, "m-sections"),
])
def test_beyond_a_bound_is_refused_with_its_name(extra: list[str], words: str) -> None:
    with pytest.raises(SdpShapeError, match=words):
        check_sdp_shape(with_video_lines(extra))


def test_the_3_second_offer_is_refused_in_well_under_a_millisecond_per_kilobyte() -> None:
    # 700 rtpmap + 700 rtcp-fb:* lines: aiortc's parser took 3.2 s on it (32 KB)
    sdp = with_video_lines([f"a=rtpmap:{i} VP8/90000" for i in range(700)] + ["a=rtcp-fb:* nack"] * 700)
    started = time.perf_counter()
    with pytest.raises(SdpShapeError):
        check_sdp_shape(sdp)
    assert time.perf_counter() - started < 0.05


def test_an_answer_may_have_as_many_m_sections_as_the_servers_offer() -> None:
    # a lead, an observer or the recorder receives every classroom's tracks: dozens of m-lines
    section = ["m=video 9 UDP/TLS/RTP/SAVPF 96", "a=mid:{}", "a=recvonly", "a=rtpmap:96 VP8/90000",
               "a=rtcp-fb:96 nack", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host"]
    big = "v=0\r\n" + "".join("\r\n".join(section).format(i) + "\r\n" for i in range(40))
    with pytest.raises(SdpShapeError):
        check_sdp_shape(big)
    check_sdp_shape(big, answer_shape(big))
    with pytest.raises(SdpShapeError, match="m-sections"):
        check_sdp_shape(big, answer_shape(big.split("m=video", 21)[0] + "m=video"))  # our offer had 20
    assert answer_shape(None) == DEFAULT_SHAPE.__class__(**{**DEFAULT_SHAPE.__dict__})
