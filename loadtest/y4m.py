"""A generated high-detail camera picture for Chromium's fake camera
(``--use-file-for-fake-video-capture=FILE.y4m``), so that a 720p publisher encodes at a real
classroom camera's 1.5–2.5 Mbit/s instead of the default fake camera's ~0.66 Mbit/s.

The picture (numpy, deterministic from a seed): a fine multi-scale texture wider than the frame
that the "camera" pans across slowly, a dozen textured blobs ("students") moving on their own
paths, coloured regions, and fresh sensor-like noise in every frame. The file plays forward then
backward (a ping-pong loop), so Chromium's endless looping has no jump cut. It is written once to
a cache directory (``~/.cache/classroom-loadtest/``, or ``$CLASSROOM_LOADTEST_CACHE``), never the
repository: 1280×720 at 20 fps for 5 s is ~140 MB.

    python -m loadtest.y4m                 # print the cached file's path (generating it if needed)
    python -m loadtest.y4m --measure 20    # and measure what Chromium encodes from it

``--measure`` publishes the file from one Chromium page to a second RTCPeerConnection in the same
page (loopback, nothing else involved) and prints the sent video bitrate, resolution and frame
rate over the last seconds; ``python -m loadtest.weaklink`` prints the bitrate per layer the lead
really sends in each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 3  # bump when the picture changes, so a stale cache file is not reused


@dataclass(frozen=True)
class Y4MSpec:
    width: int = 1280
    height: int = 720
    fps: int = 20
    seconds: float = 2.5  # forward; the file holds forward + backward = 2 × seconds
    noise: float = 0.8  # σ of the per-frame luma noise, in 8-bit levels
    pan_px_per_frame: float = 1.0
    seed: int = 13

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2 or self.width <= 0 or self.height <= 0:
            raise ValueError("width and height must be positive and even")
        if not 1 <= self.fps <= 60 or self.seconds <= 0:
            raise ValueError("fps in 1..60 and seconds > 0")

    @property
    def forward_frames(self) -> int:
        return max(1, round(self.fps * self.seconds))

    @property
    def frames(self) -> int:
        return 2 * self.forward_frames

    @property
    def file_name(self) -> str:
        return (f"camera-{self.width}x{self.height}-{self.fps}fps-{self.forward_frames}f-"
                f"n{self.noise:g}-p{self.pan_px_per_frame:g}-s{self.seed}-v{VERSION}.y4m")

    def header(self) -> bytes:
        return f"YUV4MPEG2 W{self.width} H{self.height} F{self.fps}:1 Ip A1:1 C420jpeg\n".encode()

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height * 3 // 2


def cache_dir() -> Path:
    env = os.environ.get("CLASSROOM_LOADTEST_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "classroom-loadtest"


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multi-scale texture in 0..255 (float32): coarse shading + mid-size blocks + fine grain."""
    out = np.zeros((h, w), np.float32)
    for cell, amp in ((64, 50.0), (16, 30.0), (4, 14.0), (1, 3.0)):
        small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
        big = np.kron(small, np.ones((cell, cell), np.float32))[:h, :w]
        out += amp * big
    # sharp edges: a few bright/dark stripes (desk edges, window frames)
    for _ in range(40):
        y = int(rng.integers(0, h))
        out[y:y + int(rng.integers(1, 4)), :] += float(rng.choice((-60.0, 60.0)))
    for _ in range(40):
        x = int(rng.integers(0, w))
        out[:, x:x + int(rng.integers(1, 4))] += float(rng.choice((-60.0, 60.0)))
    out = 128.0 + out * 0.9
    return np.clip(out, 16, 235)


