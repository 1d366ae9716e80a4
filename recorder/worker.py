"""The live recorder: joins a lesson as the ``recorder`` participant and records every track.

It speaks the classroom protocol (docs/protocol.md) like any subscriber: ``join`` with a
recorder-role token, answer each ``subscribe_offer`` with an aiortc ``RTCPeerConnection``.
aiortc's receive path (jitter buffer, decoder) is replaced by ``sfu.glue.receive_raw``, which
hands over the decrypted RTP/RTCP; from there the packets go to :class:`RecordingSession`
unchanged — no decoding, no encoding. Which classroom and source each m-line (mid) carries comes
from the ``tracks`` list of ``subscribe_offer``/``tracks``; when a mid starts carrying another
track, the old file is closed and a new one begins. ``floor`` and ``participant_*`` messages
become the manifest's event timeline. Keyframe requests go back to the SFU as RTCP PLI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from recorder.core import RecordingSession, safe_name
from recorder.depacketize import build_nack, build_pli

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.02
RTCP_SSRC = 0x5EC0D000  # our SSRC as the sender of feedback
SUPPORTED = {"video/vp8": "vp8", "audio/opus": "opus", "video/h264": "h264"}
NOTE_EVENT = "observation_note"


# ``classroom record`` exits with this when the recording directory is full (not restarted).
EXIT_DISK_FULL = 3


class WorkerError(RuntimeError):
    pass


@dataclass
class _Mid:
    mid: str
    kind: str = ""
    codec: str | None = None
    clock_rate: int = 0
    ssrcs: list[int] = field(default_factory=list)
    up_track_id: str | None = None  # the SFU's track id this mid carries now
    classroom_id: str | None = None
    source: str | None = None
    recording: str | None = None  # our track id in the session
    recorded_up: str | None = None  # the SFU track id that recording belongs to


class LiveRecorder:
    """Protocol + media handling of one recorder connection (testable without a CLI)."""

    def __init__(
        self,
        url: str,
        token: str,
        data_dir: Path,
        out: Path | None = None,
        segment_seconds: float = 2.0,
        ice_addresses: list[str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.data_dir = data_dir
        self.out = out
        self.segment_seconds = segment_seconds
        self.ice_addresses = ice_addresses or ["127.0.0.1"]
        self.session: RecordingSession | None = None
        self.joined: dict[str, Any] = {}
        self.mids: dict[str, _Mid] = {}
        self._by_ssrc: dict[int, _Mid] = {}
        self._pc: Any = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1
        self.stopped = asyncio.Event()
        self.errors: list[str] = []
        self.offers = 0
        self.unrouted_packets = 0
        self.packets = 0
        self.packets_routed = 0
        self.disk_full = False  # stopped because the recording directory is full
        self._stop: asyncio.Event | None = None
        self._started = time.monotonic()
        self._marked: set[str] = set()

    def _mark(self, step: str) -> None:
        """One step of the recorder's start-up timeline, once, at INFO, with the time since its start
        (``recording.log_level: INFO`` shows them in the node's log; docs/operations.md)."""
        if step not in self._marked:
            self._marked.add(step)
            log.info("recorder timeline: %s at +%.3f s", step, time.monotonic() - self._started)

    # ------------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> int:
        from sfu import glue

        glue.configure_ice(self.ice_addresses)
        self._stop = stop
        try:
            async with aiohttp.ClientSession() as http:
                try:
                    self._ws = await http.ws_connect(self.url, heartbeat=20)
                except (aiohttp.ClientError, OSError) as exc:
                    raise WorkerError(f"cannot connect to {self.url}: {exc}") from exc
                self._mark("signaling connected")
                await self._send({"type": "join", "token": self.token})
                reader = asyncio.create_task(self._read())
                poller = asyncio.create_task(self._poll())
                stopper = asyncio.create_task(stop.wait())
                done, _ = await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
                poller.cancel()
                for task in (reader, stopper):
                    if task not in done:
                        task.cancel()
                failure = reader.exception() if reader in done else None
                if failure is not None:
                    raise failure
                if self._ws is not None and not self._ws.closed:
                    try:
                        await self._send({"type": "leave"})
                    except (aiohttp.ClientError, ConnectionError, RuntimeError):
                        pass
                    await self._ws.close()
        finally:
            await self._shutdown()
        if self.disk_full:
            return EXIT_DISK_FULL
        if self.errors and self.session is None:
            return 1
        return 0

    async def _shutdown(self) -> None:
        if self.session is not None:
            self.session.close()
        if self._pc is not None:
            try:
                await self._pc.close()
            except Exception:  # closing a half-negotiated connection may fail; nothing to save
                pass
        self.stopped.set()

    async def _send(self, msg: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            return
        await self._ws.send_str(json.dumps({"v": 1, "id": self._next_id, **msg}))
        self._next_id += 1

    # ---------------------------------------------------------------------- signaling
    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            try:
                msg = json.loads(message.data)
                await self._handle(msg)
            except WorkerError:
                raise
            except Exception as exc:  # one bad message must not end the recording
                log.exception("recorder: cannot handle a message: %s", exc)
                self.errors.append(str(exc))

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        log.debug("recorder: <- %s", kind if kind != "floor" else msg.get("event"))
        if kind == "joined":
            self._on_joined(msg)
        elif kind == "error":
            text = f"{msg.get('code')}: {msg.get('message')}"
            self.errors.append(text)
            if self.session is None:
                raise WorkerError(f"the server refused the recorder: {text}")
            log.warning("recorder: server error %s", text)
        elif kind == "subscribe_offer":
            await self._on_offer(msg)
        elif kind == "tracks":
            self._on_tracks(msg.get("tracks") or [])
        elif kind == "floor":
            self._on_floor(msg)
        elif kind == "participant_joined":
            self._add_participant(msg.get("participant") or {})
        elif kind == "note":
            self._on_note(msg.get("note"))

    def _on_joined(self, msg: dict[str, Any]) -> None:
        self.joined = msg
        self._mark("joined")
        lesson_id = str(msg.get("lesson_id") or "lesson")
        out = self.out or self.data_dir / "recordings" / safe_name(lesson_id)
        self.session = RecordingSession(
            out,
            lesson_id,
            str(msg.get("lesson_title") or ""),
            segment_seconds=self.segment_seconds,
        )
        log.info("recorder: recording lesson %s into %s", lesson_id, out)
        for participant in msg.get("participants") or []:
            self._add_participant(participant)
            if participant.get("role") in ("lead", "remote"):
                self.session.event("join", str(participant.get("classroom_id")), t_ms=0)
        floor = msg.get("floor") or {}
        for classroom in floor.get("queue") or []:
            self.session.event("hand_raised", str(classroom), t_ms=0)
        for classroom in floor.get("granted") or []:
            self.session.event("floor_granted", str(classroom), t_ms=0)
        for classroom in floor.get("muted") or []:
            self.session.event("mute", str(classroom), t_ms=0)
        if floor.get("spotlight"):
            self.session.event("spotlight", str(floor["spotlight"]), t_ms=0)

    def _add_participant(self, participant: dict[str, Any]) -> None:
        if self.session is None:
            return
        role = participant.get("role")
        if role in ("lead", "remote") and participant.get("classroom_id"):
            self.session.add_classroom(str(participant["classroom_id"]), str(role), str(participant.get("name") or ""))

    def _on_floor(self, msg: dict[str, Any]) -> None:
        event = msg.get("event")
        if self.session is None or not isinstance(event, dict) or not event.get("type"):
            return
        extra: dict[str, Any] = {}
        if event.get("by") is not None:
            extra["by"] = event["by"]
        if isinstance(event.get("reason"), str):  # hand_lowered: why (docs/recording-format.md)
            extra["reason"] = event["reason"]
        classroom = event.get("classroom_id")
        self.session.event(str(event["type"]), None if classroom is None else str(classroom), **extra)

    def _on_note(self, note: Any) -> None:
        """An observer's note becomes an ``observation_note`` event, placed on this recording's
        timeline by the server's clock time of the note (``at_ms``) — the same mapping the
        server used for the ``t_ms`` it answered (docs/recording-format.md)."""
        session = self.session
        if session is None or not isinstance(note, dict) or not isinstance(note.get("text"), str):
            return
        at_ms = note.get("at_ms")
        if not isinstance(at_ms, int) or isinstance(at_ms, bool):
            return
        if any(e.type == NOTE_EVENT and e.extra.get("note_id") == note.get("id") for e in session.events):
            return  # the same note again (a relay after a reconnect)
        score = note.get("score")
        session.event(
            NOTE_EVENT, None, t_ms=round(at_ms - session.start_unix * 1000),
            author=str(note.get("author") or ""), text=note["text"],
            dimension=note["dimension"] if isinstance(note.get("dimension"), str) else None,
            score=score if isinstance(score, int) and not isinstance(score, bool) else None,
            note_id=str(note.get("id") or ""), moment=bool(note.get("moment")),
        )  # fmt: skip

    async def _on_offer(self, msg: dict[str, Any]) -> None:
        from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

        from sfu import glue

        if self.session is None:
            raise WorkerError("subscribe_offer before joined")
        self.offers += 1
        self._mark("subscribe offer")
        if self._pc is None:
            self._pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))

            @self._pc.on("connectionstatechange")
            def _state() -> None:
                if self._pc is not None:
                    self._mark(f"connection {self._pc.connectionState}")

        pc = self._pc
        await pc.setRemoteDescription(RTCSessionDescription(str(msg.get("sdp")), "offer"))
        glue.receive_raw(pc, self._on_stream, self._on_rtp, self._on_rtcp)
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        glue.guard_datagrams(pc)  # a stray datagram at the recorder's port must not end its receive loop
        glue.receive_raw(pc, self._on_stream, self._on_rtp, self._on_rtcp)
        await self._send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})
        self._mark("subscribe answer sent")
        self._on_tracks(msg.get("tracks") or [])

    def _on_stream(self, neg: Any) -> None:
        entry = self.mids.setdefault(neg.mid, _Mid(neg.mid))
        entry.kind = neg.kind
        if neg.codecs:
            codec = neg.codecs[0]
            entry.codec = SUPPORTED.get(codec.mime)
            entry.clock_rate = codec.clock_rate
            if entry.codec is None:
                log.warning("recorder: mid %s has codec %s, not recorded", neg.mid, codec.mime)
        for ssrc in neg.ssrcs:
            if ssrc not in entry.ssrcs:
                entry.ssrcs.append(ssrc)
            self._by_ssrc[ssrc] = entry
        self._sync_mid(entry)

    def _on_tracks(self, tracks: list[dict[str, Any]]) -> None:
        for item in tracks:
            if not isinstance(item, dict) or not item.get("mid"):
                continue
            entry = self.mids.setdefault(str(item["mid"]), _Mid(str(item["mid"])))
            entry.kind = str(item.get("kind") or entry.kind)
            track_id = item.get("track_id")
            entry.up_track_id = None if track_id is None else str(track_id)
            entry.classroom_id = item.get("classroom_id")
            entry.source = item.get("source")
            self._sync_mid(entry)

    def _sync_mid(self, entry: _Mid) -> None:
        """Start/stop the session track so that it matches what the mid carries now."""
        session = self.session
        if session is None:
            return
        current = session.tracks.get(entry.recording) if entry.recording else None
        wanted_key = entry.up_track_id
        if current is not None and entry.recorded_up != wanted_key:
            session.end_track(current.info.track_id)
            entry.recording = None
            current = None
        if current is None and wanted_key and entry.codec and entry.classroom_id:
            kind = entry.kind or ("audio" if entry.codec == "opus" else "video")
            name = f"{entry.classroom_id}-{entry.source or 'unknown'}-{kind}"
            track = session.add_track(
                name,
                kind,
                entry.codec,
                str(entry.classroom_id),
                str(entry.source or "teacher"),
                clock_rate=entry.clock_rate or None,
            )
            entry.recording = track.info.track_id
            entry.recorded_up = wanted_key
            log.info("recorder: mid %s -> %s", entry.mid, entry.recording)

    # -------------------------------------------------------------------------- media
    def _on_rtp(self, data: bytes, arrival_ms: int) -> None:
        if self.session is None or len(data) < 12:
            return
        self.packets += 1
        (ssrc,) = struct.unpack_from("!I", data, 8)
        entry = self._by_ssrc.get(ssrc)
        if entry is None or entry.recording is None:
            self.unrouted_packets += 1
            return
        if self.packets_routed == 0:
            self._mark("first RTP packet")
        self.packets_routed += 1
        self.session.rtp(entry.recording, data)

    def _on_rtcp(self, data: bytes) -> None:
        if self.session is not None:
            self.session.rtcp(data)

    async def _poll(self) -> None:
        from sfu import glue

        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if self.session is None:
                continue
            try:
                wanted = self.session.poll()
            except Exception as exc:
                log.exception("recorder: poll failed: %s", exc)
                continue
            if self.session.disk_full is not None and self._stop is not None and not self._stop.is_set():
                self.disk_full = True
                log.error("recorder: the recording directory %s is full (%s): recording stopped; what is "
                          "on disk is kept", self.session.directory, self.session.disk_full.strerror)
                self._stop.set()
                continue
            nacks = self.session.take_nacks()
            if (not wanted and not nacks) or self._pc is None:
                continue
            transport = glue.raw_transport(self._pc)
            if transport is None:
                continue
            for track_id in wanted:
                for ssrc in self._ssrcs_of(track_id):
                    transport.send_rtcp(build_pli(RTCP_SSRC, ssrc))
            for track_id, sequences in nacks.items():
                for ssrc in self._ssrcs_of(track_id)[:1]:
                    transport.send_rtcp(build_nack(RTCP_SSRC, ssrc, sequences))

    def _ssrcs_of(self, track_id: str) -> list[int]:
        entry = next((m for m in self.mids.values() if m.recording == track_id), None)
        return sorted(set(entry.ssrcs)) if entry is not None else []


async def run_worker(
    url: str,
    token: str,
    data_dir: Path,
    out: Path | None = None,
    segment_seconds: float = 2.0,
    duration: float | None = None,
    ice_addresses: list[str] | None = None,
) -> int:
    """``classroom record --url --token``: record until stopped (signal, --duration, lesson end)."""
    from recorder.cli import install_stop_handlers
    from sfu import glue

    glue.forbid_codecs()  # the recorder must never encode or decode: make it loud if it tries
    stop = asyncio.Event()
    install_stop_handlers(stop)
    if duration:
        asyncio.get_running_loop().call_later(duration, stop.set)
    recorder = LiveRecorder(url, token, data_dir, out, segment_seconds, ice_addresses)
    started = time.monotonic()
    try:
        code = await recorder.run(stop)
    except WorkerError as exc:
        log.error("recorder: %s", exc)
        return 1
    session = recorder.session
    if session is not None:
        manifest = session.manifest()
        print(f"recorded {len(manifest.tracks)} track(s) in {time.monotonic() - started:.0f} s: {session.directory}")
    return code
