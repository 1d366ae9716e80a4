"""The report's observation section (听评课): the observers' notes of a recorded lesson — scores
per rubric dimension (mean, spread, count), the notes in time order, and the S-T curve with each
note marked where it was written.

Input: the recording's ``observation_note`` events (manifest.json, docs/recording-format.md) and
the analysis's ``report.json``. Output, beside the report: ``observation.json``,
``observation.html`` and ``observation_st.png``/``.svg``. It is a file of its own, not part of
``report.html``: the behaviour report is open to the lesson's classrooms, the notes only to the
lesson's observers, its bureau and its teacher (docs/observation.md); the server hands out this
page's link to those only. ``classroom analyze`` writes it after the report; the server writes it
again when a note is added on the playback page.
"""

from __future__ import annotations

import html
import json
import math
import statistics
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analytics.errors import AnalysisError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

NOTE_EVENT = "observation_note"
FILES = ("observation.json", "observation.html", "observation_st.png", "observation_st.svg")
NOTE_COLOR = "#d1495b"


def notes_from_manifest(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's observation notes, checked, in time order (bad entries are left out)."""
    out: list[dict[str, Any]] = []
    for e in raw.get("events") or []:
        if not isinstance(e, dict) or e.get("type") != NOTE_EVENT:
            continue
        t_ms, text = e.get("t_ms"), e.get("text")
        if not isinstance(t_ms, int) or isinstance(t_ms, bool) or not isinstance(text, str):
            continue
        score = e.get("score")
        out.append({
            "t_ms": max(0, t_ms), "author": str(e.get("author") or ""), "text": text,
            "dimension": e["dimension"] if isinstance(e.get("dimension"), str) else None,
            "score": score if isinstance(score, int) and not isinstance(score, bool) and 1 <= score <= 5 else None,
            "moment": bool(e.get("moment")), "note_id": str(e.get("note_id") or ""),
        })
    out.sort(key=lambda n: (n["t_ms"], n["note_id"]))
    return out


def dimension_scores(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rubric dimension (in the order they first appear): count of scores, mean, spread
    (population standard deviation), min, max, and how many notes name it without a score."""
    order: list[str] = []
    scores: dict[str, list[int]] = {}
    unscored: dict[str, int] = {}
    for n in notes:
        dim = n["dimension"] or ""
        if dim not in scores:
            order.append(dim)
            scores[dim] = []
            unscored[dim] = 0
        if n["score"] is None:
            unscored[dim] += 1
        else:
            scores[dim].append(n["score"])
    out = []
    for dim in order:
        values = scores[dim]
        out.append({
            "dimension": dim or None, "count": len(values), "notes": len(values) + unscored[dim],
            "mean": round(statistics.fmean(values), 3) if values else None,
            "spread": round(statistics.pstdev(values), 3) if values else None,
            "min": min(values) if values else None, "max": max(values) if values else None,
        })
    return out


def curve_point(codes: list[str], interval_s: float, t_ms: int) -> tuple[float, float]:
    """Where on the S-T curve the lesson was at ``t_ms``: whole windows before it, then the
    fraction of its own window along that window's step."""
    if not codes or interval_s <= 0:
        return 0.0, 0.0
    pos = min(t_ms / 1000 / interval_s, float(len(codes)))
    k = min(int(math.floor(pos)), len(codes))
    x = float(sum(1 for c in codes[:k] if c == "T"))
    y = float(k - x)
    if k < len(codes):
        frac = pos - k
        if codes[k] == "T":
            x += frac
        else:
            y += frac
    return x, y


def section(notes: list[dict[str, Any]], report: dict[str, Any] | None) -> dict[str, Any]:
    st = (report or {}).get("st") or {}
    codes = [str(c) for c in st.get("codes") or []]
    interval = float(st.get("interval_s") or 30.0)
    marked = []
    for i, n in enumerate(notes, 1):
        x, y = curve_point(codes, interval, n["t_ms"])
        marked.append({**n, "number": i, "st_point": [round(x, 3), round(y, 3)]})
    return {"format": "classroom-observation/1", "lesson_id": (report or {}).get("lesson_id"),
            "notes": marked, "dimensions": dimension_scores(notes), "st": {"codes": codes, "interval_s": interval}}


def st_with_notes(obs: dict[str, Any]) -> Figure:
    from analytics.charts import GRID, Labels, _figure, _plain_axes, _title
    from analytics.fonts import find_cjk_font

    label = Labels(find_cjk_font())
    codes = obs["st"]["codes"]
    n = max(len(codes), 1)
    fig = _figure(520, 480)
    _title(fig, label("S-T 曲线与观察记录 curve with observation notes"))
    ax = fig.add_subplot()
    xs, ys = [0], [0]
    for c in codes:
        xs.append(xs[-1] + (c == "T"))
        ys.append(ys[-1] + (c != "T"))
    ax.plot([0, n], [0, n], color="#bbbbbb", linewidth=1, linestyle=(0, (4, 3)))
    ax.plot(xs, ys, color="#333333", linewidth=2.5, solid_joinstyle="miter")
    for note in obs["notes"]:
        x, y = note["st_point"]
        ax.plot([x], [y], marker="o", markersize=9, color=NOTE_COLOR, markeredgecolor="#ffffff")
        ax.annotate(str(note["number"]), (x, y), xytext=(6, 4), textcoords="offset points", fontsize=9,
                    color=NOTE_COLOR, fontweight="bold")
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    ax.set_aspect("equal")
    ax.grid(True, color=GRID, linewidth=1)
    ax.set_axisbelow(True)
    _plain_axes(ax)
    ax.set_xlabel(label(f"教师行为 T (teacher), 每格 {obs['st']['interval_s']:g}s / window"), fontsize=10)
    ax.set_ylabel(label("学生行为 S (students)"), fontsize=10)
    return fig


def _clock(t_ms: int) -> str:
    s = t_ms // 1000
    return f"{s // 60}:{s % 60:02d}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render_html(obs: dict[str, Any], svg: str, title: str) -> str:
    e = html.escape
    dims = "".join(
        f"<tr><td>{e(d['dimension'] or '（未分类）unclassified')}</td><td>{d['count']}</td>"
        f"<td>{_num(d['mean'])}</td><td>{_num(d['spread'])}</td>"
        f"<td>{'—' if d['min'] is None else str(d['min']) + '–' + str(d['max'])}</td><td>{d['notes']}</td></tr>"
        for d in obs["dimensions"]
    )
    notes = "".join(
        f"<tr class='note' data-t-ms='{n['t_ms']}'><td>{n['number']}</td><td>{_clock(n['t_ms'])}</td>"
        f"<td>{e(n['author'])}</td><td>{e(n['dimension'] or '')}</td>"
        f"<td>{'' if n['score'] is None else n['score']}</td><td>{'★' if n['moment'] else ''}</td>"
        f"<td class='text'>{e(n['text'])}</td></tr>"
        for n in obs["notes"]
    )
    empty = "" if obs["notes"] else "<p>本课没有观察记录 / No observation notes for this lesson.</p>"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>观察记录 Observation — {e(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 24px; color: #222; max-width: 1000px; }}
h1 {{ font-size: 24px; }} h2 {{ font-size: 19px; margin-top: 28px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 4px 10px; vertical-align: top; }}
th {{ background: #f4f4f4; }} td.text {{ white-space: pre-wrap; max-width: 520px; }}
svg.chart {{ max-width: 100%; height: auto; }} .help {{ color: #555; font-size: 14px; }}
</style></head><body>
<section id="observation">
<h1>观察记录 Observation: {e(title)}</h1>
<p class="help">听课教师在课堂进行中（及回放时）写下的观察记录；时间是录像中的位置。<br>
Notes the observers wrote during the lesson (and on the playback page); times are positions in
the recording.</p>
<h2>各维度评分 Scores per dimension</h2>
<table id="dimensions"><tr><th>维度 Dimension</th><th>评分数 Scores</th><th>平均 Mean</th>
<th>离散（标准差）Spread (SD)</th><th>范围 Range</th><th>记录数 Notes</th></tr>{dims}</table>
<h2>S-T 曲线上的记录 Notes on the S-T curve</h2>
<p class="help">红点是每条记录写下时课堂所在的位置，编号同下表。<br>
Each red dot is where the lesson was when the note was written; numbers as in the table below.</p>
<div>{svg}</div>
<h2>记录（按时间）Notes in time order</h2>
{empty}<table id="notes"><tr><th>#</th><th>时间 Time</th><th>观察者 Observer</th><th>维度 Dimension</th>
<th>评分 Score</th><th>时刻 Moment</th><th>记录 Note</th></tr>{notes}</table>
</section>
</body></html>
"""


def write_observation(recording_dir: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """Write ``observation.json/.html`` (and the chart) into the report directory
    (``out_dir``, default ``RECORDING_DIR/report``). Raises :class:`AnalysisError`."""
    out_dir = Path(out_dir) if out_dir is not None else Path(recording_dir) / "report"
    try:
        raw = json.loads((Path(recording_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise AnalysisError(f"cannot read the manifest of {recording_dir}: {exc}") from None
    if not isinstance(raw, dict):
        raise AnalysisError(f"{recording_dir}: the manifest is not a JSON object")
    report: dict[str, Any] | None = None
    try:
        loaded = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
        report = loaded if isinstance(loaded, dict) else None
    except (OSError, ValueError, RecursionError):
        report = None  # no analysis yet: the notes and scores still, the curve empty
    obs = section(notes_from_manifest(raw), report)
    obs["lesson_id"] = obs["lesson_id"] or raw.get("lesson_id")
    title = str(raw.get("title") or raw.get("lesson_id") or "")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "observation.json").write_text(json.dumps(obs, ensure_ascii=False, indent=1), encoding="utf-8")
        svg = ""
        try:
            svg = _chart(obs, out_dir)
        except ImportError as exc:
            raise AnalysisError(f"cannot draw the observation chart ({exc}); observation.json is written") from None
        (out_dir / "observation.html").write_text(render_html(obs, svg, title), encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"cannot write the observation section to {out_dir}: {exc.strerror or exc}") from None
    return obs


def _chart(obs: dict[str, Any], out_dir: Path) -> str:
    import io

    import matplotlib

    from analytics.charts import _inline_svg, _rc
    from analytics.fonts import find_cjk_font

    font = find_cjk_font()
    with warnings.catch_warnings():
        if not font.cjk:
            warnings.filterwarnings("ignore", message="Glyph .* missing from")
        with matplotlib.rc_context(_rc(font)):
            fig = st_with_notes(obs)
            png = io.BytesIO()
            fig.savefig(png, format="png", dpi=150, metadata={"Software": None})
            svg = io.StringIO()
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    (out_dir / "observation_st.png").write_bytes(png.getvalue())
    (out_dir / "observation_st.svg").write_text(svg.getvalue(), encoding="utf-8")
    w, h = fig.get_size_inches() * 100
    return _inline_svg(svg.getvalue(), "observation_st", "S-T curve with observation notes", w, h)


def main(argv: list[str]) -> int:
    """``python -m analytics.observation RECORDING_DIR [REPORT_DIR]``: write the section again."""
    import sys

    if len(argv) not in (1, 2):
        print("usage: python -m analytics.observation RECORDING_DIR [REPORT_DIR]", file=sys.stderr)
        return 2
    try:
        obs = write_observation(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else None)
    except AnalysisError as exc:
        print(f"observation: {exc}", file=sys.stderr)
        return 2
    print(f"observation section: {len(obs['notes'])} note(s)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
