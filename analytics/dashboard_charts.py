"""The term dashboard's charts (PNG), drawn like the analysis report's: matplotlib (Agg), the CJK
font of :mod:`analytics.fonts`, bilingual labels, the report's colours and helpers from
:mod:`analytics.charts`.

Each chart takes :func:`analytics.dashboard.summarize`'s output:

- ``rt_ch`` — Rt and Ch of every lesson over time, one line per teacher, with the mode thresholds;
- ``modes`` — the S-T mode distribution per teacher;
- ``fairness`` — per remote classroom, the share of its lessons it had the floor, and its heard
  talk; the rarely heard ones in red;
- ``scores`` — observation scores per rubric dimension over time.
"""

from __future__ import annotations

import io
import warnings
from datetime import date
from typing import TYPE_CHECKING, Any

from analytics.charts import (
    AXIS,
    GRID,
    INK,
    MODE_EN,
    PNG_DPI,
    RT_CH_REGIONS,
    S_COLOR,
    WARN,
    Labels,
    _figure,
    _plain_axes,
    _rc,
    _title,
    wrap_name,
)
from analytics.config import StConfig
from analytics.fonts import ChartFont, find_cjk_font
from analytics.st import MODE_NAMES_ZH, MODES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CHART_NAMES = ("rt_ch", "modes", "fairness", "scores")
LINE_COLORS = ("#e4572e", "#2e86ab", "#3bb273", "#8e44ad", "#f0a202", "#555555", "#c3423f", "#1b998b")
MODE_COLORS = {mode: color for mode, color in RT_CH_REGIONS}
MODE_EDGE = {"practice": "#3bb273", "lecture": "#e4572e", "dialogue": "#2e86ab", "mixed": "#b08d57"}


def _days(points: list[dict[str, Any]]) -> list[float]:
    """matplotlib's date numbers of the points' dates."""
    import matplotlib.dates as mdates

    return [float(mdates.date2num(date.fromisoformat(p["date"]))) for p in points]


def _empty(ax: Axes, label: Labels, text: str = "无数据 No data") -> None:
    ax.text(0.5, 0.5, label(text), ha="center", va="center", fontsize=12, color=AXIS, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _date_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))


def _teacher_name(t: dict[str, Any], label: Labels) -> str:
    return label(t["name"] or "未指定教师 no teacher")


