"""The one module that touches aiortc's and aioice's internals.

aiortc is a WebRTC *endpoint*: everything it receives goes to a jitter buffer and a decoder
thread, everything it sends is encoded per sender. We keep its ICE, DTLS and SRTP (the
negotiation and the keys) and replace both media paths:

* receive: the DTLS transport's ``_handle_rtp_data`` / ``_handle_rtcp_data`` (called right
  after SRTP unprotect) are replaced per transport instance by a tap that hands the decrypted
  bytes to our callbacks; ``RTCRtpReceiver.receive`` is replaced per instance so no decoder
  thread and no RTCP task start.
* send: ``RTCRtpSender.send`` is replaced per instance so no encoder loop and no RTCP task
  start; we protect with the transport's SRTP session and ``sendto`` on the nominated ICE
  pair ourselves, synchronously (:class:`RawTransport`). For the AES-GCM profiles the RTP is
  protected by our own :class:`sfu.lane.AeadSession` (OpenSSL, in C) with session keys derived
  from the master key aiortc hands pylibsrtp (captured by :class:`_KeyedSession`).

aiortc is pinned (pyproject.toml); ``tests/unit/sfu/test_glue_contract.py`` checks that every
private name used here still exists with the shape we expect.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aioice.candidate
import aioice.ice
import aioice.mdns
import aioice.stun
import aiortc.codecs
import aiortc.rtcdtlstransport
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import aiortc.sdp
import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpParameters
from aiortc.rtcrtpsender import RTCRtpSender
from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from sfu import demux
from sfu.lane import AeadSession, Egress, set_protect
from sfu.srtp_kdf import gcm_session_keys
from sfu.stats import STATS

log = logging.getLogger(__name__)

RtpCallback = Callable[[bytes, int], None]  # (decrypted RTP, arrival time in ms)
RtcpCallback = Callable[[bytes], None]  # decrypted (compound) RTCP

_ADOPTED = "_classroom_adopted"
_GUARDED = "_classroom_guarded"
_SUCCEEDED = aioice.ice.CandidatePair.State.SUCCEEDED


# --- process-wide settings ------------------------------------------------------------

_ice_addresses: list[str] | None = None


def configure_ice(addresses: list[str]) -> None:
    """Gather host candidates only on ``addresses`` (aioice skips 127.0.0.1 by default)."""
    global _ice_addresses
    _ice_addresses = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        assert _ice_addresses is not None
        return [a for a in _ice_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses
    robust_mdns_ice()  # .local candidates: resolved in the background, retried, cached (below)


class TranscodeForbidden(RuntimeError):
    pass


def lean_receivers() -> None:
    """Build no remote bitrate estimator in aiortc's receivers, in this process.

    aiortc gives every video ``RTCRtpReceiver`` (also those of the subscribers' sendonly m-lines)
    a ``RemoteBitrateEstimator`` holding 1000 ``RateBucket`` objects. The SFU never runs that
    receive path (``receive_raw`` takes RTP at the DTLS transport; ``sfu/bwe`` makes the REMB),
    so they are dead weight that every full garbage collection walks: ~1000 of the ~1500 objects
    of a two-m-line publisher, 2/3 of a full collection's time (docs/reliability.md). aiortc's
    own audio receivers have none, so ``None`` is a state its code handles.
    """

    def no_estimator() -> None:
        return None

    setattr(aiortc.rtcrtpreceiver, "RemoteBitrateEstimator", no_estimator)  # noqa: B010


def forbid_codecs() -> None:
    """Make every aiortc encoder/decoder factory raise in this process, and count the attempt.

    The SFU never decodes or encodes; this turns a regression into a loud error and a metric
    (``classroom_transcodes_total``) instead of a silent CPU sink.
    """

    def refuse(*args: Any, **kwargs: Any) -> Any:
        STATS.transcodes += 1
        raise TranscodeForbidden("the SFU must not encode or decode media")

    for module in (aiortc.codecs, aiortc.rtcrtpsender, aiortc.rtcrtpreceiver):
        for name in ("get_encoder", "get_decoder"):
            if hasattr(module, name):
                setattr(module, name, refuse)


# --- what was negotiated ----------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    mime: str  # lower case, e.g. "video/vp8"
    payload_type: int
    clock_rate: int
    channels: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Negotiated:
    """One m-line's negotiated media parameters, in our own terms."""

    mid: str
    kind: str
    codecs: list[Codec]  # primary codecs first, RTX excluded
    ssrcs: list[int]  # remote SSRCs announced in SDP (receive side), or our SSRC (send side)
    extensions: dict[str, int]  # header extension URI -> id
    rtcp_ssrc: int  # the SSRC we use as RTCP sender on this m-line


def _negotiated(t: RTCRtpTransceiver, params: RTCRtpParameters, ssrcs: list[int]) -> Negotiated:
    codecs = [
        Codec(
            mime=c.mimeType.lower(),
            payload_type=int(c.payloadType or 0),
            clock_rate=c.clockRate,
            channels=c.channels,
            parameters=dict(c.parameters),
        )
        for c in params.codecs
        if not c.mimeType.lower().endswith("/rtx")
    ]
    return Negotiated(
        mid=params.muxId or (t.mid or ""),
        kind=t.kind,
        codecs=codecs,
        ssrcs=ssrcs,
        extensions={e.uri: e.id for e in params.headerExtensions},
        rtcp_ssrc=t.sender._ssrc,
    )


# --- simulcast (a=rid / a=simulcast, RFC 8851 / 8853) ---------------------------------------
# aiortc knows neither attribute: it ignores them in an offer and never writes them in an answer,
# so a browser that offers simulcast would fall back to one encoding. We read them from the offer
# and write the matching receive side into aiortc's answer (text only; aiortc's state is not
# involved, because our tap demultiplexes the layers itself by the RID header extension).

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
RRID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
MAX_SIMULCAST_LAYERS = 4


@dataclass(frozen=True)
class SimulcastOffer:
    """One m-line's offered simulcast: its RIDs in the offer's order, and the header extension
    ids that carry the RID and the MID in its packets."""

    mid: str
    rids: tuple[str, ...]
    rid_ext: int
    mid_ext: int
    rrid_ext: int = 0  # repaired-rtp-stream-id: which layer an RTX packet repairs


def _sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    lines = sdp.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    head: list[str] = []
    sections: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            head.append(line)
    return head, sections


def _attr(section: list[str], name: str) -> list[str]:
    prefix = f"a={name}:"
    return [line[len(prefix) :].strip() for line in section if line.startswith(prefix)]


def _extmap_id(section: list[str], uri: str) -> int:
    for value in _attr(section, "extmap"):
        parts = value.split()
        if len(parts) >= 2 and parts[1] == uri:
            try:
                return int(parts[0].split("/")[0])
            except ValueError:
                return 0
    return 0


def simulcast_offer(offer_sdp: str) -> dict[str, SimulcastOffer]:
    """The video m-lines of an offer that send simulcast (``a=simulcast:send``), by mid.
    Paused (``~``) and alternative (``,``) RIDs are taken in order; malformed attributes make
    the m-line single-layer rather than an error."""
    out: dict[str, SimulcastOffer] = {}
    _, sections = _sections(offer_sdp)
    for section in sections:
        if not section[0].startswith("m=video"):
            continue
        mids = _attr(section, "mid")
        sim = _attr(section, "simulcast")
        if not mids or not sim:
            continue
        parts = sim[0].split()
        if len(parts) < 2 or parts[0] != "send":
            continue
        rids: list[str] = []
        for alt in parts[1].split(";"):
            for rid in alt.split(","):
                rid = rid.lstrip("~")
                if rid and rid.isalnum() and len(rid) <= 16 and rid not in rids:
                    rids.append(rid)
        declared = {v.split()[0] for v in _attr(section, "rid") if len(v.split()) >= 2 and v.split()[1] == "send"}
        rids = [r for r in rids if r in declared][:MAX_SIMULCAST_LAYERS]
        rid_ext = _extmap_id(section, RID_URI)
        mid_ext = _extmap_id(section, MID_URI)
        rrid_ext = _extmap_id(section, RRID_URI)
        if len(rids) >= 2 and 0 < rid_ext < 15:
            out[mids[0]] = SimulcastOffer(mids[0], tuple(rids), rid_ext, mid_ext if 0 < mid_ext < 15 else 0,
                                          rrid_ext if 0 < rrid_ext < 15 else 0)
    return out


@dataclass(frozen=True)
class RtxOffer:
    """One video m-line's retransmission streams (RFC 4588) as a publisher offered them."""

    apt: dict[int, int]  # RTX payload type -> the payload type it repairs
    ssrcs: dict[int, int]  # RTX SSRC -> media SSRC (a=ssrc-group:FID), when the offer lists them


def rtx_offer(offer_sdp: str) -> dict[str, RtxOffer]:
    """The video m-lines of a publisher's offer with RTX, by mid. aiortc answers RTX; the SFU's
    tap must then take the retransmissions itself (``PublisherPeer``), or a lost packet on a
    publisher's uplink is never repaired."""
    out: dict[str, RtxOffer] = {}
    _, sections = _sections(offer_sdp)
    for section in sections:
        mids = _attr(section, "mid")
        if not section[0].startswith("m=video") or not mids:
            continue
        rtx = set(_codec_pts(section, "rtx/90000"))
        apt: dict[int, int] = {}
        for value in _attr(section, "fmtp"):
            parts = value.split(None, 1)
            if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) in rtx:
                for param in parts[1].split(";"):
                    key, _, val = param.strip().partition("=")
                    if key == "apt" and val.strip().isdigit():
                        apt[int(parts[0])] = int(val)
        ssrcs: dict[int, int] = {}
        for value in _attr(section, "ssrc-group"):
            parts = value.split()
            if len(parts) == 3 and parts[0] == "FID" and parts[1].isdigit() and parts[2].isdigit():
                ssrcs[int(parts[2])] = int(parts[1])
        if apt:
            out[mids[0]] = RtxOffer(apt, ssrcs)
    return out


def simulcast_answer(answer_sdp: str, offered: dict[str, SimulcastOffer]) -> str:
    """aiortc's answer with the receive side of each offered simulcast m-line written in:
    ``a=rid:X recv`` per layer, ``a=simulcast:recv X;Y;Z`` and the RID (and MID) extmap."""
    if not offered:
        return answer_sdp
    head, sections = _sections(answer_sdp)
    for section in sections:
        mids = _attr(section, "mid")
        sim = offered.get(mids[0]) if mids and section[0].startswith("m=video") else None
        if sim is None or section[0].split()[1] == "0":  # unknown, or rejected (port 0)
            continue
        extra = []
        if not _extmap_id(section, RID_URI):
            extra.append(f"a=extmap:{sim.rid_ext} {RID_URI}")
        if sim.mid_ext and not _extmap_id(section, MID_URI):
            extra.append(f"a=extmap:{sim.mid_ext} {MID_URI}")
        if sim.rrid_ext and not _extmap_id(section, RRID_URI):
            extra.append(f"a=extmap:{sim.rrid_ext} {RRID_URI}")
        extra += [f"a=rid:{rid} recv" for rid in sim.rids]
        extra.append("a=simulcast:recv " + ";".join(sim.rids))
        section.extend(extra)
    lines = head + [line for section in sections for line in section]
    return "\r\n".join(lines) + "\r\n"


