"""A ``report.json`` built from a synthetic lesson's ground truth, without audio.

The dashboard's tests need many analysed lessons; synthesising and analysing 30 lessons' audio would
take minutes. :func:`truth_report` takes what :mod:`analytics.synth` knows is true (each track's
speech intervals, the floor events) and runs it through the analyser's own report stage
(:func:`analytics.report.build_report`): the result has exactly the format, the S-T coding, the
talk shares and the participation/fairness figures a real analysis of that lesson would give if its
speech detection were perfect.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from analytics.audio import RATE, DecodedTrack
from analytics.config import AnalysisConfig
from analytics.manifest import parse_manifest
from analytics.report import build_report
from analytics.vad import TrackFrames


def manifest_json(
    lesson_id: str,
    started_at: str,
    duration_s: float,
    classrooms: list[tuple[str, str, str]],
    tracks: list[tuple[str, str, str]],
    events: list[dict[str, Any]],
    title: str = "",
) -> dict[str, Any]:
    """A ``classroom-recording/1`` manifest: ``classrooms`` as (id, role, name), audio ``tracks``
    as (track id, classroom id, source)."""
    return {
        "format": "classroom-recording/1",
        "lesson_id": lesson_id,
        "title": title or f"Synthetic lesson {lesson_id}",
        "started_at": started_at,
        "duration_ms": int(duration_s * 1000),
        "complete": True,
        "classrooms": [{"id": c, "role": r, "name": n} for c, r, n in classrooms],
        "tracks": [
            {"id": tid, "file": f"{tid}.webm", "kind": "audio", "codec": "opus", "classroom_id": cid,
             "source": source, "start_ms": 0, "end_ms": int(duration_s * 1000), "complete": True}
            for tid, cid, source in tracks
        ],
        "events": sorted(events, key=lambda e: int(e["t_ms"])),
    }


def truth_report(
    manifest: dict[str, Any],
    talk: dict[str, list[tuple[float, float]]],
    interval_s: float = 30.0,
    config: AnalysisConfig | None = None,
) -> dict[str, Any]:
    """The report of ``manifest`` whose tracks' speech is exactly ``talk`` (track id → intervals, s)."""
    config = AnalysisConfig() if config is None else config
    parsed = parse_manifest(manifest, Path("."))
    duration_s = parsed.duration_ms / 1000
    frame_s = config.vad.frame_ms / 1000
    n_frames = int(duration_s * RATE) // (RATE * config.vad.frame_ms // 1000)
    decoded: list[DecodedTrack] = []
    frames: list[TrackFrames] = []
    for track in parsed.tracks:
        if track.kind != "audio":
            continue
        speech = np.zeros(n_frames, dtype=bool)
        for start, end in talk.get(track.id, []):
            speech[max(0, int(start / frame_s)) : min(n_frames, int(math.ceil(end / frame_s)))] = True
        covered = np.ones(n_frames, dtype=bool)
        decoded.append(DecodedTrack(track, np.zeros(0, dtype=np.int16), [(0, n_frames * int(frame_s * RATE))]))
        frames.append(
            TrackFrames(
                track_id=track.id,
                classroom_id=track.classroom_id,
                source=track.source,
                energy_db=np.where(speech, 70.0, 30.0).astype(np.float32),
                covered=covered,
                floor_db=30.0,
                raw=speech.copy(),
                speech=speech,
            )
        )
    report = build_report(parsed, decoded, frames, config, interval_s, duration_s, list(parsed.warnings), [])
    report["timings_cpu_s"] = {"decode": 0.0, "speech_detection": 0.0, "comparison": 0.0, "report": 0.0}
    return report
