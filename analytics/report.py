"""The analysis pipeline: recording directory in, ``report.json`` / ``report.html`` / PNGs out."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from analytics import st as st_mod
from analytics.audio import RATE, DecodedTrack, decode_track, probe_duration_ms
from analytics.config import AnalysisConfig, load_config
from analytics.errors import AnalysisError
from analytics.manifest import Manifest, Track, load_manifest
from analytics.origin import attribute, wave_4k
from analytics.participation import ClassroomStats, audible_intervals, count_turns, floor_stats
from analytics.progress import Progress
from analytics.vad import TrackFrames, detect, runs, smooth

REPORT_FORMAT = "classroom-behaviour-report/1"


def _speech_tracks(manifest: Manifest) -> tuple[list[Track], list[str]]:
    notes: list[str] = []
    lead = manifest.lead_id
    if lead is None and manifest.classrooms:
        notes.append("manifest: no lead classroom; teacher speech cannot be identified")
    chosen = []
    for t in manifest.tracks:
        if t.kind != "audio":
            continue
        if t.source == "screen":
            notes.append(f"track {t.id}: screen audio is not speech of the lesson; ignored")
            continue
        if t.source == "teacher" and t.classroom_id != lead:
            notes.append(
                f"track {t.id}: teacher audio from non-lead classroom {t.classroom_id}; "
                "counted as that classroom's students"
            )
        chosen.append(t)
    return chosen, notes


def _segments(mask: np.ndarray, frame_s: float) -> list[list[float]]:
    return [[round(s * frame_s, 2), round(e * frame_s, 2)] for s, e in runs(mask)]


def _per_second(mask: np.ndarray, frame_s: float, seconds: int) -> np.ndarray:
    csum = np.concatenate(([0], np.cumsum(mask.astype(np.int64))))
    edges = np.minimum(np.round(np.arange(seconds + 1) / frame_s).astype(np.int64), len(mask))
    counts = csum[edges[1:]] - csum[edges[:-1]]
    width = np.maximum(edges[1:] - edges[:-1], 1)
    return counts / width


def build_report(
    manifest: Manifest,
    decoded: list[DecodedTrack],
    frames: list[TrackFrames],
    config: AnalysisConfig,
    interval_s: float,
    duration_s: float,
    warnings: list[str],
    couplings: list[dict[str, Any]],
) -> dict[str, Any]:
    frame_s = config.vad.frame_ms / 1000
    n_frames = int(duration_s * RATE) // (RATE * config.vad.frame_ms // 1000)
    lead = manifest.lead_id
    teacher = np.zeros(n_frames, dtype=bool)
    per_room: dict[str, np.ndarray] = {}
    for room in manifest.classrooms:
        per_room[room.id] = np.zeros(n_frames, dtype=bool)
    for tf in frames:
        speech = tf.speech[:n_frames]
        if tf.source == "teacher" and tf.classroom_id == lead:
            teacher[: len(speech)] |= speech
        else:
            per_room.setdefault(tf.classroom_id, np.zeros(n_frames, dtype=bool))
            per_room[tf.classroom_id][: len(speech)] |= speech
    students = np.zeros(n_frames, dtype=bool)
    for mask in per_room.values():
        students |= mask

    codes = st_mod.code_windows(teacher, frame_s, duration_s, interval_s)
    st = st_mod.analyse(codes, interval_s, config.st)

    teacher_s = float(teacher.sum()) * frame_s
    student_s = float(students.sum()) * frame_s
    both_s = float((teacher & students).sum()) * frame_s
    silence_s = max(0.0, duration_s - float((teacher | students).sum()) * frame_s)

    seconds = int(math.ceil(duration_s - 1e-9))
    t_frac = _per_second(teacher, frame_s, seconds)
    s_frac = _per_second(students & ~teacher, frame_s, seconds)
    n_frac = 1.0 - t_frac - s_frac
    timeline = []
    for tf_, sf_, nf_ in zip(t_frac.tolist(), s_frac.tolist(), n_frac.tolist(), strict=True):
        if tf_ >= sf_ and tf_ >= nf_ and tf_ > 0:
            timeline.append("T")
        elif sf_ >= nf_ and sf_ > 0:
            timeline.append("S")
        else:
            timeline.append("N")

    stats = {room.id: ClassroomStats(room.id) for room in manifest.classrooms}
    for cid, mask in per_room.items():
        room_stats = stats.setdefault(cid, ClassroomStats(cid))
        room_stats.student_talk_s = float(mask.sum()) * frame_s
        room_stats.turns = count_turns(mask, frame_s, config.participation)
    for tf in frames:
        if not (tf.source == "teacher" and tf.classroom_id == lead) and tf.covered.any():
            stats[tf.classroom_id].has_audio = True
    floor_stats(stats, manifest.events, duration_s)

    # "Heard" = the students' speech reached the others: a remote classroom's audio is forwarded
    # only while it holds the floor, unmuted and connected; the lead classroom's always is.
    remote = [r for r in manifest.classrooms if r.role == "remote"]
    audible = audible_intervals(manifest.events, [r.id for r in remote], duration_s)
    for cid, mask in per_room.items():
        room_stats = stats[cid]
        if cid in audible:
            forwarded = np.zeros(n_frames, dtype=bool)
            for start, end in audible[cid]:
                forwarded[int(start / frame_s) : int(math.ceil(end / frame_s))] = True
            room_stats.audible_s = float(forwarded.sum()) * frame_s
            room_stats.heard_s = float((mask & forwarded).sum()) * frame_s
        else:
            room_stats.audible_s = duration_s
            room_stats.heard_s = room_stats.student_talk_s
    threshold = config.participation.never_heard_s
    never = [r.id for r in remote if stats[r.id].heard_s < threshold]
    total_student = sum(s.student_talk_s for s in stats.values())
    fairness = {
        "remote_classrooms": [r.id for r in remote],
        "never_heard": never,
        "never_heard_without_audio": [r for r in never if not stats[r].has_audio],
        "spoke_but_not_heard": [r for r in never if stats[r].student_talk_s >= threshold],
        "never_granted_floor": [r.id for r in remote if stats[r.id].floor_grants == 0],
        "student_talk_share": {
            cid: round(s.student_talk_s / total_student, 4) if total_student > 0 else 0.0 for cid, s in stats.items()
        },
    }

    track_info = []
    for dec, tf in zip(decoded, frames, strict=True):
        track_info.append(
            {
                "id": dec.track.id,
                "classroom_id": dec.track.classroom_id,
                "source": dec.track.source,
                "decoded_s": round(dec.decoded_s, 2),
                "speech_s": round(float(tf.speech.sum()) * frame_s, 2),
                "copies_removed_s": round(float((tf.raw & ~tf.speech).sum()) * frame_s, 2),
                "noise_floor_db": round(tf.floor_db, 1),
            }
        )

    def share(x: float) -> float:
        return round(x / duration_s, 4) if duration_s > 0 else 0.0

    return {
        "format": REPORT_FORMAT,
        "lesson_id": manifest.lesson_id,
        "title": manifest.title,
        "started_at": manifest.started_at,
        "duration_s": round(duration_s, 3),
        "st": st.as_dict(),
        "talk": {
            "teacher_s": round(teacher_s, 2),
            "student_s": round(student_s, 2),
            "silence_s": round(silence_s, 2),
            "overlap_s": round(both_s, 2),
            "teacher_share": share(teacher_s),
            "student_share": share(student_s),
            "silence_share": share(silence_s),
        },
        "participation": {cid: s.as_dict() for cid, s in stats.items()},
        "fairness": fairness,
        "timeline": timeline,
        "segments": {
            "teacher": _segments(teacher, frame_s),
            "classrooms": {cid: _segments(mask, frame_s) for cid, mask in per_room.items()},
        },
        "classrooms": [{"id": r.id, "role": r.role, "name": r.name} for r in manifest.classrooms],
        "events": [
            {
                "t_s": round(e.t_ms / 1000, 3),
                "type": e.type,
                "classroom_id": e.classroom_id,
                **({"reason": e.data["reason"]} if isinstance(e.data.get("reason"), str) else {}),
            }
            for e in manifest.events
        ],
        "tracks": track_info,
        "couplings": couplings,
        "thresholds": asdict(config.st),
        "warnings": warnings,
    }


def _threads(config: AnalysisConfig, n: int) -> int:
    if config.threads > 0:
        return max(1, min(config.threads, n))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4, n))


def analyze_recording(
    recording_dir: Path,
    out_dir: Path,
    interval_s: float = 30.0,
    config_path: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Analyse a ``classroom-recording/1`` directory; write the report files; return the report.

    Raises :class:`AnalysisError` (with a message for the user) only when nothing can be
    reported (no readable manifest, bad config, unwritable output); damaged or missing tracks
    produce warnings in the report instead.
    """
    if not (interval_s > 0 and math.isfinite(interval_s)):
        raise AnalysisError(f"interval must be a positive number of seconds, got {interval_s}")
    config = load_config(config_path)
    manifest = load_manifest(Path(recording_dir))
    warnings = list(manifest.warnings)
    tracks, notes = _speech_tracks(manifest)
    warnings += notes

    duration_ms = manifest.duration_ms
    if duration_ms <= 0:
        duration_ms = probe_duration_ms(manifest, tracks)
        if duration_ms <= 0:
            raise AnalysisError(f"{recording_dir}: cannot tell the lesson's duration")
    duration_s = duration_ms / 1000
    frame_len = RATE * config.vad.frame_ms // 1000
    total = int(round(duration_s * RATE))
    total -= total % frame_len

    bar = Progress(total=len(tracks) * 10 + 3, enabled=progress)
    bar.note("decoding audio")

    cpu = {"decode": 0.0, "speech": 0.0}
    lock = threading.Lock()

    def work(track: Track) -> tuple[DecodedTrack, TrackFrames]:
        t0 = time.thread_time()
        dec = decode_track(manifest, track, total, config.skip_unvoiced_opus)
        bar.advance(7, f"decoded {track.id}")
        t1 = time.thread_time()
        frames = detect(dec, config.vad)
        frames.wave = wave_4k(dec.samples)  # what the cross-track comparison needs (half the size)
        dec.samples = dec.samples[:0]  # the samples are no longer needed: free them early
        bar.advance(3, f"speech detected {track.id}")
        with lock:
            cpu["decode"] += t1 - t0
            cpu["speech"] += time.thread_time() - t1
        return dec, frames

    if tracks:
        with ThreadPoolExecutor(max_workers=_threads(config, len(tracks))) as pool:
            results = list(pool.map(work, tracks))
    else:
        results = []
    decoded = [r[0] for r in results]
    frames = [r[1] for r in results]
    for dec in decoded:
        warnings += dec.warnings

    bar.note("comparing tracks")
    t_compare = time.process_time()
    frame_s = config.vad.frame_ms / 1000
    couplings = attribute(frames, frame_s, config.attribution)
    for tf in frames:
        tf.speech = smooth(tf.speech, frame_s, config.vad.gap_fill_s, config.vad.min_speech_s)
    bar.advance(1)
    t_report = time.process_time()

    report = build_report(
        manifest,
        decoded,
        frames,
        config,
        interval_s,
        duration_s,
        warnings,
        [
            {
                "source": c.source,
                "target": c.target,
                "delay_s": round(c.delay_s, 3),
                "gain_db": round(c.gain_db, 1),
                "correlation": round(c.correlation, 3),
                "removed_s": round(c.removed_s, 2),
            }
            for c in couplings
        ],
    )
    report["timings_cpu_s"] = {
        "decode": round(cpu["decode"], 2),
        "speech_detection": round(cpu["speech"], 2),
        "comparison": round(t_report - t_compare, 2),
        "report": 0.0,
    }
    bar.advance(1, "writing report")
    write_outputs(report, Path(out_dir))
    report["timings_cpu_s"]["report"] = round(time.process_time() - t_report, 2)
    bar.finish("report written")
    return report


def write_outputs(report: dict[str, Any], out_dir: Path) -> None:
    from analytics.html import render_html, write_charts

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        try:
            charts = write_charts(report, out_dir)
        except ImportError as exc:  # an install from before the charts needed matplotlib
            raise AnalysisError(
                f"cannot draw the charts ({exc}); report.json is written. Install the project's dependencies "
                "again (pip install -e . in its virtualenv, or ./classroom.sh)"
            ) from None
        (out_dir / "report.html").write_text(render_html(report, charts), encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
