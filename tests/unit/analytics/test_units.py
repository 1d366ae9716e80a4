"""Small pure-function tests: S-T coding, floor statistics, config, CLI, bench."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from analytics.config import StConfig, load_config
from analytics.errors import AnalysisError
from analytics.manifest import Event
from analytics.participation import ClassroomStats, floor_stats
from analytics.st import analyse, classify, code_intervals, code_windows, rt_ch, window_count
from analytics.vad import smooth

from .conftest import Lesson


def test_window_count_and_partial_window() -> None:
    assert window_count(300, 30) == 10
    assert window_count(314, 30) == 10  # 14 s left over: less than half a window
    assert window_count(316, 30) == 11
    assert window_count(2700, 3) == 900


def test_codes_from_intervals_and_frames_agree() -> None:
    intervals = [(0.0, 20.0), (45.0, 60.0), (61.0, 75.0)]
    codes = code_intervals(intervals, 90.0, 30.0)
    assert codes == ["T", "T", "S"]  # 15 s of 30 is exactly half: T
    frames = np.zeros(3000, dtype=bool)
    for s, e in intervals:
        frames[int(s / 0.03) : int(e / 0.03)] = True
    assert code_windows(frames, 0.03, 90.0, 30.0) == codes


def test_rt_ch_and_modes() -> None:
    assert rt_ch(["T", "T", "S", "S", "T"]) == (pytest.approx(0.6), pytest.approx(0.4))
    assert rt_ch([]) == (0.0, 0.0)
    cfg = StConfig()
    assert classify(0.3, 0.9, cfg) == "practice"
    assert classify(0.7, 0.9, cfg) == "lecture"
    assert classify(0.5, 0.4, cfg) == "dialogue"
    assert classify(0.5, 0.39, cfg) == "mixed"
    assert analyse(["T"] * 8 + ["S"] * 2, 30, cfg).mode == "lecture"
    assert classify(0.5, 0.39, StConfig(dialogue_ch_min=0.3)) == "dialogue"


def test_floor_statistics() -> None:
    stats = {"r1": ClassroomStats("r1"), "r2": ClassroomStats("r2")}
    events = [
        Event(1000, "hand_raised", "r1"),
        Event(4000, "floor_granted", "r1"),
        Event(14000, "floor_revoked", "r1"),
        Event(20000, "hand_raised", "r2"),
        Event(21000, "hand_lowered", "r2"),
        Event(30000, "floor_granted", "r2"),
        Event(35000, "leave", "r2"),
        Event(50000, "floor_granted", "r1"),
        Event(51000, "spotlight", None),
    ]
    floor_stats(stats, events, 60.0)
    r1, r2 = stats["r1"], stats["r2"]
    assert (r1.hand_raises, r1.floor_grants, r1.hand_wait_s) == (1, 2, [3.0])
    assert r1.floor_s == pytest.approx(10.0 + 10.0)  # second grant runs to the lesson end
    assert (r2.hand_raises, r2.unanswered_hands, r2.floor_s) == (1, 1, 5.0)


def test_smoothing_fills_pauses_and_drops_clicks() -> None:
    mask = np.zeros(100, dtype=bool)
    mask[10:30] = True
    mask[35:50] = True  # 5-frame pause = 0.15 s: filled
    mask[80:82] = True  # 0.06 s click: dropped
    out = smooth(mask, 0.03, 0.45, 0.12)
    assert out[10:50].all() and not out[80:82].any()


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("analytics:\n  st:\n    lecture_rt_min: 0.8\n  vad:\n    aggressiveness: 3\n")
    cfg = load_config(path)
    assert cfg.st.lecture_rt_min == 0.8 and cfg.vad.aggressiveness == 3
    path.write_text("vad:\n  frame_ms: 25\n")
    with pytest.raises(AnalysisError, match="frame_ms"):
        load_config(path)
    path.write_text("st: 3\n")
    with pytest.raises(AnalysisError, match="st must be a mapping"):
        load_config(path)
    with pytest.raises(AnalysisError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, tag = struct.unpack(">I4s", data[8:16])
    assert tag == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_writes_report(lecture: Lesson, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics.cli import main

    out = tmp_path / "out"
    assert main([str(lecture.directory), "--out", str(out), "--interval", "30", "--quiet"]) == 0
    assert "mode lecture" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    for key in ("lesson_id", "duration_s", "st", "talk", "participation", "timeline"):
        assert key in report
    assert set(report["st"]) >= {"interval_s", "codes", "rt", "ch", "mode"}
    assert set(report["talk"]) >= {"teacher_s", "student_s", "silence_s"}
    for part in report["participation"].values():
        assert set(part) >= {"student_talk_s", "turns", "hand_raises", "floor_grants", "floor_s"}
    assert set(report["timeline"]) <= {"T", "S", "N"}
    html = (out / "report.html").read_text()
    assert "讲授型" in html and "Lecture" in html and "<svg" in html
    for name in ("st_curve", "rt_ch", "timeline", "participation", "st_codes"):
        _png_size((out / f"{name}.png").read_bytes())


def test_progress_bar(lecture: Lesson, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics.report import analyze_recording

    analyze_recording(lecture.directory, tmp_path / "o", 3.0, progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and "report written" in err


def test_bench_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics.bench import main

    out = tmp_path / "bench.json"
    argv = ["--minutes", "1", "--tracks", "3", "--codec", "wav", "--cores", "0"]
    assert main([*argv, "--cache", str(tmp_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["audio_s"] == pytest.approx(180, abs=1)
    assert result["wall_s"] > 0 and result["st_30s_agreement"] >= 0.5
    assert "wall time" in capsys.readouterr().out
