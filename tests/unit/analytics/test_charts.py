"""The report's matplotlib charts: Chinese labels really drawn (a CJK font resolved, glyphs with
ink that differ from each other, not tofu boxes), names not cut off, the Rt-Ch label clear of
the region labels, SVG fit for inlining, the fallback without a CJK font, lazy import."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analytics import charts
from analytics.fonts import ChartFont, find_cjk_font, has_glyphs, latin_part

LONG_CJK = "云南省怒江傈僳族自治州贡山独龙族怒族自治县独龙江乡中心学校三年级二班"
LONG_LATIN = "Hillside Primary School of the Upper Valley, Grade 3 Class 2 (remote site B)"
CJK = re.compile(r"[\u3400-\u9fff]")


def sample_report(
    rt: float = 0.45, ch: float = 0.45, names: tuple[str, str] = (LONG_CJK, LONG_LATIN)
) -> dict[str, Any]:
    codes = ["T", "T", "S", "T", "S", "S", "T", "T", "S", "T", "S"]
    return {
        "duration_s": 330.0,
        "st": {"codes": codes, "interval_s": 30.0, "rt": rt, "ch": ch, "mode": "dialogue"},
        "thresholds": {"practice_rt_max": 0.3, "lecture_rt_min": 0.7, "dialogue_ch_min": 0.4},
        "classrooms": [
            {"id": "lead", "role": "lead", "name": "主讲教室 Lead"},
            {"id": "r1", "role": "remote", "name": names[0]},
            {"id": "r2", "role": "remote", "name": names[1]},
        ],
        "segments": {
            "teacher": [[1.0, 30.0], [60.0, 90.0], [200.0, 260.0]],
            "classrooms": {"lead": [[35.0, 50.0]], "r1": [[95.0, 120.0]], "r2": [[150.0, 170.0]]},
        },
        "events": [
            {"t_s": 13.7, "type": "hand_raised", "classroom_id": "r1"},
            {"t_s": 16.2, "type": "hand_lowered", "classroom_id": "r1"},
            {"t_s": 16.2, "type": "floor_granted", "classroom_id": "r1"},
            {"t_s": 125.0, "type": "floor_revoked", "classroom_id": "r1"},
            {"t_s": 140.0, "type": "mute", "classroom_id": "r2"},
        ],
        "participation": {
            "lead": {"student_talk_s": 15.0, "turns": 1, "hand_raises": 0, "floor_grants": 0},
            "r1": {"student_talk_s": 25.0, "turns": 1, "hand_raises": 1, "floor_grants": 1, "heard_s": 25.0},
            "r2": {"student_talk_s": 20.0, "turns": 1, "hand_raises": 0, "floor_grants": 0, "heard_s": 0.0},
        },
        "fairness": {"never_heard": ["r2"]},
    }


@pytest.fixture(scope="module")
def font() -> ChartFont:
    found = find_cjk_font()
    assert found.cjk, "no CJK font: install fonts-noto-cjk (tests/apt-packages.txt)"
    return found


def all_texts(fig: Any) -> list[Any]:
    """The texts the figure draws (tick labels only of ticks inside the axis' view)."""
    from matplotlib.text import Text

    ticks: set[int] = set()
    shown: list[Any] = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
                if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    shown += [t for t in (tick.label1, tick.label2) if t.get_visible() and t.get_text()]
    others = [t for t in fig.findobj(Text) if id(t) not in ticks and t.get_visible() and t.get_text()]
    return others + shown


def test_cjk_font_resolved_for_every_chinese_label(font: ChartFont) -> None:
    from matplotlib import font_manager

    assert font.path and Path(font.path).exists()
    seen = 0
    for name, fig in charts.figures(sample_report(), font).items():
        fig.canvas.draw()
        for text in all_texts(fig):
            chinese = "".join(CJK.findall(text.get_text()))
            if not chinese:
                continue
            seen += 1
            path = font_manager.findfont(text.get_fontproperties(), fallback_to_default=False)
            assert has_glyphs(str(path), chinese), (name, text.get_text(), path)
    assert seen >= 20  # titles, axis labels, names, legend, region labels


def _ink(text: str, font: ChartFont) -> np.ndarray:
    """``text`` drawn alone, as a boolean mask of dark pixels."""
    import matplotlib

    with matplotlib.rc_context({"font.family": font.families()}):
        fig = charts._figure(80, 60, constrained=False)
        fig.text(0.5, 0.5, text, fontsize=28, ha="center", va="center", color="#000000")
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())  # type: ignore[attr-defined]
    return rgba[..., 0] < 128