def opus_fec_answer(answer_sdp: str) -> str:
    """Ask for Opus in-band FEC (``useinbandfec=1``) in an answer to a publisher: aiortc's Opus
    has no fmtp, so without this the browser would never add FEC to what it sends. The SFU
    forwards the FEC as it is; each receiver's decoder uses it to conceal a lost packet."""
    head, sections = _sections(answer_sdp)
    changed = False
    for section in sections:
        if not section[0].startswith("m=audio"):
            continue
        pts = [v.split()[0] for v in _attr(section, "rtpmap") if v.lower().split()[1:2] == ["opus/48000/2"]]
        for pt in pts:
            fmtp = next((i for i, line in enumerate(section) if line.startswith(f"a=fmtp:{pt} ")), None)
            if fmtp is None:
                rtpmap = next(i for i, line in enumerate(section) if line.startswith(f"a=rtpmap:{pt} "))
                section.insert(rtpmap + 1, f"a=fmtp:{pt} minptime=10;useinbandfec=1")
                changed = True
            elif "useinbandfec=1" not in section[fmtp]:
                current = section[fmtp].split(" ", 1)[1].split(";")
                params = [p for p in current if p and not p.startswith("useinbandfec")]
                section[fmtp] = f"a=fmtp:{pt} " + ";".join([*params, "useinbandfec=1"])
                changed = True
    if not changed:
        return answer_sdp
    return "\r\n".join(head + [line for section in sections for line in section]) + "\r\n"


# --- RED (audio/red, RFC 2198): aiortc knows no RED, so it is written into the SDP here -------

RED_PT = 63  # what we number RED in our offers to subscribers (Chrome's own choice)


def _codec_pts(section: list[str], name: str) -> list[int]:
    out = []
    for value in _attr(section, "rtpmap"):
        parts = value.split()
        if len(parts) == 2 and parts[1].lower() == name and parts[0].isdigit():
            out.append(int(parts[0]))
    return out


def _red_of(section: list[str]) -> tuple[int, int] | None:
    """(RED payload type, the Opus payload type it wraps) of an audio section, if it has RED
    over Opus only (``a=fmtp:R O/O``)."""
    opus = _codec_pts(section, "opus/48000/2")
    for pt in _codec_pts(section, "red/48000/2"):
        for value in _attr(section, "fmtp"):
            parts = value.split(None, 1)
            if len(parts) == 2 and parts[0] == str(pt):
                inner = {b for b in parts[1].strip().split("/") if b}
                if len(inner) == 1 and inner.pop() in {str(o) for o in opus}:
                    return pt, int(parts[1].strip().split("/")[0])
    return None


def red_offer(offer_sdp: str) -> dict[str, tuple[int, int]]:
    """The audio m-lines of a publisher's offer that can send RED over Opus: mid -> (RED
    payload type, Opus payload type)."""
    out: dict[str, tuple[int, int]] = {}
    _, sections = _sections(offer_sdp)
    for section in sections:
        mids = _attr(section, "mid")
        if section[0].startswith("m=audio") and mids:
            red = _red_of(section)
            if red is not None:
                out[mids[0]] = red
    return out


def _add_red(section: list[str], red_pt: int, opus_pt: int, first: bool) -> None:
    m = section[0].split()
    fmts = [f for f in m[3:] if f != str(red_pt)]
    fmts = [str(red_pt), *fmts] if first else [*fmts, str(red_pt)]
    section[0] = " ".join(m[:3] + fmts)
    at = next((i for i, line in enumerate(section) if line.startswith("a=rtpmap:")), len(section))
    section[at:at] = [f"a=rtpmap:{red_pt} red/48000/2", f"a=fmtp:{red_pt} {opus_pt}/{opus_pt}"]


def red_answer(answer_sdp: str, offered: dict[str, tuple[int, int]]) -> str:
    """aiortc's answer to a publisher with RED accepted (first, so the browser sends it) on
    every audio m-line that offered it over the Opus the answer kept."""
    if not offered:
        return answer_sdp
    head, sections = _sections(answer_sdp)
    changed = False
    for section in sections:
        mids = _attr(section, "mid")
        red = offered.get(mids[0]) if mids and section[0].startswith("m=audio") else None
        if red is None or section[0].split()[1] == "0" or red[1] not in _codec_pts(section, "opus/48000/2"):
            continue
        if _codec_pts(section, "red/48000/2"):
            continue
        _add_red(section, red[0], red[1], first=True)
        changed = True
    if not changed:
        return answer_sdp
    return "\r\n".join(head + [line for section in sections for line in section]) + "\r\n"


def red_subscribe_offer(offer_sdp: str) -> str:
    """Our offer to a subscriber with RED offered beside Opus on every audio m-line (after it:
    a receiver without RED just answers Opus)."""
    head, sections = _sections(offer_sdp)
    changed = False
    for section in sections:
        if not section[0].startswith("m=audio") or section[0].split()[1] == "0":
            continue
        opus = _codec_pts(section, "opus/48000/2")
        used = {f for f in section[0].split()[3:]}
        if not opus or _codec_pts(section, "red/48000/2") or str(RED_PT) in used:
            continue
        _add_red(section, RED_PT, opus[0], first=False)
        changed = True
    if not changed:
        return offer_sdp
    return "\r\n".join(head + [line for section in sections for line in section]) + "\r\n"


# --- transport-wide congestion control (transport-cc) --------------------------------------
# aiortc neither offers the transport-cc header extension nor answers TWCC feedback. The SFU
# writes the transport-wide sequence numbers itself (sfu/_fanout.c, DownTrack._header) and
# reads the feedback itself (sfu/rtcp.py, sfu/bwe/twcc.py), so only the SDP text needs it: our
# offer to a subscriber gets the extension and ``a=rtcp-fb:PT transport-cc`` on its video
# m-lines, and the answer says which mids took it (and with which id).
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
TWCC_FIRST_ID = 5  # the lowest id tried (aiortc's own extensions take 1-3 and keep them)


def _add_rtcp_fb(sec: list[str], feedback: str) -> bool:
    """``a=rtcp-fb:PT <feedback>`` for every codec of an m-section but RTX, after that codec's
    other rtcp-fb lines; True if a line was added."""
    have = set(_attr(sec, "rtcp-fb"))
    added = False
    for pt in [v.split()[0] for v in _attr(sec, "rtpmap")
               if len(v.split()) == 2 and not v.split()[1].lower().startswith("rtx/")]:
        if f"{pt} {feedback}" in have:
            continue
        at = max((i for i, line in enumerate(sec) if line.startswith(f"a=rtcp-fb:{pt} ")
                  or line.startswith(f"a=rtpmap:{pt} ")), default=len(sec) - 1) + 1
        sec.insert(at, f"a=rtcp-fb:{pt} {feedback}")
        added = True
    return added


def twcc_subscribe_offer(offer_sdp: str) -> str:
    """Our offer to a subscriber with transport-cc offered on every video m-line. The id is the
    same in every section and every renegotiation (the lowest one none of them uses), as an
    extension's id must not change within a session."""
    head, sections = _sections(offer_sdp)
    video = [sec for sec in sections if sec[0].startswith("m=video") and sec[0].split()[1] != "0"]
    if not video:
        return offer_sdp
    existing = {_extmap_id(sec, TWCC_URI) for sec in video} - {0}
    used = {v.split()[0].split("/")[0] for sec in sections for v in _attr(sec, "extmap") if v.split()}
    ext_id = min(existing) if existing else next(
        (i for i in range(TWCC_FIRST_ID, 15) if str(i) not in used), 0)
    if not ext_id:
        return offer_sdp
    for sec in video:
        if not _extmap_id(sec, TWCC_URI):
            at = max((i for i, line in enumerate(sec) if line.startswith("a=extmap:")), default=len(sec) - 1) + 1
            sec.insert(at, f"a=extmap:{ext_id} {TWCC_URI}")
        _add_rtcp_fb(sec, "transport-cc")
    return "\r\n".join(head + [line for section in sections for line in section]) + "\r\n"


def rrtr_subscribe_offer(offer_sdp: str) -> str:
    """Our offer to a subscriber with ``a=rtcp-fb:PT rrtr`` on every video codec: a browser that
    takes it sends receiver reference times (RTCP XR) that the SFU answers (DLRR), so a peer that
    only receives learns its round-trip time; without one Chromium waits 100 ms (its default) before
    asking again for a lost packet whose first NACK, or repair, was lost too."""
    head, sections = _sections(offer_sdp)
    changed = False
    for sec in sections:
        if sec[0].startswith("m=video") and sec[0].split()[1] != "0":
            changed = _add_rtcp_fb(sec, "rrtr") or changed
    if not changed:
        return offer_sdp
    return "\r\n".join(head + [line for section in sections for line in section]) + "\r\n"


def twcc_answered(answer_sdp: str) -> dict[str, int]:
    """The video m-lines of a subscriber's answer that took transport-cc: mid -> extension id."""
    out: dict[str, int] = {}
    _, sections = _sections(answer_sdp)
    for section in sections:
        mids = _attr(section, "mid")
        if not section[0].startswith("m=video") or not mids or section[0].split()[1] == "0":
            continue
        ext = _extmap_id(section, TWCC_URI)
        if ext and any(v.split()[1:2] == ["transport-cc"] for v in _attr(section, "rtcp-fb")):
            out[mids[0]] = ext
    return out


def red_answered(answer_sdp: str) -> dict[str, int]:
    """The audio m-lines of a subscriber's answer that accepted RED: mid -> RED payload type."""
    out: dict[str, int] = {}
    _, sections = _sections(answer_sdp)
    for section in sections:
        mids = _attr(section, "mid")
        if section[0].startswith("m=audio") and mids and section[0].split()[1] != "0":
            red = _red_of(section)
            if red is not None:
                out[mids[0]] = red[0]
    return out


# --- raw send ---------------------------------------------------------------------------


