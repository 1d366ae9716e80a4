"""A pre-encoded test stream for the media bots: 720p VP8 + Opus, encoded once and cached.

The bots never encode: :func:`load_stream` returns frames that were encoded once with PyAV
(libvpx, libopus) and cached under ``~/.cache/classroom-loadtest/`` (``CLASSROOM_LOADTEST_CACHE``
overrides the folder). The picture is a scrolling texture with moving bars and noise, so the
encoder has to spend its bitrate (a flat pattern would come out far below 1.5 Mbit/s); the
sound is a tone with a little noise.

Cache file format (little endian): ``b"CLSTRM1\\n"``, a uint32 header length, a JSON header
(the :class:`StreamSpec` fields), then records ``kind:u8 flags:u8 size:u32 data`` where kind is
0 = video (one VP8 frame, flags bit 0 = keyframe) and 1 = audio (one 20 ms Opus frame).

``python -m loadtest.media`` generates (if needed) and prints what the stream holds.
"""

from __future__ import annotations

import dataclasses
import fractions
import hashlib
import json
import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"CLSTRM1\n"
_RECORD = struct.Struct("<BBI")
VIDEO, AUDIO = 0, 1


@dataclass(frozen=True)
class StreamSpec:
    width: int = 1280
    height: int = 720
    fps: int = 30
    video_bitrate: int = 1_700_000  # libvpx target (~1.5 Mbit/s out); bots pace on the measured rate
    keyframe_interval_s: float = 2.0
    seconds: float = 10.0
    audio_bitrate: int = 32_000
    audio_rate: int = 48_000
    audio_frame_ms: int = 20
    seed: int = 1
    generator: int = 2  # bump when the picture or the encoder settings change

    def key(self) -> str:
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass
class Stream:
    """Encoded frames, in presentation order, ready to be packetized."""

    spec: StreamSpec
    video: list[bytes]
    keyframes: list[bool]
    audio: list[bytes]

    @property
    def video_bitrate(self) -> float:
        """The measured average bitrate of the video frames, bits/s."""
        return sum(len(f) for f in self.video) * 8 * self.spec.fps / max(1, len(self.video))

    def keyframe_indexes(self) -> list[int]:
        return [i for i, k in enumerate(self.keyframes) if k]


def cache_dir() -> Path:
    env = os.environ.get("CLASSROOM_LOADTEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "classroom-loadtest"


def _frame_image(i: int, spec: StreamSpec, texture: object) -> object:
    import numpy as np

    assert isinstance(texture, np.ndarray)
    h, w = spec.height, spec.width
    # a still textured "classroom", a slowly panning strip, two moving bars, and a patch of
    # fresh noise wandering about (a teacher's movement): enough for the encoder to use its rate
    img = texture[:h, :w].copy()
    band = slice(h // 3, h // 3 + h // 6)
    img[band] = np.roll(texture[band, :w], i * 2, axis=1)
    x = (i * 12) % w
    img[:, x : x + 40] = (240, 240, 240)
    y = (i * 7) % h
    img[y : y + 30, :] = (20, 60, 200)
    rng = np.random.default_rng(spec.seed * 100_003 + i)
    ph, pw = h // 8, w // 8
    py, px = (i * 5) % (h - ph), (i * 9) % (w - pw)
    img[py : py + ph, px : px + pw] = rng.integers(0, 255, (ph, pw, 3), dtype=np.uint8)
    return img


def _encode_video(spec: StreamSpec) -> tuple[list[bytes], list[bool]]:
    import av
    import numpy as np

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = spec.width, spec.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, spec.fps)
    codec.framerate = fractions.Fraction(spec.fps, 1)
    codec.bit_rate = spec.video_bitrate
    codec.gop_size = int(spec.keyframe_interval_s * spec.fps)
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(spec.video_bitrate),
        "maxrate": str(spec.video_bitrate),
        "b": str(spec.video_bitrate),
        "undershoot-pct": "95",
        "overshoot-pct": "5",
        "static-thresh": "0",
        "qmin": "4",
        "qmax": "63",
        "max-intra-rate": "800",
    }
    # a smooth "room": low-frequency colour gradients (camera pictures are mostly smooth)
    yy, xx = np.mgrid[0 : spec.height + 64, 0 : spec.width + 64].astype(np.float32)
    texture = np.stack(
        [
            128 + 60 * np.sin(xx / 97.0) * np.cos(yy / 61.0),
            128 + 50 * np.sin((xx + yy) / 143.0),
            128 + 40 * np.cos(xx / 41.0 - yy / 77.0),
        ],
        axis=-1,
    ).astype(np.uint8)
    frames: list[bytes] = []
    keys: list[bool] = []
    count = int(spec.seconds * spec.fps)
    for i in range(count + 1):
        packets = []
        if i < count:
            img = _frame_image(i, spec, texture)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            frame.time_base = codec.time_base
            if i % codec.gop_size == 0:
                frame.pict_type = av.video.frame.PictureType.I
            packets = codec.encode(frame)
        else:
            packets = codec.encode(None)
        for p in packets:
            frames.append(bytes(p))
            keys.append(bool(p.is_keyframe))
    return frames, keys