def test_chinese_glyphs_have_ink_and_are_not_tofu(font: ChartFont) -> None:
    import warnings

    jiao, shi = _ink("教", font), _ink("师", font)
    assert jiao.sum() > 60 and shi.sum() > 60  # drawn, not blank
    assert (jiao != shi).sum() > 40  # two different glyphs: missing-glyph boxes would be identical
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # matplotlib warns that the glyph is missing: the point
        tofu = _ink("\U000f0000", font)  # a private-use code point no font has: the .notdef box
    assert (jiao != tofu).sum() > 40 and (shi != tofu).sum() > 40


def test_chart_png_shows_chinese_title(font: ChartFont, tmp_path: Path) -> None:
    """In the written PNG, the title's box (drawn in Chinese + English) has ink, and the
    Chinese part differs from a Latin-only rendering of the same chart."""
    built = charts.render_charts(sample_report(), font)
    latin = charts.render_charts(sample_report(), ChartFont(None))
    for name in charts.CHART_NAMES:
        png = built[name].png
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / f"{name}.png").write_bytes(png)
        assert built[name].png != latin[name].png
    import matplotlib.image

    img = matplotlib.image.imread(tmp_path / "timeline.png")
    top = img[: img.shape[0] // 12, : img.shape[1] // 3, :3].mean(axis=2)
    assert (top < 0.5).sum() > 500  # the dark bold title "发言时间线 Talk timeline" is there


def _inside(box: Any, frame: Any) -> bool:
    return (
        box.x0 >= frame.x0 - 0.5 and box.x1 <= frame.x1 + 0.5 and box.y0 >= frame.y0 - 0.5 and box.y1 <= frame.y1 + 0.5
    )


@pytest.mark.parametrize("chart", ["timeline", "participation"])
def test_classroom_names_are_not_cut_off(chart: str, font: ChartFont) -> None:
    fig = charts.figures(sample_report(), font)[chart]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    names = 0
    for text in all_texts(fig):
        box = text.get_window_extent(renderer)
        assert _inside(box, frame), (chart, text.get_text(), box, frame)
        flat = text.get_text().replace("\n", "")
        names += LONG_CJK in flat or LONG_LATIN.replace(" ", "") in flat.replace(" ", "")
    assert names == 2  # both long names are drawn whole (wrapped, not truncated)
    if chart == "participation":
        ax = fig.axes[0]
        for text in ax.texts:
            assert _inside(text.get_window_extent(renderer), ax.get_window_extent(renderer)), text.get_text()


def test_wrap_name() -> None:
    assert charts.wrap_name("远端1 Remote 1") == "远端1 Remote 1"
    wrapped = charts.wrap_name(LONG_CJK)
    assert wrapped.replace("\n", "") == LONG_CJK
    assert all(charts.columns(line) <= charts.NAME_WIDTH for line in wrapped.split("\n"))
    wrapped = charts.wrap_name(LONG_LATIN)
    assert " ".join(wrapped.split("\n")) == LONG_LATIN
    assert all(charts.columns(line) <= charts.NAME_WIDTH for line in wrapped.split("\n"))
    assert charts.wrap_name("") == ""


def _overlap(a: Any, b: Any) -> bool:
    return min(a.x1, b.x1) > max(a.x0, b.x0) and min(a.y1, b.y1) > max(a.y0, b.y0)


POINTS = [(rt, ch) for rt in (0.0, 0.2, 0.45, 0.7, 1.0) for ch in (0.0, 0.4, 1.0)]


def test_rt_ch_label_never_overlaps_a_region_label(font: ChartFont) -> None:
    import matplotlib

    centres = {(0.15, 0.5), (0.85, 0.5), (0.5, 0.7), (0.5, 0.2)}  # where the region labels sit
    for rt, ch in [*POINTS, *centres]:
        with matplotlib.rc_context(charts._rc(font)):
            fig = charts.rt_ch(sample_report(rt, ch), sample_report()["thresholds"], charts.Labels(font))
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        lesson = [t for t in ax.texts if "Rt=" in t.get_text()]
        regions = [t for t in ax.texts if "Rt=" not in t.get_text()]
        assert len(lesson) == 1 and len(regions) == 4
        box = lesson[0].get_window_extent(renderer)
        for region in regions:
            assert not _overlap(box, region.get_window_extent(renderer)), (rt, ch, region.get_text())
        assert _inside(box, fig.bbox), (rt, ch)


def test_inline_svg_ids_are_per_chart(font: ChartFont) -> None:
    built = charts.render_charts(sample_report(), font)
    ids: list[str] = []
    for name, chart in built.items():
        svg = chart.svg
        assert svg.startswith("<svg") and "<?xml" not in svg and "DOCTYPE" not in svg
        assert 'class="chart"' in svg and 'role="img"' in svg
        mine = re.findall(r'\bid="([^"]+)"', svg)
        assert mine and all(i.startswith(f"{name}-") for i in mine)
        refs = re.findall(r'(?:href="#|url\(#)([^")]+)', svg)
        assert refs and set(refs) <= set(mine)
        ids += mine
    assert len(ids) == len(set(ids))


def test_without_a_cjk_font_labels_keep_their_latin_part(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="analytics.fonts"):
        none = find_cjk_font(("No Such Font Family",))
    assert not none.cjk
    assert "fonts-noto-cjk" in caplog.text and "no CJK font" in caplog.text
    figs = charts.figures(sample_report(names=("远端一 Remote One", "Remote Two")), none)
    texts = [t.get_text() for fig in figs.values() for t in all_texts(fig)]
    assert "Talk timeline (who spoke when)" in texts
    assert not any(CJK.search(t) for t in texts), [t for t in texts if CJK.search(t)]
    assert latin_part("教师 Teacher") == "Teacher"
    assert latin_part("本课 this lesson Rt=0.45") == "this lesson Rt=0.45"
    assert latin_part("城关小学") == "城关小学"  # nothing Latin to keep: drawn as it is


def test_matplotlib_is_imported_only_to_draw() -> None:
    code = (
        "import sys, analytics.report, analytics.cli, analytics.html\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_without_matplotlib_a_clear_error_and_report_json(tmp_path: Path) -> None:
    """An install made before the charts needed matplotlib: report.json is still written and the
    error says what to do (no traceback)."""
    code = (
        "import json, sys\n"
        "sys.modules['matplotlib'] = None  # as if it were not installed: importing it fails\n"
        "from pathlib import Path\n"
        "from analytics.errors import AnalysisError\n"
        "from analytics.report import write_outputs\n"
        "report = json.loads(sys.argv[1])\n"
        "try:\n"
        "    write_outputs(report, Path(sys.argv[2]))\n"
        "except AnalysisError as exc:\n"
        "    print(exc)\n"
    )
    report = {**sample_report(), "lesson_id": "x", "talk": {}, "warnings": []}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(report), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "cannot draw the charts" in out.stdout and "pip install -e ." in out.stdout, out
    assert (tmp_path / "report.json").exists() and not (tmp_path / "report.html").exists()
