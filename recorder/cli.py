"""``classroom record`` and ``classroom composite``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

log = logging.getLogger("recorder")


def _record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classroom record",
        description=(
            "Record a lesson: join it as the recorder participant (--url/--token) and write "
            "every track to its own file without transcoding, or record plain RTP sent to UDP "
            "ports (--udp-track, for tests and load tests)."
        ),
    )
    parser.add_argument("--url", help="signaling WebSocket, e.g. ws://127.0.0.1:8080/ws")
    parser.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the join token (role 'recorder') from this file; it must not be readable by group or others",
    )
    parser.add_argument(
        "--token-fd",
        type=int,
        metavar="N",
        help="read the join token from inherited file descriptor N (a pipe), as `classroom serve` does",
    )
    parser.add_argument(
        "--token",
        help="refused: a token on the command line is visible to every local user in ps "
        "(use --token-file or --token-fd)",
    )
    parser.add_argument(
        "--udp-track",
        action="append",
        default=[],
        metavar="ID,KIND,CODEC,CLASSROOM,SOURCE,PORT",
        help="record plain RTP arriving on a UDP port (repeatable)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address for --udp-track ports")
    parser.add_argument("--lesson-id", help="lesson id (default: from the token)")
    parser.add_argument("--title", default="", help="lesson title for the manifest")
    parser.add_argument("--out", help="recording directory (default DATA_DIR/recordings/LESSON)")
    parser.add_argument("--data-dir", help="data directory (default from the config)")
    parser.add_argument("--config", help="YAML config file")
    parser.add_argument("--segment-seconds", type=float, help="segment length (default 2)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument(
        "--repair",
        metavar="RECORDING_DIR",
        help="finish a recording whose recorder was killed (rebuild files from segments), exit",
    )
    parser.add_argument(
        "--standby",
        action="store_true",
        help="start now, wait for the job on stdin (one JSON line: token, out), then record: a server "
        "keeps one such warm recorder so a lesson's recording starts without a process start-up",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser


def record_main(argv: Sequence[str]) -> int:
    args = _record_parser().parse_args(list(argv))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.repair:
        from recorder.manifest import ManifestError
        from recorder.repair import repair_recording

        try:
            manifest = repair_recording(Path(args.repair))
        except (ManifestError, OSError) as exc:
            print(f"classroom record: {exc}", file=sys.stderr)
            return 1
        done = sum(t.complete for t in manifest.tracks)
        print(f"{args.repair}: {done}/{len(manifest.tracks)} track file(s) complete")
        return 0
    from classroom.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"classroom record: {exc}", file=sys.stderr)
        return 2
    segment_seconds = args.segment_seconds or config.recording.segment_seconds
    if segment_seconds <= 0:
        print("classroom record: --segment-seconds must be positive", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir or config.server.data_dir)
    if args.udp_track:
        from recorder.udp import UdpTrack

        try:
            tracks = [UdpTrack.parse(text) for text in args.udp_track]
        except ValueError as exc:
            print(f"classroom record: {exc}", file=sys.stderr)
            return 2
        if not args.lesson_id and not args.out:
            print("classroom record: --udp-track needs --lesson-id or --out", file=sys.stderr)
            return 2
        lesson_id = args.lesson_id or Path(args.out).name
        out = Path(args.out) if args.out else data_dir / "recordings" / lesson_id
        return asyncio.run(_record_udp(out, lesson_id, args.title, tracks, args.host, segment_seconds, args.duration))
    from recorder.launcher import die_with_parent

    die_with_parent()  # started by a server: end with it (no-op otherwise)
    token: str | None
    if args.standby:
        job = wait_for_job()
        if job is None:
            return 0  # the server stopped, or no longer needs it
        token, args.out = job
    else:
        try:
            token = _token_of(args)
        except TokenSourceError as exc:
            print(f"classroom record: {exc}", file=sys.stderr)
            return 2
    if not args.url or not token:
        print("classroom record: give --url and --token-file/--token-fd (or --udp-track)", file=sys.stderr)
        return 2
    from recorder.worker import run_worker

    return asyncio.run(
        run_worker(
            url=args.url,
            token=token,
            data_dir=data_dir,
            out=Path(args.out) if args.out else None,
            segment_seconds=segment_seconds,
            duration=args.duration,
            ice_addresses=config.media.ice_addresses,
        )
    )


def wait_for_job(stream: TextIO | None = None) -> tuple[str, str | None] | None:
    """A standby recorder (``--standby``): import what recording needs now, then wait for the job,
    one JSON line ``{"token": ..., "out": ...}`` on stdin (never on the command line). None at
    end of file or on a line that is not a job."""
    import recorder.worker  # noqa: F401  (aiohttp, aiortc, PyAV: the seconds of a cold start)
    from sfu import glue  # noqa: F401

    line = (stream or sys.stdin).readline()
    if not line.strip():
        return None
    try:
        job = json.loads(line)
    except ValueError:
        return None
    if not isinstance(job, dict) or not isinstance(job.get("token"), str):
        return None
    out = job.get("out")
    return job["token"], out if isinstance(out, str) else None


def _token_of(args: argparse.Namespace) -> str | None:
    if args.token is not None:
        raise TokenSourceError(
            "--token would show the join token to every local user (ps, /proc): write it to a "
            "file only you can read (chmod 600) and pass --token-file FILE, or --token-fd N"
        )
    return read_token(None, args.token_file, args.token_fd)


class TokenSourceError(ValueError):
    pass


def read_token(inline: str | None, path: str | None, fd: int | None) -> str | None:
    """The join token from exactly one of: an inherited pipe, a private file, the command line."""
    given = [x for x in (inline, path, fd) if x is not None]
    if len(given) > 1:
        raise TokenSourceError("give only one of --token, --token-file, --token-fd")
    if fd is not None:
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if sum(map(len, chunks)) > 65536:
                    raise TokenSourceError(f"--token-fd {fd}: more than 64 KiB")
        except OSError as exc:
            raise TokenSourceError(f"--token-fd {fd}: {exc.strerror}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
        return b"".join(chunks).decode("utf-8", errors="replace").strip()
    if path is not None:
        try:
            fd_file = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise TokenSourceError(f"--token-file {path}: {exc.strerror}") from exc
        with os.fdopen(fd_file, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & 0o077:
                raise TokenSourceError(
                    f"--token-file {path}: readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it"
                )
            return handle.read(65536).decode("utf-8", errors="replace").strip()
    if inline is not None:
        log.warning("the join token is on the command line, visible in the process table: use --token-file")
    return inline


def install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread / Windows
            pass


async def _record_udp(
    out: Path,
    lesson_id: str,
    title: str,
    tracks: Sequence[object],
    host: str,
    segment_seconds: float,
    duration: float | None,
) -> int:
    from recorder.core import RecordingSession
    from recorder.udp import UdpTrack, run_udp

    stop = asyncio.Event()
    install_stop_handlers(stop)
    if duration:
        asyncio.get_running_loop().call_later(duration, stop.set)
    session = RecordingSession(out, lesson_id, title, segment_seconds=segment_seconds)
    for spec in tracks:
        assert isinstance(spec, UdpTrack)
        session.add_classroom(spec.classroom_id, "lead" if spec.source == "teacher" else "remote")
    try:
        await run_udp(session, [t for t in tracks if isinstance(t, UdpTrack)], host, stop)
    except OSError as exc:
        print(f"classroom record: {exc}", file=sys.stderr)
        session.close()
        return 1
    manifest = session.close()
    print(f"recorded {len(manifest.tracks)} track(s), {manifest.duration_ms / 1000:.1f} s: {out}")
    return 0


def composite_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="classroom composite",
        description=(
            "Render a recording directory into one MP4 (H.264 + AAC): the teacher big, "
            "courseware beside, remote classrooms small; follows the spotlight events."
        ),
    )
    parser.add_argument("recording_dir", help="directory with manifest.json")
    parser.add_argument("--out", help="output file (default RECORDING_DIR/composite.mp4)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(list(argv))
    from recorder.composite import CompositeError, render_composite
    from recorder.manifest import ManifestError

    directory = Path(args.recording_dir)
    out = Path(args.out) if args.out else directory / "composite.mp4"
    try:
        render_composite(
            directory,
            out,
            width=args.width,
            height=args.height,
            fps=args.fps,
            progress=None if args.quiet else sys.stderr,
        )
    except (CompositeError, ManifestError, OSError) as exc:
        print(f"classroom composite: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(record_main(sys.argv[1:]))
