"""``classroom composite``: one H.264 + AAC MP4 whose main picture follows the spotlight."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

from recorder.cli import composite_main
from recorder.composite import CompositeError, Layout, render_composite
from tests.integration.recorder.media import record_short_lesson


def main_brightness(path: Path, at: float, width: int, height: int) -> float:
    layout = Layout(width, height, 2)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if float(frame.time or 0) >= at:
                y = frame.to_ndarray(format="gray")
                m = layout.main
                return float(y[m.y + m.h // 4 : m.y + 3 * m.h // 4, m.x + m.w // 4 : m.w // 2].mean())
    raise AssertionError("no frame")


def test_composite_follows_spotlight(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    record_short_lesson(rec, "composite-lesson", duration=16.0)
    out = tmp_path / "film.mp4"
    progress = io.StringIO()
    render_composite(rec, out, width=320, height=180, fps=10, progress=progress)
    assert "100%" in progress.getvalue()
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"
        duration = container.duration / 1e6
    assert abs(duration - 16.2) < 0.6, duration
    teacher = main_brightness(out, 3.0, 320, 180)  # no spotlight: teacher (shade 80)
    remote = main_brightness(out, 9.0, 320, 180)  # spotlight r1 (shade 40)
    back = main_brightness(out, 15.0, 320, 180)  # spotlight cleared
    assert teacher > remote + 20 and back > remote + 20, (teacher, remote, back)
    # there is sound where the beeps are
    with av.open(str(out)) as container:
        loud = max(float(np.abs(f.to_ndarray()).max()) for f in container.decode(audio=0))
    assert loud > 0.2


def test_composite_cli_errors(tmp_path: Path) -> None:
    assert composite_main([str(tmp_path / "missing")]) == 1
    with pytest.raises(CompositeError):
        render_composite(tmp_path, tmp_path / "x.mp4", width=63)
