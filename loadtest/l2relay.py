"""A user-space L2 relay that delays every Ethernet frame: the delay/jitter stage of
:mod:`loadtest.netem` (this kernel has no netem).

It runs in its own process inside the middle namespace of a link, with two raw ``AF_PACKET``
sockets, one on each of the namespace's devices (``--a`` toward the host, ``--b`` toward the
classroom). Every frame that arrives on one device is sent out of the other ``delay`` ms +
U(0, ``jitter``) ms later. Within one direction frames keep their order (a frame never leaves
before the one that arrived ahead of it), as on a real path where jitter comes from queues.

Bounded: at most ``--max-frames`` frames are held per direction (beyond that a frame is dropped
and counted, like a full router queue), frames longer than 64 KiB are not read. Controlled over
stdin, one command a line: ``set DELAY_MS JITTER_MS``; end of input (the parent closed the pipe
or died) ends the relay, which then prints its counters to stderr.

    ip netns exec NS python -m loadtest.l2relay --a DEV_A --b DEV_B --delay 45 --jitter 10
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAX_FRAME = 65536


@dataclass
class DelayLine:
    """The pure part: when does each frame of one direction leave? (a fake clock in tests)"""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    max_frames: int = 20000
    rand: Callable[[], float] = random.random
    held: list[tuple[float, int, bytes]] = field(default_factory=list)  # heap of (due, n, frame)
    last_due: float = 0.0
    seq: int = 0
    dropped: int = 0
    relayed: int = 0

    def set(self, delay_ms: float, jitter_ms: float) -> None:
        if delay_ms < 0 or jitter_ms < 0:
            raise ValueError("delay and jitter must be >= 0")
        self.delay_ms, self.jitter_ms = delay_ms, jitter_ms

    def push(self, frame: bytes, now: float) -> float | None:
        """Hold ``frame`` (arrived at ``now``, seconds); returns when it is due, or ``None`` if
        the line is full and the frame was dropped."""
        if len(self.held) >= self.max_frames:
            self.dropped += 1
            return None
        due = now + (self.delay_ms + self.jitter_ms * self.rand()) / 1000.0
        due = max(due, self.last_due)  # keep the order within a direction
        self.last_due = due
        self.seq += 1
        heapq.heappush(self.held, (due, self.seq, frame))
        return due

    def pop_due(self, now: float) -> list[bytes]:
        """The frames due at ``now``, in order."""
        out = []
        while self.held and self.held[0][0] <= now:
            out.append(heapq.heappop(self.held)[2])
        self.relayed += len(out)
        return out

    def next_due(self) -> float | None:
        return self.held[0][0] if self.held else None


def parse_command(line: str) -> tuple[float, float]:
    """``set DELAY_MS JITTER_MS`` → (delay, jitter); ``ValueError`` on anything else."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "set":
        raise ValueError(f"expected 'set DELAY_MS JITTER_MS', got {line.strip()!r}")
    delay, jitter = float(parts[1]), float(parts[2])
    if delay < 0 or jitter < 0 or delay > 10_000 or jitter > 10_000:
        raise ValueError(f"delay/jitter out of range: {line.strip()!r}")
    return delay, jitter


def _raw_socket(dev: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.bind((dev, 0))
    s.setblocking(False)
    return s


def _take_priority() -> str:
    """Run ahead of everything else on the machine: the relay stands in for a network, which
    does not slow down when the browsers and the server under test fill the CPU (on this 2-core
    machine a starved relay added its own queueing delay, which a send-side estimator rightly
    took for congestion). SCHED_FIFO when allowed (it sleeps in ``select`` between frames, so it
    cannot hog a core; the kernel's RT throttling bounds it anyway), else the lowest nice value."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return "SCHED_FIFO 10"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal priority"


def relay(dev_a: str, dev_b: str, delay_ms: float, jitter_ms: float, max_frames: int,
          realtime: bool = True) -> int:
    if realtime:
        print(f"l2relay: running at {_take_priority()}", file=sys.stderr)
    sock_a, sock_b = _raw_socket(dev_a), _raw_socket(dev_b)
    # direction a→b is held in line_ab and sent on sock_b; b→a in line_ba, sent on sock_a
    line_ab = DelayLine(delay_ms, jitter_ms, max_frames)
    line_ba = DelayLine(delay_ms, jitter_ms, max_frames)
    routes = {sock_a.fileno(): (sock_a, line_ab), sock_b.fileno(): (sock_b, line_ba)}
    out_of = {id(line_ab): sock_b, id(line_ba): sock_a}
    stdin_fd = sys.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    pending = b""
    send_errors = 0
    running = True
    while running:
        now = time.monotonic()
        for line in (line_ab, line_ba):
            for frame in line.pop_due(now):
                try:
                    out_of[id(line)].send(frame)
                except OSError:
                    send_errors += 1
        dues = [d for d in (line_ab.next_due(), line_ba.next_due()) if d is not None]
        timeout = max(0.0, min(dues) - time.monotonic()) if dues else 0.5
        readable, _, _ = select.select([sock_a.fileno(), sock_b.fileno(), stdin_fd], [], [],
                                       timeout)
        now = time.monotonic()
        for r in readable:
            if r == stdin_fd:
                try:
                    chunk = os.read(stdin_fd, 4096)
                except BlockingIOError:
                    continue
                if not chunk:
                    running = False
                    break
                pending += chunk
                while b"\n" in pending:
                    raw, pending = pending.split(b"\n", 1)
                    try:
                        d, j = parse_command(raw.decode("utf-8", "replace"))
                    except ValueError as exc:
                        print(f"l2relay: {exc}", file=sys.stderr)
                        continue
                    line_ab.set(d, j)
                    line_ba.set(d, j)
                continue
            sock, dline = routes[r]
            for _ in range(64):  # drain a burst, bounded
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # our own send on this device
                dline.push(frame, now)
    print(f"l2relay: relayed a->b {line_ab.relayed} b->a {line_ba.relayed}, dropped "
          f"{line_ab.dropped + line_ba.dropped} (queue full), send errors {send_errors}",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.l2relay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", required=True, help="device toward the host")
    parser.add_argument("--b", required=True, help="device toward the classroom")
    parser.add_argument("--delay", type=float, default=0.0, help="ms each way")
    parser.add_argument("--jitter", type=float, default=0.0, help="ms, uniform, added")
    parser.add_argument("--max-frames", type=int, default=20000, help="held per direction")
    parser.add_argument("--no-realtime", action="store_true",
                        help="keep normal scheduling (default: SCHED_FIFO, else nice -10)")
    args = parser.parse_args(argv)
    return relay(args.a, args.b, args.delay, args.jitter, args.max_frames,
                 realtime=not args.no_realtime)


if __name__ == "__main__":
    sys.exit(main())
