"""Benchmark: ``python -m analytics.bench --minutes 45 --tracks 4 --json PATH``.

Builds (once, cached) a synthetic lesson with Opus/WebM tracks, analyses it on one core and
prints/writes the timings together with the accuracy against the known speech timeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from analytics import synth
from analytics.st import code_intervals

BENCH_VERSION = 1


def build_input(minutes: float, tracks: int, codec: str, cache: Path) -> Path:
    if tracks < 2:
        raise SystemExit("analytics.bench: --tracks must be at least 2 (teacher + lead students)")
    n_remote = tracks - 2
    directory = cache / f"bench-v{BENCH_VERSION}-{minutes:g}min-{tracks}tracks-{codec}"
    if (directory / "complete").exists():
        return directory
    if directory.exists():
        shutil.rmtree(directory)
    duration = minutes * 60
    spec = synth.standard_lesson(f"bench-{minutes:g}min", "mixed", duration, n_remote, codec, seed=45)
    print(
        f"building a {minutes:g}-minute lesson with {tracks} {codec} tracks in {directory} (cached for later runs) ...",
        file=sys.stderr,
    )
    synth.build_lesson(spec, directory, rate=48000 if codec != "wav" else 16000)
    (directory / "complete").write_text("ok\n")
    return directory


def _union(intervals: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def _total(intervals: list[list[float]]) -> float:
    return sum(e - s for s, e in intervals)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from analytics.report import analyze_recording

    cache = Path(args.cache) if args.cache else synth.cache_dir()
    directory = build_input(args.minutes, args.tracks, args.codec, cache)
    if args.cores and hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[: args.cores]))
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.json"
        config.write_text(json.dumps({"threads": max(args.cores, 1) if args.cores else 0}))
        out = Path(args.out) if args.out else Path(tmp) / "out"
        wall0, cpu0 = time.perf_counter(), time.process_time()
        report = analyze_recording(directory, out, 30.0, config, progress=args.progress)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    truth = json.loads((directory / "truth.json").read_text())
    duration = report["duration_s"]
    true_codes = code_intervals([tuple(x) for x in truth["teacher"]], duration, 30.0)
    agree = sum(a == b for a, b in zip(true_codes, report["st"]["codes"], strict=False))
    # 3-s windows: coded from the measured teacher segments (the same mask the report codes)
    measured3 = code_intervals([tuple(x) for x in report["segments"]["teacher"]], duration, 3.0)
    true3 = code_intervals([tuple(x) for x in truth["teacher"]], duration, 3.0)
    agree3 = sum(a == b for a, b in zip(true3, measured3, strict=True)) / max(len(true3), 1)
    students = _union([iv for k, v in truth.items() if k != "teacher" for iv in v])
    teacher_true = _total(truth["teacher"])
    student_true = _total(students)
    audio_s = sum(t["decoded_s"] for t in report["tracks"])
    try:
        cpu_model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        cpu_model = platform.processor()
    return {
        "benchmark": "analytics.bench",
        "minutes": args.minutes,
        "tracks": args.tracks,
        "codec": args.codec,
        "cores": args.cores,
        "audio_s": round(audio_s, 1),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "realtime_factor": round(duration / wall, 1) if wall > 0 else None,
        "st_30s_agreement": round(agree / max(len(true_codes), 1), 4),
        "st_3s_agreement": round(agree3, 4),
        "teacher_s": {"measured": report["talk"]["teacher_s"], "true": round(teacher_true, 2)},
        "student_s": {"measured": report["talk"]["student_s"], "true": round(student_true, 2)},
        "mode": report["st"]["mode"],
        "stages_cpu_s": report["timings_cpu_s"],
        "machine": {
            "python": platform.python_version(),
            "cpu": cpu_model,
            "cpus_online": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        },
        "input": str(directory),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analytics.bench", description=__doc__)
    parser.add_argument("--minutes", type=float, default=45.0)
    parser.add_argument("--tracks", type=int, default=4)
    parser.add_argument("--codec", choices=["webm", "ogg", "wav"], default="webm")
    parser.add_argument("--cores", type=int, default=1, help="CPUs to run on (0 = all)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--cache", help="where the generated lesson is kept (default: temp dir)")
    parser.add_argument("--out", help="keep the report in this directory")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    result = run(args)
    rows = [
        ("lesson", f"{args.minutes:g} min, {args.tracks} tracks ({args.codec})"),
        ("audio decoded", f"{result['audio_s']:.0f} s"),
        ("wall time", f"{result['wall_s']:.2f} s on {args.cores or 'all'} core(s)"),
        ("CPU time", f"{result['cpu_s']:.2f} s"),
        ("speed", f"{result['realtime_factor']}x real time"),
        ("S-T 30 s agreement", f"{result['st_30s_agreement'] * 100:.1f}%"),
        ("S-T 3 s agreement", f"{result['st_3s_agreement'] * 100:.1f}%"),
        (
            "teacher talk",
            f"{result['teacher_s']['measured']:.1f} s (true {result['teacher_s']['true']:.1f} s)",
        ),
        (
            "student talk",
            f"{result['student_s']['measured']:.1f} s (true {result['student_s']['true']:.1f} s)",
        ),
        ("mode", result["mode"]),
        (
            "CPU by stage",
            ", ".join(f"{k} {v:.1f} s" for k, v in result["stages_cpu_s"].items()),
        ),
        ("load average", str(result["machine"]["load_avg_1min"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
