"""The report's charts as :class:`~analytics.canvas.Scene` objects (SVG for HTML, PNG files)."""

from __future__ import annotations

from typing import Any

from analytics.canvas import Circle, Line, Polygon, Rect, Scene, Text
from analytics.st import MODE_NAMES_ZH

T_COLOR = "#e4572e"
S_COLOR = "#2e86ab"
N_COLOR = "#d0d0d0"
GRID = "#e6e6e6"
AXIS = "#555555"
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
MODE_EN = {"practice": "Practice", "lecture": "Lecture", "dialogue": "Dialogue", "mixed": "Mixed"}


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    for step in (1, 2, 5, 10, 15, 20, 30, 50, 60, 100, 120, 300, 600, 900, 1200, 1800, 3600):
        if step >= raw:
            return float(step)
    return float(raw)


def st_curve(report: dict[str, Any]) -> Scene:
    """Classic S-T diagram: each window steps right (T) or up (S)."""
    codes: list[str] = report["st"]["codes"]
    n = max(len(codes), 1)
    scene = Scene(460, 440, title="S-T curve")
    left, top, size = 70, 40, 330
    scale = size / n
    scene.add(Text(left, 24, "S-T 曲线 curve", 15, bold=True))
    step = max(1, int(_nice_step(n, 6)))
    for k in range(0, n + 1, step):
        x = left + k * scale
        y = top + size - k * scale
        scene.add(Line([(x, top), (x, top + size)], GRID))
        scene.add(Line([(left, y), (left + size, y)], GRID))
        scene.add(Text(x, top + size + 16, str(k), 11, "middle"))
        scene.add(Text(left - 6, y + 4, str(k), 11, "end"))
    scene.add(Line([(left, top + size), (left + size, top)], "#bbbbbb", 1, dash=True))
    scene.add(Line([(left, top), (left, top + size), (left + size, top + size)], AXIS, 1.5))
    pts = [(float(left), float(top + size))]
    x, y = 0, 0
    for c in codes:
        if c == "T":
            x += 1
        else:
            y += 1
        pts.append((left + x * scale, top + size - y * scale))
    scene.add(Line(pts, "#333333", 2.5))
    interval = report["st"]["interval_s"]
    scene.add(
        Text(
            left + size / 2,
            top + size + 36,
            f"教师行为 T (teacher), 每格 {interval:g}s / window",
            12,
            "middle",
            fill=T_COLOR,
        )
    )
    scene.add(Text(22, top + size / 2, "学生行为 S (students)", 12, "middle", fill=S_COLOR, vertical=True))
    return scene


