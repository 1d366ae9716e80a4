"""``glue.answer_as_dtls_server`` with an offer that says ``a=setup:passive`` (FFmpeg 8's whip
muxer by default): aiortc is the DTLS client, and its ClientHello is sent again at
``glue.CLIENT_HELLO_REPEATS_S`` while the peer has sent nothing. FFmpeg drops the first DTLS
datagram it gets (its ICE loop reads it, only to learn that DTLS has begun); here the offerer, a
real aiortc peer on loopback, drops its first one the same way. With the repeats the handshake is
done in a fraction of a second; without them it waits for OpenSSL's 1-s retransmission timer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from sfu import glue


@pytest.fixture(autouse=True)
def loopback_ice() -> None:
    glue.configure_ice(["127.0.0.1"])


def drop_first_dtls_datagram(pc: RTCPeerConnection) -> list[bytes]:
    """What FFmpeg's whip muxer does with the first DTLS datagram it receives: read and drop it."""
    ice: Any = pc.getTransceivers()[0].receiver.transport.transport
    recv = ice._recv
    dropped: list[bytes] = []

    async def recv_but_the_first() -> bytes:
        while True:
            data: bytes = await recv()
            if not dropped and data and 19 < data[0] < 64:
                dropped.append(data)
                continue
            return data

    ice._recv = recv_but_the_first
    return dropped


async def apply_answer_until_connected(offerer: RTCPeerConnection, answerer: RTCPeerConnection) -> float:
    """Apply the answer to the offerer; seconds until both peers are connected (DTLS done)."""
    started = time.monotonic()
    await offerer.setRemoteDescription(answerer.localDescription)
    while not (offerer.connectionState == answerer.connectionState == "connected"):
        assert time.monotonic() - started < 10, (offerer.connectionState, answerer.connectionState)
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def connect_time() -> tuple[float, list[bytes]]:
    """Seconds from the answer being applied to both peers connected (DTLS done)."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        offer = await offerer.createOffer()
        await offerer.setLocalDescription(offer)
        sdp = offerer.localDescription.sdp.replace("a=setup:actpass", "a=setup:passive")
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        glue.answer_as_dtls_server(answerer)
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert "a=setup:active" in answerer.localDescription.sdp
        dropped = drop_first_dtls_datagram(offerer)
        return await apply_answer_until_connected(offerer, answerer), dropped
    finally:
        await offerer.close()
        await answerer.close()


async def test_the_client_hello_is_repeated_while_nothing_came_back() -> None:
    took, dropped = await connect_time()
    print(f"\nDTLS client (a=setup:active answer), first ClientHello dropped: connected in {took:.3f} s")
    assert dropped and dropped[0][13] == 1  # the handshake message dropped was the ClientHello
    assert took < 0.6, took


async def test_without_the_repeats_openssl_waits_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(glue, "CLIENT_HELLO_REPEATS_S", ())
    took, dropped = await connect_time()
    print(f"\nthe same without repeats: connected in {took:.3f} s")
    assert dropped and took >= 0.9, took


async def test_an_offerer_that_is_the_dtls_client() -> None:
    """``glue.offer_as_dtls_client`` (the SFU's subscribe offers): the answerer, a real aiortc peer,
    answers ``a=setup:passive``, the offerer sends the ClientHello once its own ICE check has
    succeeded, and repeats it quickly: connected well within a second although the answerer
    drops the first DTLS datagram it gets."""
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offerer.addTransceiver("video", direction="sendonly")
        await offerer.setLocalDescription(await offerer.createOffer())
        sdp = glue.offer_as_dtls_client(offerer, offerer.localDescription.sdp)
        await answerer.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert "a=setup:passive" in answerer.localDescription.sdp
        dropped = drop_first_dtls_datagram(answerer)
        took = await apply_answer_until_connected(offerer, answerer)
        print(f"\nthe offerer as DTLS client (a=setup:active offer), first ClientHello dropped: {took:.3f} s")
        assert offerer.getTransceivers()[0].receiver.transport._role == "client"
        assert dropped and dropped[0][13] == 1  # the ClientHello
        assert took < 0.6, took
    finally:
        await offerer.close()
        await answerer.close()
