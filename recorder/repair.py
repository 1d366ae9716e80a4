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

from recorder.manifest import Manifest, TrackEntry, read_manifest, write_manifest

log = logging.getLogger(__name__)

_FORMATS = {".webm": "webm", ".mkv": "matroska"}


def _concat(directory: Path, track: TrackEntry) -> tuple[str, int] | None:
    """Remux the track's segments into ``<track>.<ext>``; return (file, end_ms) or None."""
    suffix = Path(track.segments[0].file).suffix
    fmt = _FORMATS.get(suffix)
    if fmt is None:
        return None
    name = f"{track.id}{suffix}"
    tmp = directory / f".{name}.repair"
    output: Any = av.open(str(tmp), mode="w", format=fmt)
    out_stream: Any = None
    last_end_ms: float | None = None
    last_dts: int | None = None
    try:
        for segment in track.segments:
            path = directory / segment.file
            if not path.is_file():
                continue
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
                except av.FFmpegError as exc:  # the segment open at the crash: cut off
                    log.info("repair: %s ends early: %s", path, exc)
        output.close()
    except BaseException:
        output.close()
        tmp.unlink(missing_ok=True)
        raise
    if out_stream is None or last_end_ms is None:
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(directory / name)
    return name, int(last_end_ms)


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
        track.file, end = result
        track.end_ms = max(track.end_ms, track.start_ms + end)
        track.complete = True
        changed = True
    if changed:
        manifest.duration_ms = max([manifest.duration_ms] + [t.end_ms for t in manifest.tracks])
        write_manifest(directory / "manifest.json", manifest)
    return manifest
