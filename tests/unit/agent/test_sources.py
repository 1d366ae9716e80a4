"""The agent's sources (agent/sources.py): a device that cannot be opened is left out, never a crash."""

from __future__ import annotations

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
