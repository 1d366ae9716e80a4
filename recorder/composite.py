"""Composite ("电影模式"): one MP4 (H.264 + AAC) of a whole recorded lesson, offline.

The only place in the recorder that decodes and encodes. Layout (16:9 canvas):

    +--------------------------+-------------+
    |                          |  courseware |
    |   main: the teacher, or  |  (lead      |
    |   the spotlit classroom  |   screen)   |
    +------+------+------+-----+------+------+
    | other cameras (lead students, remotes) |
    +----------------------------------------+

The main picture follows the ``spotlight`` events of the manifest. All audio tracks are mixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import av
import numpy as np
from tqdm import tqdm

from recorder.manifest import Manifest, TrackEntry, read_manifest

SAMPLE_RATE = 48000
AAC_FRAME = 1024
BACKGROUND = (24, 28, 34)


class CompositeError(RuntimeError):
    pass


@dataclass
class Rect:
    x: int
    y: int
    w: int
    h: int


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


class VideoSource:
    """Decoded frames of one video track on the lesson timeline (ms)."""

    def __init__(self, directory: Path, track: TrackEntry) -> None:
        self.track = track
        self.path = directory / track.file
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        self._next: tuple[float, Any] | None = None
        self.current: Any = None
        self.current_ms = -1.0
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        self.errors = 0

    def _open(self) -> None:
        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
            stream.thread_type = "AUTO"
            self._frames = iter(self._container.decode(stream))
        except (av.FFmpegError, IndexError, OSError):
            self.errors += 1
            self._frames = iter(())

    def _pull(self) -> tuple[float, Any] | None:
        if self._frames is None:
            self._open()
        assert self._frames is not None
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError:
            self.errors += 1
            return None
        return self.track.start_ms + float(frame.time or 0.0) * 1000, frame

    def at(self, t_ms: float) -> bool:
        """Advance to the last frame shown at ``t_ms``; False when the track is not on."""
        if t_ms < self.track.start_ms or t_ms >= self.track.end_ms:
            return False
        if self._next is None and self.current_ms < 0:
            self._next = self._pull()
        while self._next is not None and self._next[0] <= t_ms:
            self.current_ms, self.current = self._next
            self._cache.clear()
            self._next = self._pull()
        return self.current is not None

    def picture(self, w: int, h: int) -> np.ndarray:
        """The current frame fitted into w×h (aspect kept), as RGB."""
        key = (w, h)
        if key not in self._cache:
            fw, fh = self.current.width, self.current.height
            scale = min(w / fw, h / fh)
            tw, th = _even(fw * scale), _even(fh * scale)
            rgb = self.current.reformat(width=tw, height=th, format="rgb24").to_ndarray()
            self._cache[key] = rgb
        return self._cache[key]

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


@dataclass
class AudioSource:
    """Decoded, resampled samples of one audio track at lesson sample positions."""

    directory: Path
    track: TrackEntry
    _frames: Iterator[Any] | None = None
    _container: Any = None
    _resampler: Any = None
    _buffer: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), np.float32))
    _buffer_start: int = 0  # lesson sample of _buffer[:, 0]
    _done: bool = False

    def _open(self) -> None:
        try:
            self._container = av.open(str(self.directory / self.track.file))
            self._frames = iter(self._container.decode(self._container.streams.audio[0]))
            self._resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        except (av.FFmpegError, IndexError, OSError):
            self._frames = iter(())

    def _decode_more(self) -> bool:
        if self._frames is None:
            self._open()
        assert self._frames is not None
        try:
            frame = next(self._frames)
        except (StopIteration, av.FFmpegError):
            self._done = True
            return False
        at = round((self.track.start_ms / 1000 + float(frame.time or 0.0)) * SAMPLE_RATE)
        frame.pts = None
        chunks = [f.to_ndarray() for f in self._resampler.resample(frame)]
        if not chunks:
            return True
        samples = np.concatenate(chunks, axis=1).astype(np.float32)
        end = self._buffer_start + self._buffer.shape[1]
        if self._buffer.shape[1] == 0:
            self._buffer_start = at
            self._buffer = samples
        else:
            if at - end > SAMPLE_RATE // 50:  # a gap (lost packets, muted): fill with silence
                silence = np.zeros((2, at - end), np.float32)
                self._buffer = np.concatenate([self._buffer, silence], axis=1)
            self._buffer = np.concatenate([self._buffer, samples], axis=1)
        return True

    def mix_into(self, out: np.ndarray, start: int) -> None:
        """Add this track's samples for [start, start + out.shape[1]) into ``out``."""
        end = start + out.shape[1]
        if end <= round(self.track.start_ms * SAMPLE_RATE / 1000):
            return
        while not self._done and self._buffer_start + self._buffer.shape[1] < end:
            if not self._decode_more():
                break
        lo = max(start, self._buffer_start)
        hi = min(end, self._buffer_start + self._buffer.shape[1])
        if hi > lo:
            out[:, lo - start : hi - start] += self._buffer[:, lo - self._buffer_start : hi - self._buffer_start]
        drop = max(0, min(end - self._buffer_start, self._buffer.shape[1]))
        if drop:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def spotlight_timeline(manifest: Manifest) -> list[tuple[int, str | None]]:
    out: list[tuple[int, str | None]] = [(0, None)]
    for event in sorted(manifest.events, key=lambda e: e.t_ms):
        if event.type == "spotlight":
            out.append((event.t_ms, event.classroom_id))
    return out