class _Protect:
    """``srtp_protect`` on one pylibsrtp session without the wrapper's per-call allocation and
    checks (it allocates an ``int *`` per call): about 0.6-0.8 µs less per forwarded packet."""

    __slots__ = ("_ctx", "_cdata", "_buffer", "_lenp", "_max")

    def __init__(self, session: Any) -> None:
        self._ctx = session._srtp[0]
        self._cdata = session._cdata
        self._buffer = session._buffer
        self._lenp = _srtp_ffi.new("int *")
        self._max = len(session._cdata) - pylibsrtp.SRTP_MAX_TRAILER_LEN

    def __call__(self, packet: bytes) -> bytes:
        n = len(packet)
        if n > self._max:
            raise ValueError("packet is too long")
        self._buffer[0:n] = packet
        self._lenp[0] = n
        rc = _srtp_lib.srtp_protect(self._ctx, self._cdata, self._lenp)
        if rc:
            raise pylibsrtp.Error(f"srtp_protect failed ({rc})")
        return self._buffer[0 : self._lenp[0]]  # type: ignore[no-any-return]

    def parts(self, header: bytes, payload: bytes) -> bytes:
        """Protect ``header + payload`` without building the concatenation first."""
        h = len(header)
        n = h + len(payload)
        if n > self._max:
            raise ValueError("packet is too long")
        buf = self._buffer
        buf[0:h] = header
        buf[h:n] = payload
        self._lenp[0] = n
        rc = _srtp_lib.srtp_protect(self._ctx, self._cdata, self._lenp)
        if rc:
            raise pylibsrtp.Error(f"srtp_protect failed ({rc})")
        return buf[0 : self._lenp[0]]  # type: ignore[no-any-return]


# --- direct AES-GCM protect (#19) --------------------------------------------------------


class _KeyedSession(pylibsrtp.Session):
    """pylibsrtp's ``Session`` that remembers its policy's profile and master key + salt.

    aiortc's ``RTCDtlsTransport._setup_srtp`` builds its two sessions with the module-global
    name ``Session`` from the DTLS exporter's keying material (RFC 5764) and keeps the keys
    nowhere else; this subclass, installed under that name, keeps them on the session, so the
    send session's RTP can be protected with :class:`sfu.lane.AeadSession` and the same keys."""

    def __init__(self, policy: pylibsrtp.Policy | None = None) -> None:
        super().__init__(policy)
        self.classroom_master: tuple[int, bytes] | None = (
            None if policy is None or policy.key is None else (policy.srtp_profile, bytes(policy.key))
        )


aiortc.rtcdtlstransport.Session = _KeyedSession  # type: ignore[misc]

# the AEAD profiles' master key lengths (the master salt is 12 bytes for both, RFC 7714 section 12)
_AEAD_KEY_LENGTHS = {
    pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM: 32,
    pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM: 16,
}
_AEAD = "_classroom_aead"  # on an RTCDtlsTransport: (its _tx_srtp, the AeadSession for it)
_direct_protect = True


def set_direct_protect(enabled: bool) -> None:
    """Protect AES-GCM RTP with :class:`sfu.lane.AeadSession` (True, the default:
    ``media.direct_protect``) or with libsrtp for every profile (False). Read when a transport
    first protects with a new SRTP session, so it applies to transports connected after it."""
    global _direct_protect
    _direct_protect = enabled


def aead_session(dtls: Any) -> Any | None:
    """The :class:`sfu.lane.AeadSession` protecting ``dtls``'s RTP, or None (libsrtp does: not
    built with OpenSSL, not an AEAD profile, no keys captured, or switched off).

    One per send session, shared by every :class:`RawTransport` of the transport: the session
    keeps each SSRC's rollover counter, and it must see every RTP packet of the SSRC. That is why
    once a transport has one, *all* its RTP goes through it (the C loop's copies and the Python
    paths' sends alike) and none through libsrtp, whose own index estimate would otherwise lag one
    ROC behind after it missed 2^15 of a stream's packets. RTCP stays with libsrtp (SRTCP has its
    own index and keys)."""
    srtp = dtls._tx_srtp
    if srtp is None or AeadSession is None:
        return None
    cached = getattr(dtls, _AEAD, None)
    if cached is not None and cached[0] is srtp:
        return cached[1]
    master = getattr(srtp, "classroom_master", None)
    if not _direct_protect or master is None or master[0] not in _AEAD_KEY_LENGTHS:
        aead = None
    else:
        n = _AEAD_KEY_LENGTHS[master[0]]
        keys = gcm_session_keys(master[1][:n], master[1][n : n + 12])
        aead = AeadSession(keys.key, keys.salt)
    setattr(dtls, _AEAD, (srtp, aead))
    return aead


def _protect_address() -> int:
    """The address of pylibsrtp's ``srtp_protect`` for the C fan-out loop, or 0 if its type is
    not libsrtp 2's ``(srtp_t, void *, int *)`` (the loop then stays in Python)."""
    try:
        fn = _srtp_ffi.addressof(_srtp_lib, "srtp_protect")
        if _srtp_ffi.getctype(_srtp_ffi.typeof(fn)) != SRTP_PROTECT_CTYPE:
            return 0
        return int(_srtp_ffi.cast("uintptr_t", fn))
    except (AttributeError, TypeError, _srtp_ffi.error):
        return 0


def srtp_session_address(session: Any) -> int:
    """The address of a pylibsrtp session's ``srtp_t`` (for :meth:`sfu.lane.Egress.set`)."""
    return int(_srtp_ffi.cast("uintptr_t", session._srtp[0]))


SRTP_PROTECT_CTYPE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"
_PROTECT_ADDRESS = _protect_address()
set_protect(_PROTECT_ADDRESS)


def fast_fanout_ready() -> bool:
    """Whether libsrtp's ``srtp_protect`` was found for the C fan-out loop."""
    return bool(_PROTECT_ADDRESS)


class RawTransport:
    """Synchronous SRTP protect + send on one bundled DTLS transport's nominated ICE pair.

    ``send_rtp`` is on the hot path (once per packet per subscriber). On the node's shared media
    port (:class:`UdpMux`) it sends with ``sendto`` on the shared socket, and its ``egress`` holds
    the peer's address for the C loop's batched ``sendmmsg``. For a plain UDP pair of the
    connection's own (``media.udp_mux: false``) it sends on a duplicate of the ICE socket
    ``connect``-ed to the peer: ``send`` on a connected
    UDP socket skips the address parsing and route lookup of ``sendto`` (about 1 µs here). aioice
    keeps using its own descriptor (``sendto`` with an address still works on a connected UDP
    socket; inbound traffic then comes only from the nominated peer, which is why
    :func:`restart_ice` disconnects the socket and calls :meth:`unconnect`). Everything is looked up
    again when the nominated pair or the SRTP session changes. A full socket buffer drops the
    packet (counted; the DownTrack then waits for the next keyframe) instead of queueing it.
    """

    __slots__ = ("_dtls", "_nominated", "_pair", "_srtp", "_protect", "_protect_parts", "_send", "_sock",
                 "sent_packets", "egress", "_sendto_only")

    def __init__(self, dtls: Any) -> None:
        self._dtls = dtls
        self._nominated: dict[int, Any] = dtls.transport._connection._nominated
        self._pair: Any = None
        self._srtp: Any = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._protect_parts: Callable[[bytes, bytes], bytes] | None = None
        self._send: Callable[[bytes], Any] | None = None
        self._sock: socket.socket | None = None
        self.sent_packets = 0
        # The send side as the C fan-out loop sees it (sfu/_fanout.c): set while a connected
        # socket and a directly callable SRTP session exist, cleared before either goes away.
        self.egress: Any = Egress()
        # restart_ice: the pair that must not get a connected socket (None: any may)
        self._sendto_only: Any = None
        registry = getattr(dtls, _RAW_TRANSPORTS, None)
        if registry is None:
            registry = []
            setattr(dtls, _RAW_TRANSPORTS, registry)
        registry.append(self)

    @property
    def connected(self) -> bool:
        return self._dtls._tx_srtp is not None and bool(self._nominated)

    def _refresh(self) -> bool:
        pair = self._nominated.get(1)
        srtp = self._dtls._tx_srtp
        self.close()
        if pair is None or srtp is None:
            return False
        self._pair, self._srtp = pair, srtp
        aead = aead_session(self._dtls)
        if aead is not None:  # every RTP packet of this session through it (aead_session says why)
            self._protect, self._protect_parts = aead.protect, aead.protect_parts
        else:
            try:
                fast = _Protect(srtp)
                self._protect, self._protect_parts = fast, fast.parts
            except (AttributeError, TypeError):  # a pylibsrtp without these internals
                self._protect = srtp.protect
                self._protect_parts = lambda header, payload: srtp.protect(header + payload)
        direct = _PROTECT_ADDRESS and (aead is not None or isinstance(self._protect, _Protect))
        transport = pair.protocol.transport
        addr = pair.remote_addr
        if isinstance(pair.protocol, _MuxProtocol):
            # the node's shared media port: sendto with the peer's address; the C loop batches
            # every copy of a packet for that socket into one sendmmsg (sfu/_fanout.c)
            shared = pair.protocol.shared.sock
            peer = (addr[0], addr[1])
            self._send = lambda data: shared.sendto(data, peer)
            if direct:
                try:
                    name = demux.sockaddr_bytes(peer[0], peer[1])
                except OSError:
                    name = b""  # not an IP literal (cannot happen for a checked pair): Python sends
                if name:
                    self.egress.set(shared.fileno(), srtp_session_address(srtp), (srtp, pair.protocol.shared), name,
                                    aead)
            return True
        self._send = lambda data: transport.sendto(data, addr)
        raw = transport.get_extra_info("socket") if type(pair.protocol).__name__ == "StunProtocol" else None
        if raw is not None and pair is not self._sendto_only:
            try:
                sock = socket.socket(fileno=os.dup(raw.fileno()))
                sock.connect(addr)
                self._sock, self._send = sock, sock.send
            except OSError:
                log.debug("no connected socket for %s; using sendto", addr, exc_info=True)
        if self._sock is not None and direct:
            self.egress.set(self._sock.fileno(), srtp_session_address(srtp), (srtp, self._sock), b"", aead)
        return True

    def revalidate(self) -> None:
        """Follow a change of nominated pair or SRTP session. ``send_rtp`` checks on every
        call; the C fan-out loop does not, so the node calls this about once a second."""
        if self._pair is not None and (
            self._nominated.get(1) is not self._pair or self._dtls._tx_srtp is not self._srtp
        ):
            self._refresh()

    def send_rtp(self, packet: bytes) -> bool:
        """Protect and send one RTP packet; False if nothing was sent (not connected yet, or
        the socket buffer is full)."""
        pair = self._pair
        if pair is None or self._nominated.get(1) is not pair:
            if not self._refresh():
                return False
        try:
            self._send(self._protect(packet))  # type: ignore[misc]
        except OSError:  # EAGAIN: the subscriber's socket buffer is full
            STATS.dropped_congested += 1
            return False
        except ValueError as exc:  # AeadSession's refusal: the same error libsrtp's would be
            raise pylibsrtp.Error(str(exc)) from exc
        self.sent_packets += 1
        return True

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        """:meth:`send_rtp` of ``header + payload`` (the payload is shared by all subscribers;
        only the 12-byte header is theirs)."""
        pair = self._pair
        if pair is None or self._nominated.get(1) is not pair:
            if not self._refresh():
                return False
        try:
            self._send(self._protect_parts(header, payload))  # type: ignore[misc]
        except OSError:  # EAGAIN: the subscriber's socket buffer is full
            STATS.dropped_congested += 1
            return False
        except ValueError as exc:  # AeadSession's refusal: the same error libsrtp's would be
            raise pylibsrtp.Error(str(exc)) from exc
        self.sent_packets += 1
        return True

    def unconnect(self) -> None:
        """Send with ``sendto`` on aioice's socket, not on a connected duplicate, until another
        pair is nominated (:func:`restart_ice` disconnects the socket itself)."""
        self._sendto_only = self._nominated.get(1)
        self.close()

    def close(self) -> None:
        """Release the duplicated socket (the ICE socket itself belongs to aioice)."""
        self.egress.clear()  # first: the C loop must never send on a closed (reusable) fd
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._pair = None

    def send_rtcp(self, packet: bytes) -> bool:
        srtp = self._dtls._tx_srtp
        pair = self._nominated.get(1)
        if srtp is None or pair is None:
            return False
        try:
            data = srtp.protect_rtcp(packet)
        except Exception:  # pylibsrtp.Error: malformed packet of ours; count, never raise
            STATS.rtcp_errors += 1
            return False
        pair.protocol.transport.sendto(data, pair.remote_addr)
        return True

    def write_buffer_size(self) -> int:
        pair = self._nominated.get(1)
        if pair is None:
            return 0
        return int(pair.protocol.transport.get_write_buffer_size())


