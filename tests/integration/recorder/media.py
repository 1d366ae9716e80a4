"""Test media for the recorder: encoded with PyAV (tests may encode; the recorder must not).

Video: a gray picture that turns white for 100 ms at every flash; audio: silence with a 1 kHz
beep of 100 ms at the same instants. ``feed`` turns them into timed RTP/RTCP as a sender would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from recorder.depacketize import build_sender_report
from recorder.packetize import Packetizer, packetizer_for

FLASH_MS = 100


def flash_times(duration: float, period: float = 2.0, first: float = 0.4) -> list[float]:
    out = []
    t = first
    while t + FLASH_MS / 1000 < duration:
        out.append(round(t, 3))
        t += period
    return out


@dataclass
class EncodedMedia:
    codec: str
    kind: str
    clock_rate: int
    frames: list[tuple[float, bytes, bool]]  # (capture time s, data, keyframe)
    duration: float


def encode_video(
    codec: str = "vp8",
    duration: float = 10.0,
    fps: int = 15,
    width: int = 160,
    height: int = 120,
    gop_seconds: float = 1.0,
    flashes: list[float] | None = None,
    shade: int = 80,
) -> EncodedMedia:
    name = {"vp8": "libvpx", "h264": "libx264"}[codec]
    ctx = av.CodecContext.create(name, "w")
    ctx.width, ctx.height = width, height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = max(1, int(gop_seconds * fps))
    if codec == "h264":
        ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
        ctx.profile = "Constrained Baseline"
    else:
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    ctx.bit_rate = 150_000
    flashes = flash_times(duration) if flashes is None else flashes
    frames: list[tuple[float, bytes, bool]] = []
    count = int(duration * fps)
    for i in range(count):
        t = i / fps
        lit = any(f <= t < f + FLASH_MS / 1000 for f in flashes)
        y = np.full((height, width), 235 if lit else shade, np.uint8)
        # a moving bar so frames differ
        x = (i * 3) % width
        y[:, x : x + 4] = 16
        uv = np.full((height // 2, width), 128, np.uint8)
        frame = av.VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p")
        frame.pts = i
        for packet in ctx.encode(frame):
            frames.append((float(packet.pts) / fps, bytes(packet), packet.is_keyframe))
    for packet in ctx.encode(None):
        frames.append((float(packet.pts) / fps, bytes(packet), packet.is_keyframe))
    return EncodedMedia(codec, "video", 90000, frames, duration)


def encode_audio(duration: float = 10.0, flashes: list[float] | None = None) -> EncodedMedia:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.sample_rate = 48000
    ctx.layout = "mono"
    ctx.format = "s16"
    ctx.time_base = Fraction(1, 48000)
    ctx.bit_rate = 32000
    flashes = flash_times(duration) if flashes is None else flashes
    n = int(duration * 48000)
    t = np.arange(n) / 48000
    signal = np.random.default_rng(1).normal(0, 30, n)
    for f in flashes:
        sel = (t >= f) & (t < f + FLASH_MS / 1000)
        signal[sel] += 12000 * np.sin(2 * np.pi * 1000 * t[sel])
    pcm = signal.astype(np.int16)
    frames: list[tuple[float, bytes, bool]] = []
    for i in range(0, n - 960 + 1, 960):
        frame = av.AudioFrame.from_ndarray(pcm[None, i : i + 960], format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = i
        for packet in ctx.encode(frame):
            frames.append((float(packet.pts) / 48000, bytes(packet), True))
    for packet in ctx.encode(None):
        frames.append((float(packet.pts) / 48000, bytes(packet), True))
    return EncodedMedia("opus", "audio", 48000, frames, duration)


@dataclass
class SendTrack:
    """One sender's track: media + RTP state + timing behaviour."""

    track_id: str
    media: EncodedMedia
    delay: float = 0.05  # capture -> arrival at the recorder, seconds
    sender_clock_offset: float = 1000.0  # sender's NTP clock minus the recorder's
    loss: float = 0.0
    reorder: float = 0.0
    start: float = 0.0  # capture time of the first frame on the lesson timeline
    packetizer: Packetizer = field(init=False)
    ts_base: int = field(default_factory=lambda: random.getrandbits(32))

    def __post_init__(self) -> None:
        self.packetizer = packetizer_for(self.media.codec)

    def rtp_ts(self, capture: float) -> int:
        return (self.ts_base + round(capture * self.media.clock_rate)) & 0xFFFFFFFF


