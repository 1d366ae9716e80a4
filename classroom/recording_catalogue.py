"""What the bureau page lists: every recording on disk with its lesson, times, retention and
signed playback/report links (``GET /api/recordings``, ``GET /api/lessons/{id}/recordings``).

Reading manifests is blocking file I/O (a 45-minute lesson's manifest is ~1 MB): the API calls
:meth:`RecordingCatalogue.entries` in a worker thread, and a manifest is parsed again only when
its modification time changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recorder.catalogue import LESSON_ID, recordings_root
from recorder.manifest import ManifestError, read_manifest
from recorder.retention import expires_at
from recorder.service import RecordingService

LINK_TTL_S = 3600


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Scanned:
    directory: str
    lesson_id: str
    title: str
    started_at: float
    duration_ms: int
    complete: bool
    tracks: int
    classrooms: tuple[str, ...]


class RecordingCatalogue:
    def __init__(self, service: RecordingService, data_dir: Path, retention_days: float,
                 active: Callable[[], Collection[str]] = frozenset) -> None:
        self.service = service
        self.data_dir = data_dir
        self.retention_days = retention_days
        self.active = active  # directory names being recorded now
        self._cache: dict[str, tuple[int, _Scanned | None]] = {}
        self._lock = threading.Lock()

    def _scan(self, directory: Path) -> _Scanned | None:
        path = directory / "manifest.json"
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return None
        with self._lock:
            cached = self._cache.get(directory.name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            m = read_manifest(path)
            scanned: _Scanned | None = _Scanned(
                directory.name, m.lesson_id, m.title, m.started_at.timestamp(), m.duration_ms, m.complete,
                len(m.tracks), tuple(c.id for c in m.classrooms),
            )
        except (ManifestError, OSError):
            scanned = None
        with self._lock:
            self._cache[directory.name] = (mtime, scanned)
        return scanned

    def entries(self) -> list[dict[str, Any]]:
        """Every readable recording, newest first, as the API shows it (links signed now)."""
        root = recordings_root(self.data_dir)
        if not root.is_dir():
            return []
        active = set(self.active())
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for directory in root.iterdir():
            if not directory.is_dir() or not LESSON_ID.match(directory.name):
                continue
            seen.add(directory.name)
            s = self._scan(directory)
            if s is None:
                continue
            ended = s.started_at + s.duration_ms / 1000.0
            expiry = None if s.directory in active else expires_at(ended, self.retention_days)
            has_report = (directory / "report" / "report.html").is_file()
            out.append({
                "lesson_id": s.lesson_id,
                "recording_id": s.directory,
                "title": s.title,
                "started_at": _iso(s.started_at),
                "ended_at": _iso(ended),
                "duration_ms": s.duration_ms,
                "complete": s.complete,
                "recording_now": s.directory in active,
                "tracks": s.tracks,
                "classrooms": list(s.classrooms),
                "expires_at": None if expiry is None else _iso(expiry),
                "playback_url": self.service.playback_url(s.directory, LINK_TTL_S),
                "report_url": self.service.signer.sign(f"/recordings/{s.directory}/report/report.html", LINK_TTL_S)
                if has_report else None,
            })  # fmt: skip
        with self._lock:  # forget deleted recordings
            for name in set(self._cache) - seen:
                del self._cache[name]
        out.sort(key=lambda e: str(e["started_at"]), reverse=True)
        return out