def rt_ch(report: dict[str, Any], thresholds: dict[str, float]) -> Scene:
    """Rt-Ch diagram with the four teaching-mode regions and this lesson's point."""
    scene = Scene(460, 440, title="Rt-Ch diagram")
    left, top, size = 70, 40, 330
    p_max = thresholds.get("practice_rt_max", 0.3)
    l_min = thresholds.get("lecture_rt_min", 0.7)
    d_min = thresholds.get("dialogue_ch_min", 0.4)

    def px(rt: float, ch: float) -> tuple[float, float]:
        return left + rt * size, top + size - ch * size

    scene.add(Text(left, 24, "Rt-Ch 教学模式图 teaching mode", 15, bold=True))
    regions: list[tuple[str, list[tuple[float, float]], str]] = [
        ("practice", [(0, 0), (p_max, 0), (p_max, 1), (0, 1)], "#cfe8d5"),
        ("lecture", [(l_min, 0), (1, 0), (1, 1), (l_min, 1)], "#f6d6cc"),
        ("dialogue", [(p_max, d_min), (l_min, d_min), (l_min, 1), (p_max, 1)], "#d3e4f1"),
        ("mixed", [(p_max, 0), (l_min, 0), (l_min, d_min), (p_max, d_min)], "#efe7c8"),
    ]
    for _, poly, color in regions:
        scene.add(Polygon([px(a, b) for a, b in poly], color))
    # Ch can never exceed 2*min(Rt, 1-Rt) (+1/N): shade the impossible corners lightly
    scene.add(Polygon([px(0, 0), px(0, 1), px(0.5, 1)], "#ffffff", 0.55))
    scene.add(Polygon([px(1, 0), px(1, 1), px(0.5, 1)], "#ffffff", 0.55))
    for mode, poly, _ in regions:
        cx = sum(a for a, _ in poly) / 4
        cy = sum(b for _, b in poly) / 4
        x, y = px(cx, cy)
        scene.add(Text(x, y - 2, MODE_NAMES_ZH[mode], 13, "middle", bold=True))
        scene.add(Text(x, y + 14, MODE_EN[mode], 12, "middle"))
    for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, _ = px(v, 0)
        _, y = px(0, v)
        scene.add(Text(x, top + size + 16, f"{v:.1f}", 11, "middle"))
        scene.add(Text(left - 6, y + 4, f"{v:.1f}", 11, "end"))
    scene.add(Line([(left, top), (left, top + size), (left + size, top + size)], AXIS, 1.5))
    rt, ch = report["st"]["rt"], report["st"]["ch"]
    x, y = px(min(max(rt, 0), 1), min(max(ch, 0), 1))
    scene.add(Circle(x, y, 7, "#111111", title=f"Rt={rt:.2f} Ch={ch:.2f}"))
    scene.add(Circle(x, y, 4, "#ffcc00"))
    label_x = x + 10 if x < left + size - 110 else x - 10
    scene.add(
        Text(
            label_x,
            y - 10,
            f"本课 this lesson Rt={rt:.2f} Ch={ch:.2f}",
            12,
            "start" if label_x > x else "end",
            bold=True,
        )
    )
    scene.add(Text(left + size / 2, top + size + 36, "教师占有率 Rt (teacher share)", 12, "middle"))
    scene.add(Text(22, top + size / 2, "师生转换率 Ch (switch rate)", 12, "middle", vertical=True))
    return scene


def timeline(report: dict[str, Any]) -> Scene:
    """Who talked when: one row for the teacher, one per classroom, with floor events."""
    duration = max(float(report["duration_s"]), 1.0)
    rooms = report["classrooms"]
    lead = next((r["id"] for r in rooms if r["role"] == "lead"), None)
    rows: list[tuple[str, list[list[float]], str, str | None]] = [
        ("教师 Teacher", report["segments"]["teacher"], T_COLOR, None)
    ]
    for r in rooms:
        segs = report["segments"]["classrooms"].get(r["id"], [])
        tag = "主讲 lead" if r["id"] == lead else "远端 remote"
        rows.append((f"{r['name']} ({tag})", segs, S_COLOR, r["id"]))
    left, right, top, row_h = 190, 20, 50, 34
    width = 960
    plot_w = width - left - right
    height = top + row_h * len(rows) + 110
    scene = Scene(width, height, title="Talk timeline")
    scene.add(Text(10, 24, "发言时间线 Talk timeline (who spoke when)", 15, bold=True))

    def tx(t: float) -> float:
        return left + t / duration * plot_w

    step = _nice_step(duration, 10)
    t = 0.0
    bottom = top + row_h * len(rows)
    while t <= duration + 1e-6:
        x = tx(t)
        scene.add(Line([(x, top), (x, bottom)], GRID))
        scene.add(Text(x, bottom + 14, f"{int(t // 60)}:{int(t % 60):02d}", 10, "middle"))
        t += step
    scene.add(Text(left + plot_w / 2, bottom + 30, "时间 time (min:s)", 11, "middle"))
    events_by_room: dict[str | None, list[dict[str, Any]]] = {}
    for ev in report.get("events", []):
        events_by_room.setdefault(ev.get("classroom_id"), []).append(ev)
    for i, (label, segs, color, cid) in enumerate(rows):
        y = top + i * row_h
        scene.add(Rect(left, y + 6, plot_w, row_h - 12, "#f4f4f4"))
        scene.add(Text(left - 8, y + row_h / 2 + 4, label, 12, "end"))
        for s, e in segs:
            scene.add(
                Rect(
                    tx(s),
                    y + 8,
                    max(tx(e) - tx(s), 0.8),
                    row_h - 16,
                    color,
                    title=f"{s:.0f}-{e:.0f}s",
                )
            )
        if cid is None:
            continue
        for ev in events_by_room.get(cid, []):
            if ev["type"] not in EVENT_COLORS:
                continue
            x = tx(float(ev["t_s"]))
            c = EVENT_COLORS[ev["type"]]
            scene.add(Line([(x, y + 3), (x, y + row_h - 3)], c, 2))
            scene.add(Circle(x, y + 5, 4, c, title=f"{EVENT_LABELS[ev['type']]} @ {ev['t_s']:.0f}s"))
    # legend
    ly = bottom + 52
    lx = 10.0
    legend: list[tuple[str, str]] = [
        ("教师说话 teacher speech", T_COLOR),
        ("学生说话 student speech", S_COLOR),
    ]
    used = {ev["type"] for ev in report.get("events", []) if ev["type"] in EVENT_COLORS}
    for etype in (
        "hand_raised",
        "floor_granted",
        "floor_revoked",
        "hand_lowered",
        "spotlight",
        "mute",
        "join",
        "leave",
    ):
        if etype in used:
            legend.append((EVENT_LABELS[etype], EVENT_COLORS[etype]))
    for text, color in legend:
        if lx > width - 190:
            lx = 10.0
            ly += 20
        scene.add(Rect(lx, ly - 10, 12, 12, color))
        scene.add(Text(lx + 16, ly, text, 11))
        lx += 30 + 7.5 * len(text)
    scene.height = int(ly + 20)
    return scene


