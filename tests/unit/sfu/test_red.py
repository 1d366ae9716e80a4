"""RED (audio/red) containers and their SDP: pure functions, and an UpTrack giving RED
subscribers the container and the others its primary block (the hot path with fakes)."""

from __future__ import annotations

import struct

import pytest

from sfu import glue, red
from sfu.stats import STATS
from tests.unit.sfu.test_uptrack import OPUS, down, header, loop, make, rtp  # noqa: F401 (fixture)


def container(primary: bytes, redundant: bytes = b"", pt: int = 111, offset: int = 960) -> bytes:
    if not redundant:
        return bytes([pt]) + primary
    block = struct.pack("!BBH", 0x80 | pt, (offset >> 6) & 0xFF, ((offset & 0x3F) << 10) | len(redundant))
    return block + bytes([pt]) + redundant + primary


def test_primary_renumber_and_wrap() -> None:
    c = container(b"new-frame", b"old")
    assert red.primary(c) == b"new-frame"
    r = red.renumber(c, 96)
    assert r[0] == 0x80 | 96 and r[4] == 96 and r[1:4] == c[1:4] and r[5:] == c[5:]
    assert red.primary(red.wrap(b"x", 96)) == b"x" and red.wrap(b"x", 96)[0] == 96
    assert red.primary(container(b"only")) == b"only"


@pytest.mark.parametrize("bad", [b"", b"\x80\x00", bytes([0x80 | 111, 0, 0, 50, 111]) + b"short"])
def test_malformed_containers_are_errors(bad: bytes) -> None:
    with pytest.raises(red.RedError):
        red.primary(bad)


CHROME_AUDIO = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n"
    "a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:0 PCMU/8000\r\n"
)
AIORTC_ANSWER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\n"
)


def test_publisher_offer_and_answer() -> None:
    offered = glue.red_offer(CHROME_AUDIO)
    assert offered == {"0": (63, 111)}
    answer = glue.red_answer(AIORTC_ANSWER, offered)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 63 111\r\n" in answer  # RED first: the browser sends it
    assert "a=rtpmap:63 red/48000/2" in answer and "a=fmtp:63 111/111" in answer
    assert glue.red_answer(AIORTC_ANSWER, {}) == AIORTC_ANSWER
    # RED over another codec, or over Opus at a payload type the answer does not keep: nothing
    assert glue.red_answer(AIORTC_ANSWER, {"0": (63, 109)}) == AIORTC_ANSWER
    assert glue.red_offer(CHROME_AUDIO.replace("a=fmtp:63 111/111", "a=fmtp:63 0/0")) == {}


def test_subscriber_offer_and_answer() -> None:
    offer = glue.red_subscribe_offer(AIORTC_ANSWER)
    assert "m=audio 9 UDP/TLS/RTP/SAVPF 111 63\r\n" in offer and "a=fmtp:63 111/111" in offer
    assert glue.red_subscribe_offer(offer) == offer  # once
    assert glue.red_answered(offer) == {"0": 63}
    assert glue.red_answered(AIORTC_ANSWER) == {}
    rejected = offer.replace("m=audio 9 ", "m=audio 0 ")
    assert glue.red_answered(rejected) == {}


async def test_red_subscribers_get_the_container_the_others_the_primary() -> None:
    up, _ = make("audio")
    up.red_pt = 63
    d_red, t_red = down(up, ssrc=501, pt=96)
    d_red.red_pt = 120
    d_plain, t_plain = down(up, ssrc=502, pt=97)
    up.down = up.down  # regroup after red_pt changed (SubscriberPeer does this on an answer)
    c = container(b"frame-2", b"frame-1")
    up.on_rtp(rtp(10, 960, c, pt=63), 0)
    up.on_rtp(rtp(11, 1920, b"plain-3", pt=111), 20)  # a plain Opus packet from a RED publisher
    assert len(t_red.rtp) == 2 and len(t_plain.rtp) == 2
    assert header(t_red.rtp[0])[1] & 0x7F == 120 and t_red.rtp[0][12:] == red.renumber(c, 96)
    assert header(t_plain.rtp[0])[1] & 0x7F == 97 and t_plain.rtp[0][12:] == b"frame-2"
    assert t_red.rtp[1][12:] == bytes([96]) + b"plain-3"
    assert t_plain.rtp[1][12:] == b"plain-3"
    # continuous sequence numbers for both
    assert (header(t_red.rtp[1])[2] - header(t_red.rtp[0])[2]) & 0xFFFF == 1
    assert (header(t_plain.rtp[1])[2] - header(t_plain.rtp[0])[2]) & 0xFFFF == 1


async def test_a_publisher_without_red_gives_everybody_plain_opus() -> None:
    up, _ = make("audio")
    d_red, t_red = down(up, ssrc=501, pt=96)
    d_red.red_pt = 120
    up.down = up.down
    up.on_rtp(rtp(10, 960, b"frame", pt=111), 0)
    assert header(t_red.rtp[0])[1] & 0x7F == 96 and t_red.rtp[0][12:] == b"frame"


async def test_a_broken_container_is_counted_and_dropped() -> None:
    up, _ = make("audio")
    up.red_pt = 63
    _, t = down(up, pt=96)
    before = STATS.rtp_errors
    up.on_rtp(rtp(10, 960, b"\x80\x01", pt=63), 0)
    assert STATS.rtp_errors == before + 1 and t.rtp == []
    assert OPUS.mime == "audio/opus"
