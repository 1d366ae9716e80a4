"""The administrator CLI: create (with bureau), list, revoke."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.schedule import ScheduleStore
from signaling.schedule.cli import main
from signaling.schedule.models import LessonSpec

from .conftest import MONDAY_7AM, StoreTarget


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path)
    assert main(["--data-dir", data, "create-admin", "--bureau", "某县教育局", "--name", "张三"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cka_")
    assert main(["--data-dir", data, "create-admin", "--bureau", "某县教育局"]) == 0
    second = capsys.readouterr().out.strip()
    assert main(["--data-dir", data, "list-bureaus"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "某县教育局" in lines[0] and "Asia/Shanghai" in lines[0]
    assert main(["--data-dir", data, "create-admin", "--bureau", "x", "--timezone", "Nowhere/X"]) == 2

    store = ScheduleStore.open(tmp_path)
    try:
        admin = store.authenticate(key)
        other = store.authenticate(second)
        assert admin is not None and other is not None and admin.bureau_id == other.bureau_id
        assert store.ensure_bootstrap_admin() is None  # admins exist: no bootstrap key
    finally:
        store.close()
    assert main(["--data-dir", data, "revoke-admin", admin.id]) == 0
    store = ScheduleStore.open(tmp_path)
    try:
        assert store.authenticate(key) is None
        assert store.authenticate(second) is not None
    finally:
        store.close()


def test_the_cluster_database_from_the_environment(store_target: StoreTarget, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """CLASSROOM_DATABASE_URL (+ the password file) as `classroom serve` reads them; the data dir
    is not used. A running node's open join records are left alone."""
    if store_target.password is None:
        url = f"sqlite:///{store_target.target}"
    else:
        url = str(store_target.target)
        secret = tmp_path / "db_password"
        secret.write_text(store_target.password + "\n", encoding="utf-8")
        secret.chmod(0o600)
        monkeypatch.setenv("CLASSROOM_DATABASE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("CLASSROOM_DATABASE_URL", url)
    node = store_target.open()
    try:
        bureau = node.create_bureau("某县教育局")
        school = node.create_school(bureau.id, "School")
        lead, remote = (node.create_classroom(bureau.id, school.id, n, "browser").id for n in ("L", "R"))
        lesson = node.create_lesson(bureau.id, LessonSpec(
            subject="s", title="t", lead_classroom_id=lead, lead_teacher_id=None, remote_classroom_ids=(remote,),
            start=MONDAY_7AM + 600, end=MONDAY_7AM + 3300,
        ))
        node.on_joined(lesson.id, lead)  # a live classroom on this node
        assert main(["--data-dir", str(tmp_path / "unused"), "list-bureaus"]) == 0
        assert bureau.id in capsys.readouterr().out
        assert main(["create-admin", "--bureau", "某县教育局"]) == 0
        key = capsys.readouterr().out.strip()
        assert node.authenticate(key) is not None
        assert not (tmp_path / "unused").exists()
        assert node.connected_from_history(lesson.id) == [lead]
    finally:
        node.close()