def frames(spec: Y4MSpec) -> list[bytes]:
    """The forward frames (I420, one ``bytes`` per frame)."""
    rng = np.random.default_rng(spec.seed)
    w, h = spec.width, spec.height
    n = spec.forward_frames
    pan = int(np.ceil(spec.pan_px_per_frame * n)) + 8
    bg_y = _texture(rng, h + 8, w + pan)
    bg_u = np.clip(128 + 0.5 * (_texture(rng, (h + 8) // 2, (w + pan) // 2 + 1) - 128), 16, 240)
    bg_v = np.clip(128 + 0.5 * (_texture(rng, (h + 8) // 2, (w + pan) // 2 + 1) - 128), 16, 240)
    blobs = []
    for _ in range(12):
        bh, bw = int(rng.integers(60, 160)), int(rng.integers(50, 120))
        tex = _texture(rng, bh, bw)
        y0, x0 = float(rng.integers(0, h - bh)), float(rng.integers(0, w - bw))
        vy, vx = float(rng.uniform(-3, 3)), float(rng.uniform(-4, 4))
        blobs.append((tex, y0, x0, vy, vx, bh, bw))
    out = []
    for i in range(n):
        off = int(round(spec.pan_px_per_frame * i))
        y = bg_y[4:4 + h, off:off + w].copy()
        for tex, y0, x0, vy, vx, bh, bw in blobs:
            by = int(abs((y0 + vy * i) % (2 * (h - bh)) - (h - bh)))
            bx = int(abs((x0 + vx * i) % (2 * (w - bw)) - (w - bw)))
            y[by:by + bh, bx:bx + bw] = tex
        y += rng.normal(0.0, spec.noise, y.shape).astype(np.float32)
        u = bg_u[2:2 + h // 2, off // 2:off // 2 + w // 2]
        v = bg_v[2:2 + h // 2, off // 2:off // 2 + w // 2]
        out.append(
            np.clip(y, 0, 255).astype(np.uint8).tobytes()
            + np.clip(u, 0, 255).astype(np.uint8).tobytes()
            + np.clip(v, 0, 255).astype(np.uint8).tobytes()
        )
    return out


def write(spec: Y4MSpec, path: Path) -> Path:
    """Write the ping-pong file to ``path`` (atomically) and return it."""
    forward = frames(spec)
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(spec.header())
        for frame in forward + forward[::-1]:
            f.write(b"FRAME\n")
            f.write(frame)
    tmp.replace(path)
    return path


def camera_file(spec: Y4MSpec | None = None) -> Path:
    """The cached Y4M for ``spec`` (default 1280×720 25 fps), generated on first use."""
    spec = spec or Y4MSpec()
    path = cache_dir() / spec.file_name
    expected = len(spec.header()) + spec.frames * (6 + spec.frame_bytes)
    if not path.exists() or path.stat().st_size != expected:
        write(spec, path)
    return path


_MEASURE_JS = """
async (seconds) => {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: 1280, height: 720, frameRate: 30 }, audio: false });
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  a.addTrack(stream.getVideoTracks()[0], stream);
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  const sample = async () => {
    let out = null;
    (await a.getStats()).forEach((s) => { if (s.type === "outbound-rtp" && s.kind === "video") out = s; });
    return out;
  };
  await new Promise((r) => setTimeout(r, 1000 * Math.max(2, seconds / 2)));
  const s0 = await sample(), t0 = performance.now();
  await new Promise((r) => setTimeout(r, 1000 * Math.max(2, seconds / 2)));
  const s1 = await sample(), dt = (performance.now() - t0) / 1000;
  return { kbps: 8 * (s1.bytesSent - s0.bytesSent) / dt / 1000,
           fps: (s1.framesEncoded - s0.framesEncoded) / dt,
           width: s1.frameWidth, height: s1.frameHeight,
           qualityLimitationReason: s1.qualityLimitationReason, encoder: s1.encoderImplementation };
}
"""


async def measure(path: Path, seconds: float) -> dict[str, Any]:
    """What Chromium encodes from ``path`` over a loopback peer connection (one page)."""
    from playwright.async_api import async_playwright

    from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={path}"],
        )
        try:
            page = await browser.new_page()
            blank = path.parent / "blank.html"  # a file:// page is a secure context
            blank.write_text("<!doctype html><title>y4m</title>")
            await page.goto(blank.as_uri())
            result: dict[str, Any] = await page.evaluate(_MEASURE_JS, seconds)
        finally:
            await browser.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.y4m", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", type=float, metavar="SECONDS", default=0.0)
    parser.add_argument("--noise", type=float, default=Y4MSpec.noise)
    args = parser.parse_args(argv)
    path = camera_file(Y4MSpec(noise=args.noise))
    print(path)
    if args.measure:
        r = asyncio.run(measure(path, args.measure))
        print(f"Chromium encodes {r['width']}x{r['height']} at {r['fps']:.1f} fps, "
              f"{r['kbps']:.0f} kbit/s ({r['encoder']}, limited by {r['qualityLimitationReason']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
