"""The report's charts, drawn with matplotlib (Agg): PNG files and SVG for the HTML report.

matplotlib is imported here, lazily (``render_charts``): importing it takes about a second, and
only writing a report needs it. Labels are bilingual; see :mod:`analytics.fonts` for the CJK font
and what happens without one.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analytics.fonts import ChartFont, find_cjk_font, latin_part
from analytics.st import MODE_NAMES_ZH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

T_COLOR = "#e4572e"
S_COLOR = "#2e86ab"
GRID = "#e6e6e6"
AXIS = "#555555"
ROW_BG = "#f4f4f4"
WARN = "#c3423f"
INK = "#222222"
EVENT_COLORS = {
    "hand_raised": "#f0a202",
    "hand_lowered": "#b08d57",
    "floor_granted": "#3bb273",
    "floor_revoked": "#7a7a7a",
    "spotlight": "#8e44ad",
    "mute": "#333333",
    "join": "#9bc53d",
    "leave": "#c3423f",
}
EVENT_LABELS = {
    "hand_raised": "举手 hand raised",
    "hand_lowered": "放下 hand lowered",
    "floor_granted": "准许发言 floor granted",
    "floor_revoked": "收回发言 floor revoked",
    "spotlight": "聚焦 spotlight",
    "mute": "静音 mute",
    "join": "加入 join",
    "leave": "离开 leave",
}
LEGEND_ORDER = (
    "hand_raised",
    "floor_granted",
    "floor_revoked",
    "hand_lowered",
    "spotlight",
    "mute",
    "join",
    "leave",
)
MODE_EN = {"practice": "Practice", "lecture": "Lecture", "dialogue": "Dialogue", "mixed": "Mixed"}
CHART_NAMES = ("st_curve", "rt_ch", "timeline", "participation", "st_codes")
PX = 100  # figure dpi: sizes below are in pixels / PX inches, as the HTML shows them
PNG_DPI = 150
NAME_WIDTH = 24
"""classroom names on the axes wrap at this many columns (a Chinese character is two)."""


@dataclass
class Chart:
    name: str
    png: bytes
    svg: str
    """inline ``<svg>`` element (no XML prolog; ids prefixed with the chart's name)"""


class Labels:
    """Turns a bilingual label into what the chart's font can draw."""

    def __init__(self, font: ChartFont) -> None:
        self.font = font

    def __call__(self, text: str) -> str:
        return text if self.font.cjk else latin_part(text)


def columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def wrap_name(text: str, width: int = NAME_WIDTH) -> str:
    """Wraps a label at ``width`` columns (at spaces where there are some; Chinese anywhere)."""
    lines: list[str] = []
    line = ""
    for word in re.findall(r"\S+\s*", text) or [text]:
        while columns(word.rstrip()) > width:  # a word (or a run of Chinese) longer than a line
            room = width - columns(line)
            cut = 0
            while cut < len(word) and columns(word[: cut + 1]) <= room:
                cut += 1
            if cut == 0:
                lines.append(line.rstrip())
                line = ""
                continue
            lines.append((line + word[:cut]).rstrip())
            line, word = "", word[cut:]
        if columns((line + word).rstrip()) > width and line:
            lines.append(line.rstrip())
            line = ""
        line += word
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return "\n".join(lines)


# ------------------------------------------------------------------------------- the charts
def _figure(width_px: float, height_px: float, constrained: bool = True) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=(width_px / PX, height_px / PX),
        dpi=PX,
        facecolor="#ffffff",
        layout="constrained" if constrained else None,
    )
    FigureCanvasAgg(fig)  # Agg, without pyplot (no global figure registry, no GUI backend)
    return fig


def _title(fig: Figure, text: str, size: float = 13) -> None:
    fig.suptitle(text, x=0.015, ha="left", fontsize=size, fontweight="bold", color=INK)


def _plain_axes(ax: Axes) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(AXIS)
        ax.spines[side].set_linewidth(1.2)
    ax.tick_params(colors=AXIS, labelcolor=INK, labelsize=9)


