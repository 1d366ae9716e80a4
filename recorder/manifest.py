"""The recording manifest (``manifest.json``, format ``classroom-recording/1``).

See docs/recording-format.md. Written atomically (temporary file + ``os.replace``) so a reader,
or a recorder killed at any moment, never sees half a manifest.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "classroom-recording/1"
KINDS = ("audio", "video")
SOURCES = ("teacher", "students", "screen")
ROLES = ("lead", "remote")


class ManifestError(ValueError):
    pass


@dataclass
class ClassroomEntry:
    id: str
    role: str
    name: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "role": self.role, "name": self.name}


@dataclass
class SegmentEntry:
    file: str
    start_ms: int
    end_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "start_ms": self.start_ms, "end_ms": self.end_ms}


@dataclass
class TrackEntry:
    id: str
    file: str
    kind: str
    codec: str
    classroom_id: str
    source: str
    start_ms: int
    end_ms: int
    segments: list[SegmentEntry] = field(default_factory=list)
    # False while recording or after a crash: ``file`` may then be a cut-off file.
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "file": self.file,
            "kind": self.kind,
            "codec": self.codec,
            "classroom_id": self.classroom_id,
            "source": self.source,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "complete": self.complete,
        }
        if self.segments:
            out["segments"] = [s.to_json() for s in self.segments]
        return out


@dataclass
class EventEntry:
    t_ms: int
    type: str
    classroom_id: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update({"t_ms": self.t_ms, "type": self.type, "classroom_id": self.classroom_id})
        return out


@dataclass
class Manifest:
    lesson_id: str
    title: str
    started_at: datetime
    duration_ms: int = 0
    classrooms: list[ClassroomEntry] = field(default_factory=list)
    tracks: list[TrackEntry] = field(default_factory=list)
    events: list[EventEntry] = field(default_factory=list)
    # True once the recorder stopped cleanly.
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "lesson_id": self.lesson_id,
            "title": self.title,
            "started_at": iso_utc(self.started_at),
            "duration_ms": self.duration_ms,
            "complete": self.complete,
            "classrooms": [c.to_json() for c in self.classrooms],
            "tracks": [t.to_json() for t in self.tracks],
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, raw: Any) -> Manifest:
        """Parse and validate a manifest; raises :class:`ManifestError` with the bad field."""
        if not isinstance(raw, dict):
            raise ManifestError("manifest: expected a JSON object")
        if raw.get("format") != FORMAT:
            raise ManifestError(f"manifest: format is {raw.get('format')!r}, expected {FORMAT!r}")
        try:
            manifest = cls(
                lesson_id=_str(raw, "lesson_id"),
                title=str(raw.get("title", "")),
                started_at=parse_iso(_str(raw, "started_at")),
                duration_ms=int(raw.get("duration_ms", 0)),
                complete=bool(raw.get("complete", False)),
            )
            for c in _list(raw, "classrooms"):
                manifest.classrooms.append(ClassroomEntry(_str(c, "id"), _str(c, "role"), str(c.get("name", ""))))
            for t in _list(raw, "tracks"):
                kind = _str(t, "kind")
                if kind not in KINDS:
                    raise ManifestError(f"manifest: track kind {kind!r}")
                manifest.tracks.append(
                    TrackEntry(
                        id=_str(t, "id"),
                        file=_safe_file(_str(t, "file")),
                        kind=kind,
                        codec=_str(t, "codec"),
                        classroom_id=_str(t, "classroom_id"),
                        source=_str(t, "source"),
                        start_ms=int(t["start_ms"]),
                        end_ms=int(t["end_ms"]),
                        complete=bool(t.get("complete", False)),
                        segments=[
                            SegmentEntry(_safe_file(_str(s, "file")), int(s["start_ms"]), int(s["end_ms"]))
                            for s in t.get("segments", [])
                        ],
                    )
                )
            for e in _list(raw, "events"):
                extra = {k: v for k, v in e.items() if k not in ("t_ms", "type", "classroom_id")}
                cid = e.get("classroom_id")
                manifest.events.append(
                    EventEntry(int(e["t_ms"]), _str(e, "type"), None if cid is None else str(cid), extra)
                )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:  # Infinity (tests/fuzz)
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"manifest: bad or missing field: {exc}") from exc
        return manifest


def _str(obj: Any, key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise ManifestError(f"manifest: {key!r} must be a string")
    return value


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise ManifestError(f"manifest: {key!r} must be a list")
    return value


def _safe_file(name: str) -> str:
    """Track files are relative paths inside the recording directory."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"manifest: unsafe file name {name!r}")
    return name


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_manifest(path: Path, manifest: Manifest) -> None:
    text = json.dumps(manifest.to_json(), ensure_ascii=False, separators=(",", ":"))
    write_atomic(path, text.encode("utf-8"))


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nesting too deep (found by tests/fuzz)
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    return Manifest.from_json(raw)