def participation(report: dict[str, Any]) -> Scene:
    """Student talk per classroom with turns, hands and floor grants."""
    rooms = report["classrooms"]
    part = report["participation"]
    never = set(report.get("fairness", {}).get("never_heard", []))
    left, top, row_h = 190, 50, 30
    width = 960
    plot_w = 480
    height = top + row_h * max(len(rooms), 1) + 40
    scene = Scene(width, height, title="Participation")
    scene.add(Text(10, 24, "各教室参与 Participation by classroom (student talk)", 15, bold=True))
    longest = max([float(part.get(r["id"], {}).get("student_talk_s", 0)) for r in rooms] + [1.0])
    for i, r in enumerate(rooms):
        p = part.get(r["id"], {})
        y = top + i * row_h
        talk = float(p.get("student_talk_s", 0.0))
        scene.add(Text(left - 8, y + row_h / 2 + 4, r["name"], 12, "end"))
        w = talk / longest * plot_w
        scene.add(Rect(left, y + 5, max(w, 1), row_h - 10, S_COLOR, title=f"{talk:.0f}s"))
        info = (
            f"{talk:.0f}s  发言 turns {p.get('turns', 0)}  举手 hands {p.get('hand_raises', 0)}"
            f"  准许 floor {p.get('floor_grants', 0)}"
        )
        if r["id"] in never and r["role"] == "remote":
            info += "  未被听到 never heard"
        scene.add(
            Text(
                left + max(w, 1) + 8,
                y + row_h / 2 + 4,
                info,
                11,
                fill="#c3423f" if r["id"] in never and r["role"] == "remote" else "#222222",
            )
        )
    return scene


def st_codes(report: dict[str, Any]) -> Scene:
    """The window codes as a coloured strip."""
    codes: list[str] = report["st"]["codes"]
    width = 960
    left, right = 10, 10
    n = max(len(codes), 1)
    w = (width - left - right) / n
    scene = Scene(width, 70, title="S-T codes")
    interval = report["st"]["interval_s"]
    scene.add(
        Text(
            10,
            20,
            f"每 {interval:g} 秒的编码 Code of each {interval:g}-s window (T 教师 teacher / S 学生 students)",
            13,
            bold=True,
        )
    )
    for i, c in enumerate(codes):
        scene.add(
            Rect(
                left + i * w,
                30,
                max(w - (1 if w > 4 else 0), 0.5),
                28,
                T_COLOR if c == "T" else S_COLOR,
                title=f"#{i} {c}",
            )
        )
    return scene
