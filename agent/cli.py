"""``classroom agent``: command-line entry of the unattended classroom agent."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from agent.config import AgentConfig, DeviceKeyError, load_key
from agent.display import DisplayError, parse_size
from agent.sources import SourceSpec

log = logging.getLogger("agent")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classroom agent", allow_abbrev=False,
                                description="Join this classroom's scheduled lessons by itself (room hardware).")
    p.add_argument("--server", required=True, help="the server's base URL, e.g. https://classroom.county.edu.cn")
    p.add_argument("--device-key-file", metavar="PATH",
                   help="a file (mode 0600) holding the device credential ckd_...; else env CLASSROOM_DEVICE_KEY")
    p.add_argument("--device-key", metavar="KEY", help=argparse.SUPPRESS)  # refused: secrets never on a command line
    p.add_argument("--lead-time", type=float, default=60.0, metavar="S",
                   help="join this many seconds before a lesson's start (default 60)")
    p.add_argument("--poll-interval", type=float, default=30.0, metavar="S",
                   help="ask the schedule at least this often (default 30)")
    p.add_argument("--test-source", action="store_true", help="publish a synthetic moving picture and a tone")
    p.add_argument("--camera", metavar="DEV", help="V4L2 camera, e.g. /dev/video0")
    p.add_argument("--mic", metavar="DEV", help="ALSA capture device, e.g. default or hw:1,0")
    p.add_argument("--size", default="640x360", help="capture/test picture size WxH (default 640x360)")
    p.add_argument("--no-display", action="store_true",
                   help="count decoded frames instead of showing and playing them (no picture, no sound)")
    p.add_argument("--display-device", default="/dev/fb0", metavar="PATH",
                   help="the framebuffer to show the received video on (default /dev/fb0: the HDMI output)")
    p.add_argument("--display-size", metavar="WxH",
                   help="the framebuffer's size, when it cannot be read from /sys/class/graphics")
    p.add_argument("--speaker", default="default", metavar="DEV",
                   help="the ALSA playback device for the received sound (default: default; e.g. hw:0,3 for HDMI)")
    p.add_argument("--no-sound", action="store_true", help="show the received video but do not play its sound")
    p.add_argument("--hand-port", type=int, default=8765,
                   help="local hand-raise endpoint on 127.0.0.1 (POST /hand); 0 = any free port, -1 = off")
    p.add_argument("--status-file", metavar="PATH", help="write the agent's status (JSON) here every second")
    p.add_argument("--log-interval", type=float, default=5.0, metavar="S", help="log frame counts this often")
    p.add_argument("--health-interval", type=float, default=5.0, metavar="S",
                   help="report health to the server this often (default 5; 0 = never)")
    p.add_argument("--ice-address", action="append", default=[], metavar="ADDR",
                   help="gather ICE host candidates only on this address (repeatable; default: all)")
    p.add_argument("--log-level", default="INFO")
    return p


def build_config(argv: Sequence[str], env: dict[str, str] | None = None) -> AgentConfig:
    """The config of a command line; SystemExit(2) with a clear message on a bad one."""
    p = parser()
    args = p.parse_args(list(argv))
    if args.device_key is not None:
        p.error("--device-key is refused: a secret on the command line is visible to every user (ps, "
                "/proc, shell history). Put the credential in a file only this user can read "
                "(chmod 600) and give --device-key-file PATH, or set CLASSROOM_DEVICE_KEY.")
    try:
        key = load_key(args.device_key_file, env)
    except DeviceKeyError as exc:
        p.error(str(exc))
    if not args.server.startswith(("http://", "https://")):
        p.error("--server must be an http:// or https:// URL")
    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        p.error("--size must be WIDTHxHEIGHT, e.g. 640x360")
    display_size = None
    if args.display_size:
        try:
            display_size = parse_size(args.display_size)
        except DisplayError as exc:
            p.error(f"--display-size: {exc}")
    if not (args.test_source or args.camera or args.mic):
        p.error("nothing to publish: give --camera and/or --mic, or --test-source")
    return AgentConfig(
        server=args.server, device_key=key, lead_time_s=max(args.lead_time, 0.0),
        poll_s=max(args.poll_interval, 1.0),
        sources=SourceSpec(test_source=args.test_source, camera=args.camera, mic=args.mic, width=w, height=h),
        display=not args.no_display, display_device=args.display_device, display_size=display_size,
        sound=not (args.no_display or args.no_sound), speaker_device=args.speaker,
        hand_port=args.hand_port, status_file=args.status_file,
        log_interval_s=max(args.log_interval, 1.0), health_interval_s=max(args.health_interval, 0.0),
        ice_addresses=list(args.ice_address),
    )


def main(argv: Sequence[str]) -> int:
    cfg = build_config(argv, dict(os.environ))
    level = parser().parse_args(list(argv)).log_level.upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if cfg.ice_addresses:
        from sfu.glue import configure_ice  # the one place that knows aioice's host-address hook

        configure_ice(cfg.ice_addresses)
    from agent.runner import Agent

    try:
        asyncio.run(Agent(cfg).run())
    except KeyboardInterrupt:
        return 0
    return 0