def _spotlight_at(timeline: list[tuple[int, str | None]], t_ms: float) -> str | None:
    current: str | None = None
    for t, classroom in timeline:
        if t > t_ms:
            break
        current = classroom
    return current


class Layout:
    def __init__(self, width: int, height: int, small_count: int) -> None:
        self.width, self.height = width, height
        top_h = _even(height * 0.75)
        main_w = _even(width * 2 / 3)
        pad = max(2, width // 200 * 2)
        self.main = Rect(0, 0, main_w, top_h)
        self.side = Rect(main_w + pad, 0, width - main_w - pad, top_h)
        strip_h = height - top_h - pad
        count = max(1, small_count)
        tile_w = _even(min((width - pad * (count - 1)) / count, strip_h * 16 / 9))
        self.small = [Rect(i * (tile_w + pad), top_h + pad, tile_w, _even(strip_h)) for i in range(count)]


def _paste(canvas: np.ndarray, picture: np.ndarray, rect: Rect) -> None:
    h, w = picture.shape[:2]
    x = rect.x + (rect.w - w) // 2
    y = rect.y + (rect.h - h) // 2
    canvas[y : y + h, x : x + w] = picture


MAX_COMPOSITE_MS = 12 * 3_600_000


def _media_ms(path: Path) -> float:
    """The time of the last packet in a track file (demuxed, not decoded); 0 when unreadable."""
    last = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams[0]
            base = float(stream.time_base or 0)
            for packet in container.demux(stream):
                if packet.pts is not None:
                    last = max(last, packet.pts * base * 1000)
    except (av.FFmpegError, IndexError, OSError, ValueError):
        pass
    return last


def render_composite(
    directory: Path,
    out: Path,
    width: int = 1280,
    height: int = 720,
    fps: int = 15,
    progress: TextIO | None = None,
) -> Path:
    """Render ``directory``'s recording into ``out`` (MP4, H.264 + AAC)."""
    if width < 64 or height < 64 or width % 2 or height % 2:
        raise CompositeError("width and height must be even and at least 64")
    if not 1 <= fps <= 60:
        raise CompositeError("fps must be between 1 and 60")
    manifest = read_manifest(directory / "manifest.json")
    duration_ms = max([manifest.duration_ms] + [t.end_ms for t in manifest.tracks])
    if duration_ms <= 0 or not manifest.tracks:
        raise CompositeError(f"{directory}: the recording has no media")
    roles = {c.id: c.role for c in manifest.classrooms}
    for track in manifest.tracks:
        if not (directory / track.file).is_file():
            raise CompositeError(f"{directory / track.file}: missing track file")
    # What the files really hold bounds the render: a damaged manifest's duration must not make
    # it render hours of an empty picture.
    media_end = max(t.start_ms + _media_ms(directory / t.file) for t in manifest.tracks)
    duration_ms = min(duration_ms, int(media_end) + 1000)
    if duration_ms > MAX_COMPOSITE_MS:
        raise CompositeError(
            f"{directory}: {duration_ms / 3_600_000:.1f} hours of media; a composite is made of at most "
            f"{MAX_COMPOSITE_MS // 3_600_000} hours (check the manifest's start times)"
        )

    videos = [VideoSource(directory, t) for t in manifest.tracks if t.kind == "video"]
    audios = [AudioSource(directory, t) for t in manifest.tracks if t.kind == "audio"]
    teacher = [v for v in videos if roles.get(v.track.classroom_id) == "lead" and v.track.source == "teacher"]
    screen = [v for v in videos if v.track.source == "screen"]
    cameras = [v for v in videos if v not in teacher and v not in screen]
    camera_keys = sorted({(v.track.classroom_id, v.track.source) for v in cameras})
    layout = Layout(width, height, len(camera_keys) + (1 if teacher else 0))
    spotlight = spotlight_timeline(manifest)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    container: Any = av.open(str(tmp), mode="w", format="mp4")
    try:
        vstream: Any = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height = width, height
        vstream.pix_fmt = "yuv420p"
        vstream.options = {"preset": "veryfast", "crf": "23"}
        astream: Any = container.add_stream("aac", rate=SAMPLE_RATE)
        astream.layout = "stereo"
        astream.bit_rate = 96_000
        total_frames = max(1, math.ceil(duration_ms * fps / 1000))
        audio_pos = 0
        bar = _progress_bar(progress, total_frames)
        for index in range(total_frames):
            t_ms = index * 1000 / fps
            canvas = np.empty((height, width, 3), np.uint8)
            canvas[:] = BACKGROUND
            live = {id(v): v.at(t_ms) for v in videos}
            spot = _spotlight_at(spotlight, t_ms)
            spot_cams = [v for v in cameras if v.track.classroom_id == spot and live[id(v)]]
            main = spot_cams[0] if spot_cams else next((v for v in teacher if live[id(v)]), None)
            if main is not None:
                _paste(canvas, main.picture(layout.main.w, layout.main.h), layout.main)
            side = next((v for v in screen if live[id(v)]), None)
            if side is not None:
                _paste(canvas, side.picture(layout.side.w, layout.side.h), layout.side)
            small = [v for v in teacher if v is not main and live[id(v)]][:1]
            for key in camera_keys:
                small += [
                    v
                    for v in cameras
                    if (v.track.classroom_id, v.track.source) == key and v is not main and live[id(v)]
                ][:1]
            for rect, video in zip(layout.small, small, strict=False):
                _paste(canvas, video.picture(rect.w, rect.h), rect)
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(vstream.encode(frame))
            audio_end = round((index + 1) * SAMPLE_RATE / fps)
            while audio_pos < audio_end:
                container.mux(astream.encode(_audio_frame(audios, audio_pos)))
                audio_pos += AAC_FRAME
            _advance(bar, index + 1, duration_ms)
        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))
        bar.close()
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for video in videos:
            video.close()
        for audio in audios:
            audio.close()
    container.close()
    tmp.replace(out)
    return out