def rt_ch_over_time(summary: dict[str, Any], label: Labels, thresholds: StConfig) -> Figure:
    teachers = summary["teachers"]
    fig = _figure(960, 560)
    _title(fig, label("Rt / Ch 随时间变化 Rt and Ch over the term (每节课一点 one point per lesson)"))
    ax_rt, ax_ch = fig.subplots(2, 1, sharex=True)
    if not teachers:
        _empty(ax_rt, label)
        ax_ch.set_visible(False)
        return fig
    for i, t in enumerate(teachers):
        color = LINE_COLORS[i % len(LINE_COLORS)]
        days = _days(t["series"])
        name = _teacher_name(t, label)
        ax_rt.plot(days, [p["rt"] for p in t["series"]], "-o", color=color, lw=1.8, ms=4, label=name)
        ax_ch.plot(days, [p["ch"] for p in t["series"]], "-o", color=color, lw=1.8, ms=4, label=name)
    for y, text in ((thresholds.lecture_rt_min, "讲授型 lecture ≥"), (thresholds.practice_rt_max, "练习型 practice ≤")):
        ax_rt.axhline(y, color=AXIS, lw=0.9, ls="--", zorder=0)
        ax_rt.annotate(label(f"{text} {y:g}"), (1.0, y), xycoords=("axes fraction", "data"), xytext=(-4, 3),
                       textcoords="offset points", ha="right", fontsize=8, color=AXIS)
    ax_ch.axhline(thresholds.dialogue_ch_min, color=AXIS, lw=0.9, ls="--", zorder=0)
    ax_ch.annotate(label(f"对话型 dialogue ≥ {thresholds.dialogue_ch_min:g}"), (1.0, thresholds.dialogue_ch_min),
                   xycoords=("axes fraction", "data"), xytext=(-4, 3), textcoords="offset points", ha="right",
                   fontsize=8, color=AXIS)
    for ax, name in ((ax_rt, "教师占有率 Rt"), (ax_ch, "师生转换率 Ch")):
        _plain_axes(ax)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(label(name), fontsize=10)
        ax.grid(axis="y", color=GRID, zorder=0)
    _date_axis(ax_ch)
    ax_rt.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def modes(summary: dict[str, Any], label: Labels) -> Figure:
    teachers = summary["teachers"]
    n = max(len(teachers), 1)
    fig = _figure(960, 130 + 34 * n)
    _title(fig, label("教学模式分布 S-T teaching modes per teacher (课数 lessons)"))
    ax = fig.add_subplot()
    if not teachers:
        _empty(ax, label)
        return fig
    names = [wrap_name(_teacher_name(t, label)) for t in teachers]
    left = [0.0] * len(teachers)
    for mode in MODES:
        counts = [float(t["modes"][mode]) for t in teachers]
        ys = list(range(len(teachers) - 1, -1, -1))
        tag = f"{MODE_NAMES_ZH[mode]} {MODE_EN[mode]}" if label.font.cjk else MODE_EN[mode]
        ax.barh(ys, counts, left=left, height=0.6, color=MODE_COLORS[mode], edgecolor=MODE_EDGE[mode],
                label=tag, zorder=2)
        for y, c, x0 in zip(ys, counts, left, strict=True):
            if c > 0:
                ax.text(x0 + c / 2, y, f"{c:.0f}", ha="center", va="center", fontsize=9, color=INK, zorder=3)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_yticks(range(len(teachers) - 1, -1, -1))
    ax.set_yticklabels(names, fontsize=9)
    _plain_axes(ax)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(label("课数 lessons"), fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def fairness(summary: dict[str, Any], label: Labels) -> Figure:
    rooms = summary["remote_classrooms"]
    n = max(len(rooms), 1)
    fig = _figure(960, 130 + 34 * n)
    _title(fig, label("远端课堂发言机会 Fairness: share of its lessons each remote classroom had the floor"))
    ax = fig.add_subplot()
    if not rooms:
        _empty(ax, label)
        return fig
    ys = list(range(len(rooms) - 1, -1, -1))  # the least heard (first) on top
    for y, r in zip(ys, rooms, strict=True):
        share = 100 * float(r["floor_share"])
        color = WARN if r["rarely_heard"] else S_COLOR
        ax.barh(y, max(share, 0.4), height=0.6, color=color, zorder=2)
        info = label(
            f"{r['lessons_with_floor']}/{r['lessons']} 课 lessons · 被听到 heard {float(r['heard_s']) / 60:.1f} min"
        )
        if r["rarely_heard"]:
            info += "  " + label("很少被听到 rarely heard")
        ax.annotate(info, (share, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=9,
                    color=WARN if r["rarely_heard"] else INK, annotation_clip=False)
    names = [wrap_name(label(f"{r['name']} · {r['school_name']}" if r["school_name"] else r["name"]), 30)
             for r in rooms]
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=9)
    ax.set_xlim(0, 140)
    ax.set_xticks([0, 25, 50, 75, 100])
    ax.axvline(100 * float(summary.get("rarely_heard_share", 0.25)), color=WARN, lw=0.9, ls="--", zorder=1)
    _plain_axes(ax)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(label("有发言权的课占比 lessons with the floor (%)"), fontsize=9)
    return fig


def scores(summary: dict[str, Any], label: Labels) -> Figure:
    dims = summary["scores"]
    fig = _figure(960, 380)
    _title(fig, label("听评课评分 Observation scores per dimension, weekly mean (1–5)"))
    ax = fig.add_subplot()
    if not dims:
        _empty(ax, label, "暂无评分 No observation scores yet")
        return fig
    for i, d in enumerate(dims):
        color = LINE_COLORS[i % len(LINE_COLORS)]
        ax.plot(_days(d["series"]), [p["mean"] for p in d["series"]], "-o", color=color, lw=1.8, ms=4,
                label=label(f"{d['dimension']} ({d['mean']:.1f}, n={d['count']})"))
    ax.set_ylim(0.8, 5.2)
    ax.set_yticks([1, 2, 3, 4, 5])
    _plain_axes(ax)
    ax.grid(axis="y", color=GRID, zorder=0)
    _date_axis(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return fig


def figure(name: str, summary: dict[str, Any], font: ChartFont, thresholds: StConfig | None = None) -> Figure:
    import matplotlib

    label = Labels(font)
    with matplotlib.rc_context(_rc(font)):
        if name == "rt_ch":
            return rt_ch_over_time(summary, label, thresholds or StConfig())
        if name == "modes":
            return modes(summary, label)
        if name == "fairness":
            return fairness(summary, label)
        if name == "scores":
            return scores(summary, label)
    raise ValueError(f"unknown chart {name!r}: one of {', '.join(CHART_NAMES)}")


def render_png(name: str, summary: dict[str, Any], font: ChartFont | None = None) -> bytes:
    """One dashboard chart as PNG bytes."""
    import matplotlib

    font = find_cjk_font() if font is None else font
    with warnings.catch_warnings():
        if not font.cjk:
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig = figure(name, summary, font)
        out = io.BytesIO()
        with matplotlib.rc_context(_rc(font)):
            fig.savefig(out, format="png", dpi=PNG_DPI, metadata={"Software": None})
    return out.getvalue()