def raw_transport(pc: RTCPeerConnection) -> RawTransport | None:
    """The bundled transport of ``pc`` (max-bundle: every transceiver shares one)."""
    for t in pc.getTransceivers():
        return RawTransport(t.receiver.transport)
    return None


# --- datagram guard ---------------------------------------------------------------------

# RFC 7983 demultiplexing by the first byte: 0..3 STUN, 20..63 DTLS, 128..191 RTP/RTCP. Anything
# else has no business on a media port. No DTLS record (13-byte header) and no SRTP/SRTCP packet
# (12-byte header + auth tag) is shorter than this.
MIN_MEDIA_DATAGRAM = 12


def _plausible_media(data: bytes) -> bool:
    if len(data) < MIN_MEDIA_DATAGRAM:
        return False
    first = data[0]
    return 19 < first < 64 or 127 < first < 192


def guard_datagrams(pc: RTCPeerConnection) -> int:
    """Validate every datagram that reaches ``pc``'s ICE sockets before aioice/aiortc see it.

    aioice hands every datagram that is not STUN to aiortc's DTLS transport, from any address;
    aiortc reads ``data[0]`` unguarded, so one empty datagram raised ``IndexError`` and ended that
    transport's receive loop (the publisher's media stopped for good). Here, per socket:

    * STUN (first byte 0..3) passes untouched: aioice checks it (integrity, ufrag) itself;
    * anything else must look like DTLS or RTP/RTCP and be at least 12 bytes long;
    * once a pair is nominated, DTLS/SRTP is accepted only from peers that passed an ICE
      connectivity check on that socket (a stranger's datagram cannot reach the DTLS state
      machine or cost an SRTP unprotect; the browser may use any of its checked pairs).

    Dropped datagrams are counted in ``STATS.bad_datagrams``. Call after ``setLocalDescription``
    (the sockets exist once candidates are gathered) and again after later negotiations;
    idempotent per socket. Returns the number of sockets newly guarded."""
    dtls = _bundle_dtls(pc)
    if dtls is None:
        return 0
    connection = dtls.transport._connection
    nominated: dict[int, Any] = connection._nominated
    guarded = 0
    for proto in list(connection._protocols):
        if getattr(proto, _GUARDED, False):
            continue
        setattr(proto, _GUARDED, True)
        guarded += 1

        checked: set[tuple[str, int]] = set()  # peers that passed an ICE check on this socket

        def datagram_received(
            data: Any, addr: Any, _original: Any = proto.datagram_received, _proto: Any = proto,
            _checked: set[tuple[str, int]] = checked,
        ) -> None:
            if isinstance(data, bytes) and data and data[0] < 4 and len(data) >= 20:
                try:  # STUN: aioice checks it (integrity, ufrag) itself
                    _original(data, addr)
                except Exception as exc:  # its parser raises on malformed attributes (struct.error ...)
                    STATS.bad_datagrams += 1
                    log.debug("malformed STUN from %s dropped: %r", addr, exc)
                return
            if not isinstance(data, bytes) or not _plausible_media(data):
                STATS.bad_datagrams += 1
                return
            if nominated:
                peer = (addr[0], addr[1])
                if peer not in _checked:
                    # Only on a miss: the peers whose connectivity check on this socket
                    # succeeded (a browser may send from another of its pairs than the one
                    # aioice nominated first).
                    _checked.update(
                        tuple(pair.remote_addr[:2]) for pair in connection._check_list
                        if pair.protocol is _proto and pair.state == _SUCCEEDED
                    )
                    _checked.update(tuple(pair.remote_addr[:2]) for pair in nominated.values())
                    if peer not in _checked:
                        STATS.bad_datagrams += 1
                        return
            _original(data, addr)

        proto.datagram_received = datagram_received
    return guarded


# --- receive without decoding -----------------------------------------------------------


_DTLS_CONNECTED = aiortc.rtcdtlstransport.State.CONNECTED


def _tap_dtls(dtls: Any, on_rtp: RtpCallback, on_rtcp: RtcpCallback) -> None:
    if getattr(dtls, _ADOPTED, False):
        return
    setattr(dtls, _ADOPTED, True)

    # An exception escaping here would end aiortc's receive loop and with it the connection:
    # a malformed packet is counted and dropped instead.
    direct_offered = False

    def direct_rtp(data: bytes) -> bool:
        """An SRTP packet for this transport straight from the node's shared media port (see
        ``_MuxSocket.dispatch``): what ``RTCDtlsTransport._recv_next`` does with it — count it,
        unprotect, hand it on — without aioice's queue and the transport's receive task in
        between (~1/4 of the per-packet Python, perf/py-spy 2026-12-02). False: not ready (or no
        longer connected), the caller gives the datagram to aioice as before."""
        srtp = dtls._rx_srtp
        if srtp is None or dtls._state is not _DTLS_CONNECTED:
            return False
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        try:
            plain = srtp.unprotect(data)
        except pylibsrtp.Error:
            return True  # (aiortc drops it alike: replayed, or not authentic)
        try:
            on_rtp(plain, int(time.monotonic() * 1000))
        except Exception:
            STATS.rtp_errors += 1
            log.debug("RTP packet dropped", exc_info=True)
        return True

    async def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
        nonlocal direct_offered
        try:
            on_rtp(data, int(time.monotonic() * 1000))
        except Exception:
            STATS.rtp_errors += 1
            log.debug("RTP packet dropped", exc_info=True)
        if not direct_offered:  # the first packet: SRTP is keyed, the pair is chosen
            direct_offered = True
            for proto in dtls.transport._connection._protocols:
                if isinstance(proto, _MuxProtocol):
                    proto.direct_rtp = direct_rtp

    async def handle_rtcp(data: bytes) -> None:
        try:
            on_rtcp(data)
        except Exception:
            STATS.rtcp_errors += 1
            log.debug("RTCP packet dropped", exc_info=True)

    dtls._handle_rtp_data = handle_rtp
    dtls._handle_rtcp_data = handle_rtcp


def receive_raw(
    pc: RTCPeerConnection,
    on_stream: Callable[[Negotiated], None],
    on_rtp: RtpCallback,
    on_rtcp: RtcpCallback,
) -> None:
    """Take over the receive side of every transceiver of ``pc`` (call after each
    setLocal/RemoteDescription; idempotent). ``on_stream`` is called once per m-line when
    aiortc would have started its receiver; packets then reach ``on_rtp`` decrypted."""
    for t in pc.getTransceivers():
        receiver = t.receiver
        _tap_dtls(receiver.transport, on_rtp, on_rtcp)
        if getattr(receiver, _ADOPTED, False):
            continue
        setattr(receiver, _ADOPTED, True)

        def make_receive(t: RTCRtpTransceiver) -> Callable[[Any], Any]:
            async def receive(parameters: Any) -> None:
                ssrcs = [e.ssrc for e in parameters.encodings if e.ssrc]
                on_stream(_negotiated(t, parameters, ssrcs))

            return receive

        async def stop() -> None:
            return None

        # Instance attributes shadow the methods for this receiver only.
        setattr(receiver, "receive", make_receive(t))  # noqa: B010
        setattr(receiver, "stop", stop)  # noqa: B010
        setattr(receiver, "_handle_disconnect", lambda: None)  # noqa: B010


# --- send without encoding --------------------------------------------------------------


def send_raw(
    pc: RTCPeerConnection,
    on_stream: Callable[[Negotiated], None],
    on_rtcp: RtcpCallback,
) -> None:
    """Take over the send side of every transceiver of ``pc`` (idempotent). ``on_stream`` is
    called once per m-line when aiortc would have started encoding; the SSRC to use is
    ``Negotiated.ssrcs[0]``. RTCP arriving on the transport goes to ``on_rtcp``."""
    for t in pc.getTransceivers():
        sender = t.sender
        _tap_dtls(sender.transport, lambda data, ms: None, on_rtcp)
        if getattr(sender, _ADOPTED, False):
            continue
        setattr(sender, _ADOPTED, True)

        def make_send(t: RTCRtpTransceiver) -> Callable[[Any], Any]:
            started = False

            async def send(parameters: Any) -> None:
                nonlocal started
                if started:
                    return
                started = True
                on_stream(_negotiated(t, parameters, [t.sender._ssrc]))

            return send

        async def stop() -> None:
            return None

        setattr(sender, "send", make_send(t))  # noqa: B010
        setattr(sender, "stop", stop)  # noqa: B010


def sender_ssrc(t: RTCRtpTransceiver) -> int:
    return int(t.sender._ssrc)


def prefer_codecs(t: RTCRtpTransceiver, mimes: list[str], parameters: dict[str, Any] | None = None) -> None:
    """Offer only ``mimes`` on this transceiver (no RTX: retransmissions reuse the SSRC)."""
    caps = RTCRtpSender.getCapabilities(t.kind)
    wanted = []
    for mime in mimes:
        for c in caps.codecs:
            if c.mimeType.lower() != mime.lower():
                continue
            if parameters and any(c.parameters.get(k) != v for k, v in parameters.items()):
                continue
            wanted.append(c)
    if not wanted:  # e.g. unknown fmtp: fall back to the mime alone
        wanted = [c for c in caps.codecs if c.mimeType.lower() in [m.lower() for m in mimes]]
    t.setCodecPreferences([RTCRtpCodecCapability(c.mimeType, c.clockRate, c.channels, c.parameters) for c in wanted])


