"""signaling/notes.py: the checks of an observation note, the rubric, the moment, the CSV."""

from __future__ import annotations

import csv
import io

import pytest

from signaling.notes import (
    DEFAULT_RUBRIC,
    MOMENT_AHEAD_MS,
    Note,
    NoteError,
    check_note,
    check_rubric,
    moment_at_ms,
    notes_csv,
    timeline_ms,
)


def test_a_good_note_is_trimmed_and_kept() -> None:
    got = check_note({"text": "  学生回答积极 ", "dimension": "学生参与", "score": 4}, DEFAULT_RUBRIC)
    assert (got.text, got.dimension, got.score) == ("学生回答积极", "学生参与", 4)
    assert check_note({"text": "x"}, DEFAULT_RUBRIC).dimension is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 5}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "\udfff"}, "text"),  # a lone surrogate (found by tests/fuzz)
        ({"text": "x", "dimension": "不存在"}, "dimension"),
        ({"text": "x", "dimension": 3}, "dimension"),
        ({"text": "x", "score": 0}, "score"),
        ({"text": "x", "score": 6}, "score"),
        ({"text": "x", "score": True}, "score"),
        ({"text": "x", "score": 2.5}, "score"),
    ],
)
def test_bad_notes_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(NoteError) as err:
        check_note(data, DEFAULT_RUBRIC)
    assert err.value.field == field


def test_rubric_checks() -> None:
    assert check_rubric([" 甲 ", "乙"]) == ["甲", "乙"]
    for bad in ([], "x", ["a", "a"], [""], ["x" * 41], [1], ["a"] * 21, ["\ud800"]):
        with pytest.raises(NoteError):
            check_rubric(bad)


def test_moment_is_on_the_lesson_clock_and_never_in_the_future() -> None:
    started, now = 1_000_000, 1_060_000
    assert moment_at_ms(None, started, now) == now
    assert moment_at_ms(42_500, started, now) == started + 42_500
    assert moment_at_ms(60_000 + MOMENT_AHEAD_MS, started, now) == now  # a page's clock a little ahead
    for bad in (60_000 + MOMENT_AHEAD_MS + 1, -1, True):
        with pytest.raises(NoteError):
            moment_at_ms(bad, started, now)  # type: ignore[arg-type]
    assert timeline_ms(1_000_500, 1_000_000) == 500 and timeline_ms(10, 1_000) == 0


def _note(t_ms: int, text: str, score: int | None = 3) -> Note:
    return Note(id=f"n{t_ms}", lesson_id="l", at_ms=t_ms, t_ms=t_ms, author="张老师", author_id="o1",
                author_role="observer", text=text, dimension="师生互动", score=score, moment=True, origin="live")


def test_csv_in_time_order_with_a_bom_and_no_formulas() -> None:
    text = notes_csv([_note(65_000, "=HYPERLINK(1)"), _note(5_000, "好，\"提问\"", None)])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:4] == ["t_ms", "time", "author", "dimension"]
    assert rows[1][0] == "5000" and rows[1][1] == "0:00:05" and rows[1][4] == "" and rows[1][6] == '好，"提问"'
    assert rows[2][0] == "65000" and rows[2][6] == "'=HYPERLINK(1)"
