"""report.html (self-contained, bilingual) and the PNG chart files."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from analytics.charts import CHART_NAMES, Chart, render_charts

CHART_FILES = {name: f"{name}.png" for name in CHART_NAMES}
"""PNG files of the charts; each has an ``.svg`` twin of the same name."""

MODE_TEXT = {
    "lecture": (
        "讲授型",
        "Lecture",
        "教师讲授占主导（Rt ≥ 0.7）。",
        "The teacher talked most of the time (Rt ≥ 0.7).",
    ),
    "practice": (
        "练习型",
        "Practice",
        "学生活动占主导（Rt ≤ 0.3）。",
        "Students' activity dominated (Rt ≤ 0.3).",
    ),
    "dialogue": (
        "对话型",
        "Dialogue",
        "师生频繁交替（Ch ≥ 0.4）。",
        "Teacher and students took turns often (Ch ≥ 0.4).",
    ),
    "mixed": (
        "混合型",
        "Mixed",
        "讲授与学生活动兼有。",
        "A mix of teacher talk and student activity.",
    ),
}


def write_charts(report: dict[str, Any], out_dir: Path) -> dict[str, Chart]:
    built = render_charts(report)
    for name, chart in built.items():
        png = out_dir / CHART_FILES[name]
        png.write_bytes(chart.png)
        png.with_suffix(".svg").write_text(chart.svg, encoding="utf-8")
    return built


def _fmt_s(seconds: float) -> str:
    seconds = float(seconds)
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def render_html(report: dict[str, Any], built: dict[str, Chart]) -> str:
    e = html.escape
    st = report["st"]
    talk = report["talk"]
    zh, en, zh_text, en_text = MODE_TEXT.get(st["mode"], MODE_TEXT["mixed"])
    fairness = report.get("fairness", {})
    names = {r["id"]: r["name"] for r in report["classrooms"]}
    never = [names.get(c, c) for c in fairness.get("never_heard", [])]
    rows = []
    for r in report["classrooms"]:
        p = report["participation"].get(r["id"], {})
        wait = p.get("mean_hand_wait_s")
        role = "主讲 lead" if r["role"] == "lead" else "远端 remote"
        rows.append(
            "<tr>"
            f"<td>{e(r['name'])}</td><td>{role}</td>"
            f"<td>{_fmt_s(p.get('student_talk_s', 0))}</td><td>{p.get('turns', 0)}</td>"
            f"<td>{p.get('hand_raises', 0)}</td><td>{p.get('floor_grants', 0)}</td>"
            f"<td>{_fmt_s(p.get('floor_s', 0))}</td>"
            f"<td>{'—' if wait is None else _fmt_s(wait)}</td>"
            f"<td>{_fmt_s(p.get('heard_s', p.get('student_talk_s', 0)))}</td>"
            "</tr>"
        )
    unheard = [names.get(c, c) for c in fairness.get("spoke_but_not_heard", [])]
    if never:
        fair = (
            "<p class='warn'>以下远端教室的学生发言从未传给其他教室（没有获得发言权，或被静音）"
            " / These remote classrooms were never heard (their students' speech was never forwarded"
            f" to the lesson: no floor, or muted): <b>{e('、'.join(never))}</b></p>"
        )
        if unheard:
            fair += (
                "<p class='warn'>其中这些教室有学生说话，但没有人听到 / Of these, students spoke in"
                f" <b>{e('、'.join(unheard))}</b>, but nobody heard them.</p>"
            )
    elif fairness.get("remote_classrooms"):
        fair = (
            "<p class='ok'>每个远端教室都获得了发言权，学生发言被大家听到 / Every remote classroom held"
            " the floor and was heard (its students' speech was forwarded to the lesson).</p>"
        )
    else:
        fair = "<p>本课没有远端教室 / No remote classroom in this lesson.</p>"
    warnings = report.get("warnings", [])
    warn_html = ""
    if warnings:
        items = "".join(f"<li>{e(w)}</li>" for w in warnings)
        warn_html = (
            "<section><h2>数据问题 Data problems</h2><p>报告只基于可读取的部分 / "
            f"The report covers only what could be read.</p><ul class='warn'>{items}</ul></section>"
        )
    title = report.get("title") or report["lesson_id"]
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>课堂分析报告 Lesson report — {e(title)}</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif;
       margin: 24px; color: #222; max-width: 1000px; }}
h1 {{ font-size: 24px; margin-bottom: 4px; }} h2 {{ font-size: 19px; margin-top: 32px; }}
.sub {{ color: #666; }} .cards {{ display: flex; gap: 14px; flex-wrap: wrap; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: 10px 16px; min-width: 150px; }}
.card b {{ font-size: 22px; display: block; }}
.t {{ color: #e4572e; }} .s {{ color: #2e86ab; }} .n {{ color: #888; }}
.charts {{ display: flex; gap: 10px; flex-wrap: wrap; }}
svg.chart {{ max-width: 100%; height: auto; }}
.wide {{ overflow-x: auto; max-width: 100%; }} .wide svg.chart {{ min-width: 640px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ddd; padding: 4px 10px; }}
th {{ background: #f4f4f4; }} .warn {{ color: #c3423f; }} .ok {{ color: #3bb273; }}
.help {{ color: #555; font-size: 14px; }}
</style></head><body>
<h1>课堂分析报告 Lesson report: {e(title)}</h1>
<p class="sub">课程 lesson {e(report["lesson_id"])} · 开始 started {e(report.get("started_at", ""))}
 · 时长 duration {_fmt_s(report["duration_s"])}</p>

<h2>教学模式 Teaching mode: {zh} {en}</h2>
<p>{zh_text} {en_text}</p>
<div class="cards">
<div class="card">教师占有率 Rt<b>{st["rt"]:.2f}</b>教师讲话的时段比例<br>
share of teacher windows</div>
<div class="card">师生转换率 Ch<b>{st["ch"]:.2f}</b>师生交替的频率<br>
how often talk switched</div>
<div class="card t">教师说话 Teacher<b>{_fmt_s(talk["teacher_s"])}</b>
{_pct(talk["teacher_share"])}</div>
<div class="card s">学生说话 Students<b>{_fmt_s(talk["student_s"])}</b>
{_pct(talk["student_share"])}</div>
<div class="card n">安静 Silence<b>{_fmt_s(talk["silence_s"])}</b>
{_pct(talk["silence_share"])}</div>
</div>

<h2>S-T 分析 S-T analysis</h2>
<p class="help">每 {st["interval_s"]:g} 秒为一段：教师说话超过一半记 T，否则记 S。
曲线向右走表示教师在讲，
向上走表示学生活动；右图中的黑点是本课的位置。<br>
Every {st["interval_s"]:g}-second window is T if the teacher spoke at least half of it, otherwise S.
The curve goes right while the teacher talks and up while students are active; the dot on the right
chart is this lesson.</p>
<div class="charts">{built["st_curve"].svg}{built["rt_ch"].svg}</div>
<div class="wide">{built["st_codes"].svg}</div>

<h2>谁在什么时候说话 Who spoke when</h2>
<p class="help">红色是教师，蓝色是各教室的学生；竖线标记举手、准许发言等互动。<br>
Red is the teacher, blue the students of each classroom; the vertical marks are hand raises,
floor grants and other interactions.</p>
<div class="wide">{built["timeline"].svg}</div>

<h2>各教室参与 Participation</h2>
<div class="wide">{built["participation"].svg}</div>
<div class="wide"><table><tr><th>教室 Classroom</th><th>角色 Role</th><th>学生发言 Student talk</th>
<th>发言次数 Turns</th><th>举手 Hands raised</th><th>准许发言 Floor grants</th>
<th>持有发言权 Floor held</th><th>举手到准许 Hand→floor wait</th>
<th>被听到 Heard</th></tr>
{"".join(rows)}</table></div>
<p class="help">被听到：学生发言中传给其他教室的部分（远端教室只有在获得发言权且未被静音时才被转发）。<br>
Heard: the students' talk that was forwarded to the lesson (a remote classroom is forwarded only
while it holds the floor and is not muted).</p>
<h2>公平性 Fairness</h2>
{fair}
{warn_html}
</body></html>
"""