def answer_as_dtls_server(pc: RTCPeerConnection) -> int:
    """After ``setRemoteDescription(offer)`` and before ``createAnswer``: where the offer left
    the DTLS role open (``a=setup:actpass``), take the server role, so the answer says
    ``a=setup:passive`` (aiortc would answer ``active``). aiortc as DTLS *client* offers only
    ECDHE-ECDSA cipher suites, which a peer with an RSA certificate (GStreamer 1.22's webrtcbin)
    cannot serve ("no shared cipher"); as the server, aiortc's own ECDSA certificate decides the
    suite and any client works. Returns how many transports were set.

    An offer that says ``a=setup:passive`` (the offerer is the DTLS server: FFmpeg 8's whip
    muxer) gets the client role, ``a=setup:active``: aiortc leaves its role ``auto`` for such an
    offer (it only acts on ``active``), and taking the server role there made both sides wait
    for the other's ClientHello (FFmpeg's "DTLS handshake timeout"). ``active`` offers are
    already ``server`` in aiortc."""
    remote = pc.remoteDescription
    offered: dict[str | None, str | None] = {}
    if remote is not None:
        for media in aiortc.sdp.SessionDescription.parse(remote.sdp).media:
            offered[media.rtp.muxId] = media.dtls.role if media.dtls is not None else None
    count = 0
    for t in pc.getTransceivers():
        dtls = t.receiver.transport
        if dtls is None or dtls._role != "auto":
            continue
        if offered.get(t.mid) == "server":  # the offer said a=setup:passive
            dtls._set_role("client")
            _repeat_client_hello(dtls)
            continue
        dtls._set_role("server")
        count += 1
    return count


def offer_as_dtls_client(pc: RTCPeerConnection, offer_sdp: str) -> str:
    """After ``setLocalDescription(offer)``: the offer to send, saying ``a=setup:active`` instead
    of ``actpass``, so that the answerer is the DTLS server and aiortc the client (RFC 4145: an
    ``active`` offer is answered ``passive``; Chromium and Firefox do so, and so does aiortc).
    aiortc takes the client role from that ``passive`` answer by itself. Returns the new SDP.

    Why: as DTLS *server* aiortc starts reading only when its own ICE check has succeeded, while
    the browser (the DTLS client) sends its ClientHello as soon as *its* check has, and repeats it
    on a doubling timer. On a busy node (a lesson moved there because its node died: every
    classroom of it connecting at once) aiortc's checks ran 1-1.5 s behind, so ten or more stale
    copies of the two-datagram ClientHello were queued in front of the browser's next flight;
    aiortc's handshake reads one datagram per event-loop round trip, OpenSSL's own 1 s timer fired
    meanwhile, and the browser's timer backed off: 1-14 s from ICE connected to DTLS connected on
    subscribe connections. As DTLS client aiortc sends the first datagram itself, once its ICE is
    up, nothing is queued, and the ClientHello is repeated quickly (:func:`_repeat_client_hello`)
    until the browser answers, as on publish connections, which never showed the delay."""
    for t in pc.getTransceivers():
        dtls = t.receiver.transport
        if dtls is not None and dtls.state == "new" and not getattr(dtls, _HELLO_REPEATS, False):
            setattr(dtls, _HELLO_REPEATS, True)
            _repeat_client_hello(dtls)
    return offer_sdp.replace("a=setup:actpass", "a=setup:active")


_HELLO_REPEATS = "_classroom_hello_repeats"  # on a DTLS transport: _repeat_client_hello installed

# The ClientHello aiortc sends as DTLS client is sent again this soon (seconds after the first)
# while nothing has come back. FFmpeg 8's whip muxer (the DTLS server by default) reads the first
# DTLS datagram itself in its ICE loop, only to learn that DTLS has begun, and drops it (one sent
# before its ICE check succeeded is dropped too); its DTLS context then waits for the next one,
# which OpenSSL's own timer sends only 1 s later. A repeated ClientHello is what a DTLS server
# sees after any lost datagram (it answers with its flight again, RFC 6347 section 4.2.4).
CLIENT_HELLO_REPEATS_S = (0.03, 0.1, 0.2, 0.4)


def _repeat_client_hello(dtls: Any) -> None:
    """Send the first datagram of the DTLS client (its ClientHello) again at
    :data:`CLIENT_HELLO_REPEATS_S` until the peer has sent anything."""
    import asyncio

    ice = dtls.transport
    send = ice._send

    # datagrams received but not read yet: on a busy loop the peer's answer may be waiting there
    # (a repeat then only draws another copy of it, which the handshake has to read as well)
    queued = getattr(getattr(ice, "_connection", None), "_queue", None)

    async def resend(data: bytes) -> None:
        started = time.monotonic()
        for at in CLIENT_HELLO_REPEATS_S:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            if dtls._RTCDtlsTransport__rx_packets or dtls.state != "connecting":
                return
            if queued is not None and queued.qsize():
                return
            try:
                await send(data)
            except ConnectionError:
                return

    async def first_send(data: bytes) -> None:
        ice._send = send  # only the first datagram: the rest goes straight through
        await send(data)
        task = asyncio.get_running_loop().create_task(resend(data))
        _restart_tasks.add(task)
        task.add_done_callback(_restart_tasks.discard)

    ice._send = first_send


_RAW_TRANSPORTS = "_classroom_raw_transports"  # on a DTLS transport: its RawTransports


# --- ICE restart on a live connection (WHIP/WHEP PATCH, RFC 9725 section 4.4.2) ---
# aiortc has no ICE restart and aioice's Connection no restart method. A restart here keeps
# the bundled connection's sockets, its local candidates and the DTLS/SRTP session on top of
# it, and starts connectivity checks again with new credentials on both sides: the remote
# candidates and the check list are dropped and aioice's own connect() runs again. The nominated
# pair is kept until the new checks nominate another (RFC 8445 section 9: media goes on over the
# old pair meanwhile; and aioice's recv() raises, which ends aiortc's DTLS transport, whenever
# nothing is nominated). With a pair still nominated, connect() returns at the first successful
# check and restarts consent freshness; the peer's nomination (USE-CANDIDATE, handled by
# check_incoming at any time) or our own aggressive one when we control replaces the pair.
# RawTransport.revalidate picks the new pair up within a second.
# The sockets are disconnected first: a RawTransport sends on a duplicate of the ICE socket
# connect()-ed to the peer, and a connected UDP socket receives from that peer only, so a peer's
# new-generation checks from another socket (Chromium gathers new ones for a restart) were
# dropped by the kernel and never reached aioice (the new pair "never connected"). Until a new
# pair is nominated the RawTransports send with sendto; the new pair gets its connected socket.

_ICE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# A restart whose checks have not succeeded by then has failed (RFC 8445: a failed restart fails
# the session; without it consent freshness, stopped for the restart, would never come back).
ICE_RESTART_TIMEOUT_S = 30.0


@dataclass
class IceRestart:
    ufrag: str  # our new credentials, for the answer fragment
    pwd: str
    candidates: list[str]  # our local candidates, SDP attribute values ("1 1 udp ... typ host")


def new_ice_credentials() -> tuple[str, str]:
    import secrets

    return ("".join(secrets.choice(_ICE_CHARS) for _ in range(8)),
            "".join(secrets.choice(_ICE_CHARS) for _ in range(24)))


def restart_ice(pc: RTCPeerConnection, remote_ufrag: str, remote_pwd: str,
                local: tuple[str, str] | None = None) -> IceRestart:
    """Restart ICE on ``pc``'s bundled transport with the peer's new ``remote_ufrag`` /
    ``remote_pwd`` and new local credentials (``local``, or fresh ones). Add the peer's new
    candidates afterwards (``pc.addIceCandidate``, ``None`` for end-of-candidates). Raises
    ValueError when there is nothing to restart: no transport, closed, or the previous ICE
    negotiation still running."""
    import asyncio

    try:
        aioice.ice.validate_username(remote_ufrag)
        aioice.ice.validate_password(remote_pwd)
    except ValueError as exc:
        raise ValueError(f"bad ICE credentials: {exc}") from None
    dtls = _bundle_dtls(pc)
    if dtls is None:
        raise ValueError("the connection has no ICE transport")
    ice = dtls.transport
    conn = ice._connection
    if conn._closing or conn._closed:
        raise ValueError("the ICE connection is closed")
    if not conn._check_list_done or not conn._nominated:
        raise ValueError("ICE is still connecting: restart once it has connected")
    ufrag, pwd = local or new_ice_credentials()
    for raw in getattr(dtls, _RAW_TRANSPORTS, ()):
        raw.unconnect()
    for proto in conn._protocols:
        _disconnect_udp(proto)
    if conn._query_consent_task is not None:
        conn._query_consent_task.cancel()
        conn._query_consent_task = None
    for pair in conn._check_list:
        if pair.task is not None:
            pair.task.cancel()
    conn._local_username, conn._local_password = ufrag, pwd
    for proto in conn._protocols:  # the node's media port: the new ufrag finds this connection, the old one not
        if isinstance(proto, _MuxProtocol):
            proto.shared.rename(proto, ufrag)
    conn.remote_username, conn.remote_password = remote_ufrag, remote_pwd
    conn._remote_candidates = []
    conn._remote_candidates_end = False
    conn._check_list = []
    conn._check_list_done = False
    conn._check_list_state = asyncio.Queue()
    conn._nominating.clear()  # (the nominated pair stays: see above)
    ice.iceGatherer._remote_candidates_end = False  # aiortc's own end-of-candidates latch
    STATS.ice_restarts += 1

    async def checks() -> None:
        try:
            await asyncio.wait_for(conn.connect(), ICE_RESTART_TIMEOUT_S)
        except Exception as exc:  # the restart failed (or timed out): the connection is over
            if conn._closing:
                return  # closed meanwhile (the session was deleted): not a failed restart
            STATS.ice_restarts_failed += 1
            log.info("ICE restart failed (%r): closing the connection; checks %s, remote candidates %s%s",
                     exc, [f"{p.remote_addr} {p.state.name}" for p in conn._check_list],
                     [f"{c.host}:{c.port}" for c in conn._remote_candidates],
                     " (ended)" if conn._remote_candidates_end else "")
            await conn.close()

    task = asyncio.get_running_loop().create_task(checks())
    _restart_tasks.add(task)
    task.add_done_callback(_restart_tasks.discard)
    return IceRestart(ufrag, pwd, [c.to_sdp() for c in conn.local_candidates])


_restart_tasks: set[Any] = set()
_AF_UNSPEC_ADDR = struct.pack("=H14x", socket.AF_UNSPEC)  # a sockaddr of family AF_UNSPEC


