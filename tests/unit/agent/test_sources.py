"""The agent's sources (agent/sources.py): a device that cannot be opened is left out, never a crash."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from agent.sources import PatternTrack, SourceSpec, ToneTrack, open_sources


def test_a_missing_camera_and_microphone_are_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    video, audio = open_sources(SourceSpec(camera="/dev/no-such-camera", mic="no-such-alsa-device"))
    assert video is None and audio is None
    assert "cannot open the camera /dev/no-such-camera" in caplog.text
    assert "cannot open the microphone no-such-alsa-device" in caplog.text


def test_the_test_source_is_a_picture_and_a_tone() -> None:
    video, audio = open_sources(SourceSpec(test_source=True, width=160, height=120))
    assert isinstance(video, PatternTrack) and (video.width, video.height) == (160, 120)
    assert isinstance(audio, ToneTrack)


async def test_the_test_picture_moves() -> None:
    track = PatternTrack(64, 48)
    a, b = await track.recv(), await track.recv()
    assert (a.width, a.height) == (64, 48)
    assert a.to_ndarray(format="bgr24").tobytes() != b.to_ndarray(format="bgr24").tobytes()


async def test_the_test_tone_runs_in_real_time() -> None:
    """20 ms frames of 960 samples at 48 kHz, paced by the wall clock: what aiortc's Opus encoder
    makes of one second of it is one second of audio (it once carried a sixth: issue #14)."""
    from aiortc.codecs.opus import OpusEncoder

    track, encoder = ToneTrack(), OpusEncoder()
    samples, packets, started = 0, 0, time.monotonic()
    while time.monotonic() - started < 1.0:
        frame = await track.recv()
        assert (frame.sample_rate, frame.samples, frame.pts) == (48000, 960, samples)
        samples += frame.samples
        packets += len(encoder.encode(frame)[0])
    elapsed = time.monotonic() - started
    assert abs(samples / 48000 - elapsed) < 0.1, (samples, elapsed)
    assert abs(packets * 0.020 - elapsed) < 0.1, (packets, elapsed)


async def test_the_test_tone_is_440_hz_and_catches_up_when_late() -> None:
    track = ToneTrack()
    await track.recv()
    await asyncio.sleep(0.2)  # a loaded machine: the next 10 frames are due already
    started = time.monotonic()
    frames = [await track.recv() for _ in range(10)]
    assert time.monotonic() - started < 0.1
    data = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float64)
    peak = np.argmax(np.abs(np.fft.rfft(data))) * 48000 / len(data)
    assert abs(peak - 440.0) < 5.0, peak
    track.stop()
