"""Real SDP from aiortc, made once per test process, for the fuzzers to mutate."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection

from sfu import glue


async def real_offer(video: int = 1, audio: int = 1) -> str:
    """A publish offer as the pages' aiortc stand-in makes it (sendonly, bundled, gathered)."""
    if glue._ice_addresses is None:
        glue.configure_ice(["127.0.0.1"])
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy="max-bundle"))  # type: ignore[arg-type]
    try:
        for _ in range(video):
            pc.addTransceiver("video", direction="sendonly")
        for _ in range(audio):
            pc.addTransceiver("audio", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()
