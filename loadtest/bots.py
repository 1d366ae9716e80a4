"""Media bots: classroom clients that send and receive real WebRTC media without codecs.

Both bots speak the classroom protocol (docs/protocol.md) over a real WebSocket and negotiate
real ICE, DTLS and SRTP with aiortc; neither encodes nor decodes anything.

* :class:`PublisherBot` (a ``lead`` token) publishes a camera (VP8) and a microphone (Opus):
  it replays a pre-encoded :class:`loadtest.media.Stream` packetized into RTP with correct
  timestamps (``recorder.packetize``), paced like libwebrtc (video at ``pace_factor`` × the
  stream's bitrate, a frame's packets spread out; audio unpaced), SRTP-protected and sent on
  the negotiated transport. A PLI/FIR makes it jump to the stream's next keyframe (at most once
  a second). It records each packet's send time by payload CRC32 in a :class:`SendLog`.
* :class:`SubscriberBot` (a ``remote``/``observer`` token) answers the SFU's offers and takes
  SRTP datagrams straight off its ICE socket (``sfu.glue.tap_srtp_datagrams``): it counts them
  per payload type (→ kind) and unprotects only every ``sample_every``-th one, whose payload
  CRC32 it looks up in the :class:`SendLog` to verify it and to measure publisher send →
  subscriber receive latency. That is a few µs per packet instead of aiortc's ~50.

Latency needs both bots in one process (one ``time.perf_counter`` clock); elsewhere sampled
packets count as ``unverified``.

Usage::

    stream = loadtest.media.load_stream()
    pub = PublisherBot("http://127.0.0.1:8080", lead_token, stream)
    await pub.start()                     # join, publish, wait for DTLS, start sending
    sub = SubscriberBot("http://127.0.0.1:8080", remote_token)
    await sub.start()                     # join, answer the offer
    await sub.wait_receiving()            # both kinds arriving
    sub.stats                             # BotStats: received by kind, verified, latencies
    await sub.stop(); await pub.stop()

All bots of a process share :data:`SEND_LOG` unless given their own. Counters only grow;
to measure a window take :meth:`BotStats.copy` before and subtract.
"""

from __future__ import annotations

import asyncio
import collections
import fcntl
import itertools
import json
import random
import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.media import Stream
from recorder.packetize import OpusPacketizer, VP8Packetizer
from sfu import glue, rtcp, vp8

__all__ = ["BotStats", "BotError", "PublisherBot", "SendLog", "SubscriberBot", "SEND_LOG"]


class BotError(RuntimeError):
    pass


_SIOCGSTAMPNS = 0x8907  # Linux: the kernel's receive time of a socket's last datagram
_TIMESPEC = struct.Struct("@ll")
_NO_STAMP = bytes(_TIMESPEC.size)
# time.time() - time.perf_counter(): kernel timestamps (CLOCK_REALTIME) on the perf clock
_REALTIME_TO_PERF = time.time() - time.perf_counter()


def socket_arrival_time(fd: int) -> float | None:
    """When the kernel queued the last datagram read from ``fd``, as ``time.perf_counter()``
    would have said then (None where the platform has no SIOCGSTAMPNS). This is when the
    subscriber *received* it, before the bot process, busy with 199 other subscribers, got to
    reading it."""
    try:
        sec, nsec = _TIMESPEC.unpack(fcntl.ioctl(fd, _SIOCGSTAMPNS, _NO_STAMP))
    except OSError:
        return None
    return sec + nsec * 1e-9 - _REALTIME_TO_PERF


def payload_key(payload: bytes, video: bool) -> int:
    """What a payload is recognised by at the subscriber: its CRC-32, with a VP8 descriptor's
    picture id and TL0PICIDX zeroed first — the SFU rewrites those per subscriber (sfu/vp8.py),
    so after a layer switch they differ from what was sent."""
    if video:
        d = vp8.parse(payload)
        if d.picture_id_bits or d.tl0picidx >= 0:
            payload = vp8.rewrite(payload, d, 0, 0)
    return zlib.crc32(payload)


class SendLog:
    """Payload CRC32 → send time (``time.perf_counter()``) of recently sent packets."""

    def __init__(self, horizon_s: float = 30.0) -> None:
        self.horizon_s = horizon_s
        self.times: dict[int, float] = {}
        self._order: collections.deque[tuple[float, int]] = collections.deque()

    def record(self, crc: int, t: float) -> None:
        self.times[crc] = t
        order = self._order
        order.append((t, crc))
        limit = t - self.horizon_s
        while order[0][0] < limit:
            old_t, old_crc = order.popleft()
            if self.times.get(old_crc) == old_t:
                del self.times[old_crc]