def st_curve(report: dict[str, Any], label: Labels) -> Figure:
    """Classic S-T diagram: each window steps right (T) or up (S)."""
    codes: list[str] = report["st"]["codes"]
    n = max(len(codes), 1)
    fig = _figure(460, 440)
    _title(fig, label("S-T 曲线 curve"))
    ax = fig.add_subplot()
    xs, ys = [0], [0]
    for c in codes:
        xs.append(xs[-1] + (c == "T"))
        ys.append(ys[-1] + (c != "T"))
    ax.plot([0, n], [0, n], color="#bbbbbb", linewidth=1, linestyle=(0, (4, 3)))
    ax.plot(xs, ys, color="#333333", linewidth=2.5, solid_joinstyle="miter")
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_aspect("equal")
    ax.grid(True, color=GRID, linewidth=1)
    ax.set_axisbelow(True)
    _plain_axes(ax)
    interval = report["st"]["interval_s"]
    ax.set_xlabel(label(f"教师行为 T (teacher), 每格 {interval:g}s / window"), color=T_COLOR, fontsize=10)
    ax.set_ylabel(label("学生行为 S (students)"), color=S_COLOR, fontsize=10)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    return fig


RT_CH_REGIONS: tuple[tuple[str, str], ...] = (
    ("practice", "#cfe8d5"),
    ("lecture", "#f6d6cc"),
    ("dialogue", "#d3e4f1"),
    ("mixed", "#efe7c8"),
)


def _region_polygons(thresholds: dict[str, float]) -> dict[str, list[tuple[float, float]]]:
    p_max = thresholds.get("practice_rt_max", 0.3)
    l_min = thresholds.get("lecture_rt_min", 0.7)
    d_min = thresholds.get("dialogue_ch_min", 0.4)
    return {
        "practice": [(0, 0), (p_max, 0), (p_max, 1), (0, 1)],
        "lecture": [(l_min, 0), (1, 0), (1, 1), (l_min, 1)],
        "dialogue": [(p_max, d_min), (l_min, d_min), (l_min, 1), (p_max, 1)],
        "mixed": [(p_max, 0), (l_min, 0), (l_min, d_min), (p_max, d_min)],
    }


