"""Explicit modes for the files that hold secrets, whatever the umask (classroom/filemodes.py,
the schedule store)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from classroom.filemodes import secure_data_dir, write_private
from signaling.schedule.store import ScheduleStore


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_schedule_database_and_its_wal_are_0600(tmp_path: Path, open_umask: None) -> None:
    store = ScheduleStore.open(tmp_path)
    try:
        store.ensure_bootstrap_admin()
        for name in ("schedule.sqlite3", "schedule.sqlite3-wal", "schedule.sqlite3-shm"):
            assert mode(tmp_path / name) == 0o600, name
    finally:
        store.close()


def test_an_old_data_dir_is_tightened(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    (data / "recordings").mkdir(parents=True)
    os.chmod(data, 0o755)
    for name in ("schedule.sqlite3", "demo-links.txt", "token_secret"):
        (data / name).write_text("x")
        os.chmod(data / name, 0o644)
    secure_data_dir(data)
    assert mode(data) == 0o700 and mode(data / "recordings") == 0o700
    for name in ("schedule.sqlite3", "demo-links.txt", "token_secret"):
        assert mode(data / name) == 0o600
    link = data / "links.txt"
    link.write_text("old")
    os.chmod(link, 0o644)
    write_private(link, "new")
    assert mode(link) == 0o600 and link.read_text() == "new"
