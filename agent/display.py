"""What the agent receives, on the classroom's screen: a Linux framebuffer (``/dev/fb0``, the HDMI
output of a mini-PC or recording box that runs no desktop).

The picture of the main video track (the first one the server sends: the lead's camera, or the
spotlighted classroom when that is what this classroom receives) is scaled to fit under a banner
and centred; the banner's colour shows the floor state of this classroom — green: it has the
floor (granted or spotlighted), amber: its hand is raised, dark grey: neither. Writes go through
``mmap`` (no system call per frame) at most ``max_fps`` times a second. 32 bits per pixel (BGRX,
what the Linux fbdev drivers of HDMI outputs use); anything else is refused with a clear error.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

# banner colours, (B, G, R, X) as the framebuffer stores them
BANNER = {
    "floor": (0x32, 0x7D, 0x2E, 0),  # green
    "hand": (0x25, 0xA8, 0xF9, 0),  # amber
    "idle": (0x30, 0x30, 0x30, 0),  # dark grey
}


class DisplayError(Exception):
    """The display cannot be used (no such device, unknown geometry, unsupported depth)."""


@dataclass(frozen=True)
class Geometry:
    width: int
    height: int
    bpp: int = 32
    stride: int = 0  # bytes per line; 0: width * 4

    @property
    def line(self) -> int:
        return self.stride or self.width * self.bpp // 8


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise DisplayError(f"display size {text!r} is not WIDTHxHEIGHT") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise DisplayError(f"display size {text!r} is out of range (16..8192)")
    return w, h


def fb_geometry(device: str) -> Geometry:
    """The geometry of ``/dev/fbN`` from ``/sys/class/graphics/fbN``."""
    sysfs = Path("/sys/class/graphics") / Path(device).name
    try:
        w, h = (int(x) for x in (sysfs / "virtual_size").read_text().strip().split(","))
        bpp = int((sysfs / "bits_per_pixel").read_text().strip())
        stride_file = sysfs / "stride"
        stride = int(stride_file.read_text().strip()) if stride_file.exists() else 0
    except (OSError, ValueError) as exc:
        raise DisplayError(f"cannot read the geometry of {device} from {sysfs}: {exc}") from None
    return Geometry(w, h, bpp, stride)


def floor_state(me: str, queue: list[str], granted: list[str], spotlight: str | None) -> str:
    if me and (me in granted or spotlight == me):
        return "floor"
    if me and me in queue:
        return "hand"
    return "idle"


class FramebufferDisplay:
    def __init__(self, path: str, geometry: Geometry | None = None, max_fps: float = 15.0) -> None:
        geometry = geometry or fb_geometry(path)
        if geometry.bpp != 32:
            raise DisplayError(f"{path}: {geometry.bpp} bits per pixel; only 32 is supported")
        if geometry.line < geometry.width * 4:
            raise DisplayError(f"{path}: a line of {geometry.line} bytes cannot hold {geometry.width} pixels")
        self.path = path
        self.geometry = geometry
        self.min_interval = 1.0 / max_fps if max_fps > 0 else 0.0
        self.banner_px = max(8, geometry.height // 20)
        size = geometry.line * geometry.height
        try:
            self._fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise DisplayError(f"cannot open the display {path}: {exc.strerror}") from None
        try:
            st = os.fstat(self._fd)
            if stat.S_ISREG(st.st_mode) and st.st_size < size:  # a file standing in for the device
                raise DisplayError(f"{path} is smaller than {geometry.width}x{geometry.height} at 32 bpp")
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except (OSError, ValueError) as exc:
            os.close(self._fd)
            raise DisplayError(f"cannot map the display {path}: {exc}") from None
        except DisplayError:
            os.close(self._fd)
            raise
        rows = np.frombuffer(self._map, dtype=np.uint8).reshape(geometry.height, geometry.line)
        self.pixels = rows[:, : geometry.width * 4].reshape(geometry.height, geometry.width, 4)
        self.state = ""
        self.shown = 0  # frames written
        self._last = 0.0
        self._size: tuple[int, int, int, int] | None = None  # the picture's (x, y, w, h) on screen
        self.pixels[:] = 0
        self.set_floor("idle")

    def set_floor(self, state: str) -> None:
        if state == self.state or state not in BANNER:
            return
        self.state = state
        self.pixels[: self.banner_px] = BANNER[state]

    def _fit(self, fw: int, fh: int) -> tuple[int, int, int, int]:
        g = self.geometry
        area_h = g.height - self.banner_px
        scale = min(g.width / fw, area_h / fh)
        w = max(2, int(fw * scale) // 2 * 2)
        h = max(2, int(fh * scale) // 2 * 2)
        return (g.width - w) // 2, self.banner_px + (area_h - h) // 2, w, h

    def show(self, frame: av.VideoFrame, now: float | None = None) -> bool:
        """Put ``frame`` on the screen unless the last one was shown less than 1/max_fps ago."""
        now = time.monotonic() if now is None else now
        if self.shown and now - self._last < self.min_interval:
            return False
        x, y, w, h = self._fit(frame.width, frame.height)
        if self._size != (x, y, w, h):  # a new picture size: clear what the old one covered
            self.pixels[self.banner_px:] = 0
            self._size = (x, y, w, h)
        picture: Any = frame.reformat(width=w, height=h, format="bgra").to_ndarray()
        self.pixels[y: y + h, x: x + w] = picture.reshape(h, w, 4)
        self._last = now
        self.shown += 1
        return True

    def close(self) -> None:
        del self.pixels
        self._map.close()
        os.close(self._fd)
