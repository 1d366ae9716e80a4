"""A classroom's two peer connections to the SFU.

* :class:`PublisherPeer`: the client offers ``sendonly`` tracks; we answer and turn every
  m-line into an :class:`UpTrack` fed by decrypted RTP straight from the DTLS transport.
* :class:`SubscriberPeer`: we offer ``sendonly`` m-lines, one per track the classroom should
  receive, and feed each from an UpTrack through a :class:`DownTrack`. When what it should
  receive changes, free m-lines of the same kind and codec are reused (no renegotiation);
  only when none is free do we add one and send a new offer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from sfu import glue, rtcp
from sfu.bwe.arrival import ArrivalConfig, ArrivalEstimator
from sfu.bwe.estimator import EstimatorConfig, LinkEstimator
from sfu.downtrack import ABS_SEND_TIME_URI, DownTrack
from sfu.glue import Negotiated, RawTransport
from sfu.link import Link, LinkConfig, Lost
from sfu.paced import PacedSender
from sfu.rtp import RtpError, find_extension, parse_header
from sfu.stats import LOOP_LAG, STATS
from sfu.uptrack import AUDIO_LEVEL_URI, PROXIED_LOSS_S, UpTrack

log = logging.getLogger(__name__)

VIDEO_CODECS = ["video/VP8", "video/H264"]
AUDIO_CODECS = ["audio/opus"]


class SdpError(ValueError):
    pass


def check_mids(sdp: str, offered: list[str] | None = None) -> None:
    """Refuse SDP whose m-lines lack a unique ``a=mid`` or whose BUNDLE group names a mid no
    m-line has: aiortc takes the group's first mid as every bundled transceiver's transport, so
    such SDP left transceivers without one (AttributeError in aiortc's connect task and in
    ``close()``; found by tests/fuzz/sfu/test_peer.py). An answer must carry the ``offered`` mids."""
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise SdpError(f"not valid SDP: {exc}") from exc
    mids = [m.rtp.muxId for m in parsed.media if m.kind in ("audio", "video", "application")]  # what aiortc uses
    if any(not mid for mid in mids) or len(set(mids)) != len(mids):
        raise SdpError("every m-line needs an a=mid of its own")
    if offered is not None and mids != offered:
        raise SdpError(f"the answer's m-lines (mids {mids[:20]}) are not the offer's ({offered[:20]})")
    for group in parsed.group:
        if group.semantic == "BUNDLE" and any(item not in mids for item in group.items):
            raise SdpError("the BUNDLE group names a mid that no m-line has")


@dataclass
class PeerSettings:
    cache_size: int = 1024
    keyframe_interval_s: float = 1.0
    ice_servers: tuple[str, ...] = ()
    link: LinkConfig = field(default_factory=LinkConfig)
    red: bool = True  # pass RED (audio/red) through where publisher and subscriber both take it
    pacing: bool = False  # pace a constrained subscriber connection's video (sfu/paced.py); off: see config
    # pace it at the line's rate while a queue stands in front of it (Link.line_pace_bps)
    queue_pacing: bool = True
    twcc: bool = True  # offer subscribers transport-cc: a send-side estimate (sfu/bwe/twcc.py) instead of REMB
    # offer subscribers rtcp-fb rrtr and answer their XR reference times (DLRR): a browser that only
    # receives then knows its round-trip time and asks again for a lost repair after it, not 100 ms
    rrtr: bool = True
    # offer subscribers a=setup:active: the SFU is the DTLS client of its subscribe connections, as of
    # its publish ones (glue.offer_as_dtls_client: a browser's ClientHellos no longer queue up on a
    # busy node). False: a=setup:actpass, the browser is the client, as before
    subscriber_dtls_client: bool = True
    # the node's shared media port (media.udp_port; a glue.UdpMux): every connection's host candidates on
    # it. None: a socket of its own per connection (media.udp_mux: false, and clients in tests)
    udp_mux: Any = None


def _new_pc(settings: PeerSettings) -> RTCPeerConnection:
    servers = [RTCIceServer(urls=u) for u in settings.ice_servers]
    # the enum, not the string "max-bundle": aiortc compares with the enum, and a string silently
    # gave a transport (and an ICE connection) per transceiver until the answer's BUNDLE closed all
    # but one; on the one media port a peer's early checks then reached a transport about to close
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    glue.quiet_connect_after_close(pc)
    return pc


# Remote ICE candidates accepted per peer connection (trickled, one `ice` message each): aioice
# pairs every one with every local candidate and re-sorts its check list, so an endless stream
# of them costs more and more of the event loop. A browser sends a handful.
MAX_REMOTE_CANDIDATES = 64
_candidates: weakref.WeakKeyDictionary[RTCPeerConnection, int] = weakref.WeakKeyDictionary()


async def _add_candidate(pc: RTCPeerConnection, candidate: dict[str, Any] | None) -> None:
    if candidate is None or not candidate.get("candidate"):
        return  # end of candidates: aiortc needs nothing
    count = _candidates.get(pc, 0) + 1
    if count > MAX_REMOTE_CANDIDATES:
        raise SdpError(f"too many ICE candidates: at most {MAX_REMOTE_CANDIDATES} per connection")
    _candidates[pc] = count
    text = str(candidate["candidate"])
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        c = candidate_from_sdp(text)
    except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on short lines
        raise SdpError(f"malformed ICE candidate: {text[:80]!r}") from exc
    c.sdpMid = candidate.get("sdpMid")
    c.sdpMLineIndex = candidate.get("sdpMLineIndex")
    if c.sdpMid is None and c.sdpMLineIndex is None:
        c.sdpMLineIndex = 0
    await pc.addIceCandidate(c)


def _restart_ice(pc: RTCPeerConnection, ufrag: str, pwd: str) -> glue.IceRestart:
    restart = glue.restart_ice(pc, ufrag, pwd)
    _candidates[pc] = 0  # the new generation of remote candidates starts its own count
    return restart


class PublisherPeer:
    def __init__(
        self,
        participant_id: str,
        classroom_id: str,
        settings: PeerSettings,
        on_track: Callable[[UpTrack], None],
    ) -> None:
        self.participant_id = participant_id
        self.classroom_id = classroom_id
        self.settings = settings
        self.on_track = on_track
        self.pc = _new_pc(settings)
        self.transport: RawTransport | None = None
        self.tracks: dict[str, UpTrack] = {}  # mid -> track
        self._by_ssrc: dict[int, UpTrack] = {}
        self._by_pt: dict[int, list[UpTrack]] = {}
        self._sources: dict[str, str] = {}
        self._simulcast: dict[str, glue.SimulcastOffer] = {}  # mid -> offered layers
        self._layers: dict[tuple[str, str], UpTrack] = {}  # (mid, rid) -> layer
        self._red: dict[str, tuple[int, int]] = {}  # audio mid -> (RED pt, Opus pt) offered
        self._rtx: dict[str, glue.RtxOffer] = {}  # video mid -> its retransmission streams
        self._rtx_by_ssrc: dict[int, UpTrack] = {}  # RTX SSRC -> the layer it repairs
        self.uplink: LinkEstimator | None = None  # the loss-based half of the REMB we send
        # the delay-based half: the uplink's queue, from abs-send-time (sfu/bwe/arrival.py)
        self.arrival = ArrivalEstimator(ArrivalConfig(max_bps=2_500_000))
        self.closed = False

    async def answer(self, offer_sdp: str, sources: dict[str, str], dtls_server: bool = False) -> str:
        """``dtls_server``: answer ``a=setup:passive`` to an ``actpass`` offer (WHIP: clients
        with an RSA certificate need aiortc to be the DTLS server; ``glue.answer_as_dtls_server``)."""
        self._sources.update(sources)
        self._simulcast = glue.simulcast_offer(offer_sdp)
        self._rtx.update(glue.rtx_offer(offer_sdp))
        if self.settings.red:
            self._red.update(glue.red_offer(offer_sdp))
        check_mids(offer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SdpError(f"the offer could not be applied: {exc}") from exc
        for t in self.pc.getTransceivers():
            t.direction = "recvonly"
            glue.prefer_codecs(t, VIDEO_CODECS if t.kind == "video" else AUDIO_CODECS)
        glue.receive_raw(self.pc, self._on_stream, self._on_rtp, self._on_rtcp)
        if dtls_server:
            glue.answer_as_dtls_server(self.pc)
        answer = await self.pc.createAnswer()
        glue.use_media_port(self.pc, self.settings.udp_mux)
        await self.pc.setLocalDescription(answer)
        glue.guard_datagrams(self.pc)
        if self.transport is None:
            self.transport = glue.raw_transport(self.pc)
        sdp = glue.simulcast_answer(str(self.pc.localDescription.sdp), self._simulcast)
        return glue.opus_fec_answer(glue.red_answer(sdp, self._red))

    def restart_ice(self, ufrag: str, pwd: str) -> glue.IceRestart:
        """ICE restart with the publisher's new credentials (WHIP PATCH); ValueError if it cannot."""
        return _restart_ice(self.pc, ufrag, pwd)

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        await _add_candidate(self.pc, candidate)

    def _send_rtcp(self, packet: bytes) -> bool:
        return self.transport is not None and self.transport.send_rtcp(packet)

    def _on_stream(self, neg: Negotiated) -> None:
        if self.closed or neg.mid in self.tracks or not neg.codecs:
            return
        sim = self._simulcast.get(neg.mid)
        rids = sim.rids if sim is not None else ("",)
        layers = []
        for index, rid in enumerate(rids):  # the offer lists the layers lowest first
            top = index == len(rids) - 1
            track = self._new_track(neg, neg.ssrcs[0] if neg.ssrcs and not sim else 0,
                                    f"{self.participant_id}:{neg.mid}" + ("" if top else f":{rid}"))
            track.rid, track.layer = rid, index
            layers.append(track)
            if sim is not None:
                self._layers[(neg.mid, rid)] = track
        group = tuple(layers)
        for track in group:
            track.layers = group
            track.group = group[-1]
        top_track = group[-1]
        self.tracks[neg.mid] = top_track
        red = self._red.get(neg.mid)
        if neg.kind == "audio" and red is not None and red[1] == neg.codecs[0].payload_type:
            top_track.red_pt = red[0]  # the browser sends RED over this Opus (sfu/red.py)
            self._by_pt.setdefault(red[0], []).append(top_track)
        if sim is None:
            for s in neg.ssrcs:
                self._by_ssrc[s] = top_track
            for c in neg.codecs:
                self._by_pt.setdefault(c.payload_type, []).append(top_track)
        self.on_track(top_track)

    def _new_track(self, neg: Negotiated, ssrc: int, track_id: str) -> UpTrack:
        codec = neg.codecs[0]
        track = UpTrack(
            track_id=track_id,
            kind=neg.kind,
            source=self._sources.get(neg.mid, "teacher"),  # the session labels every offered mid
            codec=codec,
            ssrc=ssrc,
            publisher_id=self.participant_id,
            classroom_id=self.classroom_id,
            send_rtcp=self._send_rtcp,
            rtcp_ssrc=neg.rtcp_ssrc,
            audio_level_ext=neg.extensions.get(AUDIO_LEVEL_URI, 0),
            abs_send_time_ext=neg.extensions.get(ABS_SEND_TIME_URI, 0) if neg.kind == "video" else 0,
            cache_size=self.settings.cache_size,
            keyframe_interval_s=self.settings.keyframe_interval_s,
        )
        track.on_arrival = self._on_arrival
        return track

    def _on_arrival(self, abs_send_time: int, arrival_ms: int, size: int) -> None:
        """Every video packet's abs-send-time (from each UpTrack): a queue building up on the
        publisher's uplink sends a lower REMB at once, not with the next report."""
        self.arrival.on_packet(abs_send_time, arrival_ms, size)
        if self.arrival.update(arrival_ms, LOOP_LAG.busy(arrival_ms / 1000.0)):
            log.info("publisher %s: uplink queue %.0f ms, REMB down to %.0f kbit/s (arriving %.0f)",
                     self.participant_id, self.arrival.queue_ms, self.arrival.estimate_bps / 1000,
                     self.arrival.incoming_bps(arrival_ms) / 1000)
            self._send_remb(time.monotonic())

    def remb_estimate(self, now: float) -> float:
        """What we tell the publisher it may send: the smaller of the delay- and loss-based
        estimates."""
        bps = self.arrival.estimate_bps
        if self.uplink is not None:
            bps = min(bps, self.uplink.estimate(now))
        return bps

    def _send_remb(self, now: float) -> None:
        video = [t for t in self.all_tracks() if t.is_video and t.ssrc]
        if not video or self.transport is None:
            return
        rtcp_ssrc = video[0]._rtcp_ssrc
        if self.transport.send_rtcp(rtcp.build_remb(rtcp_ssrc, int(self.remb_estimate(now)), [t.ssrc for t in video])):
            STATS.remb_sent += 1

    def all_tracks(self) -> list[UpTrack]:
        """Every UpTrack of this publisher, each simulcast layer on its own."""
        return [layer for t in self.tracks.values() for layer in t.layers]

    def _adopt_layer(self, data: bytes, ssrc: int) -> UpTrack | None:
        """A simulcast layer's first packets carry its RID (and MID) header extension."""
        try:
            h = parse_header(data)
        except RtpError:
            return None
        for mid, sim in self._simulcast.items():
            if sim.mid_ext and len(self._simulcast) > 1:
                value = find_extension(data, h, sim.mid_ext)
                if value is None or str(value, "ascii", "replace") != mid:
                    continue
            rid = find_extension(data, h, sim.rid_ext)
            if rid is None:
                continue
            track = self._layers.get((mid, str(rid, "ascii", "replace")))
            if track is not None and not track.ssrc:
                track.ssrc = ssrc
                self._by_ssrc[ssrc] = track
                return track
        return None

    def _adopt_rtx(self, data: bytes, ssrc: int) -> UpTrack | None:
        """A retransmission stream's first packet: which layer does it repair? The offer's
        ``a=ssrc-group:FID`` says so for a single-layer track; a simulcast layer's RTX packets
        carry its RID as the repaired-rtp-stream-id extension."""
        pt = data[1] & 0x7F
        for mid, rtx in self._rtx.items():
            if pt not in rtx.apt:
                continue
            media = rtx.ssrcs.get(ssrc)
            if media is not None and media in self._by_ssrc:
                track = self._by_ssrc[media]
            else:
                sim = self._simulcast.get(mid)
                if sim is None or not sim.rrid_ext:
                    continue
                try:
                    h = parse_header(data)
                except RtpError:
                    return None
                if sim.mid_ext and len(self._simulcast) > 1:
                    value = find_extension(data, h, sim.mid_ext)
                    if value is None or str(value, "ascii", "replace") != mid:
                        continue
                rrid = find_extension(data, h, sim.rrid_ext)
                found = self._layers.get((mid, str(rrid, "ascii", "replace"))) if rrid is not None else None
                if found is None:
                    continue
                track = found
            if len(self._rtx_by_ssrc) < 64:
                self._rtx_by_ssrc[ssrc] = track
            return track
        return None

    def _on_rtx(self, track: UpTrack, data: bytes, arrival_ms: int) -> None:
        """An RFC 4588 retransmission: the original packet again, its sequence number in the
        payload's first two bytes. Rebuilt as it first was and handed to its layer (a header
        rewrite; the media is untouched). A padding-only RTX packet (a bandwidth probe) still
        tells the uplink estimate when it was sent."""
        try:
            h = parse_header(data)
        except RtpError:
            STATS.rtp_errors += 1
            return
        rtx = self._rtx.get(next((m for m, t in self.tracks.items() if track in t.layers), ""))
        apt = rtx.apt.get(h.payload_type) if rtx is not None else None
        if h.payload_end - h.payload_offset < 2 or apt is None or not track.ssrc:
            track.note_arrival(data, arrival_ms)  # padding: only its abs-send-time counts
            return
        STATS.rtx_packets_in += 1
        osn = data[h.payload_offset:h.payload_offset + 2]
        if track.cache is not None and track.cache.get(int.from_bytes(osn, "big")) is not None:
            # a copy of a packet we have: the browser's bandwidth probe ("redundant payload"
            # padding), not a repair; forwarding it would spend every subscriber's bandwidth
            STATS.rtx_redundant += 1
            track.note_arrival(data, arrival_ms)
            return
        rebuilt = b"".join((
            bytes(((data[0] & 0xDF), (0x80 if h.marker else 0) | apt)), osn, data[4:8],
            track.ssrc.to_bytes(4, "big"), data[12:h.payload_offset], data[h.payload_offset + 2:h.payload_end],
        ))
        track.on_rtp(rebuilt, arrival_ms)

    # Hot path: one decrypted packet from the publisher.
    def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        if len(data) < 12:
            STATS.rtp_errors += 1
            return
        ssrc = int.from_bytes(data[8:12], "big")
        track = self._by_ssrc.get(ssrc)
        if track is None:
            repaired = self._rtx_by_ssrc.get(ssrc)
            if repaired is None and self._rtx:
                repaired = self._adopt_rtx(data, ssrc)
            if repaired is not None:
                self._on_rtx(repaired, data, arrival_ms)
                return
        if track is None and self._simulcast:
            track = self._adopt_layer(data, ssrc)
        if track is None:
            # An SSRC the SDP did not announce: adopt it only for a track that has none yet
            # and whose payload type is unambiguous; anything else is counted and dropped.
            free = [t for t in self._by_pt.get(data[1] & 0x7F, ()) if not t.ssrc]
            if len(free) != 1:
                STATS.rtp_errors += 1
                return
            track = free[0]
            track.ssrc = ssrc
            self._by_ssrc[ssrc] = track
        track.on_rtp(data, arrival_ms)

    def _on_rtcp(self, data: bytes) -> None:
        try:
            for record in rtcp.parse(data):
                if isinstance(record, rtcp.SenderReport):
                    track = self._by_ssrc.get(record.ssrc)
                    if track is not None:
                        track.on_sender_report(record)
        except rtcp.RtcpError:
            STATS.rtcp_errors += 1

    def send_reports(self, remb_bitrate: int) -> None:
        """Receiver reports and REMB toward the publisher (called about once a second).

        The REMB is this uplink's estimate (``remb_bitrate`` at most): the loss we see on the
        publisher's video shrinks it and a clean link lets it grow back, so a classroom
        publishing over a weak uplink is told to send less instead of a fixed figure."""
        if self.transport is None or not self.tracks:
            return
        tracks = self.all_tracks()
        blocks = [b for b in (t.report_block() for t in tracks) if b is not None]
        if not blocks:
            return
        now = time.monotonic()
        for t in tracks:
            t.measure(now)
        rtcp_ssrc = next(iter(self.tracks.values()))._rtcp_ssrc
        packet = rtcp.build_rr(rtcp_ssrc, blocks[:31])
        video = [t for t in tracks if t.is_video and t.ssrc]
        if video:
            if self.uplink is None:
                self.uplink = LinkEstimator(EstimatorConfig(initial_bps=remb_bitrate, max_bps=remb_bitrate))
                self.arrival.set_max(remb_bitrate)
            self.uplink.on_loss(max(t.upstream_loss for t in video), now)
            self.uplink.tick(now)
            packet += rtcp.build_remb(rtcp_ssrc, int(self.remb_estimate(now)), [t.ssrc for t in video])
            STATS.remb_sent += 1
        self.transport.send_rtcp(packet)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for track in self.tracks.values():
            track.close()
        if self.transport is not None:
            self.transport.close()
        await self.pc.close()