def _disconnect_udp(proto: Any) -> bool:
    """Dissolve the association of a connect()-ed UDP socket (connect() to an AF_UNSPEC
    address, POSIX), so it receives from any address again. Linux also releases a port that
    was chosen by the kernel (aioice binds to port 0) on that disconnect: the socket is bound
    to the same address and port again at once. False if it was not connected. (Everything is
    done on a duplicate descriptor of the same socket: the event loop's socket object may be a
    wrapper without ``bind``, or uvloop's, which keeps its own view of the addresses.)"""
    import ctypes

    transport = getattr(proto, "transport", None)
    wrapped = transport.get_extra_info("socket") if transport is not None else None
    if wrapped is None:
        return False
    with socket.socket(wrapped.family, wrapped.type, wrapped.proto, fileno=os.dup(wrapped.fileno())) as sock:
        try:
            sock.getpeername()
            local = sock.getsockname()
        except OSError:
            return False  # not connected
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.connect(sock.fileno(), _AF_UNSPEC_ADDR, len(_AF_UNSPEC_ADDR)) != 0:
            log.warning("ICE restart: could not disconnect %s: errno %d", local, ctypes.get_errno())
            return False
        if sock.getsockname()[1] != local[1]:
            try:
                sock.bind(local)
            except OSError as exc:  # the port was taken meanwhile: this connection cannot go on
                log.warning("ICE restart: could not bind %s again: %s", local, exc)
                return False
    return True


# --- one media port per node (media.udp_port, issue #19) --------------------------------------
# Without it, aioice binds one UDP socket per local address for every connection, so a node needs
# its whole ephemeral port range open in a school's firewall. With a UdpMux, every SFU connection
# (publisher, subscriber, WHIP, WHEP) shares one socket per ICE address, in both directions:
#
# * aioice's ``Connection.get_component_candidates`` is replaced (class-wide, once) by one that,
#   for a connection marked with :func:`use_media_port`, makes no socket: each host candidate gets
#   a :class:`_MuxProtocol` (aioice's own ``StunProtocol``, so checks, transactions and consent
#   freshness are aioice's) over a :class:`_MuxTransport` that sends on the shared socket. Its
#   ufrag is registered with the socket. TURN and server-reflexive gathering stay aioice's.
# * :class:`_MuxSocket` reads the shared socket and picks the connection of every datagram
#   (the pure parsing is sfu/demux.py): a binding request by the local ufrag in its USERNAME, once
#   its MESSAGE-INTEGRITY checks out with that connection's password, which also teaches the
#   socket the sender's address; a STUN response by its transaction id (our request's); DTLS,
#   SRTP and SRTCP by the address learned from a valid check. Whatever matches nothing is dropped
#   and counted (STATS.mux_*), never raised into the loop.
# * Full ICE is kept (no ICE-lite): every client we ship and test with connects unchanged.
#
# Connections of clients in the same process (the room agent, bots, test peers) are not marked and
# keep their own sockets.

MUX_READ_BUDGET = 256  # datagrams read per wake-up, then the loop runs other work (a flood cannot hog it)
MUX_ADDRESSES_PER_CONNECTION = 16  # learned remote addresses kept per connection (oldest out)
MUX_TRANSACTIONS_MAX = 16384  # STUN requests of ours awaiting a response, node-wide (oldest out)
MUX_BUFFER_BYTES = 4 * 1024 * 1024  # asked for SO_RCVBUF/SO_SNDBUF (the kernel caps it: docs/network.md)
# Linux's IP_MTU_DISCOVER / IP_PMTUDISC_PROBE (the socket module does not name them): the
# shared socket's IPv4 datagrams carry DF and are never fragmented locally. An unconnected UDP
# socket without DF makes the kernel hash a fresh IP ID for every datagram (__ip_select_ident:
# ~4 % of the SFU's CPU at 100 subscribers, perf 2026-12-02); with DF the ID is 0 (RFC 6864).
# PROBE, not DO: the path MTU the kernel learns from ICMP is not applied, so a datagram is only
# refused above the interface's MTU (WebRTC keeps RTP under ~1200 bytes; browsers set DF too).
IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3
_MUX = "_classroom_udp_mux"  # on an aioice Connection: the UdpMux its host candidates use


class UdpMuxError(RuntimeError):
    pass


class _MuxTransport:
    """What aioice's ``StunProtocol`` sends with (``asyncio.DatagramTransport``'s calls it uses),
    on the shared socket. It has no socket of its own: ``get_extra_info("socket")`` is None, so
    nobody ``connect()``s or duplicates the shared socket (RawTransport sends with an address)."""

    def __init__(self, shared: _MuxSocket, protocol: _MuxProtocol) -> None:
        self._shared = shared
        self._protocol = protocol
        self._closed = False

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if self._closed:
            return
        try:
            self._shared.sock.sendto(data, (addr[0], addr[1]))
        except (BlockingIOError, InterruptedError):  # a full socket buffer: a lost datagram
            STATS.dropped_congested += 1
        except OSError as exc:  # e.g. no route: a lost datagram, as on a real network
            log.debug("media port: sendto %s failed: %s", addr, exc)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "sockname":
            return (self._shared.address, self._shared.port)
        return default

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shared.unregister(self._protocol)
        self._protocol.connection_lost(None)

    abort = close


class _MuxProtocol(aioice.ice.StunProtocol):
    """aioice's ``StunProtocol`` for one connection's host candidate on the shared socket: the
    STUN requests it sends are remembered so their responses find it again."""

    shared: _MuxSocket
    ufrag: str
    learned: list[tuple[str, int]]
    # set by the receive tap (``_tap_dtls``) once its transport's SRTP is keyed: SRTP (not SRTCP)
    # from a learned address goes to it directly; ``direct_packets`` counts them
    direct_rtp: Callable[[bytes], bool] | None = None
    direct_packets: int = 0

    def send_stun(self, message: Any, addr: tuple[str, int]) -> None:
        if message.message_class == aioice.stun.Class.REQUEST:
            self.shared.expect(message.transaction_id, self)
        super().send_stun(message, addr)


