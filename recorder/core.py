"""The recorder core: RTP/RTCP bytes in, segmented track files plus ``manifest.json`` out.

Independent of how packets arrive (the live worker taps them from the SFU's peer connection,
the tests generate them). Per track: reorder buffer → depacketizer → writer. Sequence gaps drop
the broken frame and (for video) everything up to the next keyframe, which the caller is asked
to request with a PLI (:meth:`RecordingSession.poll` returns the tracks that need one).

Timing: inside a file, timestamps come from the RTP timestamps (unwrapped), so a file has no
jitter. Where a file begins on the lesson's timeline (``start_ms``) comes from the first RTCP
sender report of the track (NTP ↔ RTP), using one clock offset per classroom so its audio and
video line up; before any sender report, from the arrival time of the first frame.
"""

from __future__ import annotations

import errno
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recorder.depacketize import (
    Depacketizer,
    RtpError,
    RtpPacket,
    SenderReport,
    depacketizer_for,
    is_rtcp,
    parse_rtp,
    parse_sender_reports,
)
from recorder.jitter import Gap, JitterBuffer
from recorder.manifest import (
    ClassroomEntry,
    EventEntry,
    Manifest,
    SegmentEntry,
    TrackEntry,
    write_manifest,
)
from recorder.writer import TrackWriter

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_MIN_INTERVAL = 1.0


@dataclass
class TrackStats:
    packets: int = 0
    bad_packets: int = 0
    frames: int = 0
    dropped_frames: int = 0
    gaps: int = 0
    keyframe_requests: int = 0
    nacks: int = 0
    write_errors: int = 0


class _Unwrapper:
    """32-bit RTP timestamps to a monotonic-ish 64-bit timeline."""

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, ts: int) -> int:
        if self._last is None:
            self._last = ts
            return ts
        delta = (ts - self._last) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        self._last += delta
        return self._last

    def peek(self, ts: int) -> int | None:
        if self._last is None:
            return None
        delta = (ts - self._last) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        return self._last + delta


@dataclass
class TrackInfo:
    track_id: str
    kind: str
    codec: str
    classroom_id: str
    source: str
    clock_rate: int