def _audio_frame(audios: list[AudioSource], start: int) -> Any:
    mix = np.zeros((2, AAC_FRAME), np.float32)
    for source in audios:
        source.mix_into(mix, start)
    np.clip(mix, -1.0, 1.0, out=mix)
    frame = av.AudioFrame.from_ndarray(mix, format="fltp", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = start
    frame.time_base = Fraction(1, SAMPLE_RATE)
    return frame


def _progress_bar(stream: TextIO | None, total_frames: int) -> Any:
    """A tqdm bar over the frames on ``stream`` (none when ``stream`` is None)."""
    return tqdm(total=total_frames, file=stream, disable=stream is None, desc="composite", unit="frame",
                bar_format="{desc} |{bar:30}| {percentage:3.0f}%{postfix}", mininterval=0.2, ascii=".#")


def _advance(bar: Any, done: int, duration_ms: int) -> None:
    """One more frame; every 10th frame the bar also shows the lesson time rendered (mm:ss/mm:ss)."""
    bar.update(1)
    if bar.disable or (done % 10 and done != bar.total):
        return
    t = done * duration_ms / bar.total / 1000
    bar.set_postfix_str(f"{int(t // 60):02d}:{int(t % 60):02d}/"
                        f"{duration_ms // 60000:02d}:{duration_ms // 1000 % 60:02d}", refresh=False)
