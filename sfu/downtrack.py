"""DownTrack: one UpTrack as one subscriber receives it.

Its own SSRC and payload type (what the subscriber negotiated), a :class:`Forwarder` for the
sequence/timestamp rewrite, the subscriber's bundled SRTP transport, and its RTCP duties:
NACK from the subscriber → retransmit from the UpTrack's cache; PLI/FIR → throttled keyframe
request upstream; a sender report per second so the subscriber can sync audio and video.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sfu import rtcp, vp8
from sfu.forwarder import Forwarder
from sfu.glue import RawTransport
from sfu.rtp import RtpError, parse_header
from sfu.stats import STATS
from sfu.uptrack import SWITCH_REPLAY_MAX_AGE_MS, SWITCH_REPLAY_MAX_BYTES

if TYPE_CHECKING:
    from sfu.link import Link
    from sfu.paced import PacedSender
    from sfu.uptrack import UpTrack

log = logging.getLogger(__name__)
_HEADER = struct.Struct("!BBHII")
_HEADER_PACK = _HEADER.pack
# the same header with one-byte extension elements (RFC 8285): abs-send-time (3 bytes) and/or
# transport-cc (2 bytes and a padding byte)
_HEADER_AST_PACK = struct.Struct("!BBHIIHHB").pack
_HEADER_EXT_PACK = struct.Struct("!BBHIIHH").pack
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
TWCC_URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


def rtp_header(b0: int, b1: int, seq: int, ts: int, ssrc: int, abs_send_time_id: int, ms: int,
               twcc_id: int = 0, twcc_seq: int = 0) -> bytes:
    """A subscriber's RTP header, with abs-send-time (sent at ``ms``) when it negotiated it: the
    receiver's delay-based estimate (its REMB) then measures the path from the SFU alone, not
    the publisher's encoder and uplink too; and with the transport-wide sequence number
    ``twcc_seq`` when it negotiated transport-cc (``twcc_id``). ``sfu/_fanout.c`` writes the
    same bytes."""
    if not twcc_id:
        if not abs_send_time_id:
            return _HEADER_PACK(b0, b1, seq, ts, ssrc)
        ast = ((ms << 18) // 1000) & 0xFFFFFF
        return _HEADER_AST_PACK(b0 | 0x10, b1, seq, ts, ssrc, 0xBEDE, 1, (abs_send_time_id << 4) | 2) + (
            ast.to_bytes(3, "big")
        )
    tw = bytes(((twcc_id << 4) | 1, twcc_seq >> 8 & 0xFF, twcc_seq & 0xFF, 0))
    if not abs_send_time_id:
        return _HEADER_EXT_PACK(b0 | 0x10, b1, seq, ts, ssrc, 0xBEDE, 1) + tw
    ast = ((ms << 18) // 1000) & 0xFFFFFF
    return _HEADER_EXT_PACK(b0 | 0x10, b1, seq, ts, ssrc, 0xBEDE, 2) + bytes(((abs_send_time_id << 4) | 2,)) + (
        ast.to_bytes(3, "big")) + tw


def restamp(header: bytes, size: int, take: Callable[[int, int, int], int], ms: int) -> bytes:
    """``header`` (from :func:`rtp_header`) as sent now: a new abs-send-time and, if it has one,
    a transport-wide sequence number taken now (``take(size, ssrc, seq)``): the pacer sends what
    it queued earlier, and the receiver's estimate must not take our own queue for the line's."""
    if not header[0] & 0x10 or len(header) < 20:
        return header
    out = bytearray(header)
    pos = 16
    while pos + 1 < len(out):
        b = out[pos]
        if b == 0:
            pos += 1
            continue
        length = (b & 0x0F) + 1
        if length == 3:
            out[pos + 1:pos + 4] = (((ms << 18) // 1000) & 0xFFFFFF).to_bytes(3, "big")
        elif length == 2:
            ssrc, seq = int.from_bytes(header[8:12], "big"), int.from_bytes(header[2:4], "big")
            out[pos + 1:pos + 3] = take(size, ssrc, seq).to_bytes(2, "big")
        pos += 1 + length
    return bytes(out)


def now_ms() -> int:
    return int(time.monotonic() * 1000)

# A padding-only probe packet: 255 bytes of padding, the last one saying how many (RFC 3550 5.1).
PADDING = bytes(254) + b"\xff"
PADDING_PACKET_BYTES = 12 + len(PADDING)
PROBE_BURST_BYTES = 24 * PADDING_PACKET_BYTES  # at most this much padding at once
# A probe's padding goes right after a frame and again this long after it if no media was sent
# in between (still between two frames): 24 packets only once a frame were ~1 Mbit/s at 20 fps,
# too little to confirm `f` from `h` (the step case's top layer never came back), and one burst
# twice as big overflowed a capped line's queue (the 60 % cap scenario: 5 % of packets dropped).
PROBE_MID_S = 0.025
# A subscriber whose socket buffer holds more than this is congested: video is dropped until
# the next keyframe (audio is never dropped for it).
CONGESTED_BYTES = 512 * 1024
# A NACK for a packet repaired this recently because the transport-cc feedback reported it lost
# (``LinkConfig.feedback_repairs``) crossed that repair on the wire: not answered twice. A browser
# asks again only 100 ms after its NACK, and a lost repair shows in the next feedback anyway.
NACK_CROSSED_S = 0.08
# A NACK for a packet repaired less than this long ago (or this share of the link's round trip,
# if more) crossed that repair on the wire and is not answered again.
NACK_AGAIN_MIN_S = 0.005
NACK_AGAIN_RTT_SHARE = 0.75
REPAIRED_MEMORY = 512  # sequence numbers whose last repair time a DownTrack remembers


def _trim(times: dict[int, float]) -> None:
    """Forget the oldest sequence numbers beyond REPAIRED_MEMORY."""
    while len(times) > REPAIRED_MEMORY:
        del times[next(iter(times))]


class DownTrack:
    """The SSRC, payload type and counters are kept in ``fwd`` (a :class:`~sfu.lane.Lane`),
    where the C fan-out loop (``sfu/_fanout.c``) reads and updates them; in the steady state it
    does :meth:`forward`'s work itself, and this method runs for every other packet."""

    __slots__ = (
        "subscriber_id",
        "paced",
        "plain_pt",
        "red_pt",
        "kind",
        "transport",
        "up",
        "src",
        "target",
        "fwd",
        "_check",
        "_replayed_gop",
        "_replaying",
        "_switch_replay_ms",
        "mid",
        "link",
        "retransmitted_bytes",
        "retransmit_skipped",
        "probe_bps",
        "_probe_owed",
        "_probe_at",
        "_probe_mid",
        "padding_bytes",
        "temporal",
        "_thin",
        "_repaired",
        "_fed_back",
    )

    def __init__(
        self,
        subscriber_id: str,
        mid: str,
        kind: str,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        transport: RawTransport,
    ) -> None:
        self.subscriber_id = subscriber_id
        self.mid = mid
        self.kind = kind
        self.transport = transport
        self.up: UpTrack | None = None  # the published track (for simulcast: its top layer)
        self.src: UpTrack | None = None  # the layer forwarded now (``up`` without simulcast)
        self.target: UpTrack | None = None  # the layer waited for (its next keyframe)
        self.link: Link | None = None  # the subscriber connection's estimate and budget
        self.retransmitted_bytes = 0
        self.retransmit_skipped = 0
        self.probe_bps = 0.0  # padding to send after each frame while a probe runs (Link)
        self._probe_owed = 0.0
        self._probe_at = 0.0
        self._probe_mid: asyncio.TimerHandle | None = None  # the between-frames half (send_probe)
        self.padding_bytes = 0
        self._repaired: dict[int, float] = {}  # out sequence number -> when its last repair was sent
        self._fed_back: dict[int, float] = {}  # and when the feedback (not a NACK) last asked for one
        # VP8 temporal layers forwarded: the link's choice, and a lower cap while a downgrade
        # waits for the new layer's keyframe (select_layer)
        self.temporal = vp8.ALL_TIDS
        self._thin = vp8.ALL_TIDS
        fwd = self.fwd = Forwarder(clock_rate, kind == "video")
        fwd.ssrc = ssrc
        fwd.payload_type = payload_type
        fwd.egress = transport.egress
        # audio: the payload types this subscriber negotiated for plain Opus and for RED (0 if
        # it did not); the UpTrack it is attached to picks one (sfu/red.py)
        self.plain_pt = payload_type
        self.red_pt = 0
        # a constrained connection's video goes out through its pacer (sfu/paced.py); None:
        # straight to the socket (the lane's fast path)
        self.paced: PacedSender | None = None
        self._check = 0
        # the GOP replay at this track's first start (_replay_gop): the GOP tried, and a guard
        # for the forward() calls it makes
        self._replayed_gop = -1
        self._replaying = False
        # > 0: a switch made at once (``_start_on``) onto a layer whose GOP was this young (ms):
        # the next packet replays that GOP instead of waiting for a keyframe asked for now
        self._switch_replay_ms = 0

    @property
    def ssrc(self) -> int:
        return self.fwd.ssrc

    @property
    def payload_type(self) -> int:
        return self.fwd.payload_type

    @property
    def packets(self) -> int:
        """RTP packets sent to this subscriber."""
        return self.fwd.packets

    @property
    def octets(self) -> int:
        return self.fwd.octets

    @property
    def first_sent_at(self) -> float:
        """time.monotonic() of the first packet sent (join latency); 0.0 before."""
        return self.fwd.first_sent_at

    # -- wiring ------------------------------------------------------------------------------

    def pace(self, sender: PacedSender | None) -> None:
        """Send this track's packets through ``sender`` (None: straight to the socket). A paced
        lane has no Egress, so the C loop hands its packets to :meth:`forward`."""
        if sender is self.paced:
            return
        self.paced = sender
        self.fwd.egress = self.transport.egress if sender is None else None

    def attach(self, up: UpTrack | None, layer: int | None = None) -> None:
        """Forward ``up`` from now on (None: nothing); the stream stays continuous. For a
        simulcast track, ``layer`` (default: the top one) is the layer to start on."""
        if up is self.up:
            if up is not None and self.fwd.paused:
                self.select_layer(self.layer_index() if layer is None else layer)
            return
        self._cancel_target()
        if self.src is not None:
            self.src.remove_down(self)
        self.up = up
        self.src = None
        if up is None:
            self.fwd.pause()
            return
        self.fwd.vp8 = up.codec.mime.lower() == "video/vp8"
        index = len(up.layers) - 1 if layer is None else max(0, min(layer, len(up.layers) - 1))
        self._start_on(up.layers[index])

    def _start_on(self, src: UpTrack, switching: bool = False) -> None:
        self.src = src
        self.fwd.resume()
        self.fwd.switch(src)
        if switching and src.gop_age_ms(now_ms()) <= SWITCH_REPLAY_MAX_AGE_MS:
            # This layer's keyframe has just passed (often brought by the request of the switch
            # a moment ago, a VP8 simulcast publisher keying all layers): its young GOP is
            # replayed at the next packet (``_replay_gop``; a failed replay asks then), saving a
            # keyframe request that would stall every viewer of the publisher's top layer.
            self._switch_replay_ms = SWITCH_REPLAY_MAX_AGE_MS
            src.add_down(self, ask=False)
        else:
            src.add_down(self)

    def _cancel_target(self) -> None:
        if self.target is not None:
            self.target.remove_pending(self)
            self.target = None
            self._thin_to(vp8.ALL_TIDS)

    def _thin_to(self, tid: int) -> None:
        self._thin = tid
        self.fwd.set_temporal(min(self.temporal, tid))

    def set_temporal(self, tid: int) -> None:
        """Forward the temporal layers up to ``tid`` of VP8 (``vp8.ALL_TIDS``: all of them):
        a lower frame rate at once, without a keyframe."""
        self.temporal = tid
        self.fwd.set_temporal(min(tid, self._thin))

    def layer_index(self) -> int:
        """The layer forwarded now (-1: paused or nothing)."""
        if self.src is None or self.fwd.paused:
            return -1
        return self.src.layer

    def select_layer(self, index: int, at_once: bool = False) -> None:
        """Move to layer ``index`` of the track (-1 pauses video; audio is never paused). The
        old layer goes on until the new one's keyframe arrives (:meth:`switched_to`) — unless
        ``at_once``: on a congested link the old layer's frames are being lost anyway, and
        stopping them at once drains the queue in front of the new layer's keyframe."""
        up = self.up
        if up is None or up.closed:
            return
        if index < 0:
            if self.kind != "video" or self.fwd.paused:
                return
            self._cancel_target()
            if self.src is not None:
                self.src.remove_down(self)
            self.fwd.pause()
            return
        target = up.layers[min(index, len(up.layers) - 1)]
        src = self.src
        # Down with temporal layers and no congestion: the old layer goes on at half its frame
        # rate until the new layer's keyframe — under the estimate at once, and no freeze. A
        # congested downgrade stops the old layer at once, temporal layers or not: thinned to
        # its base layer, a 720p layer still overfilled a 60 % line's queue, and the new layer's
        # keyframe queued behind it (freezes of 3 s in Chromium; stopping it, none).
        thin = src is not None and target.layer < src.layer and src.has_temporal and not at_once
        if self.fwd.paused or src is None or (at_once and target.layer < src.layer):
            self._cancel_target()
            if src is not None:
                src.remove_down(self)
            self._start_on(target, switching=src is not None)  # nothing to keep forwarding: its keyframe
            return
        if target is src:
            self._cancel_target()
            return
        if target is self.target:
            return
        self._cancel_target()
        self.target = target
        if thin:
            self._thin_to(1)
        target.add_pending(self)

    def switched_to(self, target: UpTrack) -> None:
        """``target``'s keyframe has arrived (called by it just before its fan-out)."""
        if target is not self.target:
            return
        self.target = None
        if self.src is not None:
            self.src.remove_down(self)
            self.src.remove_probe(self)
        self.src = target
        self._thin_to(vp8.ALL_TIDS)  # the new layer at the link's chosen frame rate
        self.fwd.switch(target)  # re-based at this very keyframe: seq/ts continuity
        if self not in target.down:
            target.down = (*target.down, self)
        if self.probe_bps > 0:
            target.add_probe(self)

    def _header(self, b0: int, b1: int, seq: int, ts: int, ssrc: int, ms: int, payload_len: int) -> bytes:
        """The header for one packet of this DownTrack, taking the connection's next
        transport-wide sequence number if it negotiated transport-cc (sizes as the C loop's)."""
        fwd = self.fwd
        ast = fwd.abs_send_time_id
        tw = fwd.twcc_id
        if not tw:
            return rtp_header(b0, b1, seq, ts, ssrc, ast, ms)
        size = (24 if ast else 20) + payload_len
        return rtp_header(b0, b1, seq, ts, ssrc, ast, ms, tw, self.transport.egress.twcc_take(size, ssrc, seq))

    # -- probing (sfu/bwe/probe.py) ------------------------------------------------------------

    def set_probe(self, bps: float) -> None:
        """Send ``bps`` of padding after each frame of the layer forwarded now (0: stop)."""
        src = self.src
        if bps > 0 and src is not None and self.kind == "video":
            if self.probe_bps <= 0:
                self._probe_owed, self._probe_at = 0.0, 0.0
            self.probe_bps = bps
            src.add_probe(self)
        else:
            self.probe_bps = 0.0
            if src is not None:
                src.remove_probe(self)

    def send_probe(self, now: float, between: bool = False) -> None:
        """Padding-only packets owed since the last call, right after a frame's last packet (a
        padding number inside a frame would leave the receiver a hole in that frame), and
        ``PROBE_MID_S`` later if nothing was forwarded since (``between``: still between frames)."""
        if self._probe_at:
            self._probe_owed = min(PROBE_BURST_BYTES, self._probe_owed + self.probe_bps / 8 * (now - self._probe_at))
        self._probe_at = now
        fwd = self.fwd
        while self._probe_owed >= PADDING_PACKET_BYTES:
            slot = fwd.insert_padding()
            if slot is None:
                return
            # P bit: padding only
            header = self._header(0xA0, fwd.payload_type, slot[0], slot[1], fwd.ssrc, now_ms(), len(PADDING))
            if not self.transport.send_rtp_parts(header, PADDING):
                return
            self._probe_owed -= PADDING_PACKET_BYTES
            self.padding_bytes += PADDING_PACKET_BYTES
            STATS.padding_bytes += PADDING_PACKET_BYTES
        if not between and self.probe_bps > 0:
            if self._probe_mid is not None:
                self._probe_mid.cancel()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # (unit tests driving a DownTrack without a loop)
                return
            # the last number now; unchanged when the timer fires = no media forwarded since
            self._probe_mid = loop.call_later(PROBE_MID_S, self._send_probe_between, fwd.last_out_seq)

    def _send_probe_between(self, mark: int) -> None:
        self._probe_mid = None
        if self.probe_bps > 0 and self.fwd.started and self.fwd.last_out_seq == mark:
            self.send_probe(time.monotonic(), between=True)

    def source_closed(self, up: UpTrack) -> None:
        if self.src is up or self.up is up:
            self._cancel_target()
            self.up = None
            self.src = None
            self.fwd.pause()

    def close(self) -> None:
        self._cancel_target()
        if self._probe_mid is not None:
            self._probe_mid.cancel()
            self._probe_mid = None
        if self.src is not None:
            self.src.remove_down(self)
        self.up = None
        self.src = None

    # -- hot path --------------------------------------------------------------------------------

    def forward(
        self, payload: bytes, marker: int, seq: int, ts: int, arrival_ms: int, keyframe: bool
    ) -> int:
        """Send one packet to this subscriber; returns 1 if it was sent, else 0 (the UpTrack
        adds these up, so the per-subscriber cost has no shared counter updates)."""
        fwd = self.fwd
        if fwd.vp8:
            d = vp8.parse(payload)
            dropped = fwd.dropped_temporal
            ok = fwd.advance_vp8(seq, ts, arrival_ms, keyframe, d.picture_id, vp8.picture_id_mask(d), d.tl0picidx,
                                 d.tid)
            if ok and (d.picture_id_bits or d.tl0picidx >= 0):
                payload = vp8.rewrite(payload, d, fwd.out_pid, fwd.out_tl0)
            elif fwd.dropped_temporal != dropped:
                STATS.temporal_dropped += 1
        else:
            ok = fwd.advance(seq, ts, arrival_ms, keyframe)
        if not ok:
            if fwd.waiting_keyframe and self.src is not None:
                if (not fwd.packets or self._switch_replay_ms) and not self._replaying:
                    replayed = self._replay_gop(seq, arrival_ms)
                    if replayed:
                        return replayed
                self.src.request_keyframe()  # throttled in the UpTrack
            return 0
        # Every 64 packets, look at the socket's backlog: a congested subscriber loses video
        # up to the next keyframe instead of stalling everybody else.
        self._check += 1
        if self._check & 63 == 0 and self.fwd.is_video:
            if self.transport.write_buffer_size() > CONGESTED_BYTES:
                STATS.dropped_congested += 1
                self.fwd.switch(self.src)
                return 0
        paced = self.paced
        if paced is None:
            header = self._header(0x80, marker | fwd.payload_type, fwd.out_seq, fwd.out_ts, fwd.ssrc, arrival_ms,
                                  len(payload))
        else:  # the pacer takes the transport-wide number when the packet leaves (restamp)
            header = rtp_header(0x80, marker | fwd.payload_type, fwd.out_seq, fwd.out_ts, fwd.ssrc,
                                fwd.abs_send_time_id, arrival_ms, fwd.twcc_id)
        if paced.send(header, payload) if paced is not None else self.transport.send_rtp_parts(header, payload):
            if not fwd.packets:
                fwd.first_sent_at = time.monotonic()
            fwd.packets += 1
            fwd.octets += len(payload)
            return 1
        if fwd.is_video:
            # a packet was lost here (or none could be sent yet: the subscriber's connection is
            # still being set up): go on from the next keyframe, or the GOP replayed at once
            fwd.switch(self.src)
        return 0

    def _replay_gop(self, upto: int, arrival_ms: int) -> int:
        """This video track's first start, once its connection is up and the packet ``upto``
        is not a keyframe: forward the source's current GOP from its cache (UpTrack.gop_packets,
        ``upto`` included) rather than wait for the next keyframe. A publisher that answers no
        PLI (FFmpeg's whip muxer) otherwise leaves a subscriber that missed the first keyframe
        waiting a whole keyframe interval. Returns the packets sent (0: no replay)."""
        src = self.src
        if src is None or src.gop_seq < 0 or src.gop_seq == self._replayed_gop or not self.transport.connected:
            return 0
        self._replayed_gop = src.gop_seq  # tried once per GOP, whatever comes of it
        switching, self._switch_replay_ms = self._switch_replay_ms, 0
        if switching:
            packets = src.gop_packets(upto, arrival_ms, switching, SWITCH_REPLAY_MAX_BYTES)
            if not packets:
                log.info("subscriber %s mid %s: layer %s's GOP not replayed at the switch (%s): a keyframe "
                         "is asked for", self.subscriber_id, self.mid, src.layer, src.gop_summary(upto, arrival_ms))
        else:
            packets = src.gop_packets(upto, arrival_ms)
        if not packets:
            return 0
        self._replaying = True
        sent = 0
        try:
            for payload, marker, seq, ts, keyframe in packets:
                sent += self.forward(payload, marker, seq, ts, arrival_ms, keyframe)
        finally:
            self._replaying = False
        if sent:
            STATS.gop_replays += 1
            STATS.gop_replayed_packets += sent
        return sent

    # -- RTCP from the subscriber --------------------------------------------------------------------

    def on_nack(self, seqs: list[int], now: float | None = None) -> None:
        """Retransmit what the subscriber lost, within its connection's budget: skip what can
        no longer arrive in time, and answer a loss too large to repair with a keyframe."""
        STATS.nacks_received += 1
        src = self.src
        if src is None or src.cache is None:
            return
        link = self.link
        now = time.monotonic() if now is None else now
        if link is not None and link.budget.too_many(len(seqs)):
            STATS.nack_keyframes += 1
            src.request_keyframe("loss")
            return
        crossed = self._fed_back
        if crossed:  # (what the transport-cc feedback had us repair a moment ago: the NACK crossed it)
            seqs = [s for s in seqs if now - crossed.get(s, -1.0) >= NACK_CROSSED_S]
        repaired = self._repaired
        if repaired and link is not None:
            # a browser that knows its round-trip time (rtcp-fb rrtr) asks again after about one,
            # a few ms on a short path: a NACK that comes sooner than that after our repair was
            # sent before the repair could arrive (the two crossed); answering it again spends the
            # budget that real losses need
            soon = max(NACK_AGAIN_MIN_S, NACK_AGAIN_RTT_SHARE * link.estimator.rtt_ms / 1000)
            fresh = [s for s in seqs if now - repaired.get(s, -1.0) >= soon]
            if len(fresh) < len(seqs):
                STATS.nacks_crossed += len(seqs) - len(fresh)
                seqs = fresh
        self._repair(seqs, now)

    def on_lost(self, lost: list[tuple[int, float]], now: float) -> None:
        """Packets the subscriber's transport-cc feedback says never arrived, as (sequence
        number, when that copy was sent) (``Link.on_twcc``): repaired now unless a repair was
        sent after that copy (its NACK came first), within the same budget as NACKs."""
        src = self.src
        if src is None or src.cache is None or self.link is None or self.link.budget.too_many(len(lost)):
            return  # (a loss that large: the NACK path answers it with a keyframe)
        repaired = self._repaired
        seqs = [seq for seq, sent_at in lost if repaired.get(seq, -1.0) < sent_at]
        if seqs:
            STATS.feedback_repairs += len(seqs)
            crossed = self._fed_back
            for seq in seqs:
                crossed[seq] = now
            _trim(crossed)
            self._repair(seqs, now)

    def _repair(self, seqs: list[int], now: float) -> None:
        src = self.src
        if src is None or src.cache is None or not seqs:
            return
        link = self.link
        rate = src.codec.clock_rate
        upstream: list[int] = []
        # a lost repair costs another round trip: on a randomly lossy, long link send two
        twice = link is not None and link.duplicate_repairs(now)
        fwd = self.fwd
        repaired = self._repaired
        for out_seq in seqs:
            found = fwd.incoming(out_seq)
            in_seq = None if found is None else found[0]
            data = src.cache.get(in_seq) if in_seq is not None else None
            if data is None or in_seq is None:
                if in_seq is None and self.fwd.is_padding(out_seq):
                    continue  # a lost probe packet: nothing to repair
                STATS.nack_misses += 1
                if in_seq is not None:
                    upstream.append(in_seq)  # never arrived here: lost on the publisher's uplink
                continue
            try:
                h = parse_header(data)
            except RtpError:
                STATS.nack_misses += 1
                continue
            payload = data[h.payload_offset : h.payload_end]
            if fwd.vp8 and found is not None:  # the picture id it had the first time
                d = vp8.parse(payload)
                if d.picture_id_bits or d.tl0picidx >= 0:
                    payload = vp8.rewrite(payload, d, (d.picture_id + found[1]) & vp8.picture_id_mask(d),
                                          (d.tl0picidx + found[2]) & 0xFF)
            if link is not None:
                age = ((src.last_in_ts - h.timestamp) & 0xFFFFFFFF) / rate
                if fwd.is_video and h.timestamp == src.gop_ts and age <= 60 and link.budget.owe(
                        12 + len(payload), link.retransmit_base(now), now):
                    # the keyframe this subscriber's picture starts from (typically just after a
                    # switch on a full line): late or over budget, it is still the only way on
                    # (within the budget's debt limit)
                    STATS.keyframe_repairs += 1
                elif age > 60 or not link.budget.in_time(age, link.estimator.rtt_ms) or not link.budget.allow(
                    12 + len(payload), link.retransmit_base(now), now
                ):
                    self.retransmit_skipped += 1
                    STATS.retransmits_skipped += 1
                    continue
            marker = 0x80 if h.marker else 0
            out_ts = self.fwd.out_timestamp_at(h.timestamp)
            ms = now_ms()
            copies = 2 if twice and link is not None and link.budget.allow(12 + len(payload), link.retransmit_base(
                now), now) else 1
            repaired[out_seq] = now
            for copy in range(copies):
                header = self._header(0x80, marker | self.payload_type, out_seq, out_ts, self.ssrc, ms, len(payload))
                if not self.transport.send_rtp_parts(header, payload):
                    break
                STATS.repairs_duplicated += copy
                STATS.retransmitted_packets += 1
                STATS.retransmitted_bytes += 12 + len(payload)
                self.retransmitted_bytes += 12 + len(payload)
        if upstream:
            src.request_missing(upstream)
        _trim(repaired)

    def on_keyframe_request(self) -> None:
        STATS.plis_received += 1
        if self.src is not None:
            self.src.request_keyframe("pli")

    def sender_report(self, ntp: int, now_ms: int) -> bytes | None:
        """Our SR for this stream: the publisher's timing, mapped to this subscriber's
        timestamps, so audio and video of one classroom stay in sync at the receiver."""
        if self.src is None or not self.fwd.started or self.packets == 0:
            return None
        in_ts = self.src.in_timestamp_at(ntp, now_ms)
        return rtcp.build_sr(self.ssrc, ntp, self.fwd.out_timestamp_at(in_ts), self.packets, self.octets)
