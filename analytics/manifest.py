"""Reader for the ``classroom-recording/1`` manifest (see docs/analytics.md, "Reader rules")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analytics.errors import AnalysisError

FORMAT = "classroom-recording/1"
EVENT_TYPES = frozenset(
    {
        "join",
        "leave",
        "hand_raised",
        "hand_lowered",
        "floor_granted",
        "floor_revoked",
        "spotlight",
        "mute",
        "unmute",
    }
)
# Known event types the behaviour analysis does not use (read by analytics/observation.py).
OTHER_EVENT_TYPES = frozenset({"observation_note"})
_TOP_FIELDS = {
    "format",
    "complete",
    "lesson_id",
    "title",
    "started_at",
    "duration_ms",
    "classrooms",
    "tracks",
    "events",
}
_CLASSROOM_FIELDS = {"id", "role", "name"}
_TRACK_FIELDS = {
    "id",
    "complete",
    "file",
    "segments",
    "kind",
    "codec",
    "classroom_id",
    "source",
    "start_ms",
    "end_ms",
}
_SEGMENT_FIELDS = {"file", "start_ms", "end_ms"}


@dataclass
class Classroom:
    id: str
    role: str
    name: str


@dataclass
class Segment:
    file: str
    start_ms: int
    end_ms: int | None


@dataclass
class Track:
    id: str
    kind: str
    codec: str
    classroom_id: str
    source: str
    start_ms: int
    end_ms: int | None
    segments: list[Segment]
    """how the track is read (the whole-track file, or its segments in order)"""
    alternative: list[Segment] = field(default_factory=list)
    """the other listing (segments vs. whole file), used when files of ``segments`` are missing"""


@dataclass
class Event:
    t_ms: int
    type: str
    classroom_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    directory: Path
    lesson_id: str
    title: str
    started_at: str
    duration_ms: int
    classrooms: list[Classroom]
    tracks: list[Track]
    events: list[Event]
    warnings: list[str] = field(default_factory=list)

    def classroom(self, classroom_id: str) -> Classroom | None:
        for room in self.classrooms:
            if room.id == classroom_id:
                return room
        return None

    @property
    def lead_id(self) -> str | None:
        for room in self.classrooms:
            if room.role == "lead":
                return room.id
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(round(value))


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class _Reader:
    def __init__(self) -> None:
        self.warnings: list[str] = []
        self._unknown: dict[str, set[str]] = {}

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def unknown(self, where: str, obj: dict[str, Any], known: set[str]) -> None:
        extra = set(obj) - known
        if extra:
            self._unknown.setdefault(where, set()).update(extra)

    def flush_unknown(self) -> None:
        for where, names in self._unknown.items():
            listed = ", ".join(sorted(names))
            self.warn(f"manifest: ignored unknown field(s) in {where}: {listed}")


def _read_segments(
    reader: _Reader, tid: str, raw: dict[str, Any], start_ms: int, end_ms: int | None
) -> tuple[list[Segment], list[Segment]]:
    """(primary, alternative) ways to read the track's audio.

    The recorder lists both a ``file`` and its ``segments``: with ``complete: true`` the file is
    the whole track, otherwise it is only the first segment and the segments are the track."""
    segs: list[Segment] = []
    raw_segments = raw.get("segments")
    if isinstance(raw_segments, list):
        for i, item in enumerate(raw_segments):
            if isinstance(item, str):
                item = {"file": item}
            if not isinstance(item, dict) or not isinstance(item.get("file"), str):
                reader.warn(f"track {tid}: segment {i} has no file name; skipped")
                continue
            reader.unknown("track segments", item, _SEGMENT_FIELDS)
            seg_start = _int(item.get("start_ms"))
            if seg_start is None:
                # without a start, a segment follows the previous one (or the track start)
                seg_start = segs[-1].end_ms if segs and segs[-1].end_ms is not None else None
                if seg_start is None:
                    seg_start = start_ms if not segs else -1
            segs.append(Segment(item["file"], seg_start, _int(item.get("end_ms"))))
    file = raw.get("file")
    whole = [Segment(file, start_ms, end_ms)] if isinstance(file, str) and file else []
    if not segs and not whole:
        reader.warn(f"track {tid}: no file or segments; skipped")
        return [], []
    if raw.get("complete") is True and whole:
        return whole, segs
    if segs:
        return segs, whole
    return whole, []


def parse_manifest(data: Any, directory: Path) -> Manifest:
    """Build a :class:`Manifest` from decoded JSON, tolerating everything that can be tolerated."""
    if not isinstance(data, dict):
        raise AnalysisError("manifest.json: must hold a JSON object")
    reader = _Reader()
    reader.unknown("the top level", data, _TOP_FIELDS)
    fmt = data.get("format")
    if fmt != FORMAT:
        if fmt is None:
            reader.warn(f"manifest: no format field; assuming {FORMAT}")
        else:
            raise AnalysisError(
                f"manifest.json: format {fmt!r} is not {FORMAT!r} (not a recording this version can read)"
            )
    lesson_id = _str(data.get("lesson_id")) or directory.name
    if _str(data.get("lesson_id")) is None:
        reader.warn(f"manifest: no lesson_id; using the directory name {lesson_id!r}")
    title = _str(data.get("title")) or ""
    started_at = _str(data.get("started_at")) or ""

    classrooms: list[Classroom] = []
    raw_rooms = data.get("classrooms")
    if not isinstance(raw_rooms, list):
        reader.warn("manifest: classrooms missing or not a list")
        raw_rooms = []
    for i, item in enumerate(raw_rooms):
        if not isinstance(item, dict) or _str(item.get("id")) is None:
            reader.warn(f"manifest: classroom {i} has no id; skipped")
            continue
        reader.unknown("classrooms", item, _CLASSROOM_FIELDS)
        role = item.get("role")
        if role not in ("lead", "remote"):
            reader.warn(f"classroom {item['id']}: role {role!r} unknown; treated as remote")
            role = "remote"
        cid = str(item["id"])
        classrooms.append(Classroom(cid, role, _str(item.get("name")) or cid))
    if sum(1 for c in classrooms if c.role == "lead") > 1:
        reader.warn("manifest: more than one lead classroom; the first one is the lead")
        first = True
        for room in classrooms:
            if room.role == "lead":
                if not first:
                    room.role = "remote"
                first = False

    tracks: list[Track] = []
    raw_tracks = data.get("tracks")
    if not isinstance(raw_tracks, list):
        reader.warn("manifest: tracks missing or not a list")
        raw_tracks = []
    seen: set[str] = set()
    for i, item in enumerate(raw_tracks):
        if not isinstance(item, dict):
            reader.warn(f"manifest: track {i} is not an object; skipped")
            continue
        reader.unknown("tracks", item, _TRACK_FIELDS)
        tid = _str(item.get("id")) or f"track{i}"
        if tid in seen:
            tid = f"{tid}#{i}"
        seen.add(tid)
        kind = item.get("kind")
        if kind not in ("audio", "video"):
            reader.warn(f"track {tid}: kind {kind!r} unknown; skipped")
            continue
        room_id = _str(item.get("classroom_id"))
        if room_id is None:
            reader.warn(f"track {tid}: no classroom_id; skipped")
            continue
        if not any(c.id == room_id for c in classrooms):
            reader.warn(f"track {tid}: classroom {room_id!r} is not listed; added as a remote one")
            classrooms.append(Classroom(room_id, "remote", room_id))
        source = item.get("source")
        if source not in ("teacher", "students", "screen"):
            reader.warn(f"track {tid}: source {source!r} unknown; skipped")
            continue
        start_ms = _int(item.get("start_ms"))
        if start_ms is None:
            start_ms = 0
            if kind == "audio":
                reader.warn(f"track {tid}: no start_ms; assuming 0")
        end_ms = _int(item.get("end_ms"))
        segments, alternative = _read_segments(reader, tid, item, start_ms, end_ms)
        if not segments:
            continue
        tracks.append(
            Track(
                id=tid,
                kind=kind,
                codec=_str(item.get("codec")) or "",
                classroom_id=room_id,
                source=source,
                start_ms=start_ms,
                end_ms=end_ms,
                segments=segments,
                alternative=alternative,
            )
        )

    events: list[Event] = []
    raw_events = data.get("events", [])
    if not isinstance(raw_events, list):
        reader.warn("manifest: events is not a list; ignored")
        raw_events = []
    unknown_types: set[str] = set()
    for i, item in enumerate(raw_events):
        t_ms = _int(item.get("t_ms")) if isinstance(item, dict) else None
        if not isinstance(item, dict) or t_ms is None or not isinstance(item.get("type"), str):
            reader.warn(f"manifest: event {i} lacks t_ms or type; skipped")
            continue
        etype = item["type"]
        if etype in OTHER_EVENT_TYPES:
            continue
        if etype not in EVENT_TYPES:
            unknown_types.add(etype)
            continue
        extra = {k: v for k, v in item.items() if k not in ("t_ms", "type", "classroom_id")}
        events.append(Event(t_ms, etype, _str(item.get("classroom_id")), extra))
    if unknown_types:
        reader.warn(f"manifest: ignored event type(s): {', '.join(sorted(unknown_types))}")
    events.sort(key=lambda e: e.t_ms)

    duration = _int(data.get("duration_ms"))
    if duration is None or duration <= 0:
        ends = [t.end_ms for t in tracks if t.end_ms is not None]
        ends += [s.end_ms for t in tracks for s in t.segments if s.end_ms is not None]
        ends += [e.t_ms for e in events]
        duration = max(ends, default=0)
        reader.warn(
            f"manifest: duration_ms missing or invalid; using {duration} ms from tracks/events"
            + (" (will be extended to the decoded audio)" if duration == 0 else "")
        )
    reader.flush_unknown()
    if not classrooms:
        reader.warn("manifest: no classrooms")
    if not any(t.kind == "audio" for t in tracks):
        reader.warn("manifest: no usable audio track; the report has no speech analysis")
    return Manifest(
        directory=directory,
        lesson_id=lesson_id,
        title=title,
        started_at=started_at,
        duration_ms=duration,
        classrooms=classrooms,
        tracks=tracks,
        events=events,
        warnings=reader.warnings,
    )


def load_manifest(directory: Path) -> Manifest:
    directory = Path(directory)
    if not directory.is_dir():
        raise AnalysisError(f"{directory}: not a directory")
    path = directory / "manifest.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnalysisError(f"{path}: missing (not a classroom-recording/1 directory)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return parse_manifest(data, directory)
