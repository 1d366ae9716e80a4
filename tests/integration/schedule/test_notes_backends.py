"""The observation notes' tables (migration 3) on both schedule backends: a rubric, notes with
millisecond timestamps (beyond a 4-byte integer: BIGINT on PostgreSQL), a bureau's notes by time."""

from __future__ import annotations

from signaling.notes import DEFAULT_RUBRIC, Note
from signaling.schedule.notes_store import add_note, get_rubric, lesson_notes, notes_for_bureau, set_rubric

from .conftest import StoreTarget

AT_MS = 1_795_400_000_000  # 2026-11-23 in ms since the epoch: > 2**31


def _note(n: int, bureau: str, **over: object) -> Note:
    values: dict[str, object] = dict(
        id=f"note_{n}", lesson_id="les_0123456789ab@2026-11-23", at_ms=AT_MS + n * 1000, t_ms=n * 1000,
        author="听课老师", author_id="cls_obs", author_role="observer", text=f"第{n}条", dimension="提问",
        score=4, moment=n % 2 == 0, origin="live", bureau_id=bureau,
    )
    values.update(over)
    return Note(**values)  # type: ignore[arg-type]


def test_notes_and_rubrics(store_target: StoreTarget) -> None:
    store = store_target.open()
    try:
        bureau = store.create_bureau("County").id
        assert get_rubric(store, bureau) == list(DEFAULT_RUBRIC)
        assert set_rubric(store, bureau, ["提问", "互动"]) == ["提问", "互动"]
        assert get_rubric(store, bureau) == ["提问", "互动"]
        for n in range(3):
            add_note(store, _note(n, bureau))
        add_note(store, _note(9, bureau, dimension=None, score=None, origin="playback"))
        notes = lesson_notes(store, "les_0123456789ab@2026-11-23")
        assert [x.id for x in notes] == ["note_0", "note_1", "note_2", "note_9"]
        assert notes[0] == _note(0, bureau) and notes[0].moment is True and notes[1].moment is False
        assert notes[3].score is None and notes[3].dimension is None
        window = notes_for_bureau(store, bureau, since_ms=AT_MS + 1000, until_ms=AT_MS + 9000)
        assert [x.id for x in window] == ["note_1", "note_2"]
    finally:
        store.close()
