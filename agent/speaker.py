"""What the agent receives, out of the classroom's loudspeakers: the received audio tracks (the
lead's microphone, the classroom that has the floor) mixed and played on an ALSA playback device
through PyAV (libavdevice's ``alsa`` output, PCM s16 stereo 48 kHz).

:class:`Mixer` is the pure part: a bounded buffer per track and one 20-ms chunk out per tick, the
tracks that have a whole chunk summed with clipping. :class:`Speaker` feeds it from the decoded
frames (resampled to the output's format) and writes a chunk every 20 ms from a thread of its own
(an ALSA write blocks; the event loop must not). No device (no sound card, no such PCM, no
permission) is a :class:`SoundError` when it opens; a device that fails later is logged and the
speaker stops, the lesson goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass

import av
import numpy as np

log = logging.getLogger("agent.speaker")

RATE = 48000
CHANNELS = 2
CHUNK_SAMPLES = 960  # 20 ms per channel
CHUNK_S = CHUNK_SAMPLES / RATE
MAX_BUFFER_MS = 200  # per track: older sound is dropped (a late burst must not become latency)
# PyAV's wheel bundles its own libasound, built to look for its configuration under its build
# prefix; the system's is where Debian's libasound2-data puts it.
SYSTEM_ALSA_CONFIG = "/usr/share/alsa/alsa.conf"


class SoundError(Exception):
    """The sound device cannot be used."""


@dataclass
class MixerStats:
    chunks: int = 0  # 20-ms chunks mixed (played)
    dropped_ms: int = 0  # sound dropped because a track's buffer was full
    tracks: int = 0  # tracks with sound buffered now


class Mixer:
    """Per-track buffers of interleaved s16 stereo samples; :meth:`pull` mixes one chunk."""

    def __init__(self, max_buffer_ms: int = MAX_BUFFER_MS) -> None:
        self.max_samples = max_buffer_ms * RATE // 1000 * CHANNELS
        self._buffers: dict[str, deque[np.ndarray]] = {}
        self._sizes: dict[str, int] = {}
        self.stats = MixerStats()

    def push(self, track: str, samples: np.ndarray) -> None:
        """Queue ``samples`` (int16, interleaved stereo) of ``track``."""
        if not samples.size:
            return
        buf = self._buffers.setdefault(track, deque())
        buf.append(samples.astype(np.int16, copy=False).reshape(-1))
        size = self._sizes.get(track, 0) + samples.size
        while size > self.max_samples and buf:
            old = buf.popleft()
            size -= old.size
            self.stats.dropped_ms += old.size * 1000 // (RATE * CHANNELS)
        self._sizes[track] = size

    def remove(self, track: str) -> None:
        self._buffers.pop(track, None)
        self._sizes.pop(track, None)

    def _take(self, track: str, n: int) -> np.ndarray:
        buf = self._buffers[track]
        parts, need = [], n
        while need:
            head = buf[0]
            if head.size <= need:
                parts.append(buf.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                buf[0] = head[need:]
                need = 0
        self._sizes[track] -= n
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pull(self) -> np.ndarray | None:
        """One 20-ms chunk (int16, interleaved stereo): the sum of every track that has a whole
        chunk buffered, clipped; None when none has."""
        n = CHUNK_SAMPLES * CHANNELS
        ready = [t for t, size in self._sizes.items() if size >= n]
        self.stats.tracks = sum(1 for size in self._sizes.values() if size)
        if not ready:
            return None
        self.stats.chunks += 1
        if len(ready) == 1:
            return self._take(ready[0], n)
        mixed = np.zeros(n, dtype=np.int32)
        for track in ready:
            mixed += self._take(track, n)
        return np.clip(mixed, -32768, 32767).astype(np.int16)


def alsa_environment(env: MutableMapping[str, str] | None = None) -> None:
    """Point PyAV's bundled libasound at the system's ALSA configuration unless one is set."""
    target: MutableMapping[str, str] = os.environ if env is None else env
    if "ALSA_CONFIG_PATH" not in target and os.path.exists(SYSTEM_ALSA_CONFIG):
        target["ALSA_CONFIG_PATH"] = SYSTEM_ALSA_CONFIG


class Speaker:
    """The received sound on ALSA playback device ``device`` (``default``, ``hw:0,3`` for an HDMI
    output, ``plughw:1,0`` ...). Raises :class:`SoundError` when it cannot be opened."""

    def __init__(self, device: str = "default") -> None:
        alsa_environment()
        self.device = device
        try:
            self._out = av.open(device, "w", format="alsa")
            self._stream = self._out.add_stream("pcm_s16le", rate=RATE, layout="stereo")
            self._out.start_encoding()  # opens the PCM now (else only at the first write)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise SoundError(f"cannot open ALSA playback device {device!r}: {exc}") from None
        self.mixer = Mixer()
        self._resamplers: dict[str, av.AudioResampler] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pts = 0
        self.failed: str | None = None
        self.fed_frames = 0
        self.played_chunks = 0  # written to the device
        self._thread = threading.Thread(target=self._run, name="agent-speaker", daemon=True)
        self._thread.start()

    @property
    def played_ms(self) -> int:
        return self.played_chunks * CHUNK_SAMPLES * 1000 // RATE

    def feed(self, track: str, frame: av.AudioFrame) -> None:
        """A decoded frame of ``track`` (any rate/layout: resampled to s16 stereo 48 kHz)."""
        if self.failed is not None:
            return
        resampler = self._resamplers.get(track)
        if resampler is None:
            resampler = self._resamplers[track] = av.AudioResampler(format="s16", layout="stereo", rate=RATE)
        try:
            out = resampler.resample(frame)
        except (av.FFmpegError, ValueError) as exc:
            log.warning("audio frame of track %s not resampled: %s", track, exc)
            return
        self.fed_frames += 1
        with self._lock:
            for f in out:
                self.mixer.push(track, f.to_ndarray().reshape(-1))

    def remove(self, track: str) -> None:
        with self._lock:
            self.mixer.remove(track)
        self._resamplers.pop(track, None)

    def _write(self, chunk: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = RATE
        frame.pts = self._pts
        self._pts += CHUNK_SAMPLES
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.played_chunks += 1

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            due += CHUNK_S
            now = time.monotonic()
            if due < now - 10 * CHUNK_S:  # far behind (a stalled machine): do not play a burst
                due = now
            if due > now:
                self._stop.wait(due - now)
            with self._lock:
                chunk = self.mixer.pull()
            if chunk is None:
                continue
            try:
                self._write(chunk)
            except (av.FFmpegError, OSError, ValueError) as exc:
                self.failed = str(exc)
                log.error("the sound device %s failed (%s): only counting decoded audio from now on",
                          self.device, exc)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        try:
            self._out.close()
        except (av.FFmpegError, OSError, ValueError):
            pass
