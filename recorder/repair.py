"""Finish a recording whose recorder was killed: rebuild each unfinished track's full file from
its segments by remuxing (demux + mux of the same packets: no decoding, no encoding).

Segments closed before the crash are complete files; the one open at the crash is cut off and
contributes what demuxes before the cut. Run by ``classroom record --repair DIR`` and
automatically when a recorder starts again in the same directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import av

from recorder.manifest import Manifest, SegmentEntry, TrackEntry, read_manifest, write_manifest

log = logging.getLogger(__name__)

_FORMATS = {".webm": "webm", ".mkv": "matroska"}


def _segment_files(directory: Path, track: TrackEntry, suffix: str) -> list[str]:
    """The listed segments, plus later ones on disk the last manifest did not list yet."""
    listed = [s.file for s in track.segments]
    folder = directory / "segments" / track.id
    on_disk = (
        sorted(f"segments/{track.id}/{p.name}" for p in folder.glob(f"*{suffix}") if p.is_file())
        if folder.is_dir()
        else []
    )
    last = listed[-1] if listed else ""
    return listed + [f for f in on_disk if f not in listed and f > last]


def _concat(directory: Path, track: TrackEntry) -> tuple[str, int, list[SegmentEntry]] | None:
    """Remux the track's segments into ``<track>.<ext>``; return (file, end_ms, segments)."""
    suffix = Path(track.segments[0].file).suffix
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        return None
    segments: list[SegmentEntry] = []
    name = f"{track.id}{suffix}"
    tmp = directory / f".{name}.repair"
    output: Any = av.open(str(tmp), mode="w", format=fmt)
    out_stream: Any = None
    last_end_ms: float | None = None
    last_dts: int | None = None
    try:
        for relative in _segment_files(directory, track, suffix):
            path = directory / relative
            if not path.is_file():
                continue
            first_ms: int | None = None
            try:
                source: Any = av.open(str(path))
            except av.FFmpegError as exc:
                log.warning("repair: %s does not open: %s", path, exc)
                continue
            with source:
                if not source.streams:
                    continue
                in_stream = source.streams[0]
                if out_stream is None:
                    out_stream = output.add_stream_from_template(in_stream)
                try:
                    for packet in source.demux(in_stream):
                        if packet.dts is None or packet.size == 0:
                            continue
                        tb = packet.time_base
                        dts_ms = int(packet.dts * tb * 1000)
                        if last_dts is not None and dts_ms <= last_dts:
                            continue  # overlap between segments
                        packet.stream = out_stream
                        output.mux(packet)
                        last_dts = dts_ms
                        duration_ms = float((packet.duration or 0) * tb * 1000)
                        last_end_ms = dts_ms + duration_ms
                        if first_ms is None:
                            first_ms = dts_ms
                except av.FFmpegError as exc:  # the segment open at the crash: cut off
                    log.info("repair: %s ends early: %s", path, exc)
            if first_ms is not None and last_end_ms is not None:
                segments.append(SegmentEntry(relative, track.start_ms + first_ms, track.start_ms + int(last_end_ms)))
        output.close()
    except BaseException:
        output.close()
        tmp.unlink(missing_ok=True)
        raise
    if out_stream is None or last_end_ms is None:
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(directory / name)
    return name, int(last_end_ms), segments


def repair_recording(directory: Path) -> Manifest:
    """Rebuild the full file of every unfinished track and rewrite the manifest."""
    manifest = read_manifest(directory / "manifest.json")
    changed = False
    for track in manifest.tracks:
        if track.complete or not track.segments:
            continue
        try:
            result = _concat(directory, track)
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.warning("repair: track %s: %s", track.id, exc)
            continue
        if result is None:
            continue
        track.file, end, segments = result
        # what the rebuilt file holds, not what the last manifest listed: the open segment's
        # listed end was written before the crash cut its tail off (issue #14)
        track.end_ms = track.start_ms + end
        track.segments = segments
        track.complete = True
        changed = True
    if changed:
        manifest.duration_ms = max([manifest.duration_ms] + [t.end_ms for t in manifest.tracks])
        write_manifest(directory / "manifest.json", manifest)
    return manifest
