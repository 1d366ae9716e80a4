"""Retention: recordings older than N days are deleted (``recording.retention_days``).

A recording's age counts from its end: the manifest's ``started_at`` + ``duration_ms``, or, when
the manifest cannot be read (a recorder killed before it wrote one, a damaged file), the newest
modification time of anything in its directory. A directory that is being recorded now is never
touched. ``retention_days`` 0 keeps everything. The sweep is plain blocking file I/O: the server
runs it in a worker thread (classroom/recording.py), never on the event loop.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from recorder.manifest import ManifestError, read_manifest

log = logging.getLogger(__name__)

DAY_S = 86400.0


@dataclass(frozen=True)
class Expired:
    directory: Path
    ended_at: float  # unix seconds
    age_days: float
    size_bytes: int


@dataclass
class SweepResult:
    deleted: list[Expired] = field(default_factory=list)
    kept: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return sum(e.size_bytes for e in self.deleted)


def _newest_mtime(directory: Path) -> float:
    newest = directory.stat().st_mtime
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                continue
    return newest


def recording_end(directory: Path) -> float:
    """When the recording in ``directory`` ended (unix seconds)."""
    try:
        manifest = read_manifest(directory / "manifest.json")
    except (ManifestError, OSError):
        return _newest_mtime(directory)
    return manifest.started_at.timestamp() + manifest.duration_ms / 1000.0


def directory_size(directory: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def expires_at(ended_at: float, retention_days: float) -> float | None:
    """When a recording that ended at ``ended_at`` will be deleted (None: kept forever)."""
    return None if retention_days <= 0 else ended_at + retention_days * DAY_S


def find_expired(root: Path, now: float, retention_days: float, active: Collection[str] = ()) -> list[Expired]:
    """Recording directories under ``root`` older than ``retention_days`` (none when it is 0);
    ``active`` holds directory names that are being recorded now (never expired)."""
    if retention_days <= 0 or not root.is_dir():
        return []
    out: list[Expired] = []
    for directory in sorted(root.iterdir()):
        if not directory.is_dir() or directory.is_symlink() or directory.name in active:
            continue
        try:
            ended = recording_end(directory)
        except OSError:
            continue
        age_days = (now - ended) / DAY_S
        if age_days > retention_days:
            out.append(Expired(directory, ended, age_days, directory_size(directory)))
    return out


def sweep(root: Path, now: float, retention_days: float, active: Collection[str] = (),
          remove: Callable[[Path], None] = shutil.rmtree) -> SweepResult:
    """Delete every expired recording under ``root``; each deletion is logged."""
    result = SweepResult()
    if root.is_dir():
        result.kept = sum(1 for d in root.iterdir() if d.is_dir())
    for expired in find_expired(root, now, retention_days, active):
        try:
            remove(expired.directory)
        except OSError as exc:
            result.failed.append((expired.directory, str(exc)))
            log.error("retention: cannot delete the recording %s: %s", expired.directory, exc)
            continue
        result.deleted.append(expired)
        result.kept -= 1
        log.info("retention: deleted the recording %s (ended %.1f days ago, older than %g days; %d bytes)",
                 expired.directory, expired.age_days, retention_days, expired.size_bytes)
    return result
