"""A tiny vector scene rendered to SVG (for the HTML report) and to PNG (numpy + zlib).

The PNG renderer draws text with a built-in 5x7 pixel font that only knows ASCII: labels are
written bilingually ("教师 Teacher") and the PNG keeps the English part; the HTML's SVG shows both.
"""

from __future__ import annotations

import html
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

Color = str  # "#rrggbb"


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: Color
    opacity: float = 1.0
    title: str = ""


@dataclass
class Line:
    points: list[tuple[float, float]]
    stroke: Color
    width: float = 1.0
    dash: bool = False


@dataclass
class Circle:
    cx: float
    cy: float
    r: float
    fill: Color
    title: str = ""


@dataclass
class Polygon:
    points: list[tuple[float, float]]
    fill: Color
    opacity: float = 1.0


@dataclass
class Text:
    x: float
    y: float
    text: str
    size: float = 12.0
    anchor: str = "start"  # start | middle | end
    fill: Color = "#222222"
    bold: bool = False
    vertical: bool = False


Item = Rect | Line | Circle | Polygon | Text


@dataclass
class Scene:
    width: int
    height: int
    items: list[Item] = field(default_factory=list)
    title: str = ""

    def add(self, item: Item) -> None:
        self.items.append(item)

    # ---- SVG -------------------------------------------------------------------------------
    def to_svg(self) -> str:
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
            f'width="{self.width}" height="{self.height}" role="img" '
            f'aria-label="{html.escape(self.title)}" class="chart">',
            f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="#ffffff"/>',
        ]
        for it in self.items:
            if isinstance(it, Rect):
                tip = f"<title>{html.escape(it.title)}</title>" if it.title else ""
                out.append(
                    f'<rect x="{it.x:.1f}" y="{it.y:.1f}" width="{max(it.w, 0):.1f}" '
                    f'height="{max(it.h, 0):.1f}" fill="{it.fill}" fill-opacity="{it.opacity}">'
                    f"{tip}</rect>"
                )
            elif isinstance(it, Line):
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
                dash = ' stroke-dasharray="4 3"' if it.dash else ""
                out.append(
                    f'<polyline points="{pts}" fill="none" stroke="{it.stroke}" stroke-width="{it.width}"{dash}/>'
                )
            elif isinstance(it, Circle):
                tip = f"<title>{html.escape(it.title)}</title>" if it.title else ""
                out.append(f'<circle cx="{it.cx:.1f}" cy="{it.cy:.1f}" r="{it.r}" fill="{it.fill}">{tip}</circle>')
            elif isinstance(it, Polygon):
                pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
                out.append(f'<polygon points="{pts}" fill="{it.fill}" fill-opacity="{it.opacity}"/>')
            else:
                weight = ' font-weight="bold"' if it.bold else ""
                rot = f' transform="rotate(-90 {it.x:.1f} {it.y:.1f})"' if it.vertical else ""
                out.append(
                    f'<text x="{it.x:.1f}" y="{it.y:.1f}" font-size="{it.size}" '
                    f'text-anchor="{it.anchor}" fill="{it.fill}"{weight}{rot}>'
                    f"{html.escape(it.text)}</text>"
                )
        out.append("</svg>")
        return "\n".join(out)

    # ---- PNG -------------------------------------------------------------------------------
    def to_png(self) -> bytes:
        img = np.full((self.height, self.width, 3), 255, dtype=np.uint8)
        for it in self.items:
            if isinstance(it, Rect):
                _rect(img, it.x, it.y, it.w, it.h, _rgb(it.fill), it.opacity)
            elif isinstance(it, Line):
                for a, b in zip(it.points, it.points[1:], strict=False):
                    _segment(img, a, b, _rgb(it.stroke), it.width, it.dash)
            elif isinstance(it, Circle):
                _circle(img, it.cx, it.cy, it.r, _rgb(it.fill))
            elif isinstance(it, Polygon):
                _polygon(img, it.points, _rgb(it.fill), it.opacity)
            else:
                _text(img, it)
        return encode_png(img)


