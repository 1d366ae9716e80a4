"""``sfu.peer.check_mids``: SDP that would leave aiortc transceivers without a transport is
refused as ``SdpError`` (found by tests/fuzz/sfu/test_peer.py: it used to answer ``internal``)."""

from __future__ import annotations

import pytest

from sfu.peer import SdpError, check_mids

OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 0.0.0.0", "a=sendonly", "a=mid:0", "a=rtcp-mux",
    "a=rtpmap:96 VP8/90000", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuv",
    "a=fingerprint:sha-256 " + ":".join(["AA"] * 32), "a=setup:actpass",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=sendonly", "a=mid:1", "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2", "a=ice-ufrag:abcd", "a=ice-pwd:abcdefghijklmnopqrstuv",
    "a=fingerprint:sha-256 " + ":".join(["AA"] * 32), "a=setup:actpass", "",
])


def test_a_well_formed_offer_passes() -> None:
    check_mids(OFFER)


@pytest.mark.parametrize("bad", [
    OFFER.replace("a=mid:0", "a=mid:"),  # an empty mid
    OFFER.replace("a=mid:1", "a=mid:0"),  # two m-lines, one mid
    OFFER.replace("BUNDLE 0 1", "BUNDLE 9223372036854775808 1"),  # a bundle of a mid nobody has
    OFFER.replace("BUNDLE 0 1", "BUNDLE 0 1 2"),
])
def test_mids_a_transport_cannot_be_found_for_are_refused(bad: str) -> None:
    with pytest.raises(SdpError):
        check_mids(bad)


def test_an_answer_must_carry_the_offered_mids() -> None:
    check_mids(OFFER, ["0", "1"])
    swapped = OFFER.replace("a=mid:0", "a=mid:x").replace("a=mid:1", "a=mid:0").replace("a=mid:x", "a=mid:1")
    for bad, offered in ((OFFER, ["0"]), (OFFER, ["0", "1", "2"]), (swapped, ["0", "1"])):
        with pytest.raises(SdpError):
            check_mids(bad, offered)


def test_a_bundled_mid_of_an_m_line_aiortc_ignores_is_refused() -> None:
    with pytest.raises(SdpError):
        check_mids(OFFER.replace("m=video", "m=videvideo"))