def _encode_audio(spec: StreamSpec) -> list[bytes]:
    import av
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = spec.audio_rate
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = spec.audio_bitrate
    codec.time_base = fractions.Fraction(1, spec.audio_rate)
    samples = spec.audio_rate * spec.audio_frame_ms // 1000
    rng = np.random.default_rng(spec.seed + 7)
    out: list[bytes] = []
    count = int(spec.seconds * 1000 / spec.audio_frame_ms)
    for i in range(count):
        t = (np.arange(samples) + i * samples) / spec.audio_rate
        tone = 0.25 * np.sin(2 * np.pi * (330 + 110 * ((i // 50) % 3)) * t)
        noise = 0.02 * rng.standard_normal(samples)
        mono = ((tone + noise) * 32767).astype(np.int16)
        data = np.repeat(mono, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(data, format="s16", layout="stereo")
        frame.sample_rate = spec.audio_rate
        frame.pts = i * samples
        frame.time_base = codec.time_base
        out.extend(bytes(p) for p in codec.encode(frame))
    out.extend(bytes(p) for p in codec.encode(None))
    return out[:count]


def generate(spec: StreamSpec) -> Stream:
    video, keys = _encode_video(spec)
    audio = _encode_audio(spec)
    return Stream(spec, video, keys, audio)


def save(stream: Stream, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = json.dumps(dataclasses.asdict(stream.spec)).encode()
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with tmp.open("wb") as f:
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        for frame, key in zip(stream.video, stream.keyframes, strict=True):
            f.write(_RECORD.pack(VIDEO, 1 if key else 0, len(frame)) + frame)
        for frame in stream.audio:
            f.write(_RECORD.pack(AUDIO, 0, len(frame)) + frame)
    tmp.replace(path)


def load(path: Path) -> Stream:
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path}: not a cached test stream")
    pos = len(MAGIC)
    (hlen,) = struct.unpack_from("<I", data, pos)
    pos += 4
    spec = StreamSpec(**json.loads(data[pos : pos + hlen]))
    pos += hlen
    video: list[bytes] = []
    keys: list[bool] = []
    audio: list[bytes] = []
    while pos < len(data):
        kind, flags, size = _RECORD.unpack_from(data, pos)
        pos += _RECORD.size
        frame = data[pos : pos + size]
        if len(frame) != size:
            raise ValueError(f"{path}: truncated")
        pos += size
        if kind == VIDEO:
            video.append(frame)
            keys.append(bool(flags & 1))
        else:
            audio.append(frame)
    if not video or not audio or not keys[0]:
        raise ValueError(f"{path}: no usable stream")
    return Stream(spec, video, keys, audio)


def load_stream(spec: StreamSpec | None = None, directory: Path | None = None) -> Stream:
    """The cached stream for ``spec`` (default: 720p30 VP8 ~1.5 Mbit/s + Opus), generated
    with PyAV on first use (a few seconds)."""
    spec = spec or StreamSpec()
    path = (directory or cache_dir()) / f"stream-{spec.key()}.bin"
    if path.exists():
        try:
            return load(path)
        except (ValueError, struct.error, TypeError):
            pass  # a stale or broken cache: make it again
    stream = generate(spec)
    save(stream, path)
    return stream


def main() -> int:
    t0 = time.monotonic()
    stream = load_stream()
    s = stream.spec
    print(
        f"{s.width}x{s.height} {s.fps} fps: {len(stream.video)} VP8 frames, "
        f"{len(stream.keyframe_indexes())} keyframes, {stream.video_bitrate / 1e6:.2f} Mbit/s; "
        f"{len(stream.audio)} Opus frames; {time.monotonic() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
