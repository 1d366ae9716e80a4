"""Muxing of already-encoded frames with PyAV: no encoder, no decoder, no open codec context.

Video streams are created with ``OutputContainer.add_mux_stream`` (codec parameters only; H.264
extradata comes from the first keyframe), Opus streams from a template stream that carries an
OpusHead (its codec context is never opened), and frames
go in as ``av.Packet(bytes)`` with millisecond timestamps. Each track is written twice:

- into short **segments** (``segments/<track>/NNNNN.<ext>``), each closed properly every
  ``segment_seconds`` (video segments begin on a keyframe), so that a killed recorder loses
  at most the open segment. A segment is due after ``segment_seconds`` of the track's own
  time *or* of the wall clock (``now``), whichever comes first: a sender whose timestamps run
  slower than real time (issue #14: a test tone at a sixth of it) must not keep a segment open
  for longer, and lose more to a crash;
- into one **full file** (``<track>.<ext>``) that gets its trailer (cues, duration) on a clean
  stop. After a crash it is a cut-off Matroska file that still demuxes up to where it ends.

VP8 and Opus go into WebM, H.264 into Matroska (it stays readable when cut off, unlike MP4).
Timestamps are track-relative: pts 0 is the track's first frame.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)

CODEC_FORMATS: dict[str, tuple[str, str]] = {
    # codec: (file extension, libavformat muxer)
    "vp8": ("webm", "webm"),
    "opus": ("webm", "webm"),
    "h264": ("mkv", "matroska"),
}

_OPUS_FRAME_MS = (
    [10.0, 20.0, 40.0, 60.0] * 3  # configs 0..11: SILK
    + [10.0, 20.0] * 2  # 12..15: hybrid
    + [2.5, 5.0, 10.0, 20.0] * 4  # 16..31: CELT
)


def opus_packet_ms(packet: bytes) -> float:
    """Duration of an Opus packet from its TOC byte (RFC 6716 §3.1); 20 ms if unreadable."""
    if not packet:
        return 20.0
    toc = packet[0]
    frame_ms = _OPUS_FRAME_MS[toc >> 3]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = packet[1] & 0x3F if len(packet) > 1 else 1
    return frame_ms * max(count, 1)


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _ogg_page(data: bytes, sequence: int, flags: int, granule: int = 0) -> bytes:
    lacing = [255] * (len(data) // 255) + [len(data) % 255]
    header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, 0x5EC0, sequence, 0, len(lacing))
    raw = header + bytes(lacing) + data
    return raw[:22] + struct.pack("<I", _ogg_crc(raw)) + raw[26:]


@functools.cache
def opus_template() -> bytes:
    """A tiny Ogg Opus stream (RFC 7845 headers + one silent frame) whose stream is the template
    for Opus tracks: 2 channels (as WebRTC signals Opus), 48 kHz, pre-skip 0."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 0, 48000, 0, 0)
    vendor = b"classroom recorder"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    return _ogg_page(head, 0, 0x02) + _ogg_page(tags, 1, 0) + _ogg_page(b"\xf8\xff\xfe", 2, 0x04, 960)


class WriterError(RuntimeError):
    pass


@dataclass
class SegmentInfo:
    file: str  # relative to the recording directory
    start_ms: float  # track-relative
    end_ms: float
    complete: bool = False


