"""What the agent publishes: a synthetic picture and tone (``--test-source``), or a camera and a
microphone captured with PyAV (V4L2 and ALSA on Linux, through aiortc's ``MediaPlayer``).

``PatternTrack`` and ``ToneTrack`` are also the integration tests' synthetic sources."""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

log = logging.getLogger("agent.sources")


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone (so audio levels are above silence), in real time: 20 ms frames of 960
    samples at 48 kHz, paced by the wall clock (a late frame is sent at once, so a loaded
    machine does not make the stream fall behind).

    It makes its frames itself rather than reshaping ``AudioStreamTrack.recv()``'s: those are
    160 samples at **8 kHz** per 20 ms, and relabelled as 48 kHz they carried 3.3 ms of sound
    per 20 ms — the stream ran at a sixth of real time (issue #14, docs/reliability.md)."""

    SAMPLE_RATE = 48000
    FRAME_SAMPLES = 960  # 20 ms

    def __init__(self, freq: float = 440.0, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self._n = 0  # samples sent so far = the next frame's pts
        self._t0: float | None = None  # wall time of the first frame

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.time()
        if self._t0 is None:
            self._t0 = now
        else:
            wait = self._t0 + self._n / self.SAMPLE_RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(self.FRAME_SAMPLES) + self._n) / self.SAMPLE_RATE
        tone = (np.sin(2 * math.pi * self.freq * t) * self.amplitude * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.SAMPLE_RATE
        frame.pts = self._n
        frame.time_base = fractions.Fraction(1, self.SAMPLE_RATE)
        self._n += self.FRAME_SAMPLES
        return frame


class PatternTrack(VideoStreamTrack):
    """Moving colour bars, small, so encoding stays cheap."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._i = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        img = np.zeros((self.height, self.width, 3), np.uint8)
        x = (self._i * 4) % self.width
        img[:, x : x + 20] = (255, 255, 255)
        img[: self.height // 2, :, 1] = 128
        self._i += 1
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class CountingTrack(MediaStreamTrack):
    """Passes another track's frames on and calls ``count`` for each (frames sent)."""

    def __init__(self, inner: MediaStreamTrack, count: Callable[[str], None]) -> None:
        super().__init__()
        self.kind = inner.kind
        self._inner = inner
        self._count = count

    async def recv(self) -> Any:
        frame = await self._inner.recv()
        self._count(self.kind)
        return frame

    def stop(self) -> None:
        super().stop()
        self._inner.stop()


@dataclass(frozen=True)
class SourceSpec:
    test_source: bool = False
    camera: str | None = None  # e.g. /dev/video0
    mic: str | None = None  # an ALSA device, e.g. default or hw:1,0
    width: int = 320
    height: int = 240


def _device(path: str, fmt: str, options: dict[str, str], kind: str) -> MediaStreamTrack | None:
    from aiortc.contrib.media import MediaPlayer

    try:
        player = MediaPlayer(path, format=fmt, options=options)
    except (OSError, av.FFmpegError, ValueError) as exc:
        log.error("cannot open the %s %s (%s): %s", kind, path, fmt, exc)
        return None
    track = player.video if kind == "camera" else player.audio
    if track is None:
        log.error("the %s %s gives no %s stream", kind, path, "video" if kind == "camera" else "audio")
    return track


def open_sources(spec: SourceSpec) -> tuple[MediaStreamTrack | None, MediaStreamTrack | None]:
    """(video, audio) for one lesson; new tracks each time (a track ends with its connection).
    A device that cannot be opened is logged and left out (None): the classroom still joins."""
    if spec.test_source:
        return PatternTrack(spec.width, spec.height), ToneTrack()
    video = audio = None
    if spec.camera:
        video = _device(spec.camera, "v4l2", {"video_size": f"{spec.width}x{spec.height}"}, "camera")
    if spec.mic:
        audio = _device(spec.mic, "alsa", {"channels": "1", "sample_rate": "48000"}, "microphone")
    return video, audio
