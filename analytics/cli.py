"""``classroom analyze RECORDING_DIR [--out DIR] [--interval 30] [--config FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analytics.errors import AnalysisError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="classroom analyze",
        description="Classroom-behaviour analysis (S-T analysis, talk time, participation) of a "
        "classroom-recording/1 directory; writes report.json, report.html and PNG charts.",
    )
    parser.add_argument("recording_dir", help="directory holding manifest.json and the tracks")
    parser.add_argument("--out", help="output directory (default: RECORDING_DIR/analysis)")
    parser.add_argument("--interval", type=float, default=30.0, help="S-T window length in seconds (default 30)")
    parser.add_argument("--config", help="YAML/JSON file with analysis settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from analytics.report import analyze_recording

    recording = Path(args.recording_dir)
    out = Path(args.out) if args.out else recording / "analysis"
    try:
        report = analyze_recording(
            recording,
            out,
            interval_s=args.interval,
            config_path=Path(args.config) if args.config else None,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except AnalysisError as exc:
        print(f"classroom analyze: {exc}", file=sys.stderr)
        return 2
    from analytics.observation import write_observation

    try:  # the observers' notes, in a page of its own (docs/observation.md)
        observation = write_observation(recording, out)
    except AnalysisError as exc:
        print(f"classroom analyze: warning: observation section: {exc}", file=sys.stderr)
        observation = {"notes": []}
    for warning in report["warnings"]:
        print(f"classroom analyze: warning: {warning}", file=sys.stderr)
    st = report["st"]
    talk = report["talk"]
    print(
        f"{report['lesson_id']}: {report['duration_s'] / 60:.1f} min, mode {st['mode']} "
        f"(Rt {st['rt']:.2f}, Ch {st['ch']:.2f}); teacher {talk['teacher_s']:.0f} s, "
        f"students {talk['student_s']:.0f} s, silence {talk['silence_s']:.0f} s"
    )
    print(f"report: {out / 'report.html'}")
    print(f"observation: {out / 'observation.html'} ({len(observation['notes'])} note(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