def _rgb(color: Color) -> np.ndarray:
    c = color.lstrip("#")
    return np.array([int(c[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32)


def _blend(region: np.ndarray, rgb: np.ndarray, alpha: float) -> None:
    if alpha >= 1:
        region[...] = rgb.astype(np.uint8)
    else:
        region[...] = (region * (1 - alpha) + rgb * alpha).astype(np.uint8)


def _rect(img: np.ndarray, x: float, y: float, w: float, h: float, rgb: np.ndarray, a: float) -> None:
    h_img, w_img = img.shape[:2]
    x0, y0 = max(int(round(x)), 0), max(int(round(y)), 0)
    x1, y1 = min(int(round(x + w)), w_img), min(int(round(y + h)), h_img)
    if w > 0 and x1 <= x0 and x0 < w_img:
        x1 = x0 + 1
    if h > 0 and y1 <= y0 and y0 < h_img:
        y1 = y0 + 1
    if x1 > x0 and y1 > y0:
        _blend(img[y0:y1, x0:x1], rgb, float(a))


def _segment(
    img: np.ndarray,
    a: tuple[float, float],
    b: tuple[float, float],
    rgb: np.ndarray,
    width: float,
    dash: bool,
) -> None:
    length = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1.0)
    t = np.linspace(0.0, 1.0, int(length * 2) + 2)
    if dash:
        keep = ((t * length) % 7) < 4
        t = t[keep]
    xs = a[0] + (b[0] - a[0]) * t
    ys = a[1] + (b[1] - a[1]) * t
    half = max(width / 2, 0.5)
    offs = np.arange(-int(np.floor(half - 0.01)), int(np.ceil(half - 0.01)) + 1)
    if len(offs) == 0:
        offs = np.array([0])
    h, w = img.shape[:2]
    for dx in offs:
        for dy in offs:
            px = np.round(xs + dx).astype(int)
            py = np.round(ys + dy).astype(int)
            ok = (px >= 0) & (px < w) & (py >= 0) & (py < h)
            img[py[ok], px[ok]] = rgb.astype(np.uint8)


def _circle(img: np.ndarray, cx: float, cy: float, r: float, rgb: np.ndarray) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(int(cx - r - 1), 0), min(int(cx + r + 2), w)
    y0, y1 = max(int(cy - r - 1), 0), min(int(cy + r + 2), h)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    img[y0:y1, x0:x1][mask] = rgb.astype(np.uint8)


def _polygon(img: np.ndarray, pts: list[tuple[float, float]], rgb: np.ndarray, a: float) -> None:
    h, w = img.shape[:2]
    xs = np.array([p[0] for p in pts])
    ys = np.array([p[1] for p in pts])
    x0, x1 = max(int(xs.min()), 0), min(int(np.ceil(xs.max())) + 1, w)
    y0, y1 = max(int(ys.min()), 0), min(int(np.ceil(ys.max())) + 1, h)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    px, py = xx + 0.5, yy + 0.5
    inside = np.zeros(px.shape, dtype=bool)
    n = len(pts)
    for i in range(n):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % n]
        if ay == by:
            continue
        crosses = ((ay > py) != (by > py)) & (px < (bx - ax) * (py - ay) / (by - ay) + ax)
        inside ^= crosses
    region = img[y0:y1, x0:x1]
    region[inside] = (region[inside] * (1 - a) + rgb * a).astype(np.uint8)


_FONT_SRC = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001",
    "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110",
    "D": "11110 10001 10001 10001 10001 10001 11110",
    "E": "11111 10000 10000 11110 10000 10000 11111",
    "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111",
    "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110",
    "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001",
    "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001",
    "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110",
    "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101",
    "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110",
    "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110",
    "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010",
    "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 01010 00100 00100 00100 00100",
    "Z": "11111 00001 00010 00100 01000 10000 11111",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    ",": "00000 00000 00000 00000 01100 00100 01000",
    ":": "00000 01100 01100 00000 01100 01100 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011",
    "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000",
    "/": "00000 00001 00010 00100 01000 10000 00000",
    "=": "00000 00000 11111 00000 11111 00000 00000",
    "+": "00000 00100 00100 11111 00100 00100 00000",
    "_": "00000 00000 00000 00000 00000 00000 11111",
    "'": "00100 00100 00000 00000 00000 00000 00000",
    " ": "00000 00000 00000 00000 00000 00000 00000",
}
_FONT = {ch: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool) for ch, rows in _FONT_SRC.items()}


def ascii_part(text: str) -> str:
    """The part of a bilingual label the PNG font can draw."""
    kept = "".join(c if ord(c) < 128 else " " for c in text)
    return " ".join(kept.split())


def _text_bitmap(text: str, scale: int) -> np.ndarray:
    text = ascii_part(text).upper()
    if not text:
        return np.zeros((0, 0), dtype=bool)
    glyphs = [_FONT.get(c, _FONT[" "]) for c in text]
    gap = np.zeros((7, 1), dtype=bool)
    parts: list[np.ndarray] = []
    for g in glyphs:
        parts += [g, gap]
    bmp = np.concatenate(parts[:-1], axis=1)
    return np.kron(bmp, np.ones((scale, scale), dtype=bool)).astype(bool)


def _text(img: np.ndarray, it: Text) -> None:
    scale = 2 if it.size >= 15 else 1
    bmp = _text_bitmap(it.text, scale)
    if bmp.size == 0:
        return
    if it.vertical:
        bmp = np.rot90(bmp)
    bh, bw = bmp.shape
    if it.vertical:
        x = int(it.x - bw)
        y = int(it.y - bh / 2) if it.anchor == "middle" else int(it.y - bh)
    else:
        x = int(it.x) - (bw // 2 if it.anchor == "middle" else bw if it.anchor == "end" else 0)
        y = int(it.y - bh)
    h, w = img.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        return
    sub = bmp[y0 - y : y1 - y, x0 - x : x1 - x]
    img[y0:y1, x0:x1][sub] = _rgb(it.fill).astype(np.uint8)


def encode_png(img: np.ndarray) -> bytes:
    """RGB uint8 array -> PNG bytes."""
    h, w = img.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), img.reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