def schedule(
    tracks: list[SendTrack],
    t0: float,
    until: float | None = None,
    seed: int = 7,
    sr_interval: float = 1.0,
) -> list[tuple[float, str, bytes]]:
    """All packets (arrival time, track id, bytes) of all tracks, ordered by arrival."""
    rng = random.Random(seed)
    events: list[tuple[float, str, bytes]] = []
    for track in tracks:
        next_sr = 0.0
        for capture, data, _key in track.media.frames:
            if until is not None and track.start + capture > until:
                break
            when = t0 + track.start + capture
            for packet in track.packetizer.packetize(data, track.rtp_ts(capture)):
                if rng.random() < track.loss:
                    continue
                jitter = rng.random() * 0.08 if rng.random() < track.reorder else 0.0
                events.append((when + track.delay + jitter, track.track_id, packet))
            if capture >= next_sr:
                sr = build_sender_report(
                    track.packetizer.ssrc,
                    when + track.sender_clock_offset,
                    track.rtp_ts(capture),
                    track.packetizer.packet_count,
                    track.packetizer.octet_count,
                )
                events.append((when + track.delay, track.track_id, sr))
                next_sr = capture + sr_interval
    events.sort(key=lambda e: e[0])
    return events


class FakeClock:
    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def feed(
    session_rtp: Callable[[str, bytes, float], None],
    poll: Callable[[float], list[str]],
    clock: FakeClock,
    events: list[tuple[float, str, bytes]],
    poll_every: float = 0.05,
) -> list[str]:
    """Deliver scheduled packets as fast as possible with a simulated clock."""
    keyframe_requests: list[str] = []
    next_poll = events[0][0] if events else clock.now
    for when, track_id, data in events:
        while next_poll <= when:
            clock.now = next_poll
            keyframe_requests += poll(next_poll)
            next_poll += poll_every
        clock.now = when
        session_rtp(track_id, data, when)
    return keyframe_requests


def decode_times(path: str, kind: str) -> list[tuple[float, float]]:
    """(time s, brightness or loudness) of every decoded video frame / 10 ms audio block."""
    out: list[tuple[float, float]] = []
    with av.open(path) as container:
        if kind == "video":
            for frame in container.decode(video=0):
                y = frame.to_ndarray(format="gray")
                out.append((float(frame.time or 0.0), float(y[:, : y.shape[1] // 2].mean())))
        else:
            for aframe in container.decode(audio=0):
                samples = aframe.to_ndarray().astype(np.float64)
                if samples.dtype.kind != "f" or aframe.format.name.startswith("s16"):
                    samples = samples / 32768.0
                channels = len(aframe.layout.channels)
                if aframe.format.is_planar:
                    mono = samples.mean(axis=0)
                else:
                    mono = samples.reshape(-1, channels).mean(axis=1)
                step = aframe.sample_rate // 100
                for k in range(0, len(mono) - step + 1, step):
                    block = mono[k : k + step]
                    out.append(
                        (
                            float(aframe.time or 0.0) + k / aframe.sample_rate,
                            float(np.sqrt(np.mean(block**2))),
                        )
                    )
    return out


def onsets(samples: list[tuple[float, float]], threshold: float) -> list[float]:
    """Times where the value rises above ``threshold``."""
    out = []
    above = False
    for t, v in samples:
        if v > threshold and not above:
            out.append(t)
        above = v > threshold
    return out


SHORT_LESSON_EVENTS: list[tuple[str, str | None, int]] = [
    ("join", "lead", 0),
    ("join", "r1", 200),
    ("hand_raised", "r1", 4_000),
    ("floor_granted", "r1", 6_000),
    ("spotlight", "r1", 6_100),
    ("floor_revoked", "r1", 14_000),
    ("spotlight", None, 14_100),
]


def record_short_lesson(directory: Path, lesson_id: str, duration: float = 20.0) -> None:
    """A lead (bright camera, H.264 screen, mic) and one remote (dark camera, mic)."""
    from recorder.core import RecordingSession

    cam = encode_video("vp8", duration)
    dark = encode_video("vp8", duration, shade=40)
    screen = encode_video("h264", duration, shade=150)
    mic = encode_audio(duration)
    clock = FakeClock()
    session = RecordingSession(directory, lesson_id, "回放测试", clock=clock)
    session.add_classroom("lead", "lead", "主讲课堂")
    session.add_classroom("r1", "remote", "教学点一")
    senders = []
    for track_id, media, classroom, source in (
        ("lead-cam", cam, "lead", "teacher"),
        ("lead-screen", screen, "lead", "screen"),
        ("lead-mic", mic, "lead", "teacher"),
        ("r1-cam", dark, "r1", "students"),
        ("r1-mic", mic, "r1", "students"),
    ):
        session.add_track(track_id, media.kind, media.codec, classroom, source)
        senders.append(SendTrack(track_id, media, delay=0.05))
    for type_, classroom, t_ms in SHORT_LESSON_EVENTS:
        session.event(type_, classroom, t_ms=t_ms)
    feed(session.rtp, session.poll, clock, schedule(senders, clock.now))
    clock.now += 0.2
    session.close()
