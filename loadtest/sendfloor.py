"""The floor under the SFU's fan-out: what the kernel alone costs per forwarded datagram.

``python -m loadtest.sendfloor --subscribers 200 --seconds 10 [--json floor.json]``

A bare C loop (``loadtest/sendfloor.c``, built on first use with ``cc -O2`` into
``~/.cache/classroom/``) sends what ``python -m loadtest.fanout`` makes the SFU send: every
1/``--rate`` s one packet, copied to every subscriber with a header of its own, same size, to
``--subscribers`` receiving sockets on loopback (a second process of the same C file, pinned to
the other core, reading with ``recvmmsg``). No SRTP, no Python, no RTP logic: the copy into the
kernel and the kernel's send path (on loopback the receiver's kernel path too, billed to the
sender, as in the fan-out benchmark). It runs once per way of sending:

* ``sendmmsg`` on one unconnected socket, ``--batch`` copies per call (the SFU on its shared media
  port, ``media.udp_port``; several batch sizes with ``--batch 64,16,4``);
* ``send`` on a connected socket per subscriber (the SFU with ``media.udp_mux: false``);
* ``sendto`` on one unconnected socket, one call per copy.

The figure is the sender's CPU (utime+stime, ``getrusage``) over the window ÷ datagrams sent:
µs per datagram, to set beside the fan-out benchmark's "SFU CPU µs / forwarded packet".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("sendfloor.c")


def build(cache: Path | None = None) -> Path:
    """The compiled ``sendfloor`` for this source (rebuilt when the source changes)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "classroom"
    binary = cache / f"sendfloor-{digest}"
    if binary.exists():
        return binary
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        raise SystemExit("loadtest.sendfloor: needs a C compiler (cc or gcc) to build loadtest/sendfloor.c")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = binary.with_suffix(".tmp")
    subprocess.run([compiler, "-O2", "-std=c11", "-Wall", "-o", str(tmp), str(SOURCE)], check=True)
    tmp.replace(binary)
    return binary


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    if cpu is not None and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def run(args: argparse.Namespace) -> dict[str, Any]:
    binary = build()
    receiver = subprocess.Popen(pinned([str(binary), "recv", str(args.subscribers)], args.bot_cpu),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        ports = receiver.stdout.readline().split()
        if len(ports) != args.subscribers:
            raise SystemExit("loadtest.sendfloor: the receiver did not start")
        ways = [("sendmmsg", int(b)) for b in str(args.batch).split(",") if b.strip()]
        ways += [("send", 1), ("sendto", 1)]
        rows = []
        for mode, batch in ways:
            out = subprocess.run(
                pinned([str(binary), "send", mode, str(batch), str(args.size), str(args.rate), str(args.seconds),
                        *ports], args.sfu_cpu),
                check=True, capture_output=True, text=True)
            row = json.loads(out.stdout)
            n = row["datagrams"] or 1
            row["us_per_datagram"] = round(row["cpu_s"] * 1e6 / n, 3)
            row["datagrams_per_syscall"] = round(row["datagrams"] / max(1, row["syscalls"]), 1)
            rows.append(row)
    finally:
        receiver.kill()
        receiver.wait(5)
    return {"subscribers": args.subscribers, "size": args.size, "rate": args.rate, "seconds": args.seconds,
            "sender_cpu": args.sfu_cpu, "receiver_cpu": args.bot_cpu,
            "loadavg_1min": round(os.getloadavg()[0], 2), "runs": rows}


def print_table(r: dict[str, Any]) -> None:
    print(f"Send floor: {r['size']} B datagrams, {r['rate']:g} packets/s × {r['subscribers']} subscribers, "
          f"{r['seconds']:g} s each (machine load average {r['loadavg_1min']})")
    print(f"  {'way':<22} {'µs / datagram':>14} {'datagrams / syscall':>20} {'refused':>8}")
    for row in r["runs"]:
        way = f"{row['mode']} (batch {row['batch']})" if row["mode"] == "sendmmsg" else row["mode"]
        print(f"  {way:<22} {row['us_per_datagram']:>14} {row['datagrams_per_syscall']:>20} {row['refused']:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.sendfloor", description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="per way of sending")
    parser.add_argument("--rate", type=float, default=237.0,
                        help="packets per second (the fan-out benchmark's stream: 237)")
    parser.add_argument("--size", type=int, default=1000,
                        help="bytes per datagram (about the fan-out stream's mean SRTP datagram)")
    parser.add_argument("--batch", default="64,16",
                        help="copies per sendmmsg, comma-separated for several runs (the SFU uses 64)")
    parser.add_argument("--sfu-cpu", type=int, default=0, help="core of the sender (as the SFU's)")
    parser.add_argument("--bot-cpu", type=int, default=1, help="core of the receivers (as the bots')")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    if args.no_pin:
        args.sfu_cpu = args.bot_cpu = None
    result = run(args)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
