"""``glue.answer_as_dtls_server`` and an offer that already names the DTLS role: an offerer that
says ``a=setup:passive`` (FFmpeg 8's whip muxer, the DTLS server) must get ``a=setup:active``;
taking the server role there too left both sides waiting for a ClientHello."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCSessionDescription

from sfu import glue


async def _answer_to(setup: str) -> tuple[int, str, str]:
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        offerer.addTransceiver("audio", direction="sendonly")
        offer = await offerer.createOffer()
        assert "a=setup:actpass" in offer.sdp
        sdp = offer.sdp.replace("a=setup:actpass", f"a=setup:{setup}")
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        count = glue.answer_as_dtls_server(answerer)
        answer = await answerer.createAnswer()
        role = answerer.getTransceivers()[0].receiver.transport._role
        return count, answer.sdp, role
    finally:
        await offerer.close()
        await answerer.close()


async def test_passive_offer_gets_an_active_answer() -> None:
    count, sdp, role = await _answer_to("passive")
    assert count == 0
    assert "a=setup:active" in sdp and "a=setup:passive" not in sdp
    assert role == "client"


async def test_active_offer_gets_a_passive_answer() -> None:
    count, sdp, role = await _answer_to("active")
    assert count == 0  # aiortc decided it already
    assert "a=setup:passive" in sdp and "a=setup:active" not in sdp
    assert role == "server"


async def test_actpass_offer_gets_a_passive_answer() -> None:
    count, sdp, role = await _answer_to("actpass")
    assert count == 1  # the two m-lines share one bundled DTLS transport
    assert "a=setup:passive" in sdp and "a=setup:active" not in sdp
    assert role == "server"