class TrackRecorder:
    def __init__(
        self,
        info: TrackInfo,
        root: Path,
        segment_seconds: float,
        jitter_wait: float,
        clock_offset: Callable[[str, float, float], float],
        keyframe_interval: float = 1.0,
    ) -> None:
        self.info = info
        self.stats = TrackStats()
        self.depacketizer: Depacketizer = depacketizer_for(info.codec)
        self.jitter = JitterBuffer(max_wait=jitter_wait)
        self.writer = TrackWriter(root, info.track_id, info.kind, info.codec, info.clock_rate, segment_seconds)
        self.ssrcs: set[int] = set()
        self._clock_offset = clock_offset
        self._keyframe_interval = keyframe_interval
        self._waiting_keyframe = info.kind == "video"
        self._keyframe_wanted = info.kind == "video"
        self._last_keyframe_request = -1e18
        self._unwrap = _Unwrapper()
        self._first_ts: int | None = None  # unwrapped RTP ts of pts 0 (current epoch)
        self._epoch_offset = 0  # pts of the current epoch's first frame
        self._last_pts = 0
        self._last_arrival = 0.0
        self._rebase = False
        self._pending_sr: SenderReport | None = None
        self._sr_arrival = 0.0
        # Unix time of pts 0: from arrival first, from a sender report once one is known.
        self.start_unix: float | None = None
        self.first_frame_unix: float | None = None  # when its first frame was written (clock time)
        self.start_from_sr = False
        self.ended = False
        # set when the disk is full: nothing more is written for this track
        self.disk_full: OSError | None = None

    # ------------------------------------------------------------------------------- input
    def on_rtp(self, packet: RtpPacket, now: float) -> None:
        if self.ended:
            return
        self.stats.packets += 1
        self.ssrcs.add(packet.ssrc)
        self._process(self.jitter.push(packet, now), now)

    def on_sender_report(self, report: SenderReport, now: float) -> None:
        if self.start_from_sr or self.ended:
            return
        if self._first_ts is None or self._rebase:
            self._pending_sr, self._sr_arrival = report, now
            return
        self._apply_sr(report, now)

    def _apply_sr(self, report: SenderReport, now: float) -> None:
        ext = self._unwrap.peek(report.rtp_timestamp)
        if ext is None or self._first_ts is None:
            return
        sr_pts = ext - self._first_ts + self._epoch_offset
        offset = self._clock_offset(self.info.classroom_id, report.unix_seconds, now)
        self.start_unix = report.unix_seconds + offset - sr_pts / self.info.clock_rate
        self.start_from_sr = True

    def poll(self, now: float) -> None:
        if not self.ended:
            self._process(self.jitter.poll(now), now)

    def _process(self, items: list[RtpPacket | Gap], now: float) -> None:
        for item in items:
            if isinstance(item, Gap):
                self._on_gap(item, now)
                continue
            try:
                frames = self.depacketizer.push(item)
            except RtpError as exc:
                self.stats.bad_packets += 1
                log.debug("track %s: bad payload: %s", self.info.track_id, exc)
                self._on_gap(Gap(1), now)
                continue
            for frame in frames:
                self._on_frame(frame.data, frame.timestamp, frame.keyframe, frame.width, frame.height, now)

    def _on_gap(self, gap: Gap, now: float) -> None:
        self.stats.gaps += 1
        self.depacketizer.reset()
        if gap.lost == 0:  # restarted stream: new timestamp base
            self._unwrap = _Unwrapper()
            if self._first_ts is not None:
                self._rebase = True
        if self.info.kind == "video":
            self._waiting_keyframe = True
            self._keyframe_wanted = True

    def _on_frame(self, data: bytes, timestamp: int, keyframe: bool, width: int, height: int, now: float) -> None:
        if self._waiting_keyframe and not keyframe:
            self.stats.dropped_frames += 1
            self._keyframe_wanted = True
            return
        self._waiting_keyframe = False
        ext = self._unwrap.unwrap(timestamp)
        if self._first_ts is None:
            self._first_ts = ext
            self.start_unix = now
        elif self._rebase:
            self._rebase = False
            gap_ticks = max(1, int((now - self._last_arrival) * self.info.clock_rate))
            self._epoch_offset = self._last_pts + gap_ticks
            self._first_ts = ext
        pts = ext - self._first_ts + self._epoch_offset
        if pts < self._last_pts and self.stats.frames:
            self.stats.dropped_frames += 1  # older than what is written: cannot go back
            return
        if self.disk_full is not None:
            self.stats.dropped_frames += 1
            return
        try:
            written = self.writer.write(data, pts, keyframe, width, height, now)
        except OSError as exc:
            self.stats.write_errors += 1
            if is_disk_full(exc):
                self.disk_full = exc
                log.error("track %s: the recording directory is full: %s", self.info.track_id, exc)
            else:
                log.warning("track %s: write failed: %s", self.info.track_id, exc)
            return
        except Exception as exc:  # muxer errors must not stop the other tracks
            self.stats.write_errors += 1
            log.warning("track %s: write failed: %s", self.info.track_id, exc)
            return
        if not written:
            self.stats.dropped_frames += 1
            return
        self.stats.frames += 1
        if self.stats.frames == 1:  # the recorder's start-up timeline (docs/operations.md, node death)
            self.first_frame_unix = now
            log.info("track %s: first frame written (%s)", self.info.track_id,
                     "keyframe" if keyframe else self.info.kind)
        self._last_pts = pts
        self._last_arrival = now
        if self._pending_sr is not None:
            report, arrival = self._pending_sr, self._sr_arrival
            self._pending_sr = None
            self._apply_sr(report, arrival)
        if self.writer.wants_keyframe:
            self._keyframe_wanted = True

    # ------------------------------------------------------------------------------ output
    def keyframe_request_due(self, now: float) -> bool:
        if self.info.kind != "video" or self.ended or not self._keyframe_wanted:
            return False
        if now - self._last_keyframe_request < self._keyframe_interval:
            return False
        self._last_keyframe_request = now
        self._keyframe_wanted = False
        self.stats.keyframe_requests += 1
        return True

    def nacks(self) -> list[int]:
        """Video packets to ask again for (the SFU keeps a packet cache for video)."""
        if self.info.kind != "video" or self.ended:
            return []
        lost = self.jitter.missing()
        self.stats.nacks += len(lost)
        return lost

    def end(self, now: float) -> None:
        if self.ended:
            return
        self._process(self.jitter.flush(), now)
        self.ended = True
        self.writer.close()

    def entry(self, lesson_start_unix: float) -> TrackEntry | None:
        if self.start_unix is None or not self.writer.segments:
            return None
        start = round((self.start_unix - lesson_start_unix) * 1000)
        segments = [
            SegmentEntry(s.file, start + round(s.start_ms), start + round(s.end_ms)) for s in self.writer.segments
        ]
        return TrackEntry(
            id=self.info.track_id,
            file=self.writer.file if self.ended else self.writer.segments[0].file,
            kind=self.info.kind,
            codec=self.info.codec,
            classroom_id=self.info.classroom_id,
            source=self.info.source,
            start_ms=start,
            end_ms=start + round(self.writer.end_ms),
            segments=segments,
            complete=self.ended,
        )


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str) -> str:
    name = _SAFE.sub("_", text).strip("._")
    return name[:80] or "track"


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