SEND_LOG = SendLog()


@dataclass
class BotStats:
    """What one bot sent or received. ``received``/``sent``: RTP packets by kind."""

    sent: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    received: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    sampled: int = 0  # received packets unprotected and checked
    verified: int = 0  # ... whose payload is one the publisher sent
    mismatched: int = 0  # ... whose payload nobody in this process sent
    unverified: int = 0  # ... sampled before SRTP keys or without a send log
    srtp_errors: int = 0
    send_failures: int = 0  # packets the transport refused (not connected, or ICE lost)
    keyframes_sent: int = 0
    keyframe_requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # publisher send → the bot reads it
    socket_latencies_ms: list[float] = field(default_factory=list)  # ... → the kernel queued it

    def copy(self) -> BotStats:
        return BotStats(
            sent=dict(self.sent),
            received=dict(self.received),
            sampled=self.sampled,
            verified=self.verified,
            mismatched=self.mismatched,
            unverified=self.unverified,
            srtp_errors=self.srtp_errors,
            send_failures=self.send_failures,
            keyframes_sent=self.keyframes_sent,
            keyframe_requests=self.keyframe_requests,
            latencies_ms=list(self.latencies_ms),
            socket_latencies_ms=list(self.socket_latencies_ms),
        )


def _ensure_ice() -> None:
    if glue._ice_addresses is None:  # nobody chose: loopback (aioice skips it by default)
        glue.configure_ice(["127.0.0.1"])


def _new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class _Signaling:
    """One classroom WebSocket: requests with ``id``, a reader task, a handler for pushes."""

    _ids = itertools.count(1)

    def __init__(self, base_url: str, token: str) -> None:
        self.url = base_url.rstrip("/").replace("http", "ws", 1) + "/ws"
        self.token = token
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.handlers: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self.joined: dict[str, Any] = {}

    async def connect(self, timeout: float = 20.0) -> dict[str, Any]:
        self.session = aiohttp.ClientSession()
        ws_timeout = aiohttp.ClientWSTimeout(ws_close=5)
        self.ws = await self.session.ws_connect(self.url, timeout=ws_timeout)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.joined = await self.request({"type": "join", "token": self.token}, timeout)
        return self.joined

    async def send(self, msg: dict[str, Any]) -> int:
        if self.ws is None:
            raise BotError("not connected")
        mid = next(self._ids)
        await self.ws.send_str(json.dumps({"v": 1, "id": mid, **msg}))
        return mid

    async def request(self, msg: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        mid = next(self._ids)
        self.pending[mid] = fut
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"v": 1, "id": mid, **msg}))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(mid, None)
        if reply.get("type") == "error":
            raise BotError(f"{msg['type']}: {reply.get('code')}: {reply.get('message')}")
        return reply

    async def _read(self) -> None:
        assert self.ws is not None
        async for m in self.ws:
            if m.type != aiohttp.WSMsgType.TEXT:
                break
            msg = json.loads(m.data)
            fut = self.pending.get(msg.get("re", -1))
            if fut is not None and not fut.done():
                fut.set_result(msg)
                continue
            if msg.get("type") == "error":
                self.errors.append(msg)
            handler = self.handlers.get(msg.get("type"))
            if handler is not None:
                try:
                    await handler(msg)
                except Exception as exc:  # a bot must not die silently: keep the reason
                    self.errors.append({"type": "error", "code": "bot", "message": repr(exc)})

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


# --- publisher ------------------------------------------------------------------------------


RID_EXT_ID = 10


def _simulcast_offer(sdp: str, mid: str) -> str:
    """aiortc's offer with the video m-line turned into a three-layer simulcast offer."""
    lines = sdp.split("\r\n")
    out: list[str] = []
    in_video = False
    for line in lines:
        if line.startswith("m="):
            if in_video:
                out += _SIMULCAST_LINES
            in_video = line.startswith("m=video")
        if in_video and line.startswith("a=ssrc"):
            continue  # a browser signals no SSRCs for RID-based simulcast
        if line == "" and in_video:
            out += _SIMULCAST_LINES
            in_video = False
        out.append(line)
    return "\r\n".join(out)