def rt_ch(report: dict[str, Any], thresholds: dict[str, float], label: Labels) -> Figure:
    """Rt-Ch diagram with the four teaching-mode regions and this lesson's point, whose label is
    placed where it overlaps no region label (nor leaves the plot)."""
    from matplotlib.patches import Polygon

    fig = _figure(460, 440)
    _title(fig, label("Rt-Ch 教学模式图 teaching mode"))
    ax = fig.add_subplot()
    polygons = _region_polygons(thresholds)
    region_texts: list[Text] = []
    for mode, color in RT_CH_REGIONS:
        poly = polygons[mode]
        ax.add_patch(Polygon(poly, closed=True, facecolor=color, edgecolor="none", zorder=0))
    # Ch can never exceed 2*min(Rt, 1-Rt) (+1/N): shade the impossible corners lightly
    for corner in ([(0, 0), (0, 1), (0.5, 1)], [(1, 0), (1, 1), (0.5, 1)]):
        ax.add_patch(Polygon(corner, closed=True, facecolor="#ffffff", alpha=0.55, edgecolor="none", zorder=1))
    for mode, _ in RT_CH_REGIONS:
        poly = polygons[mode]
        cx = sum(a for a, _ in poly) / 4
        cy = sum(b for _, b in poly) / 4
        text = f"{MODE_NAMES_ZH[mode]}\n{MODE_EN[mode]}" if label.font.cjk else MODE_EN[mode]
        region_texts.append(
            ax.text(cx, cy, text, ha="center", va="center", fontsize=10, fontweight="bold", color=INK, zorder=2)
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    _plain_axes(ax)
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel(label("教师占有率 Rt (teacher share)"), fontsize=10)
    ax.set_ylabel(label("师生转换率 Ch (switch rate)"), fontsize=10)
    rt, ch = float(report["st"]["rt"]), float(report["st"]["ch"])
    x, y = min(max(rt, 0.0), 1.0), min(max(ch, 0.0), 1.0)
    ax.plot(
        [x],
        [y],
        marker="o",
        markersize=11,
        markerfacecolor="#ffcc00",
        markeredgecolor="#111111",
        markeredgewidth=2.5,
        zorder=4,
        clip_on=False,
    )
    point_text = ax.annotate(
        label(f"本课 this lesson\nRt={rt:.2f} Ch={ch:.2f}"),
        (x, y),
        xytext=(10, 10),
        textcoords="offset points",
        fontsize=9.5,
        fontweight="bold",
        color="#111111",
        zorder=5,
        bbox={"boxstyle": "round,pad=0.25", "facecolor": "#ffffff", "edgecolor": "#999999", "alpha": 0.9},
    )
    place_label(fig, ax, point_text, region_texts)
    return fig


def _label_offsets() -> list[tuple[float, float, str, str]]:
    """Where the lesson's label may go, nearest first: around the point at growing distances
    (points), with the alignment that keeps it off the point."""
    out: list[tuple[float, float, str, str]] = []
    for r in (10, 30, 55, 85, 120):
        for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
            out.append((dx * r, dy * r * (1.4 if dx == 0 else 1.0), ha, va))
    return out


LABEL_OFFSETS = tuple(_label_offsets())


def place_label(fig: Figure, ax: Axes, text: Text, avoid: list[Text]) -> None:
    """Moves an annotation to the first offset where it overlaps none of ``avoid`` and stays
    inside the axes (else the offset with the least overlap). Fixes the figure's layout first."""
    fig.canvas.draw()  # Agg: run the constrained layout once, then keep it
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [t.get_window_extent(renderer).expanded(1.04, 1.1) for t in avoid]
    frame = ax.get_window_extent(renderer)
    best: tuple[float, tuple[float, float, str, str]] | None = None
    for dx, dy, ha, va in LABEL_OFFSETS:
        text.set_position((dx, dy))
        text.set(horizontalalignment=ha, verticalalignment=va)
        box = text.get_window_extent(renderer)
        overlap = sum(_overlap_area(box, other) for other in boxes)
        outside = box.width * box.height - _overlap_area(box, frame)
        cost = overlap + outside
        if cost <= 0:
            return
        if best is None or cost < best[0]:
            best = (cost, (dx, dy, ha, va))
    assert best is not None
    dx, dy, ha, va = best[1]
    text.set_position((dx, dy))
    text.set(horizontalalignment=ha, verticalalignment=va)


def _overlap_area(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return float(w * h) if w > 0 and h > 0 else 0.0


def _time_label(t: float, _: object = None) -> str:
    return f"{int(t // 60)}:{int(t % 60):02d}"


def timeline(report: dict[str, Any], label: Labels) -> Figure:
    """Who talked when: one row for the teacher, one per classroom, with floor events."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    duration = max(float(report["duration_s"]), 1.0)
    rooms = report["classrooms"]
    lead = next((r["id"] for r in rooms if r["role"] == "lead"), None)
    rows: list[tuple[str, list[list[float]], str, str | None]] = [
        (label("教师 Teacher"), report["segments"]["teacher"], T_COLOR, None)
    ]
    for r in rooms:
        segs = report["segments"]["classrooms"].get(r["id"], [])
        tag = label("主讲 lead" if r["id"] == lead else "远端 remote")
        rows.append((f"{wrap_name(label(r['name'] or r['id']))}\n({tag})", segs, S_COLOR, r["id"]))
    lines = [row[0].count("\n") + 1 for row in rows]
    row_px = max(34, 14 * max(lines) + 8)
    fig = _figure(960, 150 + row_px * len(rows))
    _title(fig, label("发言时间线 Talk timeline (who spoke when)"))
    ax = fig.add_subplot()
    events_by_room: dict[str | None, list[dict[str, Any]]] = {}
    for ev in report.get("events", []):
        events_by_room.setdefault(ev.get("classroom_id"), []).append(ev)
    n = len(rows)
    used: set[str] = set()
    for i, (_, segs, color, cid) in enumerate(rows):
        y = n - 1 - i  # first row on top
        ax.broken_barh([(0, duration)], (y - 0.36, 0.72), facecolors=ROW_BG, zorder=0)
        bars = [(float(s), max(float(e) - float(s), duration / 1200)) for s, e in segs]
        if bars:
            ax.broken_barh(bars, (y - 0.28, 0.56), facecolors=color, zorder=2)
        if cid is None:
            continue
        for ev in events_by_room.get(cid, []):
            etype = ev["type"]
            if etype not in EVENT_COLORS or (etype == "hand_lowered" and ev.get("reason") == "granted"):
                continue  # (a hand the grant lowered: the floor_granted mark at the same time says it)
            used.add(etype)
            t = float(ev["t_s"])
            ax.plot([t, t], [y - 0.42, y + 0.42], color=EVENT_COLORS[etype], linewidth=2, zorder=3)
            ax.plot([t], [y + 0.36], marker="o", markersize=5, color=EVENT_COLORS[etype], zorder=4)
    ax.set_yticks(range(n))
    ax.set_yticklabels([row[0] for row in reversed(rows)], fontsize=9, linespacing=1.1)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, duration)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 1.5, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(_time_label))
    ax.grid(True, axis="x", color=GRID, linewidth=1)
    ax.set_axisbelow(True)
    _plain_axes(ax)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)
    ax.set_xlabel(label("时间 time (min:s)"), fontsize=9)
    legend = [
        Patch(color=T_COLOR, label=label("教师说话 teacher speech")),
        Patch(color=S_COLOR, label=label("学生说话 student speech")),
    ]
    legend += [Patch(color=EVENT_COLORS[e], label=label(EVENT_LABELS[e])) for e in LEGEND_ORDER if e in used]
    fig.legend(
        handles=legend,
        loc="outside lower left",
        ncol=5,
        fontsize=9,
        frameon=False,
        handlelength=1.0,
        handleheight=1.0,
        columnspacing=1.6,
    )
    return fig


def participation(report: dict[str, Any], label: Labels) -> Figure:
    """Student talk per classroom with turns, hands, floor grants and whether it was heard."""
    rooms = report["classrooms"]
    part = report["participation"]
    never = set(report.get("fairness", {}).get("never_heard", []))
    names = [wrap_name(label(r["name"] or r["id"])) for r in rooms] or [""]
    lines = max(name.count("\n") + 1 for name in names)
    row_px = max(30, 14 * lines + 8)
    fig = _figure(960, 90 + row_px * max(len(rooms), 1))
    _title(fig, label("各教室参与 Participation by classroom (student talk)"))
    ax = fig.add_subplot()
    talks = [float(part.get(r["id"], {}).get("student_talk_s", 0.0)) for r in rooms]
    longest = max([*talks, 1.0])
    n = len(rooms)
    infos: list[Text] = []
    for i, (r, talk) in enumerate(zip(rooms, talks, strict=True)):
        p = part.get(r["id"], {})
        y = n - 1 - i
        unheard = r["id"] in never and r["role"] == "remote"
        ax.barh(y, max(talk, longest / 500), height=0.6, color=S_COLOR, zorder=2)
        info = label(
            f"{talk:.0f}s  发言 turns {p.get('turns', 0)}  举手 hands {p.get('hand_raises', 0)}"
            f"  准许 floor {p.get('floor_grants', 0)}"
        )
        if r["role"] == "remote" and "heard_s" in p:
            info += "  " + label(f"被听到 heard {float(p['heard_s']):.0f}s")
        if unheard:
            info += "  " + label("未被听到 never heard")
        text = ax.annotate(
            info,
            (talk, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=WARN if unheard else INK,
            annotation_clip=False,
        )
        text.set_in_layout(False)  # the axes take the whole width; _fit_right makes room for it
        infos.append(text)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(reversed(names[:n])), fontsize=9, linespacing=1.1)
    ax.set_ylim(-0.6, max(n, 1) - 0.4)
    ax.set_xlim(0, longest * 1.05)
    _plain_axes(ax)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(label("学生发言 student talk (s)"), fontsize=9)
    _fit_right(fig, ax, infos, talks)
    return fig


def _fit_right(fig: Figure, ax: Axes, texts: list[Text], ends: list[float]) -> None:
    """Sets the x range so that every text right of its bar (ending at ``ends``) fits inside the
    axes: bar_end_px + text_px <= axes width, i.e. hi >= end * W / (W - text_px)."""
    fig.canvas.draw()
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    lo, hi = ax.get_xlim()
    width = max(frame.width, 1.0)
    need = hi
    for text, end in zip(texts, ends, strict=True):
        free = width - text.get_window_extent(renderer).width - 16  # the 6-pt gap and a margin
        need = max(need, end * width / max(free, width * 0.05))
    ax.set_xlim(lo, need)


def st_codes(report: dict[str, Any], label: Labels) -> Figure:
    """The window codes as a coloured strip."""
    from matplotlib.patches import Rectangle

    codes: list[str] = report["st"]["codes"]
    n = max(len(codes), 1)
    fig = _figure(960, 80, constrained=False)
    interval = report["st"]["interval_s"]
    fig.text(
        0.01,
        0.92,
        label(f"每 {interval:g} 秒的编码 Code of each {interval:g}-s window (T 教师 teacher / S 学生 students)"),
        ha="left",
        va="top",
        fontsize=11,
        fontweight="bold",
        color=INK,
    )
    ax = fig.add_axes((0.01, 0.08, 0.98, 0.5))
    cell_px = 940 / n
    gap = 1.0 / cell_px if cell_px > 4 else 0.0  # one pixel between windows while they are wide
    for i, c in enumerate(codes):
        ax.add_patch(Rectangle((i, 0), 1 - gap, 1, facecolor=T_COLOR if c == "T" else S_COLOR, edgecolor="none"))
    ax.set_xlim(0, n)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    return fig


# ---------------------------------------------------------------------------------- output
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(href="#|url\(#)([^")]+)')


def _inline_svg(svg: str, name: str, title: str, width_px: float, height_px: float) -> str:
    """matplotlib's SVG document as an element for the HTML page: no prolog, ids of this chart's
    own (several charts on one page), ``class="chart"`` and pixel size (CSS scales it down)."""
    start = svg.index("<svg")
    body = svg[start:]
    body = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', body)
    body = _REF.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", body)
    head_end = body.index(">")
    head = body[:head_end]
    head = re.sub(r'\swidth="[^"]*"', f' width="{width_px:.0f}"', head, count=1)
    head = re.sub(r'\sheight="[^"]*"', f' height="{height_px:.0f}"', head, count=1)
    safe_title = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    head += f' class="chart" role="img" aria-label="{safe_title}"'
    return head + body[head_end:]


CHART_TITLES = {
    "st_curve": "S-T curve",
    "rt_ch": "Rt-Ch diagram",
    "timeline": "Talk timeline",
    "participation": "Participation",
    "st_codes": "S-T codes",
}


def figures(report: dict[str, Any], font: ChartFont) -> dict[str, Figure]:
    """The report's figures (matplotlib set up for ``font``)."""
    import matplotlib

    label = Labels(font)
    thresholds = report.get("thresholds", {})
    with matplotlib.rc_context(_rc(font)):
        return {
            "st_curve": st_curve(report, label),
            "rt_ch": rt_ch(report, thresholds, label),
            "timeline": timeline(report, label),
            "participation": participation(report, label),
            "st_codes": st_codes(report, label),
        }


def _rc(font: ChartFont) -> dict[Any, Any]:  # (matplotlib types the keys as literals)
    return {
        "font.family": font.families(),
        "font.size": 10,
        "axes.unicode_minus": False,
        "svg.fonttype": "path",  # glyphs as paths: the HTML shows the same letters on any machine
        "svg.hashsalt": "classroom-report",  # deterministic ids
        "figure.constrained_layout.h_pad": 0.08,
        "figure.constrained_layout.w_pad": 0.1,
    }


def render_charts(report: dict[str, Any], font: ChartFont | None = None) -> dict[str, Chart]:
    """Every chart of the report as PNG bytes and inline SVG."""

    font = find_cjk_font() if font is None else font
    out: dict[str, Chart] = {}
    with warnings.catch_warnings():
        if not font.cjk:  # find_cjk_font said so once; not one warning per missing glyph
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
        figs = figures(report, font)
        _save(figs, font, out)
    return out


def _save(figs: dict[str, Figure], font: ChartFont, out: dict[str, Chart]) -> None:
    import matplotlib

    with matplotlib.rc_context(_rc(font)):
        for name, fig in figs.items():
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
            # the layout the PNG was drawn with is the SVG's too: computing it again costs
            # about a quarter of the charts' time
            fig.set_layout_engine("none")
            svg = io.StringIO()
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
            w, h = fig.get_size_inches() * PX
            out[name] = Chart(name, png.getvalue(), _inline_svg(svg.getvalue(), name, CHART_TITLES[name], w, h))
