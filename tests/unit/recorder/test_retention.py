"""recorder/retention.py: which recordings expire, with a fake clock and manifests/mtimes set."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from recorder.manifest import Manifest, write_manifest
from recorder.retention import DAY_S, expires_at, find_expired, recording_end, sweep

NOW = datetime(2026, 12, 2, tzinfo=UTC).timestamp()


def recording(root: Path, name: str, days_ago: float, duration_ms: int = 60_000) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    start = datetime.fromtimestamp(NOW - days_ago * DAY_S - duration_ms / 1000, UTC)
    write_manifest(directory / "manifest.json", Manifest(name, "t", start, duration_ms=duration_ms, complete=True))
    (directory / "track.webm").write_bytes(b"x" * 1000)
    return directory


def test_age_counts_from_the_recording_end(tmp_path: Path) -> None:
    d = recording(tmp_path, "a", days_ago=10, duration_ms=3_600_000)
    assert abs(recording_end(d) - (NOW - 10 * DAY_S)) < 1


def test_a_recording_without_a_readable_manifest_ages_by_its_files(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "manifest.json").write_text("{not json")
    old = NOW - 200 * DAY_S
    os.utime(d / "manifest.json", (old, old))
    os.utime(d, (old, old))
    assert abs(recording_end(d) - old) < 1
    assert [e.directory.name for e in find_expired(tmp_path, NOW, 180)] == ["broken"]


def test_sweep_deletes_only_expired_and_not_active_recordings(tmp_path: Path) -> None:
    recording(tmp_path, "old", days_ago=181)
    recording(tmp_path, "recent", days_ago=179)
    recording(tmp_path, "old-but-recording-now", days_ago=400)
    result = sweep(tmp_path, NOW, 180, active={"old-but-recording-now"})
    assert [e.directory.name for e in result.deleted] == ["old"]
    assert result.freed_bytes > 1000 and result.kept == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old-but-recording-now", "recent"]


def test_zero_days_keeps_everything(tmp_path: Path) -> None:
    recording(tmp_path, "ancient", days_ago=5000)
    assert sweep(tmp_path, NOW, 0).deleted == []
    assert (tmp_path / "ancient").is_dir()
    assert expires_at(NOW, 0) is None and expires_at(NOW, 1) == NOW + DAY_S


def test_a_failed_delete_is_reported_not_raised(tmp_path: Path) -> None:
    recording(tmp_path, "old", days_ago=200)

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied")

    result = sweep(tmp_path, NOW, 180, remove=refuse)
    assert result.deleted == [] and result.failed[0][0].name == "old"


def test_missing_root_is_empty(tmp_path: Path) -> None:
    assert sweep(tmp_path / "none", NOW, 180).deleted == []
