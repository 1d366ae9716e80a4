"""UpTrack: one published track (teacher camera, courseware, a classroom's mic) on this node.

It owns the packet cache (for NACK), keyframe-request throttling, audio level, receive
statistics for the receiver reports we send to the publisher, and the immutable tuple of
DownTracks it fans out to. ``on_rtp`` is the hot path: synchronous, no await, no per-subscriber
task or queue.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sfu import lane, red, rtcp, vp8
from sfu.glue import Codec
from sfu.packet_cache import PacketCache
from sfu.rtp import keyframe_detector
from sfu.stats import STATS

if TYPE_CHECKING:
    from sfu.downtrack import DownTrack

log = logging.getLogger(__name__)

AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# Re-asking the publisher for packets subscribers miss (lost on its uplink): only the newest
# UPSTREAM_NACK_WINDOW packets, at most UPSTREAM_NACK_TRIES times each, UPSTREAM_NACK_GAP_S apart.
UPSTREAM_NACK_WINDOW = 512
UPSTREAM_NACK_TRIES = 3
UPSTREAM_NACK_GAP_S = 0.05
PROXIED_LOSS_S = 6.0
_HEADER = struct.Struct("!BBHII")
_EXT = struct.Struct("!HH")
# A video subscriber that starts gets the current GOP from the cache at once (gop_packets):
# only a GOP that began at most this long ago and is at most this many packets long (a longer
# burst of old frames costs a weak link more, and stretches the receiver's jitter buffer,
# than waiting for a keyframe saves).
GOP_REPLAY_MAX_AGE_MS = 1000
# a switch made at once onto a layer replays its GOP when it is this young (ms): a few packets of
# a lower layer, for a link that is congested already
SWITCH_REPLAY_MAX_AGE_MS = 400
SWITCH_REPLAY_MAX_BYTES = 16_000  # and this small: the lowest layer's, not a burst into a full line
GOP_REPLAY_MAX_PACKETS = 250

# a sibling layer's keyframe request younger than this brings this layer's keyframe too, from a
# publisher that keys its layers together (``UpTrack.keys_together``); after it, this layer asks
KEYFRAME_TOGETHER_S = 0.6
KEYFRAME_OWN_S = 1.5  # a keyframe this long after this layer's own request was not asked for by it
# what asked for a keyframe -> its counter in STATS (``request_keyframe(reason)``)
KEYFRAME_REASONS = {
    "join": "keyframe_requests_for_join",  # a new video subscriber on this layer
    "switch": "keyframe_requests_for_switch",  # a subscriber moving to this layer
    "resync": "keyframe_requests_for_resync",  # a subscriber whose stream must start again
    "loss": "keyframe_requests_for_loss",  # a NACK too large to repair
    "pli": "keyframe_requests_for_pli",  # a subscriber's own PLI/FIR
}


def _payload_bounds(data: bytes) -> tuple[int, int] | None:
    """(start, end) of an RTP packet's payload: after the CSRCs and the header extension,
    before the padding; None when the header does not fit."""
    n = len(data)
    if n < 12:
        return None
    off = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if off + 4 > n:
            return None
        off += 4 + 4 * _EXT.unpack_from(data, off)[1]
    end = n - data[-1] if data[0] & 0x20 else n
    return (off, end) if off < end else None


class UpTrack:
    def __init__(
        self,
        track_id: str,
        kind: str,
        source: str,
        codec: Codec,
        ssrc: int,
        publisher_id: str,
        classroom_id: str,
        send_rtcp: Callable[[bytes], bool],
        rtcp_ssrc: int,
        audio_level_ext: int = 0,
        abs_send_time_ext: int = 0,
        cache_size: int = 1024,
        keyframe_interval_s: float = 1.0,
    ) -> None:
        self.track_id = track_id
        self.kind = kind
        self.source = source
        self.codec = codec
        self.ssrc = ssrc
        self.publisher_id = publisher_id
        self.classroom_id = classroom_id
        self.is_video = kind == "video"
        self._keyframe = keyframe_detector(codec.mime) if self.is_video else None
        self._vp8 = codec.mime.lower() == "video/vp8"
        self.temporal_ms = 0  # arrival of the last VP8 packet above temporal layer 0
        # VP8 temporal layers: payload octets of TID 0-1 (of all with a TID) and frames, for
        # the frame rate and what the layer costs at half its frame rate (measure())
        self._low_tid_octets = 0
        self._tid_octets = 0
        self._frames = 0
        self.fps = 0.0
        self.half_rate_share = 0.0  # of the bitrate, TID 0 and 1 (0: no temporal layers seen)
        self._measured_frames = 0
        self._measured_tid = (0, 0)
        self._send_rtcp = send_rtcp
        self._rtcp_ssrc = rtcp_ssrc
        self._audio_level_ext = audio_level_ext
        self._abs_send_time_ext = abs_send_time_ext
        # (abs-send-time, arrival ms, bytes) of each packet, for the publisher's uplink estimate
        self.on_arrival: Callable[[int, int, int], None] | None = None
        self.cache = PacketCache(cache_size) if self.is_video else None
        self._all_down: tuple[DownTrack, ...] = ()
        self._down: tuple[DownTrack, ...] = ()  # those that get the payload as forwarded
        self._lanes: tuple[object, ...] = ()  # _down[i].fwd, for the C fan-out loop
        # RED (audio/red, sfu/red.py): the publisher's RED payload type (0: it sends none); the
        # subscribers that take RED get the container (block payload types renumbered to
        # their Opus one), the others the primary block in _down
        self.red_pt = 0
        self._red_down: tuple[DownTrack, ...] = ()
        self._red_lanes: tuple[object, ...] = ()
        self._red_opus_pt = 0
        self.closed = False
        # keyframe requests
        self._kf_interval = keyframe_interval_s
        self._kf_last = -1e9
        self._kf_pending: asyncio.TimerHandle | None = None
        self._kf_reason = ""  # what asked for the keyframe request about to be sent
        self._kf_seen_at = -1e9  # (monotonic) the last keyframe's first packet
        # the publisher keys every layer for a request on any one (learned: ``_keyframe_seen``)
        self.keys_together = False
        self._fir_seq = 0
        self.keyframe_requested_at: float | None = None
        self.last_keyframe_at: float | None = None
        # the newest keyframe's first packet (its seq, RTP timestamp, arrival ms): where a new
        # subscriber's replay of the current GOP from the cache begins (gop_packets)
        self.gop_seq = -1
        self._gop_ts = -1
        self.gop_ms = 0
        # receive statistics (RFC 3550 A.3 / A.8)
        self.packets = 0
        self.octets = 0
        self._base_seq = -1
        self._max_seq = 0
        self._cycles = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._transit: float | None = None
        self.last_arrival_ms = 0
        self.last_in_ts = 0
        # the publisher's clock (from its sender reports), for our SRs downstream
        self.sr_ntp = 0
        self.sr_rtp = 0
        self._sr_lsr = 0
        self._sr_arrival = 0.0
        # audio level: 0 loudest .. 127 silence; smoothed over the last few packets
        self.audio_level = 127
        self.level_time = 0.0
        self.on_keyframe: Callable[[UpTrack], None] | None = None
        # simulcast: every layer of one published track is an UpTrack of its own (its own SSRC,
        # cache, keyframes and DownTracks); ``layers`` is the same tuple in each, lowest first,
        # and the top layer stands for the track in the room (``group``).
        self.rid = ""
        self.layer = 0
        self.layers: tuple[UpTrack, ...] = (self,)
        self.group: UpTrack = self
        # DownTracks waiting for this layer's next keyframe to switch to it (they keep
        # forwarding their old layer until then, so a switch never freezes)
        self._pending: tuple[DownTrack, ...] = ()
        # DownTracks probing their link: padding after each frame's last packet
        self._probes: tuple[DownTrack, ...] = ()
        # the worst loss a subscriber reported for this audio since our last RR: reported to the
        # publisher as its own, so its Opus encoder adds in-band FEC for the weak classroom too
        self.proxied_loss = 0
        self.proxied_at = 0.0
        self.upstream_loss = 0.0  # fraction lost from the publisher, over our last RR interval
        self._asked: dict[int, tuple[float, int]] = {}  # seq -> (last upstream NACK, how many), oldest first
        self.bitrate_bps = 0.0  # measured, refreshed by measure()
        self._measured_octets = 0
        self._measured_at = 0.0

    # -- subscribers --------------------------------------------------------------------

    @property
    def has_temporal(self) -> bool:
        """This VP8 layer sends temporal layers (seen in the last 2 s): its frame rate can drop
        at once, without a keyframe."""
        return self.temporal_ms > 0 and self.last_arrival_ms - self.temporal_ms < 2000

    def add_down(self, down: DownTrack, ask: bool = True) -> None:
        if down not in self._all_down:
            self.down = (*self._all_down, down)
        if self.is_video and ask:
            self.request_keyframe("join")

    def remove_down(self, down: DownTrack) -> None:
        self.down = tuple(d for d in self._all_down if d is not down)

    def add_pending(self, down: DownTrack) -> None:
        """``down`` switches to this layer at its next keyframe (asked for now)."""
        if down not in self._pending:
            self._pending = (*self._pending, down)
        self.request_keyframe("switch")

    def remove_pending(self, down: DownTrack) -> None:
        self._pending = tuple(d for d in self._pending if d is not down)

    def add_probe(self, down: DownTrack) -> None:
        if down not in self._probes:
            self._probes = (*self._probes, down)

    def remove_probe(self, down: DownTrack) -> None:
        if down in self._probes:
            self._probes = tuple(d for d in self._probes if d is not down)

    def _switch_pending(self) -> None:
        pending, self._pending = self._pending, ()
        for down in pending:
            down.switched_to(self)

    def measure(self, now: float) -> float:
        """The payload bitrate, smoothed over the last few calls (about once a second each): a
        keyframe's second must not look like a layer that no longer fits."""
        if self._measured_at:
            dt = now - self._measured_at
            if dt > 0:
                rate = (self.octets - self._measured_octets) * 8 / dt
                self.bitrate_bps = rate if self.bitrate_bps <= 0 else 0.7 * self.bitrate_bps + 0.3 * rate
                fps = (self._frames - self._measured_frames) / dt
                self.fps = fps if self.fps <= 0 else 0.7 * self.fps + 0.3 * fps
                low, total = self._low_tid_octets - self._measured_tid[0], self._tid_octets - self._measured_tid[1]
                if total > 0:
                    share = low / total
                    self.half_rate_share = share if self.half_rate_share <= 0 else (
                        0.7 * self.half_rate_share + 0.3 * share)
                elif not self.has_temporal:
                    self.half_rate_share = 0.0
        self._measured_octets = self.octets
        self._measured_frames = self._frames
        self._measured_tid = (self._low_tid_octets, self._tid_octets)
        self._measured_at = now
        return self.bitrate_bps

    @property
    def simulcast(self) -> bool:
        return len(self.layers) > 1

    @property
    def down(self) -> tuple[DownTrack, ...]:
        """The subscribers' DownTracks (an immutable snapshot)."""
        return self._all_down

    @down.setter
    def down(self, down: tuple[DownTrack, ...]) -> None:
        # new snapshots: the hot loop never sees a mutation
        self._all_down = down
        reds: tuple[DownTrack, ...] = ()
        if not self.is_video:
            if self.red_pt:
                # one Opus numbering per container: the first RED subscriber's (in practice
                # every subscriber offer numbers Opus alike); any other gets the primary
                key = next((d.plain_pt for d in down if d.red_pt), 0)
                reds = tuple(d for d in down if d.red_pt and d.plain_pt == key)
                self._red_opus_pt = key
            for d in down:
                d.fwd.payload_type = d.red_pt if d in reds else d.plain_pt
        plain = tuple(d for d in down if d not in reds) if reds else down
        self._down = plain
        self._lanes = tuple(d.fwd for d in plain)
        self._red_down = reds
        self._red_lanes = tuple(d.fwd for d in reds)

    # -- hot path -------------------------------------------------------------------------

    def note_arrival(self, data: bytes, arrival_ms: int) -> None:
        """A packet that carries nothing to forward (an RTX padding or redundant copy): only its
        abs-send-time counts, for the publisher's uplink estimate."""
        if not self._abs_send_time_ext or self.on_arrival is None or len(data) < 16 or not data[0] & 0x10:
            return
        off = 12 + 4 * (data[0] & 0x0F)
        if off + 4 > len(data) or data[off:off + 2] != b"\xbe\xde":
            return
        pos, end = off + 4, min(len(data), off + 4 + 4 * int.from_bytes(data[off + 2:off + 4], "big"))
        while pos < end:
            b = data[pos]
            if b == 0:
                pos += 1
                continue
            if b >> 4 == self._abs_send_time_ext and pos + 3 < end:
                self.on_arrival(int.from_bytes(data[pos + 1:pos + 4], "big"), arrival_ms, len(data))
                return
            pos += 2 + (b & 0x0F)

    def on_rtp(self, data: bytes, arrival_ms: int) -> None:
        t0 = time.perf_counter()
        n = len(data)
        b0, b1, seq, ts, _ssrc = _HEADER.unpack_from(data)
        off = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            if off + 4 > n:
                STATS.rtp_errors += 1
                return
            profile, words = _EXT.unpack_from(data, off)
            if (self._audio_level_ext or self._abs_send_time_ext) and profile == 0xBEDE and words:
                # one-byte extensions (RFC 8285): the audio level (audio) or the abs-send-time
                # (video) we look for is usually among the first
                pos, end = off + 4, off + 4 + 4 * words
                while pos < end and pos < n:
                    b = data[pos]
                    if b == 0:
                        pos += 1
                        continue
                    ext = b >> 4
                    if ext == self._audio_level_ext and pos + 1 < n:
                        self._level(data[pos + 1] & 0x7F)
                        break
                    if ext == self._abs_send_time_ext and pos + 3 < n and self.on_arrival is not None:
                        self.on_arrival(int.from_bytes(data[pos + 1:pos + 4], "big"), arrival_ms, n)
                        break
                    pos += 2 + (b & 0x0F)
            off += 4 + 4 * words
        end = n - data[-1] if b0 & 0x20 else n
        if off >= end:  # padding only (bandwidth probing): nothing to forward
            return
        STATS.packets_in += 1
        STATS.bytes_in += n
        self.packets += 1
        self.octets += end - off
        newest = self._account(seq, ts, arrival_ms)
        payload = data[off:end]
        red_payload: bytes | None = None
        if self.red_pt:  # audio from a publisher that sends RED (sfu/red.py)
            try:
                if b1 & 0x7F == self.red_pt:
                    STATS.red_packets_in += 1
                    if self._red_down:
                        red_payload = red.renumber(payload, self._red_opus_pt)
                    payload = red.primary(payload)
                elif self._red_down:
                    red_payload = red.wrap(payload, self._red_opus_pt)
            except red.RedError:
                STATS.rtp_errors += 1
                return
        if self._vp8 and len(payload) > 5 and payload[0] & 0x80 and payload[1] & 0x20:
            tid = vp8.parse(payload).tid
            if tid > 0:
                self.temporal_ms = arrival_ms
            if tid >= 0:
                self._tid_octets += end - off
                if tid <= 1:
                    self._low_tid_octets += end - off
        if b1 & 0x80:
            self._frames += 1
        keyframe = False
        if self._keyframe is not None:
            # a late packet (a retransmission) never starts a subscriber or a layer switch: the
            # packets after it have been forwarded already
            keyframe = newest and self._keyframe(payload)
            if keyframe:
                if ts != self._gop_ts:  # the first packet of a new keyframe
                    self.gop_seq, self._gop_ts, self.gop_ms = seq, ts, arrival_ms
                    self._keyframe_seen()
                if self.keyframe_requested_at is not None:
                    self._keyframe_arrived()
                if self._pending:
                    self._switch_pending()  # before the fan-out: they get this keyframe
            assert self.cache is not None
            self.cache.put(seq, data)
        marker = b1 & 0x80
        fanout = lane.fanout
        if fanout is not None:
            # One C call for everybody (sfu/_fanout.c): sent | dropped << 32.
            result = fanout(self._down, self._lanes, payload, marker, seq, ts, arrival_ms, keyframe)
            sent = result & 0xFFFFFFFF
            if result > 0xFFFFFFFF:
                STATS.dropped_congested += result >> 32
        else:
            sent = 0
            for down in self._down:
                sent += down.forward(payload, marker, seq, ts, arrival_ms, keyframe)
        if red_payload is not None:  # the RED subscribers: a second call, the same rewrite
            red_sent = 0
            if fanout is not None:
                red_sent = fanout(self._red_down, self._red_lanes, red_payload, marker, seq, ts, arrival_ms,
                                  False) & 0xFFFFFFFF
            else:
                for down in self._red_down:
                    red_sent += down.forward(red_payload, marker, seq, ts, arrival_ms, False)
            STATS.red_packets_out += red_sent
            sent += red_sent
        if sent:
            STATS.forwarded_packets += sent
            STATS.packets_out += sent
            STATS.bytes_out += sent * (12 + len(payload))
        if marker and self._probes:  # a frame ended: probing subscribers get their padding now
            now = time.monotonic()
            for down in self._probes:
                down.send_probe(now)
        STATS.forward_latency.observe_ms((time.perf_counter() - t0) * 1000.0)

    @property
    def gop_ts(self) -> int:
        """The RTP timestamp of the current GOP's keyframe (-1: none yet): every packet of that
        keyframe carries it."""
        return self._gop_ts

    def gop_age_ms(self, now_ms: int) -> int:
        """How long ago (ms, the arrival clock) the current GOP's keyframe began arriving."""
        return now_ms - self.gop_ms if self.gop_seq >= 0 else 1 << 30

    def gop_packets(
        self, upto: int, now_ms: int, max_age_ms: int = GOP_REPLAY_MAX_AGE_MS, max_bytes: int = 0
    ) -> list[tuple[bytes, int, int, int, bool]] | None:
        """The packets of the current GOP, from the newest keyframe's first packet through
        ``upto`` (a sequence number already in the cache), as (payload, marker, seq, ts,
        keyframe) in order: what a subscriber that starts now needs to decode at once, even
        when the publisher answers no PLI (FFmpeg's whip muxer). None when there is no such GOP
        or it cannot be replayed whole: a packet missing from the cache, older than
        ``max_age_ms``, more than ``GOP_REPLAY_MAX_PACKETS``, or (``max_bytes`` > 0) more
        payload bytes than that."""
        if self.cache is None or self._keyframe is None or self.gop_seq < 0:
            return None
        if now_ms - self.gop_ms > max_age_ms:
            return None
        count = ((upto - self.gop_seq) & 0xFFFF) + 1
        if count > GOP_REPLAY_MAX_PACKETS or count > len(self.cache):
            return None
        out: list[tuple[bytes, int, int, int, bool]] = []
        size = 0
        for i in range(count):
            seq = (self.gop_seq + i) & 0xFFFF
            data = self.cache.get(seq)
            if data is None:
                return None
            size += len(data)
            if max_bytes and size > max_bytes:
                return None
            bounds = _payload_bounds(data)
            if bounds is None:
                return None
            payload = data[bounds[0]:bounds[1]]
            out.append((payload, data[1] & 0x80, seq, _HEADER.unpack_from(data)[3],
                        i == 0 or self._keyframe(payload)))
        return out

    def gop_summary(self, upto: int, now_ms: int) -> str:
        """Why the current GOP through ``upto`` could not be replayed (for a log line)."""
        if self.cache is None or self.gop_seq < 0:
            return "no GOP"
        count = ((upto - self.gop_seq) & 0xFFFF) + 1
        cached = [self.cache.get((self.gop_seq + i) & 0xFFFF) for i in range(min(count, len(self.cache)))]
        size = sum(len(d) for d in cached if d is not None)
        missing = sum(1 for d in cached if d is None) + max(0, count - len(self.cache))
        return f"age {now_ms - self.gop_ms} ms, {count} packets, {size} bytes, {missing} not cached"

    def _account(self, seq: int, ts: int, arrival_ms: int) -> bool:
        """Receive statistics; returns whether ``seq`` is the newest packet so far."""
        newest = True
        if self._base_seq < 0:
            self._base_seq = seq
            self._max_seq = seq
        else:
            delta = (seq - self._max_seq) & 0xFFFF
            if 0 < delta < 0x8000:
                if seq < self._max_seq:
                    self._cycles += 1 << 16
                if self.is_video and 1 < delta < 64:
                    self._nack_upstream(self._max_seq, delta)
                self._max_seq = seq
            else:
                newest = False
                if delta and seq in self._asked:
                    STATS.upstream_repaired += 1  # a packet we NACKed upstream arrived after all
                    del self._asked[seq]
        self.last_arrival_ms = arrival_ms
        if newest:  # (a retransmission's lateness is not jitter)
            # interarrival jitter in RTP units
            transit = arrival_ms * self.codec.clock_rate / 1000.0 - ts
            if self._transit is not None:
                d = abs(transit - self._transit)
                if d < self.codec.clock_rate * 10:
                    self._jitter += (d - self._jitter) / 16.0
            self._transit = transit
            self.last_in_ts = ts
        return newest

    def _level(self, level: int) -> None:
        # the louder of the new level and a slow decay toward silence
        self.audio_level = min(level, self.audio_level + 2)
        self.level_time = time.monotonic()

    def _nack_upstream(self, last_seq: int, delta: int) -> None:
        missing = [(last_seq + i) & 0xFFFF for i in range(1, delta)]
        now = time.monotonic()
        for seq in missing:
            self._asked[seq] = (now, 1)
        self._trim_asked()
        if self._send_rtcp(rtcp.build_nack(self._rtcp_ssrc, self.ssrc, missing)):
            STATS.nacks_sent += 1

    def request_missing(self, seqs: list[int]) -> int:
        """Subscribers NACKed packets this layer never received (lost on the publisher's uplink,
        and maybe their first retransmission too): ask the publisher again, each packet at most
        ``UPSTREAM_NACK_TRIES`` times in all and not within ``UPSTREAM_NACK_GAP_S`` of the last
        ask (every subscriber NACKs the same hole). Returns how many were asked for."""
        if not self.is_video or self.closed or self._base_seq < 0:
            return 0
        now = time.monotonic()
        ask = []
        for seq in seqs:
            behind = (self._max_seq - seq) & 0xFFFF
            if behind >= UPSTREAM_NACK_WINDOW or (self.cache is not None and self.cache.get(seq) is not None):
                continue
            at, tries = self._asked.get(seq, (-1e9, 0))
            if tries >= UPSTREAM_NACK_TRIES or now - at < UPSTREAM_NACK_GAP_S:
                continue
            self._asked[seq] = (now, tries + 1)
            ask.append(seq)
        if ask:
            self._trim_asked()
            if self._send_rtcp(rtcp.build_nack(self._rtcp_ssrc, self.ssrc, ask)):
                STATS.nacks_sent += 1
        return len(ask)

    def _trim_asked(self) -> None:
        while len(self._asked) > 2 * UPSTREAM_NACK_WINDOW:
            del self._asked[next(iter(self._asked))]

    # -- keyframes ------------------------------------------------------------------------

    def request_keyframe(self, reason: str = "resync") -> None:
        """Ask the publisher for a keyframe, at most once per interval; a request inside the
        interval is deferred to its end rather than dropped, and not sent at all if a keyframe
        arrived meanwhile. A layer of a publisher seen to key every layer for one request
        (``keys_together``: Chromium's VP8 simulcast) does not ask while a sibling layer's
        request of the last ``KEYFRAME_TOGETHER_S`` is bringing its keyframe too; it asks only
        if that keyframe does not come. Every request costs all viewers of such a publisher's
        top layer a stall. ``reason`` (one of ``KEYFRAME_REASONS``) is counted for the request
        it starts."""
        if not self.is_video or self.closed:
            return
        now = time.monotonic()
        if self.keyframe_requested_at is None:
            self.keyframe_requested_at = now
        if not self._kf_reason:
            self._kf_reason = reason
        if self._kf_pending is not None:
            return  # already due
        wait = self._kf_last + self._kf_interval - now
        if self.keys_together:
            asked = self._sibling_asked_at(now)
            if asked is not None:
                wait = max(wait, asked + KEYFRAME_TOGETHER_S - now, 0.05)
        if wait <= 0:
            self._send_keyframe_request()
        else:
            self._kf_pending = asyncio.get_running_loop().call_later(wait, self._deferred_request)

    def _sibling_asked_at(self, now: float) -> float | None:
        """When another layer of this track asked for a keyframe that should bring this
        layer's too (asked in the last ``KEYFRAME_TOGETHER_S``, none seen here since)."""
        for layer in self.layers:
            asked = layer._kf_last
            if layer is not self and now - asked < KEYFRAME_TOGETHER_S and self._kf_seen_at < asked:
                return asked
        return None

    def _deferred_request(self) -> None:
        self._kf_pending = None
        if self.closed:
            return
        if self.keyframe_requested_at is None:  # one arrived meanwhile: nothing to ask for
            self._kf_reason = ""
            return
        self.request_keyframe(self._kf_reason)

    def _keyframe_seen(self) -> None:
        """The first packet of a new keyframe on this layer. One that nobody asked this layer
        for, right after another layer's request, shows that the publisher keys its layers
        together."""
        now = time.monotonic()
        if len(self.layers) > 1 and not self.keys_together and now - self._kf_last > KEYFRAME_OWN_S:
            if any(layer is not self and now - layer._kf_last < KEYFRAME_TOGETHER_S for layer in self.layers):
                for layer in self.layers:
                    layer.keys_together = True
                log.info("track %s of %s: one keyframe request keys all %d layers; requests coalesced",
                         self.group.track_id, self.classroom_id, len(self.layers))
        self._kf_seen_at = now

    def _send_keyframe_request(self) -> None:
        self._kf_pending = None
        if self.closed:
            return
        self._kf_last = time.monotonic()
        self._fir_seq = (self._fir_seq + 1) & 0xFF
        packet = rtcp.build_pli(self._rtcp_ssrc, self.ssrc)
        reason, self._kf_reason = self._kf_reason or "resync", ""
        if self._send_rtcp(packet):
            STATS.keyframe_requests_sent += 1
            field = KEYFRAME_REASONS.get(reason)
            if field is not None:
                setattr(STATS, field, getattr(STATS, field) + 1)

    def _keyframe_arrived(self) -> None:
        now = time.monotonic()
        if self.keyframe_requested_at is not None:
            wait_ms = (now - self.keyframe_requested_at) * 1000.0
            STATS.keyframe_wait.observe_ms(wait_ms)
            # one line per request (they are rare by design): what a switch waits for
            log.info("track %s of %s layer %s: keyframe %.0f ms after the request",
                     self.group.track_id, self.classroom_id, self.layer, wait_ms)
        self.keyframe_requested_at = None
        self.last_keyframe_at = now

    # -- RTCP -------------------------------------------------------------------------------

    def on_sender_report(self, sr: rtcp.SenderReport) -> None:
        self.sr_ntp = sr.ntp
        self.sr_rtp = sr.rtp_ts
        self._sr_lsr = rtcp.ntp_middle(sr.ntp)
        self._sr_arrival = time.monotonic()

    def in_timestamp_at(self, ntp: int, now_ms: int) -> int:
        """The publisher's RTP timestamp for wall-clock time ``ntp`` (for our SRs)."""
        rate = self.codec.clock_rate
        if self.sr_ntp:
            delta = (ntp - self.sr_ntp) / float(1 << 32)
            return (self.sr_rtp + int(delta * rate)) & 0xFFFFFFFF
        return (self.last_in_ts + (now_ms - self.last_arrival_ms) * rate // 1000) & 0xFFFFFFFF

    def report_block(self) -> rtcp.ReportBlock | None:
        if self._base_seq < 0:
            return None
        extended = self._cycles + self._max_seq
        expected = extended - self._base_seq + 1
        lost = max(0, expected - self.packets)
        expected_interval = expected - self._expected_prior
        received_interval = self.packets - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.packets
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        self.upstream_loss = fraction / 256.0
        if not self.is_video:
            # a receiver reports audio only every few seconds: keep its loss for 6 s
            if time.monotonic() - self.proxied_at > PROXIED_LOSS_S:
                self.proxied_loss = 0
            fraction = max(fraction, self.proxied_loss)
        dlsr = 0
        if self._sr_lsr:
            dlsr = int((time.monotonic() - self._sr_arrival) * 65536)
        return rtcp.ReportBlock(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=min(lost, 0x7FFFFF),
            highest_seq=extended,
            jitter=int(self._jitter),
            lsr=self._sr_lsr,
            dlsr=dlsr,
        )

    def close(self) -> None:
        self.closed = True
        for layer in self.layers:
            if layer is not self and not layer.closed:
                layer.close()
        if self._kf_pending is not None:
            self._kf_pending.cancel()
            self._kf_pending = None
        for down in self.down:
            down.source_closed(self)
        self.down = ()
        self._pending = ()
        self._probes = ()