_SIMULCAST_LINES = [
    f"a=extmap:{RID_EXT_ID} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
    "a=rid:q send", "a=rid:h send", "a=rid:f send", "a=simulcast:send q;h;f",
]


class PublisherBot:
    """Publishes ``stream`` (VP8 camera + Opus microphone) with a ``lead`` (or ``remote``) token."""

    def __init__(
        self,
        url: str,
        token: str,
        stream: Stream,
        *,
        source: str = "teacher",
        pace_factor: float = 2.5,
        send_log: SendLog | None = None,
        simulcast: bool = False,
    ) -> None:
        """``simulcast``: offer the camera as three layers (RIDs q, h, f) the way a browser does.
        The stream is the top layer ``f``; ``h`` and ``q`` repeat every 3rd and every 10th of its
        packets under their own SSRCs (nobody decodes them: they cost the SFU what lower
        layers cost it, a receive and a cache entry per packet)."""
        self.simulcast = simulcast
        self.signaling = _Signaling(url, token)
        self.stream = stream
        self.source = source
        self.pace_factor = pace_factor
        self.send_log = send_log if send_log is not None else SEND_LOG
        self.stats = BotStats()
        self.pc: RTCPeerConnection | None = None
        self._raw: glue.RawTransport | None = None
        self._streams: dict[str, glue.Negotiated] = {}
        self._streams_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._kf_wanted = False
        self._kf_last = -1e9
        self._layer_count = 0
        self._layer_seq: dict[str, int] = {}

    async def start(self, timeout: float = 20.0) -> None:
        _ensure_ice()
        await self.signaling.connect(timeout)
        pc = self.pc = _new_pc()
        video = pc.addTransceiver("video", direction="sendonly")
        audio = pc.addTransceiver("audio", direction="sendonly")
        glue.prefer_codecs(video, ["video/VP8"])
        glue.prefer_codecs(audio, ["audio/opus"])
        await pc.setLocalDescription(await pc.createOffer())
        glue.send_raw(pc, self._on_stream, self._on_rtcp)
        sources = {video.mid: self.source, audio.mid: self.source}
        sdp = pc.localDescription.sdp
        if self.simulcast:
            sdp = _simulcast_offer(sdp, str(video.mid))
        reply = await self.signaling.request({"type": "publish", "sdp": sdp, "sources": sources}, timeout)
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        self._raw = glue.raw_transport(pc)
        deadline = time.monotonic() + timeout
        while not (self._raw is not None and self._raw.connected and len(self._streams) == 2):
            if time.monotonic() > deadline:
                raise BotError(f"publisher: not connected after {timeout} s ({pc.connectionState})")
            await asyncio.sleep(0.02)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def _on_stream(self, neg: glue.Negotiated) -> None:
        self._streams[neg.kind] = neg

    def _on_rtcp(self, data: bytes) -> None:
        try:
            for record in rtcp.parse(data):
                if isinstance(record, rtcp.KeyframeRequest):
                    self.stats.keyframe_requests += 1
                    self._kf_wanted = True
        except rtcp.RtcpError:
            pass

    def _send(self, packet: bytes, kind: str) -> None:
        # our packetizers write no CSRC, extension or padding: the payload starts at 12
        self.send_log.record(payload_key(packet[12:], kind == "video"), time.perf_counter())
        assert self._raw is not None
        if kind == "video" and self.simulcast:
            self._send_layers(packet)
            return
        if self._raw.send_rtp(packet):
            self.stats.sent[kind] += 1
        else:
            self.stats.send_failures += 1

    def _send_layers(self, packet: bytes) -> None:
        """The top layer's packet with its RID, and now and then one for each lower layer."""
        assert self._raw is not None
        self._layer_count += 1
        for rid, ssrc, every in (("f", 0, 1), ("h", 0x51A1, 3), ("q", 0x51A2, 10)):
            if self._layer_count % every:
                continue
            seq = self._layer_seq.get(rid, 0)
            self._layer_seq[rid] = (seq + 1) & 0xFFFF
            head = bytearray(packet[:12])
            head[0] |= 0x10  # X: one-byte header extensions (RFC 8285)
            if ssrc:
                head[2:4] = seq.to_bytes(2, "big")
                head[8:12] = ssrc.to_bytes(4, "big")
            ext = bytes([0xBE, 0xDE, 0, 1, (RID_EXT_ID << 4), ord(rid), 0, 0])
            if self._raw.send_rtp(bytes(head) + ext + packet[12:]):
                if rid == "f":
                    self.stats.sent["video"] += 1
            else:
                self.stats.send_failures += 1

    async def _run(self) -> None:
        stream, spec = self.stream, self.stream.spec
        vneg, aneg = self._streams["video"], self._streams["audio"]
        vp = VP8Packetizer(payload_type=vneg.codecs[0].payload_type, ssrc=vneg.ssrcs[0])
        ap = OpusPacketizer(payload_type=aneg.codecs[0].payload_type, ssrc=aneg.ssrcs[0])
        keyframes = stream.keyframe_indexes()
        v_ts0, a_ts0 = random.getrandbits(31), random.getrandbits(31)
        frame_dt, audio_dt = 1.0 / spec.fps, spec.audio_frame_ms / 1000.0
        v_step, a_step = 90000 // spec.fps, spec.audio_rate * spec.audio_frame_ms // 1000
        pace = self.pace_factor * stream.video_bitrate / 8.0  # bytes per second
        queue: collections.deque[bytes] = collections.deque()
        perf = time.perf_counter
        t0 = perf()
        next_video = next_audio = free_at = t0
        vi = ai = vidx = aidx = 0
        next_sr = t0 + 1.0
        while True:
            now = perf()
            while next_audio <= now:
                for p in ap.packetize(stream.audio[aidx], (a_ts0 + ai * a_step) & 0xFFFFFFFF):
                    self._send(p, "audio")
                ai += 1
                aidx = (aidx + 1) % len(stream.audio)
                next_audio += audio_dt
            while next_video <= now:
                if self._kf_wanted and now - self._kf_last >= 1.0:
                    self._kf_wanted = False
                    self._kf_last = now
                    if not stream.keyframes[vidx]:
                        vidx = next((k for k in keyframes if k > vidx), keyframes[0])
                if stream.keyframes[vidx]:
                    self.stats.keyframes_sent += 1
                queue.extend(vp.packetize(stream.video[vidx], (v_ts0 + vi * v_step) & 0xFFFFFFFF))
                vi += 1
                vidx = (vidx + 1) % len(stream.video)
                next_video += frame_dt
            while queue and free_at <= now:
                p = queue.popleft()
                self._send(p, "video")
                free_at = max(free_at, now) + len(p) / pace
            if now >= next_sr:
                next_sr += 1.0
                self._sender_reports(vp, ap, now - t0, v_ts0, a_ts0)
            wake = min(next_audio, next_video, free_at if queue else next_video)
            await asyncio.sleep(max(0.0, wake - perf()))

    def _sender_reports(
        self, vp: VP8Packetizer, ap: OpusPacketizer, elapsed: float, v_ts0: int, a_ts0: int
    ) -> None:
        assert self._raw is not None
        ntp = rtcp.ntp_now()
        report = rtcp.build_sr(
            vp.ssrc, ntp, v_ts0 + int(elapsed * 90000), vp.packet_count, vp.octet_count
        ) + rtcp.build_sr(
            ap.ssrc,
            ntp,
            a_ts0 + int(elapsed * self.stream.spec.audio_rate),
            ap.packet_count,
            ap.octet_count,
        )
        self._raw.send_rtcp(report)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.signaling.close()
        if self.pc is not None:
            await self.pc.close()


