"""``classroom admin import-classrooms``: the same CSV rules as the API, from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.schedule import ScheduleStore
from signaling.schedule.cli import main


def test_import_classrooms_dry_run_then_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "create-admin", "--bureau", "某县教育局"]) == 0
    csv = tmp_path / "rooms.csv"
    csv.write_bytes("\ufeffschool,classroom,role\n一中,一班,lead\n一中,二班,remote\n一中,,remote\n".encode())
    assert main(["--data-dir", data, "import-classrooms", "--bureau", "某县教育局", "--dry-run", str(csv)]) == 1
    out = capsys.readouterr()
    assert "2 rows OK, 1 bad rows" in out.out and ":4: classroom:" in out.err and "不能为空" in out.err
    store = ScheduleStore.open(Path(data))
    try:
        bureau = store.list_bureaus()[0]
        assert store.list_classrooms(bureau.id) == []
    finally:
        store.close()
    # --data-dir after the command works too (as the README writes it)
    assert main(["import-classrooms", "--data-dir", data, "--bureau", "某县教育局", str(csv)]) == 1
    assert "imported 2 classrooms, 1 new schools" in capsys.readouterr().out
    store = ScheduleStore.open(Path(data))
    try:
        rooms = store.list_classrooms(bureau.id)
        assert sorted((r.name, r.lead_capable) for r in rooms) == [("一班", True), ("二班", False)]
    finally:
        store.close()
    csv.write_bytes("学校,课堂,角色\n".encode("gbk"))
    assert main(["--data-dir", data, "import-classrooms", "--bureau", "某县教育局", str(csv)]) == 2
    assert "CSV UTF-8" in capsys.readouterr().err
    assert main(["--data-dir", data, "import-classrooms", "--bureau", "nowhere", str(csv)]) == 2