class _MuxSocket:
    """One shared UDP socket (one ICE address of the node) and its demultiplexing tables."""

    def __init__(self, address: str, port: int, buffer_bytes: int) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.bind((address, port))
        except OSError as exc:
            self.sock.close()
            raise UdpMuxError(
                f"cannot open the media port {address}:{port}/udp ({exc.strerror or exc}): another "
                f"`classroom serve` may hold it; set media.udp_port (CLASSROOM_MEDIA_UDP_PORT) to a free "
                f"port, 0 for one the kernel picks, or media.udp_mux: false") from None
        self.sock.setblocking(False)
        for opt, force in ((socket.SO_RCVBUF, 33), (socket.SO_SNDBUF, 32)):  # 33/32: SO_RCV/SNDBUFFORCE
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, force, buffer_bytes)  # root: past the sysctl cap
            except OSError:
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, opt, buffer_bytes)
                except OSError:
                    pass
        if family == socket.AF_INET and sys.platform.startswith("linux"):
            try:
                self.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
            except OSError:
                pass
        self.address = address
        self.port = int(self.sock.getsockname()[1])
        # ufrag -> its connections: without max-bundle aiortc gives every transceiver of a new offer a
        # transport of its own with the same credentials until the answer's BUNDLE closes all but the
        # primary one, and which of them gathered (registered) first is a set's order. A check for the
        # ufrag is handed to every one of them (each answers it alike and learns the peer-reflexive
        # candidate, whichever survives BUNDLE); DTLS/SRTP from the checked address go to one, and
        # to a surviving sibling when that one closes (glue contract test, "same ufrag")
        self.by_ufrag: dict[str, list[_MuxProtocol]] = {}
        self.by_address: dict[tuple[str, int], _MuxProtocol] = {}
        self.transactions: dict[bytes, _MuxProtocol] = {}
        self._reading = False

    # tables

    def register(self, protocol: _MuxProtocol, ufrag: str) -> None:
        protocol.shared = self
        protocol.ufrag = ufrag
        protocol.learned = []
        self.by_ufrag.setdefault(ufrag, []).append(protocol)

    def _forget_ufrag(self, protocol: _MuxProtocol) -> None:
        same = self.by_ufrag.get(protocol.ufrag)
        if same is not None and protocol in same:
            same.remove(protocol)
            if not same:
                del self.by_ufrag[protocol.ufrag]

    def rename(self, protocol: _MuxProtocol, ufrag: str) -> None:
        """ICE restart: the connection's new ufrag replaces the old one."""
        self._forget_ufrag(protocol)
        protocol.ufrag = ufrag
        self.by_ufrag.setdefault(ufrag, []).append(protocol)

    def lookup(self, ufrag: str) -> _MuxProtocol | None:
        same = self.by_ufrag.get(ufrag)
        return same[0] if same else None

    def unregister(self, protocol: _MuxProtocol) -> None:
        self._forget_ufrag(protocol)
        siblings = self.by_ufrag.get(protocol.ufrag)  # transports of the same connection's credentials
        for addr in protocol.learned:
            if self.by_address.get(addr) is protocol:
                del self.by_address[addr]
                if siblings:  # they saw the same checks: the one BUNDLE keeps takes the address over
                    self.learn(siblings[0], addr)
        protocol.learned = []
        for tid in list(protocol.transactions):
            if self.transactions.get(tid) is protocol:
                del self.transactions[tid]

    def expect(self, transaction_id: bytes, protocol: _MuxProtocol) -> None:
        if transaction_id not in self.transactions and len(self.transactions) >= MUX_TRANSACTIONS_MAX:
            del self.transactions[next(iter(self.transactions))]  # the oldest (timed out, most likely)
        self.transactions[transaction_id] = protocol

    def learn(self, protocol: _MuxProtocol, addr: tuple[str, int]) -> None:
        """``addr`` passed a valid check of ``protocol``'s connection: its DTLS/SRTP go there."""
        old = self.by_address.get(addr)
        if old is protocol:
            return
        if old is not None and addr in old.learned:  # the latest valid check wins (a NAT rebinding)
            old.learned.remove(addr)
        self.by_address[addr] = protocol
        protocol.learned.append(addr)
        if len(protocol.learned) > MUX_ADDRESSES_PER_CONNECTION:
            gone = protocol.learned.pop(0)
            if self.by_address.get(gone) is protocol:
                del self.by_address[gone]

    # reading

    def start(self, loop: Any) -> None:
        if not self._reading:
            loop.add_reader(self.sock.fileno(), self._read)
            self._reading = True

    def stop(self, loop: Any) -> None:
        if self._reading:
            loop.remove_reader(self.sock.fileno())
            self._reading = False

    def _read(self) -> None:
        recvfrom = self.sock.recvfrom
        for _ in range(MUX_READ_BUDGET):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # (an ICMP error reported on the socket)
                log.debug("media port %s:%d: %s", self.address, self.port, exc)
                continue
            try:
                self.dispatch(data, (addr[0], addr[1]))
            except Exception:  # never into the event loop: this datagram is lost, the others are not
                STATS.rtp_errors += 1
                log.debug("media port: datagram from %s dropped", addr, exc_info=True)

    def dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        """Hand one datagram to the connection it belongs to, or drop and count it."""
        if data and data[0] < 4:  # STUN (RFC 7983)
            self._stun(data, addr)
            return
        protocol = self.by_address.get(addr)  # DTLS, SRTP, SRTCP (and garbage: the guard counts it)
        if protocol is None:
            STATS.mux_unknown_address += 1
            return
        direct = protocol.direct_rtp
        # SRTP, not SRTCP (aiortc's is_rtcp: second byte 192..208), at least a header long
        if (direct is not None and len(data) >= MIN_MEDIA_DATAGRAM and 127 < data[0] < 192
                and not 191 < data[1] < 209 and direct(data)):
            protocol.direct_packets += 1
            return
        protocol.datagram_received(data, addr)

    def _stun(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            head = demux.parse_stun(data)
        except demux.StunError:
            STATS.mux_bad_stun += 1
            return
        protocol: _MuxProtocol | None
        if head.message_class == demux.REQUEST:
            if head.username is None:
                STATS.mux_bad_stun += 1
                return
            same = self.by_ufrag.get(demux.local_ufrag(head.username))
            if not same:
                STATS.mux_unknown_ufrag += 1
                return
            protocol = same[0]
            if not demux.integrity_ok(data, head, protocol.receiver.local_password.encode("utf-8")):
                STATS.mux_bad_stun += 1
                return
            self.learn(protocol, addr)
            for sibling in same[1:]:  # (a copy of the list: a sibling may close while it answers)
                sibling.datagram_received(data, addr)
        elif head.message_class == demux.INDICATION:  # (a keep-alive): only from a known peer
            protocol = self.by_address.get(addr)
            if protocol is None:
                STATS.mux_unknown_address += 1
                return
        else:  # a response: to the connection whose request it answers
            protocol = self.transactions.pop(head.transaction_id, None)
            if protocol is None:
                STATS.mux_bad_stun += 1
                return
            remote_password = protocol.receiver.remote_password
            if head.message_class == demux.SUCCESS and remote_password and demux.integrity_ok(
                    data, head, remote_password.encode("utf-8")):
                self.learn(protocol, addr)  # a check of ours the peer answered from there
        protocol.datagram_received(data, addr)

    def close(self, loop: Any | None) -> None:
        if loop is not None:
            self.stop(loop)
        self.sock.close()


class UdpMux:
    """The node's media port: one :class:`_MuxSocket` per ICE address, all on ``port`` (0: one
    the kernel picks per address). Bound at construction (a port in use is a
    :class:`UdpMuxError` naming the setting); reading starts with the first connection."""

    def __init__(self, addresses: list[str], port: int, buffer_bytes: int = MUX_BUFFER_BYTES) -> None:
        if not addresses:
            raise UdpMuxError("media.udp_port needs at least one address in media.ice_addresses")
        self.sockets: dict[str, _MuxSocket] = {}
        try:
            for address in dict.fromkeys(addresses):
                self.sockets[address] = _MuxSocket(address, port, buffer_bytes)
        except UdpMuxError:
            self.close()
            raise
        self._loop: Any = None
        _install_mux_gathering()

    @property
    def ports(self) -> dict[str, int]:
        """ICE address -> the UDP port its host candidates carry."""
        return {a: s.port for a, s in self.sockets.items()}

    def describe(self) -> str:
        return ", ".join(f"{a}:{p}/udp" if ":" not in a else f"[{a}]:{p}/udp" for a, p in self.ports.items())

    def socket_for(self, address: str) -> _MuxSocket | None:
        shared = self.sockets.get(address)
        if shared is not None:
            import asyncio

            loop = asyncio.get_running_loop()
            if self._loop is not loop:
                if self._loop is not None:
                    for s in self.sockets.values():
                        s.stop(self._loop)
                self._loop = loop
            shared.start(loop)
        return shared

    def connections(self) -> int:
        """Connections registered now (for tests and logs)."""
        return sum(len(same) for s in self.sockets.values() for same in s.by_ufrag.values())

    def close(self) -> None:
        for s in self.sockets.values():
            try:
                s.close(self._loop if self._loop is not None and not self._loop.is_closed() else None)
            except (OSError, RuntimeError):
                s.sock.close()
        self.sockets.clear()


def use_media_port(pc: RTCPeerConnection, mux: UdpMux | None) -> None:
    """Gather ``pc``'s host candidates on ``mux`` (the node's shared media port) instead of
    sockets of their own. Call before every ``setLocalDescription`` (gathering happens there; a
    transport that has gathered already is left as it is). ``mux`` None: nothing changes."""
    if mux is None:
        return
    for t in pc.getTransceivers():
        ice = t.receiver.transport.transport
        if ice.iceGatherer.state == "new":
            setattr(ice._connection, _MUX, mux)


def media_port_of(pc: RTCPeerConnection) -> list[tuple[str, int]]:
    """The shared (address, port) pairs ``pc``'s host candidates use; empty without a mux."""
    dtls = _bundle_dtls(pc)
    if dtls is None:
        return []
    return [(p.shared.address, p.shared.port) for p in dtls.transport._connection._protocols
            if isinstance(p, _MuxProtocol)]


_mux_gathering_installed = False


def _install_mux_gathering() -> None:
    """Replace aioice's ``Connection.get_component_candidates`` (once, class-wide) with one that
    takes the host candidates of marked connections from their UdpMux."""
    global _mux_gathering_installed
    if _mux_gathering_installed:
        return
    _mux_gathering_installed = True
    import asyncio

    original = aioice.ice.Connection.get_component_candidates
    _aioice_originals.setdefault("get_component_candidates", original)

    async def get_component_candidates(self: Any, component: int, addresses: list[str],
                                       timeout: int = 5) -> list[Any]:
        mux: UdpMux | None = getattr(self, _MUX, None)
        if mux is None:
            return await original(self, component, addresses, timeout)
        candidates: list[Any] = []
        host: list[_MuxProtocol] = []
        for address in addresses:
            shared = mux.socket_for(address)
            if shared is None:
                log.warning("media port: no shared socket for ICE address %s (media.ice_addresses)", address)
                continue
            protocol = _MuxProtocol(self)
            shared.register(protocol, self.local_username)
            protocol.connection_made(_MuxTransport(shared, protocol))  # type: ignore[arg-type]
            protocol.local_candidate = aioice.candidate.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", address),
                component=component,
                transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=address,
                port=shared.port,
                type="host",
            )
            host.append(protocol)
            candidates.append(protocol.local_candidate)
        self._protocols += host
        if self.stun_server:  # server-reflexive candidates of the shared sockets (IPv4), as aioice does
            tasks = [asyncio.ensure_future(aioice.ice.server_reflexive_candidate(p, self.stun_server))
                     for p in host if ":" not in p.local_candidate.host]
            if tasks:
                done, pending = await asyncio.wait(tasks, timeout=timeout)
                candidates += [t.result()[0] for t in done if t.exception() is None]
                for t in pending:
                    t.cancel()
        # TURN (relayed candidates): aioice's own code, given no host addresses
        candidates += await original(self, component, [], timeout)
        return candidates

    aioice.ice.Connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign]


# --- bot-side hooks (load test, recorder) ---
# Used by loadtest/bots.py. A subscriber bot keeps aiortc's ICE, DTLS and SRTP negotiation but
# must not pay for aiortc's receive path per packet (datagram → aioice queue → DTLS transport →
# SRTP unprotect → RTP parse → router): it takes SRTP datagrams straight off the ICE socket and
# unprotects only a sample with the negotiated receive session.

SrtpCallback = Callable[[bytes], None]  # one still-encrypted SRTP (not SRTCP) datagram


def _bundle_dtls(pc: RTCPeerConnection) -> Any | None:
    for t in pc.getTransceivers():
        return t.receiver.transport
    return None


def tap_srtp_datagrams(pc: RTCPeerConnection, on_srtp: SrtpCallback) -> bool:
    """Hand every SRTP datagram that reaches ``pc``'s bundled ICE sockets to ``on_srtp``,
    encrypted, straight from the socket (``StunProtocol.datagram_received`` is replaced per
    instance). STUN, DTLS and SRTCP still take aiortc's path. Call after
    ``setLocalDescription`` (the sockets exist once candidates are gathered); idempotent.
    Returns False if ``pc`` has no transport or no socket yet."""
    dtls = _bundle_dtls(pc)
    if dtls is None:
        return False
    protocols = list(dtls.transport._connection._protocols)
    if not protocols:
        return False
    for proto in protocols:
        if getattr(proto, _ADOPTED, False):
            continue
        setattr(proto, _ADOPTED, True)

        def datagram_received(
            data: bytes, addr: Any, _original: Any = proto.datagram_received
        ) -> None:
            # RFC 7983 demultiplexing: 128..191 is RTP/RTCP; RTCP packet types are 192..223
            if len(data) > 1 and 127 < data[0] < 192 and not 191 < data[1] < 224:
                on_srtp(data)
            else:
                _original(data, addr)

        proto.datagram_received = datagram_received
    return True