# --- subscriber --------------------------------------------------------------------------------


BOT_RECEIVE_BUFFER = 1 << 20


def _grow_receive_buffer(fd: int) -> None:
    """A 1-MiB receive buffer for a bot's socket (the kernel caps it at net.core.rmem_max): one
    bot process drains 200 sockets, and a keyframe's burst to all of them at once overflowed
    the 208-KiB default on this machine's kernel (UdpRcvbufErrors), counted as the SFU's loss."""
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BOT_RECEIVE_BUFFER)
    except OSError:
        pass
    finally:
        sock.detach()


class SubscriberBot:
    """Receives what the SFU offers; counts every packet, verifies every ``sample_every``-th."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        sample_every: int = 10,
        send_log: SendLog | None = None,
    ) -> None:
        self.signaling = _Signaling(url, token)
        self.signaling.handlers["subscribe_offer"] = self._on_offer
        self.signaling.handlers["tracks"] = self._on_tracks
        self.sample_every = max(1, sample_every)
        self.send_log = send_log if send_log is not None else SEND_LOG
        self.pc: RTCPeerConnection | None = None
        self.tracks: list[dict[str, Any]] = []
        self.offers = 0
        self._pt_counts = [0] * 128
        self._pt_kind: dict[int, str] = {}
        self._countdown = self.sample_every
        self._unprotect: Any = None
        self._fd = -1  # the one bundled ICE socket, for kernel arrival times
        self._stats = BotStats()

    @property
    def stats(self) -> BotStats:
        received = {"video": 0, "audio": 0}
        for pt, kind in self._pt_kind.items():
            received[kind] = received.get(kind, 0) + self._pt_counts[pt]
        self._stats.received = received
        return self._stats

    @property
    def received_packets(self) -> int:
        return sum(self._pt_counts)

    async def start(self, timeout: float = 20.0) -> None:
        _ensure_ice()
        await self.signaling.connect(timeout)

    async def _on_tracks(self, msg: dict[str, Any]) -> None:
        self.tracks = msg["tracks"]

    async def _on_offer(self, msg: dict[str, Any]) -> None:
        self.offers += 1
        self.tracks = msg["tracks"]
        if self.pc is None:
            self.pc = _new_pc()
        pc = self.pc
        await pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer"))
        glue.receive_raw(pc, self._on_stream, lambda data, ms: None, lambda data: None)
        await pc.setLocalDescription(await pc.createAnswer())
        if not glue.tap_srtp_datagrams(pc, self._on_srtp):
            raise BotError("subscriber: no ICE socket to tap")
        fds = glue.ice_socket_fds(pc)
        self._fd = fds[0] if len(fds) == 1 else -1
        for fd in fds:
            _grow_receive_buffer(fd)
        await self.signaling.send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})

    def _on_stream(self, neg: glue.Negotiated) -> None:
        for c in neg.codecs:
            self._pt_kind[c.payload_type & 0x7F] = neg.kind

    # Hot path: one SRTP datagram, still encrypted.
    def _on_srtp(self, data: bytes) -> None:
        self._pt_counts[data[1] & 0x7F] += 1
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = self.sample_every
            now = time.perf_counter()
            self._sample(data, now, socket_arrival_time(self._fd) if self._fd >= 0 else None)

    def _sample(self, data: bytes, now: float, arrived: float | None = None) -> None:
        st = self._stats
        st.sampled += 1
        unprotect = self._unprotect
        if unprotect is None:
            unprotect = self._unprotect = glue.srtp_unprotect(self.pc) if self.pc else None
            if unprotect is None:
                st.unverified += 1
                return
        try:
            rtp = unprotect(data)
        except Exception:  # pylibsrtp.Error: authentication or replay failure
            st.srtp_errors += 1
            return
        b0 = rtp[0]
        off = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            off += 4 + 4 * int.from_bytes(rtp[off + 2 : off + 4], "big")
        end = len(rtp) - rtp[-1] if b0 & 0x20 else len(rtp)
        sent = self.send_log.times.get(payload_key(rtp[off:end], self._pt_kind.get(rtp[1] & 0x7F) == "video"))
        if sent is None:
            if self.send_log.times:
                st.mismatched += 1
            else:
                st.unverified += 1
            return
        st.verified += 1
        st.latencies_ms.append((now - sent) * 1000.0)
        if arrived is not None:
            st.socket_latencies_ms.append((arrived - sent) * 1000.0)

    def mids(self, kind: str | None = None) -> list[str]:
        return [t["mid"] for t in self.tracks if t.get("track_id") and kind in (None, t["kind"])]

    async def wait_receiving(
        self, kinds: tuple[str, ...] = ("video", "audio"), packets: int = 1, timeout: float = 20.0
    ) -> None:
        """Until at least ``packets`` RTP packets of each of ``kinds`` have arrived."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.stats.received
            if all(received.get(k, 0) >= packets for k in kinds):
                return
            if time.monotonic() > deadline:
                pc = self.pc
                raise BotError(
                    f"subscriber: received {received} after {timeout} s "
                    f"({self.received_packets} SRTP datagrams, {self.offers} offers, "
                    f"connection {pc.connectionState if pc else None}, "
                    f"ICE {pc.iceConnectionState if pc else None}); "
                    f"errors {self.signaling.errors[-3:]}"
                )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.signaling.close()
        if self.pc is not None:
            await self.pc.close()
