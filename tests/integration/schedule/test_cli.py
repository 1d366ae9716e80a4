"""The administrator CLI: create (with bureau), list, revoke."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.schedule import ScheduleStore
from signaling.schedule.cli import main


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