@dataclass
class Slot:
    """One m-line of a subscriber connection."""

    transceiver: Any
    kind: str
    mime: str
    up: UpTrack | None = None
    down: DownTrack | None = None


SendOffer = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
SendTracks = Callable[[list[dict[str, Any]]], Awaitable[None]]


class SubscriberPeer:
    def __init__(
        self,
        participant_id: str,
        settings: PeerSettings,
        send_offer: SendOffer,
        send_tracks: SendTracks,
        adaptive: bool = True,
    ) -> None:
        """``adaptive=False``: always the top layer, whatever the estimate (the recorder)."""
        self.participant_id = participant_id
        self.settings = settings
        self._send_offer = send_offer
        self._send_tracks = send_tracks
        self.pc: RTCPeerConnection | None = None
        self.transport: RawTransport | None = None
        self.slots: list[Slot] = []
        self._by_ssrc: dict[int, DownTrack] = {}
        self._lock = asyncio.Lock()
        self._awaiting_answer = False
        self._dirty = False
        self._wanted: list[UpTrack] = []
        self._red_pts: dict[str, int] = {}  # audio mid -> the RED payload type its answer took
        self._twcc_ids: dict[str, int] = {}  # video mid -> the transport-cc extension id its answer took
        self.pacer: PacedSender | None = None  # while the Link says this connection is constrained
        self.closed = False
        link = settings.link
        if not adaptive and link.adaptive:
            link = LinkConfig(link.estimator, link.selector, link.budget, adaptive=False)
        self.link = Link(link)
        self._evaluated_at = 0.0
        # A WHEP player offers its m-lines and we answer: the slots are fixed by its offer and
        # never grow (a track with no free slot of its kind and codec waits for one).
        self.fixed = False

    def track_map(self) -> list[dict[str, Any]]:
        out = []
        for s in self.slots:
            up = s.up
            out.append(
                {
                    "mid": s.transceiver.mid,
                    "kind": s.kind,
                    "track_id": up.track_id if up else None,
                    "source": up.source if up else None,
                    "classroom_id": up.classroom_id if up else None,
                    "participant_id": up.publisher_id if up else None,
                }
            )
        return out

    async def update(self, wanted: list[UpTrack]) -> None:
        """Make this subscriber receive exactly ``wanted`` (in order of preference)."""
        self._wanted = [u for u in wanted if not u.closed]
        if self.closed:
            return
        async with self._lock:
            if self._awaiting_answer:
                self._dirty = True
                return
            await self._apply()

    async def _apply(self) -> None:
        wanted = [u for u in self._wanted if not u.closed]
        changed = False
        # 1. free the slots whose track is no longer wanted
        for s in self.slots:
            if s.up is not None and s.up not in wanted:
                s.up = None
                if s.down is not None:
                    s.down.attach(None)
                changed = True
        assigned = {id(s.up) for s in self.slots if s.up is not None}
        need_offer = False
        # 2. give every wanted track a slot: a free one of the same kind/codec, else a new one
        for up in wanted:
            if id(up) in assigned:
                continue
            slot = next(
                (s for s in self.slots if s.up is None and s.kind == up.kind and s.mime == up.codec.mime),
                None,
            )
            if slot is None and self.fixed:
                continue  # no m-line for it in the player's offer (docs/whip-whep.md)
            if slot is None:
                if self.pc is None:
                    self.pc = _new_pc(self.settings)
                t = self.pc.addTransceiver(up.kind, direction="sendonly")
                glue.prefer_codecs(t, [up.codec.mime], _fmtp_match(up))
                slot = Slot(t, up.kind, up.codec.mime)
                self.slots.append(slot)
                need_offer = True
            slot.up = up
            if slot.down is not None:
                slot.down.attach(up)
            changed = True
        if need_offer and self.pc is not None:
            offer = await self.pc.createOffer()
            glue.use_media_port(self.pc, self.settings.udp_mux)
            await self.pc.setLocalDescription(offer)
            glue.guard_datagrams(self.pc)
            glue.send_raw(self.pc, self._on_stream, self._on_rtcp)
            if self.transport is None:
                self.transport = glue.raw_transport(self.pc)
            self._awaiting_answer = True
            sdp = str(self.pc.localDescription.sdp)
            if self.settings.red:
                sdp = glue.red_subscribe_offer(sdp)
            if self.settings.twcc:
                sdp = glue.twcc_subscribe_offer(sdp)
            if self.settings.rrtr:
                sdp = glue.rrtr_subscribe_offer(sdp)
            if self.settings.subscriber_dtls_client:
                sdp = glue.offer_as_dtls_client(self.pc, sdp)
            await self._send_offer(sdp, self.track_map())
        elif changed:
            await self._send_tracks(self.track_map())

    async def answer(self, offer_sdp: str, preferred: dict[str, str]) -> str:
        """Answer a client's ``recvonly`` offer (WHEP): one ``sendonly`` slot per audio/video
        m-line, each on the codec ``preferred[kind]`` if the offer has it (else what the offer
        and the SFU share). From then on :meth:`update` only reassigns these slots."""
        if self.pc is not None:
            raise SdpError("this player already has a connection")
        check_mids(offer_sdp)
        parsed = SessionDescription.parse(offer_sdp)
        kinds = [m.kind for m in parsed.media if m.kind in ("audio", "video")]
        if not kinds:
            raise SdpError("the offer has no audio or video m-line to receive")
        for m in parsed.media:
            if m.kind in ("audio", "video") and m.direction not in ("recvonly", "sendrecv"):
                raise SdpError(f"a WHEP offer's m-lines must be recvonly (mid {m.rtp.muxId} is {m.direction})")
        self.fixed = True
        self.pc = _new_pc(self.settings)
        offered = {m.kind: {c.mimeType.lower() for c in m.rtp.codecs} for m in parsed.media}
        for kind in kinds:
            t = self.pc.addTransceiver(kind, direction="sendonly")
            ours = VIDEO_CODECS if kind == "video" else AUDIO_CODECS
            first = preferred.get(kind, ours[0]).lower()
            order = [first] + [c for c in ours if c.lower() != first]
            glue.prefer_codecs(t, [c for c in order if c.lower() in offered.get(kind, set())] or ours)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            glue.answer_as_dtls_server(self.pc)  # a WHEP player with an RSA certificate (GStreamer)
            answer = await self.pc.createAnswer()
            glue.use_media_port(self.pc, self.settings.udp_mux)
            await self.pc.setLocalDescription(answer)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SdpError(f"the offer could not be applied: {exc}") from exc
        except Exception as exc:  # aiortc's OperationError: no codec in common
            raise SdpError(f"the offer could not be answered: {exc}") from exc
        glue.guard_datagrams(self.pc)
        glue.send_raw(self.pc, self._on_stream, self._on_rtcp)
        if self.transport is None:
            self.transport = glue.raw_transport(self.pc)
        sdp = str(self.pc.localDescription.sdp)
        mids = {m.rtp.muxId: m for m in SessionDescription.parse(sdp).media}
        for t in self.pc.getTransceivers():
            media = mids.get(str(t.mid))
            if media is None or not media.rtp.codecs:
                continue
            self.slots.append(Slot(t, t.kind, media.rtp.codecs[0].mimeType.lower()))
        async with self._lock:
            await self._apply()
        return sdp

    async def on_answer(self, sdp: str) -> None:
        async with self._lock:
            if self.pc is None or not self._awaiting_answer:
                raise SdpError("no subscribe offer is waiting for an answer")
            local = self.pc.localDescription
            check_mids(sdp, [m.rtp.muxId for m in SessionDescription.parse(local.sdp).media] if local else None)
            try:
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise SdpError(f"the answer could not be applied: {exc}") from exc
            self._awaiting_answer = False
            self._red_pts = glue.red_answered(sdp) if self.settings.red else {}
            self._twcc_ids = glue.twcc_answered(sdp) if self.settings.twcc else {}
            if self._twcc_ids and self.transport is not None:
                self.transport.egress.twcc_enable()
            for slot in self.slots:
                if slot.down is not None and slot.down.kind == "video":
                    slot.down.fwd.twcc_id = self._twcc_ids.get(slot.down.mid, 0)
            for slot in self.slots:
                down = slot.down
                if down is not None and down.kind == "audio":
                    down.red_pt = self._red_pts.get(down.mid, 0)
                    if down.src is not None:
                        down.src.down = down.src.down  # regroup: RED or the primary only
            if self._dirty:
                self._dirty = False
                await self._apply()

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        if self.pc is None:
            raise SdpError("no subscribe connection yet")
        await _add_candidate(self.pc, candidate)

    def restart_ice(self, ufrag: str, pwd: str) -> glue.IceRestart:
        """ICE restart with the player's new credentials (WHEP PATCH); ValueError if it cannot."""
        if self.pc is None:
            raise ValueError("no connection yet")
        return _restart_ice(self.pc, ufrag, pwd)

    def _on_stream(self, neg: Negotiated) -> None:
        if self.closed or self.transport is None or not neg.codecs:
            return
        slot = next((s for s in self.slots if s.transceiver.mid == neg.mid), None)
        if slot is None or slot.down is not None:
            return
        codec = neg.codecs[0]
        down = DownTrack(
            subscriber_id=self.participant_id,
            mid=neg.mid,
            kind=neg.kind,
            ssrc=neg.ssrcs[0],
            payload_type=codec.payload_type,
            clock_rate=codec.clock_rate,
            transport=self.transport,
        )
        down.link = self.link
        down.red_pt = self._red_pts.get(neg.mid, 0) if neg.kind == "audio" else 0
        down.fwd.abs_send_time_id = neg.extensions.get(ABS_SEND_TIME_URI, 0) if neg.kind == "video" else 0
        if neg.kind == "video" and self._twcc_ids.get(neg.mid):
            self.transport.egress.twcc_enable()
            down.fwd.twcc_id = self._twcc_ids[neg.mid]
        slot.down = down
        self._by_ssrc[down.ssrc] = down
        down.attach(slot.up, self._start_layer(slot.up))

    def _on_rtcp(self, data: bytes) -> None:
        received = time.monotonic()
        try:
            for record in rtcp.parse(data):
                if isinstance(record, rtcp.Nack):
                    down = self._by_ssrc.get(record.media_ssrc)
                    if down is not None:
                        down.on_nack(record.seqs)
                        self.link.on_nack(record.media_ssrc, record.seqs)
                        self._evaluate(soon=True)
                elif isinstance(record, rtcp.KeyframeRequest):
                    down = self._by_ssrc.get(record.media_ssrc)
                    if down is not None:
                        down.on_keyframe_request()
                elif isinstance(record, rtcp.Remb):
                    if not self._twcc_ids:  # with transport-cc our own estimate stands in for it
                        self.link.on_remb(record.bitrate, self.downtracks(), time.monotonic())
                        self._evaluate(soon=True)
                elif isinstance(record, rtcp.TransportFeedback):
                    if self._twcc_ids and self.transport is not None:
                        now = time.monotonic()
                        lost = self.link.on_twcc(record, self.transport.egress, self.downtracks(), now)
                        if lost:
                            self._repair_lost(lost, now)
                        self._evaluate(soon=True)
                elif isinstance(record, rtcp.ReferenceTime):
                    self._answer_reference_time(record, received)
                elif isinstance(record, rtcp.ReceiverReport | rtcp.SenderReport) and record.blocks:
                    downs = self.downtracks()
                    video = {d.ssrc for d in downs if d.kind == "video"}
                    for b in record.blocks:
                        down = self._by_ssrc.get(b.ssrc)
                        if down is not None and down.kind == "audio" and down.src is not None:
                            src = down.src
                            fresh = time.monotonic() - src.proxied_at <= PROXIED_LOSS_S
                            src.proxied_loss = max(src.proxied_loss if fresh else 0, b.fraction_lost)
                            src.proxied_at = time.monotonic()
                    self.link.on_report(record.blocks, video, time.monotonic())
                    self._evaluate(soon=True)
        except rtcp.RtcpError:
            STATS.rtcp_errors += 1

    def _answer_reference_time(self, record: rtcp.ReferenceTime, received: float) -> None:
        """Answer a receiver reference time at once with a DLRR (RFC 3611): the delay since it
        arrived is what this process took, in 1/65536 s."""
        if not self.settings.rrtr or self.transport is None:
            return
        sender = next((d.ssrc for d in self.downtracks() if d.kind == "video"), None)
        if sender is None:
            return
        delay = int((time.monotonic() - received) * 65536)
        if self.transport.send_rtcp(rtcp.build_xr_dlrr(sender, [(record.ssrc, rtcp.ntp_middle(record.ntp), delay)])):
            STATS.rtcp_dlrr_sent += 1

    def _repair_lost(self, lost: list[Lost], now: float) -> None:
        """What the transport-cc feedback says was lost, to each stream's DownTrack."""
        by_stream: dict[int, list[tuple[int, float]]] = {}
        for ssrc, seq, sent_at in lost:
            by_stream.setdefault(ssrc, []).append((seq, sent_at))
        for ssrc, packets in by_stream.items():
            down = self._by_ssrc.get(ssrc)
            if down is not None:
                down.on_lost(packets, now)

    def _start_layer(self, up: UpTrack | None) -> int | None:
        """The layer a new DownTrack starts on: what the estimate affords now."""
        if up is None or not up.simulcast:
            return None
        if not self.link.config.adaptive:
            return self.link.top_live_layer(up, int(time.monotonic() * 1000))
        self._evaluate()
        layer = self.link.selector.layer(next((s.transceiver.mid for s in self.slots if s.up is up), ""))
        if layer is None:
            # nothing chosen for this m-line yet: the best layer being sent, not the top one, which
            # a publisher that has just connected (its estimate ramping up: a lesson that moved to
            # this node) or a loaded one (CPU adaptation) may not send yet; the next evaluation
            # fits it to the estimate
            return self.link.top_live_layer(up, int(time.monotonic() * 1000))
        return None if layer < 0 else layer

    def _evaluate(self, soon: bool = False) -> None:
        """Re-choose layers (on feedback at most every 100 ms, and on the RTCP tick)."""
        now = time.monotonic()
        if soon and now - self._evaluated_at < 0.1:
            return
        self._evaluated_at = now
        downs = self.downtracks()
        self.link.evaluate(downs, now, int(now * 1000))
        self._pace(downs)

    def _pace(self, downs: list[DownTrack]) -> None:
        """Pace this connection's video while its Link says it is constrained."""
        rate = self.link.pace_bps if self.settings.pacing else 0.0
        line = self.link.line_pace_bps if self.settings.queue_pacing else 0.0
        if (rate > 0 or line > 0) and self.transport is not None:
            if self.pacer is None:
                self.pacer = PacedSender(self.transport)
                log.info("subscriber %s: pacing video at %.0f kbit/s%s", self.participant_id,
                         (line or rate * self.pacer.pacer.config.factor) / 1000,
                         " (the line's rate: a queue stands)" if line else "")
            if line > 0:
                self.pacer.set_rate(line)
            else:
                self.pacer.set_estimate(rate)
            for d in downs:
                if d.kind == "video":
                    d.pace(self.pacer)
        elif self.pacer is not None:
            for d in downs:
                d.pace(None)
            self.pacer.stop()
            self.pacer = None
            log.info("subscriber %s: pacing off", self.participant_id)

    def send_reports(self, ntp: int, now_ms: int) -> None:
        if self.transport is None:
            return
        self.transport.revalidate()  # once a second: the C fan-out loop does not look
        packet = b"".join(
            sr for sr in (s.down.sender_report(ntp, now_ms) for s in self.slots if s.down) if sr
        )
        if packet and self.transport.send_rtcp(packet):
            STATS.rtcp_sr_sent += 1
            self.link.sender_report_sent(ntp, time.monotonic())
        self._evaluate()

    def downtracks(self) -> list[DownTrack]:
        return [s.down for s in self.slots if s.down is not None]

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.pacer is not None:
            self.pacer.close()
        for s in self.slots:
            if s.down is not None:
                s.down.close()
        if self.transport is not None:
            self.transport.close()
        if self.pc is not None:
            await self.pc.close()


def _fmtp_match(up: UpTrack) -> dict[str, Any] | None:
    if up.codec.mime == "video/h264":
        keys = ("packetization-mode", "profile-level-id")
        return {k: up.codec.parameters[k] for k in keys if k in up.codec.parameters} or None
    return None