def ice_socket_fds(pc: RTCPeerConnection) -> list[int]:
    """File descriptors of ``pc``'s bundled ICE sockets (after ``setLocalDescription``), e.g.
    to read the kernel's arrival time of the last datagram (``loadtest.bots.socket_arrival_time``)."""
    dtls = _bundle_dtls(pc)
    if dtls is None:
        return []
    fds = []
    for proto in dtls.transport._connection._protocols:
        transport = getattr(proto, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            fds.append(sock.fileno())
    return fds


def srtp_unprotect(pc: RTCPeerConnection) -> Callable[[bytes], bytes] | None:
    """``unprotect`` of ``pc``'s negotiated SRTP receive session (None until DTLS is done).
    Its replay window is 1024 packets: unprotect a sample in arrival order."""
    dtls = _bundle_dtls(pc)
    if dtls is None or dtls._rx_srtp is None:
        return None
    return dtls._rx_srtp.unprotect  # type: ignore[no-any-return]


def quiet_connect_after_close(pc: RTCPeerConnection) -> None:
    """aiortc runs its ICE/DTLS connect step in a task nobody awaits. When the connection is
    closed while that task waits (a page publishes again, or leaves, while ICE is still checking),
    the task fails (``InvalidStateError: RTCIceTransport is closed``) and asyncio logs a traceback
    ("Task exception was never retrieved"; found by tests/fuzz/sfu/test_peer.py). After ``close()``
    that failure is expected: it is logged at debug level instead. Before it, errors propagate."""
    original = pc._RTCPeerConnection__connect  # type: ignore[attr-defined]

    async def connect() -> None:
        try:
            await original()
        except Exception as exc:
            if not pc._RTCPeerConnection__isClosed:  # type: ignore[attr-defined]
                raise
            log.debug("connect step ended by close(): %r", exc)

    pc._RTCPeerConnection__connect = connect  # type: ignore[attr-defined]


# --- ICE with mDNS-obfuscated peers (Firefox, Safari, Chromium without camera permission) ----
#
# A browser may hide each host candidate behind a random ``<uuid>.local`` name that only its own
# mDNS responder answers. aioice resolves such a name inside ``add_remote_candidate`` with one
# query and a 1 s timeout, and the caller waits meanwhile (our ``ice`` message handler too): a
# lost or late first answer loses the candidate for good. ``robust_mdns_ice`` (installed by
# ``configure_ice``) changes that, for every aioice ``Connection`` in the process:
#
# * ``add_remote_candidate`` returns at once for a ``.local`` candidate; the name is resolved in
#   the background (the pair is formed as soon as the answer comes), and end-of-candidates waits
#   for it as aioice's own path does;
# * a lookup re-sends its query with growing timeouts (``MDNS_ATTEMPTS_S``, 5.25 s in all) and on
#   every interface of ``media.ice_addresses`` (a multi-homed server's LAN need not be the one of
#   its default route), and concurrent lookups of one name share one;
# * answers are cached for ``MDNS_CACHE_TTL_S`` (a browser uses one name for all its connections:
#   its publish and subscribe connections, a reconnect);
# * a name that never resolves costs nothing else: the browser's own connectivity checks reach
#   the server's candidate, and aioice learns the peer-reflexive candidate they come from
#   (RFC 8445 7.3.1.3) and checks it back (a triggered check); counted in ``ICE_STATS``. aioice
#   declares failure as soon as end-of-candidates leaves it no pair (a controlled agent whose
#   peer's names all failed to resolve, before the peer's first check arrived): here a
#   connection keeps waiting for such checks ``PRFLX_GRACE_S`` after ``connect()`` started.

MDNS_ATTEMPTS_S: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5, 2.0)
MDNS_CACHE_TTL_S = 120.0
MDNS_CACHE_MAX = 4096
PRFLX_GRACE_S = 10.0
MDNS_MAX_LOOKUPS = 256  # names being looked up at once, process-wide (a flood of .local names)


@dataclass
class IceStats:
    """Process-wide counters of the mDNS / peer-reflexive path (plain ints)."""

    mdns_candidates: int = 0  # remote candidates with a .local name
    mdns_queries: int = 0  # queries sent (all attempts, all interfaces)
    mdns_resolved: int = 0  # lookups answered
    mdns_cache_hits: int = 0  # candidates resolved from the cache, no query
    mdns_unresolved: int = 0  # lookups that got no answer within the budget
    prflx_learned: int = 0  # peer-reflexive remote candidates learned from incoming checks


ICE_STATS = IceStats()
_mdns_cache: dict[str, tuple[str, float]] = {}  # name -> (address, expiry on the monotonic clock)
_mdns_lookups: dict[str, Any] = {}  # name -> the asyncio.Task resolving it
_mdns_tasks: set[Any] = set()  # background resolutions (a reference keeps each alive)
_mdns_installed = False
_aioice_originals: dict[str, Any] = {}  # Connection method name -> aioice's own, once replaced


def aioice_original(name: str) -> Any:
    """aioice's own ``Connection.<name>``, whether or not ``robust_mdns_ice`` replaced it."""
    return _aioice_originals.get(name, getattr(aioice.ice.Connection, name))


def mdns_cache_get(name: str, now: float | None = None) -> str | None:
    hit = _mdns_cache.get(name.lower())
    if hit is None:
        return None
    if hit[1] <= (time.monotonic() if now is None else now):
        _mdns_cache.pop(name.lower(), None)
        return None
    return hit[0]


def mdns_cache_put(name: str, address: str, now: float | None = None) -> None:
    if len(_mdns_cache) >= MDNS_CACHE_MAX:  # oldest entry out (dicts keep insertion order)
        _mdns_cache.pop(next(iter(_mdns_cache)))
    _mdns_cache[name.lower()] = (address, (time.monotonic() if now is None else now) + MDNS_CACHE_TTL_S)


def _mdns_query_interfaces() -> list[str]:
    """IPv4 addresses to send queries from besides the default multicast interface."""
    return [a for a in (_ice_addresses or []) if ":" not in a and not a.startswith("127.")]


def _send_mdns_query(protocol: Any, name: str) -> None:
    """The query aioice sends (QU bit clear, id 0), once more on every ICE interface."""
    import dns.message
    import dns.name
    import dns.rdatatype

    message = dns.message.make_query(dns.name.from_text(name), rdtype=dns.rdatatype.A)
    message.id = 0
    message.flags = 0
    wire = message.to_wire()
    group = socket.inet_aton(aioice.mdns.MDNS_ADDRESS)
    member = protocol.transport.get_extra_info("socket")  # aioice's socket: receives the answers
    for address in _mdns_query_interfaces():
        iface = socket.inet_aton(address)
        try:
            member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + iface)
        except OSError:
            pass  # already a member there (or no multicast on it: the send below says)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                out.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
                out.sendto(wire, (aioice.mdns.MDNS_ADDRESS, aioice.mdns.MDNS_PORT))
            ICE_STATS.mdns_queries += 1
        except OSError as exc:
            log.debug("mDNS query for %s on %s not sent: %s", name, address, exc)


async def _mdns_lookup(name: str, attempts: tuple[float, ...]) -> str | None:
    owner = object()  # keeps aioice's shared mDNS socket open while we use it
    try:
        protocol = await aioice.ice.get_or_create_mdns_protocol(owner)
        for timeout in attempts:
            if protocol.transport.is_closing():
                return None
            _send_mdns_query(protocol, name)
            ICE_STATS.mdns_queries += 1  # the one aioice's resolve sends on the default interface
            address = await protocol.resolve(name, timeout=timeout)
            if address is not None:
                mdns_cache_put(name, address)
                ICE_STATS.mdns_resolved += 1
                return str(address)
        ICE_STATS.mdns_unresolved += 1
        STATS.ice_mdns_unresolved += 1
        log.info("ICE: %s did not resolve in %.2f s; waiting for the peer's own checks "
                 "(peer-reflexive candidate)", name, sum(attempts))
        return None
    except OSError as exc:  # no multicast on this host: the peer-reflexive path remains
        log.info("mDNS lookup of %s failed: %s", name, exc)
        ICE_STATS.mdns_unresolved += 1
        STATS.ice_mdns_unresolved += 1
        return None
    finally:
        await aioice.ice.unref_mdns_protocol(owner)


async def resolve_mdns(name: str, attempts: tuple[float, ...] | None = None) -> str | None:
    """The address of ``name`` (``<x>.local``): from the cache, or one shared lookup with
    retries; ``None`` when nobody answered within the budget."""
    import asyncio

    cached = mdns_cache_get(name)
    if cached is not None:
        ICE_STATS.mdns_cache_hits += 1
        return cached
    key = name.lower()
    task = _mdns_lookups.get(key)
    if task is None or task.get_loop() is not asyncio.get_running_loop():  # (a closed loop's task)
        if len(_mdns_lookups) >= MDNS_MAX_LOOKUPS:  # no more multicast: peer-reflexive remains
            ICE_STATS.mdns_unresolved += 1
            STATS.ice_mdns_unresolved += 1
            log.warning("ICE: %d mDNS lookups running; %s not looked up", len(_mdns_lookups), name)
            return None
        task = asyncio.ensure_future(_mdns_lookup(name, MDNS_ATTEMPTS_S if attempts is None else attempts))
        _mdns_lookups[key] = task
        task.add_done_callback(lambda _t: _mdns_lookups.pop(key, None))
    result: str | None = await asyncio.shield(task)
    return result


def robust_mdns_ice() -> None:
    """Install the behaviour described above on aioice's ``Connection`` (idempotent)."""
    import asyncio
    import copy

    global _mdns_installed
    if _mdns_installed:
        return
    _mdns_installed = True
    conn_cls = aioice.ice.Connection
    original_add = conn_cls.add_remote_candidate
    original_incoming = conn_cls.check_incoming
    original_connect = conn_cls.connect
    original_expected = conn_cls._remote_candidates_expected
    original_periodic = conn_cls._check_periodic

    async def add_remote_candidate(self: Any, remote_candidate: Any) -> None:
        if (remote_candidate is None or self._closing
                or not aioice.mdns.is_mdns_hostname(remote_candidate.host)
                or self._transport_policy == aioice.ice.TransportPolicy.RELAY
                or self._remote_candidates_end):
            await original_add(self, remote_candidate)  # aioice's own path (and its errors)
            return
        ICE_STATS.mdns_candidates += 1
        candidate = copy.copy(remote_candidate)
        cached = mdns_cache_get(candidate.host)
        if cached is not None:
            ICE_STATS.mdns_cache_hits += 1
            self._add_remote_candidate(candidate, cached)
            return
        self._remote_candidates_resolving += 1

        async def resolve_then_pair() -> None:
            try:
                address = await resolve_mdns(candidate.host)
                if address is not None and not self._closing:
                    self._add_remote_candidate(candidate, address)
            except Exception:  # never an unhandled task error; the candidate is just lost
                log.exception("ICE: resolving %s failed", candidate.host)
            finally:
                self._remote_candidates_resolving -= 1
                if self._remote_candidates_end and not self._remote_candidates_resolving \
                        and not self._closing:
                    self._end_remote_candidates()

        task = asyncio.ensure_future(resolve_then_pair())
        _mdns_tasks.add(task)
        task.add_done_callback(_mdns_tasks.discard)

    def check_incoming(self: Any, message: Any, addr: tuple[str, int], protocol: Any) -> None:
        before = len(self._remote_candidates)
        original_incoming(self, message, addr, protocol)
        if len(self._remote_candidates) > before:
            ICE_STATS.prflx_learned += 1
            STATS.ice_prflx_learned += 1

    async def connect(self: Any) -> None:
        self._classroom_prflx_until = time.monotonic() + PRFLX_GRACE_S
        await original_connect(self)

    def remote_candidates_expected(self: Any) -> bool:
        if original_expected(self):
            return True
        until = getattr(self, "_classroom_prflx_until", None)
        return until is not None and not self._nominated and time.monotonic() < until

    def check_periodic(self: Any) -> bool:
        more = original_periodic(self)
        if not more and not self._check_list_done:
            self._check_list_maybe_fail()  # the grace is over: fail now if nothing is left
        return bool(more)

    for name in ("add_remote_candidate", "check_incoming", "connect", "_remote_candidates_expected",
                 "_check_periodic"):
        _aioice_originals[name] = getattr(conn_cls, name)
    conn_cls.add_remote_candidate = add_remote_candidate  # type: ignore[method-assign]
    conn_cls.check_incoming = check_incoming  # type: ignore[method-assign]
    conn_cls.connect = connect  # type: ignore[method-assign]
    conn_cls._remote_candidates_expected = remote_candidates_expected  # type: ignore[method-assign]
    conn_cls._check_periodic = check_periodic  # type: ignore[method-assign]