# Event written when a recording is resumed in its directory (docs/recording-format.md).
GAP_EVENT = "recorder_gap"
DEFAULT_CLOCK_RATES = {"opus": 48000, "vp8": 90000, "h264": 90000}


class RecordingSession:
    """One lesson's recording: tracks, classrooms, events, manifest."""

    def __init__(
        self,
        directory: Path,
        lesson_id: str,
        title: str = "",
        segment_seconds: float = 2.0,
        manifest_interval: float = 2.0,
        jitter_wait: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.start_unix = clock()
        self.segment_seconds = segment_seconds
        self.manifest_interval = manifest_interval
        self.jitter_wait = jitter_wait
        self.lesson_id = lesson_id
        self.title = title
        self.classrooms: dict[str, ClassroomEntry] = {}
        self.tracks: dict[str, TrackRecorder] = {}
        self.events: list[EventEntry] = []
        self.bad_packets = 0
        self.closed = False
        # The first "no space left" error: the recorder should stop (what is on disk stays).
        self.disk_full: OSError | None = None
        self._by_ssrc: dict[int, TrackRecorder] = {}
        self._offsets: dict[str, float] = {}
        self._last_manifest = -1e18
        self._manifest_segments = 0
        self._end_unix: float | None = None
        # Tracks of an earlier recorder run in this directory (it crashed or was restarted).
        self.previous_tracks: list[TrackEntry] = []
        # The gap event of a resumed recording, open until this run writes its first frame.
        self._open_gap: EventEntry | None = None
        if (directory / MANIFEST_NAME).exists():
            self._resume()
        self.write_manifest()

    def _resume(self) -> None:
        """Continue an earlier run's recording: same timeline, its tracks and events kept."""
        from recorder.manifest import ManifestError
        from recorder.repair import repair_recording

        try:
            previous = repair_recording(self.directory)
        except (ManifestError, OSError) as exc:
            log.warning("cannot resume the recording in %s (%s): starting anew", self.directory, exc)
            backup = self.directory / f"{MANIFEST_NAME}.broken-{int(self.start_unix)}"
            (self.directory / MANIFEST_NAME).replace(backup)
            return
        if previous.lesson_id != self.lesson_id:
            raise ValueError(f"{self.directory} holds lesson {previous.lesson_id!r}, not {self.lesson_id!r}")
        self.start_unix = previous.started_at.timestamp()
        self.title = self.title or previous.title
        self.previous_tracks = previous.tracks
        for classroom in previous.classrooms:
            self.classrooms[classroom.id] = classroom
        self.events = list(previous.events)
        # The time between what the earlier run left and now was not recorded: say so.
        resumed_ms = max(0, round((self.clock() - self.start_unix) * 1000))
        # from the end of the last frame the earlier run wrote (what a recorder killed -9 had not
        # written yet is lost too; a recorder stopped by SIGTERM closes some time after its last packet)
        last = max((t.end_ms for t in previous.tracks), default=previous.duration_ms)
        gap_from = min(last, resumed_ms)
        # end_ms is moved to this run's first written frame (``_close_gap``): until then (joining,
        # subscribing, ICE/DTLS, the first keyframe) nothing is recorded either
        self._open_gap = self.event(
            GAP_EVENT, None, t_ms=gap_from, end_ms=resumed_ms,
            cause="recorder_restarted" if previous.complete else "recorder_died",
        )  # fmt: skip
        log.info("resuming the recording in %s (%d earlier tracks; gap %.1f s)", self.directory,
                 len(previous.tracks), (resumed_ms - gap_from) / 1000)

    # ------------------------------------------------------------------------- structure
    def add_classroom(self, classroom_id: str, role: str, name: str = "") -> None:
        entry = self.classrooms.get(classroom_id)
        if entry is None:
            self.classrooms[classroom_id] = ClassroomEntry(classroom_id, role, name or classroom_id)
        elif name:
            entry.name = name

    def add_track(
        self,
        track_id: str,
        kind: str,
        codec: str,
        classroom_id: str,
        source: str,
        clock_rate: int | None = None,
    ) -> TrackRecorder:
        """Start recording a track; ``track_id`` is made unique and file-name safe."""
        codec = codec.lower().split("/")[0]
        if kind not in ("audio", "video"):
            raise ValueError(f"track kind must be audio or video, not {kind!r}")
        base = safe_name(track_id)
        unique, n = base, 1
        taken = set(self.tracks) | {t.id for t in self.previous_tracks}
        while unique in taken:
            n += 1
            unique = f"{base}-{n}"
        info = TrackInfo(
            unique,
            kind,
            codec,
            classroom_id,
            source,
            clock_rate or DEFAULT_CLOCK_RATES.get(codec, 90000),
        )
        track = TrackRecorder(info, self.directory, self.segment_seconds, self.jitter_wait, self._clock_offset)
        self.tracks[unique] = track
        return track

    def end_track(self, track_id: str) -> None:
        track = self.tracks.get(track_id)
        if track is not None:
            track.end(self.clock())

    def _clock_offset(self, classroom_id: str, sender_unix: float, arrival: float) -> float:
        """One offset (recorder clock - sender clock) per classroom, from its first report."""
        if classroom_id not in self._offsets:
            self._offsets[classroom_id] = arrival - sender_unix
        return self._offsets[classroom_id]

    # ----------------------------------------------------------------------------- input
    def rtp(self, track_id: str, data: bytes, now: float | None = None) -> None:
        """Feed one RTP (or muxed RTCP) packet of a track. Bad input is counted, never raised."""
        track = self.tracks.get(track_id)
        if track is None or self.closed:
            return
        now = self.clock() if now is None else now
        if is_rtcp(data):
            self.rtcp(data, now)
            return
        try:
            packet = parse_rtp(data)
        except RtpError as exc:
            track.stats.bad_packets += 1
            self.bad_packets += 1
            log.debug("track %s: %s", track_id, exc)
            return
        self._by_ssrc[packet.ssrc] = track
        track.on_rtp(packet, now)

    def rtcp(self, data: bytes, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        try:
            reports = parse_sender_reports(data)
        except RtpError as exc:
            self.bad_packets += 1
            log.debug("bad RTCP: %s", exc)
            return
        for report in reports:
            track = self._by_ssrc.get(report.ssrc)
            if track is not None:
                track.on_sender_report(report, now)

    def sender_report(self, track_id: str, report: SenderReport, now: float | None = None) -> None:
        track = self.tracks.get(track_id)
        if track is not None:
            track.on_sender_report(report, self.clock() if now is None else now)

    def event(self, type_: str, classroom_id: str | None, t_ms: int | None = None, **extra: Any) -> EventEntry:
        if t_ms is None:
            t_ms = round((self.clock() - self.start_unix) * 1000)
        entry = EventEntry(max(0, int(t_ms)), type_, classroom_id, dict(extra))
        self.events.append(entry)
        return entry

    # ------------------------------------------------------------------------------ time
    def poll(self, now: float | None = None) -> list[str]:
        """Timers: release late packets, rewrite the manifest when due.

        Returns the ids of video tracks that need a keyframe (send a PLI for each).
        """
        now = self.clock() if now is None else now
        wanted: list[str] = []
        for track_id, track in self.tracks.items():
            try:
                track.poll(now)
            except Exception as exc:  # never let one track stop the recorder
                log.exception("track %s: poll failed: %s", track_id, exc)
            if track.disk_full is not None and self.disk_full is None:
                self.disk_full = track.disk_full
            if track.keyframe_request_due(now):
                wanted.append(track_id)
        if self._open_gap is not None:
            self._close_gap(now, final=False)
        segments = sum(len(t.writer.segments) for t in self.tracks.values())
        since = now - self._last_manifest
        # Rewrite every manifest_interval, and soon after a segment was completed, so a crash
        # leaves a manifest that lists (nearly) everything on disk.
        if since >= self.manifest_interval or (segments != self._manifest_segments and since >= MANIFEST_MIN_INTERVAL):
            self._manifest_segments = segments
            self.write_manifest(now)
        return wanted

    def _close_gap(self, now: float, final: bool) -> None:
        """The resumed recording's gap ends at its first written frame (any track); a run that
        closes without one leaves a gap up to its end."""
        gap = self._open_gap
        if gap is None:
            return
        firsts = [t.first_frame_unix for t in self.tracks.values() if t.first_frame_unix is not None]
        if not firsts and not final:
            return
        end = min(firsts) if firsts else now
        gap.extra["end_ms"] = max(gap.t_ms, int(gap.extra.get("end_ms", 0)), round((end - self.start_unix) * 1000))
        self._open_gap = None
        log.info("recording in %s: gap %.1f s (to the first frame written after resuming)", self.directory,
                 (int(gap.extra["end_ms"]) - gap.t_ms) / 1000)

    def take_nacks(self) -> dict[str, list[int]]:
        """Per track, the video sequence numbers newly found missing (send RTCP NACKs)."""
        out: dict[str, list[int]] = {}
        for track_id, track in self.tracks.items():
            lost = track.nacks()
            if lost:
                out[track_id] = lost
        return out

    def manifest(self, now: float | None = None) -> Manifest:
        now = self.clock() if now is None else now
        end = self._end_unix if self._end_unix is not None else now
        tracks = list(self.previous_tracks) + [
            entry for entry in (t.entry(self.start_unix) for t in self.tracks.values()) if entry is not None
        ]
        duration = round((end - self.start_unix) * 1000)
        for entry in tracks:
            duration = max(duration, entry.end_ms)
        return Manifest(
            lesson_id=self.lesson_id,
            title=self.title,
            started_at=datetime.fromtimestamp(self.start_unix, UTC),
            duration_ms=duration,
            classrooms=list(self.classrooms.values()),
            tracks=tracks,
            events=sorted(self.events, key=lambda e: e.t_ms),
            complete=self.closed,
        )

    def write_manifest(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._last_manifest = now
        try:
            write_manifest(self.directory / MANIFEST_NAME, self.manifest(now))
        except OSError as exc:
            log.error("cannot write the manifest: %s", exc)
            if is_disk_full(exc) and self.disk_full is None:
                self.disk_full = exc

    def close(self) -> Manifest:
        if not self.closed:
            now = self.clock()
            self._end_unix = now
            for track in self.tracks.values():
                try:
                    track.end(now)
                except Exception as exc:
                    log.exception("track %s: end failed: %s", track.info.track_id, exc)
            self._close_gap(now, final=True)
            self.closed = True
            self.write_manifest(now)
        return self.manifest()
