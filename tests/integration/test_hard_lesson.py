"""A short harder synthetic lesson through the real pipeline: espeak-ng voices, Opus in WebM, the
analyzer as ``classroom analyze`` runs it, compared with the known timeline.

The lesson (analytics/synth_hard.py) has a lead-room student 3-8 dB under the teacher on the lapel
microphone, a teacher who walks away from it (louder on the area microphone than on the lapel
microphone for a while), the lead's audio echoed by the remote classroom's loudspeaker only
4-9 dB weaker with a drifting delay, and answers that start before the teacher has finished.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics import synth_hard
from analytics.accuracy import score
from analytics.report import analyze_recording


def test_harder_lesson_is_attributed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_ANALYTICS_CACHE", str(tmp_path / "clips"))
    spec = synth_hard.hard_spec("hard-it", 120.0, 1, seed=4, language="zh")
    # the hard cases are in this lesson
    assert spec.walks, "the teacher walks away from the lapel microphone"
    lapel_bleed = spec.paths[("lead-students", "teacher")].gain_db
    assert -8.0 <= lapel_bleed <= -3.0
    assert spec.echo["r1-students"][0] >= -9.0
    teacher, student = spec.talk["teacher"], spec.talk["lead-students"] + spec.talk["r1-students"]
    assert any(s < te < e for s, e in student for _, te in teacher), "an answer starts before the teacher ends"
    truth = synth_hard.build_hard_lesson(spec, tmp_path / "rec", "webm", rate=16000, opus_complexity=0)

    report = analyze_recording(tmp_path / "rec", tmp_path / "out", 30.0)
    assert report["warnings"] == []
    result = score(report, truth)
    assert result.st_30s >= 0.97 and result.st_3s >= 0.97, result
    assert result.teacher_err <= 0.02, result
    # 2 minutes: 1 % would be 1.2 s, less than one speech edge; the 15-minute lessons of
    # `python -m analytics.accuracy` are held to the 2 % / 1 % targets (docs/analytics.md)
    assert result.student_err <= 0.03 and result.room_err <= 0.03, result
    found = {(c["source"], c["target"]): c for c in report["couplings"]}
    bleed = found[("lead-students", "teacher")]
    assert 0.002 <= bleed["delay_s"] <= 0.01  # the area mic hears the student first
    walking = found[("teacher", "lead-students")]
    assert walking["removed_s"] > 5
    echo = found[("teacher", "r1-students")]
    assert 0.2 <= echo["delay_s"] <= 0.5
