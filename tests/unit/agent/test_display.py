"""agent/display.py on a file standing in for /dev/fb0 (same mmap path as the device)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from agent.display import BANNER, DisplayError, FramebufferDisplay, Geometry, floor_state, parse_size


def fake_fb(tmp_path: Path, w: int, h: int, stride: int = 0) -> tuple[str, Geometry]:
    g = Geometry(w, h, 32, stride)
    path = tmp_path / "fb0"
    path.write_bytes(b"\xff" * (g.line * h))
    return str(path), g


def frame(w: int, h: int, rgb: tuple[int, int, int]) -> av.VideoFrame:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:] = rgb
    return av.VideoFrame.from_ndarray(img, format="rgb24")


def pixels(path: str, g: Geometry) -> np.ndarray:
    data = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8).reshape(g.height, g.line)
    return data[:, : g.width * 4].reshape(g.height, g.width, 4)


def test_a_frame_is_scaled_under_the_banner_and_centred(tmp_path: Path) -> None:
    path, g = fake_fb(tmp_path, 320, 200)
    d = FramebufferDisplay(path, g)
    try:
        assert d.show(frame(160, 90, (255, 0, 0)), now=1.0)  # 16:9 into 320x190: 320x180, centred
        px = pixels(path, g)
        banner = d.banner_px
        assert (px[:banner] == BANNER["idle"]).all()
        top = banner + (200 - banner - 180) // 2
        assert tuple(px[top + 90, 160][:3]) == (0, 0, 255)  # red, stored BGR
        assert (px[banner:top] == 0).all() and (px[top + 180:] == 0).all()  # cleared above and below
        assert not d.show(frame(160, 90, (0, 255, 0)), now=1.01)  # within 1/15 s: skipped
        assert d.show(frame(160, 90, (0, 255, 0)), now=1.2)
        assert tuple(pixels(path, g)[top + 90, 160][:3]) == (0, 255, 0)
        assert d.shown == 2
    finally:
        d.close()


def test_the_banner_shows_the_floor_state(tmp_path: Path) -> None:
    path, g = fake_fb(tmp_path, 64, 64, stride=64 * 4 + 32)  # a line longer than the pixels
    d = FramebufferDisplay(path, g)
    try:
        for state in ("hand", "floor", "idle"):
            d.set_floor(state)
            assert (pixels(path, g)[: d.banner_px] == BANNER[state]).all(), state
        d.set_floor("nonsense")  # ignored
        assert d.state == "idle"
    finally:
        d.close()


def test_floor_state() -> None:
    assert floor_state("r1", [], ["r1"], None) == "floor"
    assert floor_state("r1", [], [], "r1") == "floor"
    assert floor_state("r1", ["r1"], [], None) == "hand"
    assert floor_state("r1", ["r2"], ["r2"], "r2") == "idle"
    assert floor_state("", [""], [""], "") == "idle"


def test_bad_displays_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DisplayError, match="cannot open"):
        FramebufferDisplay(str(tmp_path / "missing"), Geometry(64, 64))
    path, g = fake_fb(tmp_path, 64, 64)
    with pytest.raises(DisplayError, match="only 32"):
        FramebufferDisplay(path, Geometry(64, 64, 16))
    with pytest.raises(DisplayError, match="smaller"):
        FramebufferDisplay(path, Geometry(128, 128))
    with pytest.raises(DisplayError, match="geometry"):
        FramebufferDisplay("/dev/fb-none")  # no sysfs entry to read the geometry from
    assert parse_size("1920x1080") == (1920, 1080)
    for bad in ("1920", "axb", "1x1", "99999x10"):
        with pytest.raises(DisplayError):
            parse_size(bad)
