"""A term of 30 analysed lessons with planted patterns, for the dashboard's tests.

Three teachers, each leading a weekly lesson from their school's lead classroom to two of six
rural remote classrooms, ten weeks from Monday 7 September 2026:

- 王老师 (Wang, 城关小学) keeps a dialogue (对话型) lesson all term;
- 李老师 (Li, 城关小学) drifts from dialogue to lecture (讲授型): weeks 1–4 dialogue, 5–6 mixed,
  7–10 lecture — her Rt rises and her Ch falls over the term;
- 张老师 (Zhang, 实验小学) keeps a mixed lesson, and **never gives the floor to 石门村小 (the
  planted never-heard classroom)**: all of that lesson's hands and floor grants go to her other
  remote classroom; 石门村小's microphone hears only the loudspeaker.

Each lesson's report comes from :func:`analytics.truth_report.truth_report`: the talk and floor
events of :func:`analytics.synth.scenario` (the project's synthetic-lesson builder) run through the
analyser's report stage, without synthesising or decoding audio (30 real analyses would take
minutes; the dashboard only reads report.json). Observers' notes with rubric scores are stored as
the live path stores them: in the schedule database, and as ``observation_note`` events in the
recording's manifest.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from analytics.synth import scenario
from analytics.truth_report import manifest_json, truth_report
from recorder.core import safe_name
from signaling.notes import Note, new_note_id
from signaling.schedule import ScheduleStore
from signaling.schedule.models import LessonSpec, Recurrence
from signaling.schedule.notes_store import add_note
from signaling.schedule.timing import expand

from .conftest import CST

TERM_MONDAY = datetime(2026, 9, 7, tzinfo=CST)
WEEKS = 10
DURATION_S = 20 * 60.0
DIMENSIONS = ("教学目标", "师生互动", "学生参与", "远端关注", "信息技术运用")


@dataclass
class Term:
    bureau_id: str
    key: str
    teachers: dict[str, str] = field(default_factory=dict)  # wang, li, zhang → teacher id
    classrooms: dict[str, str] = field(default_factory=dict)  # lead-a, lead-b, r1..r6 → classroom id
    schools: dict[str, str] = field(default_factory=dict)
    lessons: dict[str, str] = field(default_factory=dict)  # wang, li, zhang → lesson id
    tokens_lesson: dict[str, str] = field(default_factory=dict)  # wang, li, zhang → one occurrence id
    never_floored: str = ""
    occurrences: int = 0


def _kind(teacher: str, week: int) -> str:
    if teacher == "wang":
        return "dialogue"
    if teacher == "li":
        return "dialogue" if week < 4 else "mixed" if week < 6 else "lecture"
    return "mixed"


def _plant_never_floored(
    talk: dict[str, list[tuple[float, float]]], events: list[dict[str, object]], track: str, room: str
) -> None:
    """``scenario`` with one remote room only: nothing to change but to be sure no event names the
    planted classroom (its track gets no speech of its own)."""
    talk[track] = []
    assert all(e.get("classroom_id") != room for e in events)


def build_term(store: ScheduleStore, data_dir: Path, key: str) -> Term:
    bureau = store.list_bureaus()[0]
    term = Term(bureau.id, key)
    sid = {name: store.create_school(bureau.id, name).id for name in ("城关小学", "实验小学", "山区小学", "河西小学")}
    term.schools = {"chengguan": sid["城关小学"], "shiyan": sid["实验小学"], "shanqu": sid["山区小学"],
                    "hexi": sid["河西小学"]}
    c = term.classrooms
    c["lead-a"] = store.create_classroom(bureau.id, sid["城关小学"], "城关 录播教室", "browser").id
    c["lead-b"] = store.create_classroom(bureau.id, sid["城关小学"], "城关 二号录播室", "browser").id
    c["lead-c"] = store.create_classroom(bureau.id, sid["实验小学"], "实验 录播教室", "browser").id
    remote_names = [("r1", "山区", "青龙村小"), ("r2", "山区", "白马村小"), ("r3", "河西", "柳树村小"),
                    ("r4", "河西", "杨家村小"), ("r5", "山区", "黄土村小"), ("r6", "河西", "石门村小")]
    for key_, school, name in remote_names:
        school_id = sid["山区小学" if school == "山区" else "河西小学"]
        c[key_] = store.create_classroom(bureau.id, school_id, name, "browser", lead_capable=False).id
    t = term.teachers
    t["wang"] = store.create_teacher(bureau.id, sid["城关小学"], "王老师").id
    t["li"] = store.create_teacher(bureau.id, sid["城关小学"], "李老师").id
    t["zhang"] = store.create_teacher(bureau.id, sid["实验小学"], "张老师").id
    term.never_floored = c["r6"]
    plan = {  # teacher → (lead classroom, remotes, weekday, hour, subject)
        "wang": ("lead-a", ("r1", "r2"), 0, 9, "数学"),
        "li": ("lead-b", ("r3", "r4"), 1, 10, "语文"),
        "zhang": ("lead-c", ("r5", "r6"), 2, 14, "科学"),
    }
    tz = store.tz(bureau.id)
    rng = random.Random(18)
    for seed, (teacher, (lead, remotes, weekday, hour, subject)) in enumerate(plan.items()):
        first = TERM_MONDAY + timedelta(days=weekday)
        start = datetime.combine(first.date(), time(hour, 0), CST)
        until = (first + timedelta(weeks=WEEKS - 1)).date()
        lesson = store.create_lesson(
            bureau.id,
            LessonSpec(subject, f"{subject} · {teacher}", c[lead], t[teacher], tuple(c[r] for r in remotes),
                       start.timestamp(), (start + timedelta(minutes=40)).timestamp(), Recurrence(until), True),
        )
        term.lessons[teacher] = lesson.id
        occurrences = expand(lesson.id, lesson.start, lesson.end, lesson.recurrence, tz)
        assert len(occurrences) == WEEKS
        term.tokens_lesson[teacher] = occurrences[-1].occurrence_id
        for week, occ in enumerate(occurrences):
            kind = _kind(teacher, week)
            talk, events = scenario(kind, DURATION_S, 1, seed=100 * seed + week)
            # scenario's rooms are lead / r1; the second remote classroom gets no floor events
            # from it in a one-remote scenario: for Zhang's lessons that is the planted pattern;
            # for the others, half of the turns go to it.
            first_remote, second_remote = (c[r] for r in remotes)
            renamed_talk = {"teacher": talk["teacher"], "lead-students": talk["lead-students"],
                            f"{first_remote}-students": talk["r1-students"], f"{second_remote}-students": []}
            renamed: list[dict[str, object]] = []
            turn = 0
            for e in events:
                e = dict(e)
                if e.get("classroom_id") == "r1":
                    if teacher != "zhang" and e["type"] == "hand_raised":
                        turn += 1
                    to_second = teacher != "zhang" and turn % 2 == 0
                    e["classroom_id"] = second_remote if to_second else first_remote
                elif e.get("classroom_id") == "lead":
                    e["classroom_id"] = c[lead]
                renamed.append(e)
            if teacher != "zhang":  # move the talk of the turns given to the second classroom
                grants = [e for e in renamed if e["type"] == "floor_granted"]
                own: list[tuple[float, float]] = []
                other: list[tuple[float, float]] = []
                for a, b in talk["r1-students"]:
                    holder = next((g["classroom_id"] for g in reversed(grants) if int(str(g["t_ms"])) <= a * 1000),
                                  first_remote)
                    (other if holder == second_remote else own).append((a, b))
                renamed_talk[f"{first_remote}-students"] = own
                renamed_talk[f"{second_remote}-students"] = other
            else:
                _plant_never_floored(renamed_talk, renamed, f"{second_remote}-students", second_remote)
            for _ in range(rng.randint(2, 4)):  # observers' notes with rubric scores
                base = 4.2 if teacher == "wang" else 3.0 if teacher == "zhang" else 4.3 - 0.2 * week
                t_ms = rng.randint(60, int(DURATION_S) - 60) * 1000
                note = Note(new_note_id(), occ.occurrence_id, int(occ.start * 1000) + t_ms, t_ms,
                            rng.choice(["教研员 赵", "教研员 钱"]), "observer", "observer", "观察记录",
                            rng.choice(DIMENSIONS), max(1, min(5, round(base + rng.uniform(-0.6, 0.6)))),
                            False, "live", bureau.id)
                add_note(store, note)  # kept with the lesson, and on the recording's timeline
                renamed.append(note.event())
            started = datetime.fromtimestamp(occ.start, CST)
            manifest = manifest_json(
                occ.occurrence_id, started.isoformat(), DURATION_S,
                [(c[lead], "lead", lead), (first_remote, "remote", "r-a"), (second_remote, "remote", "r-b")],
                [("teacher", c[lead], "teacher"), ("lead-students", c[lead], "students"),
                 (f"{first_remote}-students", first_remote, "students"),
                 (f"{second_remote}-students", second_remote, "students")],
                renamed, title=lesson.title,
            )
            report = truth_report(manifest, renamed_talk)
            directory = data_dir / "recordings" / safe_name(occ.occurrence_id)
            (directory / "report").mkdir(parents=True, exist_ok=True)
            (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
            (directory / "report" / "report.json").write_text(json.dumps(report, ensure_ascii=False))
            term.occurrences += 1
    return term


def write_report(store: ScheduleStore, recordings: Path, occurrence_id: str, lead: str, remote: str) -> None:
    """One analysed lesson (lead + one remote classroom) under ``recordings``, with a scored note."""
    talk, events = scenario("dialogue", 300.0, 1, seed=7)
    for e in events:
        e["classroom_id"] = {"r1": remote, "lead": lead}.get(str(e.get("classroom_id")), e.get("classroom_id"))
    bureau = store.list_bureaus()[0].id
    note = Note(new_note_id(), occurrence_id, 1_795_000_000_000, 60_000, "教研员", "observer", "observer", "好",
                DIMENSIONS[1], 4, False, "live", bureau)
    add_note(store, note)
    events.append(note.event())
    manifest = manifest_json(
        occurrence_id, "2026-11-23T01:00:00Z", 300.0, [(lead, "lead", "lead"), (remote, "remote", "remote")],
        [("teacher", lead, "teacher"), ("lead-students", lead, "students"), ("r1-students", remote, "students")],
        events,
    )
    directory = recordings / safe_name(occurrence_id)
    (directory / "report").mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    (directory / "report" / "report.json").write_text(json.dumps(truth_report(manifest, talk), ensure_ascii=False))