class _Output:
    """One container with one stream."""

    def __init__(self, path: Path, fmt: str, codec: str, kind: str, width: int, height: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container: Any = av.open(str(path), mode="w", format=fmt)
        try:
            if kind == "video":
                self.stream: Any = self.container.add_mux_stream(codec, width=width, height=height)
            elif codec == "opus":
                # From a template so the file carries an OpusHead (CodecPrivate), which some
                # players need; the template's codec context is never opened.
                with av.open(io.BytesIO(opus_template()), format="ogg") as template:
                    self.stream = self.container.add_stream_from_template(template.streams.audio[0])
            else:
                self.stream = self.container.add_mux_stream(codec, rate=48000)
            self.stream.time_base = MS
        except BaseException:
            self.container.close()
            raise
        self.packets = 0

    def mux(self, data: bytes, pts_ms: int, duration_ms: int, keyframe: bool) -> None:
        packet = av.Packet(data)
        packet.stream = self.stream
        packet.time_base = MS
        packet.pts = pts_ms
        packet.dts = pts_ms
        packet.duration = max(duration_ms, 0)
        packet.is_keyframe = keyframe
        self.container.mux(packet)
        self.packets += 1

    def close(self) -> None:
        try:
            self.container.close()
        except Exception as exc:  # a failed trailer must not lose the rest of the recording
            log.warning("closing %s failed: %s", self.path, exc)


class TrackWriter:
    """Writes one track's frames into segments plus a full file."""

    def __init__(
        self,
        root: Path,
        track_id: str,
        kind: str,
        codec: str,
        clock_rate: int,
        segment_seconds: float = 2.0,
    ) -> None:
        if codec not in CODEC_FORMATS:
            raise WriterError(f"unsupported codec {codec!r}")
        if segment_seconds <= 0:
            raise WriterError("segment_seconds must be positive")
        self.root = root
        self.track_id = track_id
        self.kind = kind
        self.codec = codec
        self.clock_rate = clock_rate
        self.segment_ms = segment_seconds * 1000.0
        self.ext, self.format = CODEC_FORMATS[codec]
        self.file = f"{track_id}.{self.ext}"
        self.segments: list[SegmentInfo] = []
        self.width = 0
        self.height = 0
        self.frames = 0
        self.wants_keyframe = False
        self.closed = False
        self._full: _Output | None = None
        self._segment: _Output | None = None
        self._last_ms: int | None = None
        self._last_interval_ms = 33 if kind == "video" else 20
        self._segment_opened: float | None = None  # wall time the open segment began (``now``)
        self.end_ms = 0.0

    @property
    def started(self) -> bool:
        return self._full is not None

    def _open(self, relative: str) -> _Output:
        return _Output(self.root / relative, self.format, self.codec, self.kind, self.width, self.height)

    def _start_segment(self, start_ms: int, now: float | None) -> None:
        if self._segment is not None:
            self._finish_segment()
        self._segment_opened = now
        relative = f"segments/{self.track_id}/{len(self.segments):05d}.{self.ext}"
        self._segment = self._open(relative)
        self.segments.append(SegmentInfo(relative, float(start_ms), float(start_ms)))

    def _finish_segment(self) -> None:
        if self._segment is None:
            return
        self._segment.close()
        self._segment = None
        if self.segments:
            self.segments[-1].complete = True

    def write(
        self, data: bytes, pts: int, keyframe: bool, width: int = 0, height: int = 0, now: float | None = None
    ) -> bool:
        """Add one frame with a track-relative timestamp in clock-rate units; ``now`` (seconds,
        any clock) is when it arrived, so that a segment is also due after ``segment_seconds``
        of it.

        Returns False when the frame was not written (video before its first keyframe).
        """
        if self.closed:
            raise WriterError(f"track {self.track_id} is closed")
        if not data:
            return False
        pts_ms = round(pts * 1000 / self.clock_rate)
        if self._last_ms is not None and pts_ms <= self._last_ms:
            pts_ms = self._last_ms + 1  # muxers need increasing timestamps
        if self.kind == "audio":
            duration_ms = round(opus_packet_ms(data)) if self.codec == "opus" else 20
        else:
            if self._last_ms is not None:
                self._last_interval_ms = max(1, min(pts_ms - self._last_ms, 1000))
            duration_ms = self._last_interval_ms
        if self._full is None:
            if self.kind == "video" and not keyframe:
                return False
            if width and height:
                self.width, self.height = width, height
            self._full = self._open(self.file)
            self._start_segment(pts_ms, now)
        else:
            if width and height and (width, height) != (self.width, self.height):
                log.info(
                    "track %s: resolution %dx%d -> %dx%d",
                    self.track_id,
                    self.width,
                    self.height,
                    width,
                    height,
                )
                self.width, self.height = width, height
            assert self.segments
            due = pts_ms - self.segments[-1].start_ms >= self.segment_ms or (
                now is not None
                and self._segment_opened is not None
                and (now - self._segment_opened) * 1000 >= self.segment_ms
            )
            if due and (self.kind == "audio" or keyframe):
                self._start_segment(pts_ms, now)
                self.wants_keyframe = False
            elif due:
                self.wants_keyframe = True
        assert self._full is not None and self._segment is not None
        self._full.mux(data, pts_ms, duration_ms, keyframe)
        self._segment.mux(data, pts_ms, duration_ms, keyframe)
        self._last_ms = pts_ms
        self.frames += 1
        self.end_ms = float(pts_ms + duration_ms)
        self.segments[-1].end_ms = self.end_ms
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._finish_segment()
        if self._full is not None:
            self._full.close()
            self._full = None
