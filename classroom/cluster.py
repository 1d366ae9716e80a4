"""``classroom cluster --nodes N``: several node processes on one machine (one per core by
default), coordinated through Redis, behind one public port.

* Redis: ``--redis URL``, or a local ``redis-server`` this command starts (loopback, a free port,
  no persistence, a random password in a 0600 config file in ``<data dir>/redis/``; the nodes get
  the password through their environment, never a command line).
* Nodes: ``classroom serve --redis … --node-id node-<i> --port <own port> --shared-port <port>``;
  node i's media port is ``media.udp_port + i - 1`` (7882, 7883, … by default; 0: the kernel picks).
  Every node listens on the public ``--port`` with SO_REUSEPORT (the kernel spreads connections;
  when a node dies its share goes to the others at once) and on its own port (its node URL).
  They share the data dir: schedule database (SQLite, WAL), token secret, recordings.
* Supervision: a node that exits is started again (same id and ports; after 1 s, doubling up to
  30 s while it keeps failing within 10 s of its start); so is the local redis-server.
  Ctrl-C (or SIGTERM) stops every node, then Redis.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STABLE_S = 10.0  # a node up this long is healthy again: its restart delay starts over


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Supervised:
    """One child process and how to start it again."""

    name: str
    args: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay_s: float = RESTART_MIN_S
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, env=self.env)
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> str | None:
        """Start it again when it is due; the line to print when something happened."""
        if self.proc is None:
            return None
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restarts += 1
                self.start()
                return f"classroom cluster: {self.name} started again (restart {self.restarts})"
            return None
        code = self.proc.poll()
        if code is None:
            if now - self.started_at > STABLE_S:
                self.delay_s = RESTART_MIN_S
            return None
        if now - self.started_at >= STABLE_S:
            self.delay_s = RESTART_MIN_S  # it had been up a while: a fresh failure
        elif self.restarts:
            self.delay_s = min(RESTART_MAX_S, self.delay_s * 2)
        self.restart_at = now + self.delay_s
        return f"classroom cluster: {self.name} exited with status {code}; starting it again in {self.delay_s:.0f} s"

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class LocalRedis:
    """The redis-server this command starts when no ``--redis`` is given."""

    directory: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: secrets.token_hex(24))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def supervised(self) -> Supervised:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("classroom cluster: redis-server not found: apt-get install redis-server, "
                             "or give --redis redis://HOST:PORT/DB")
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        conf = self.directory / "redis.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:  # the password in a 0600 file, not on redis-server's command line
            f.write(f"bind 127.0.0.1\nport {self.port}\nprotected-mode yes\nsave \"\"\nappendonly no\n"
                    f"dir {self.directory}\nloglevel warning\nrequirepass {self.password}\n")
        return Supervised("redis-server", [exe, str(conf)], dict(os.environ))

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                    if b"PONG" in s.recv(64):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"classroom cluster: the local redis-server did not answer on port {self.port}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classroom cluster",
                                description="N node processes on this machine behind one port, coordinated "
                                            "through Redis (docs/operations.md, Cluster).")  # fmt: skip
    p.add_argument("--nodes", type=int, default=os.cpu_count() or 1, help="node processes (default: one per core)")
    p.add_argument("--redis", metavar="URL", help="an existing Redis (default: start a local redis-server)")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="the public port every node shares (default 8080)")
    p.add_argument("--data-dir", default=None, help="shared by the nodes: database, secrets, recordings")
    p.add_argument("--config", help="YAML config file (every node reads it)")
    p.add_argument("--no-demo", action="store_true", help="do not create the demo lesson")
    p.add_argument("--database", metavar="URL", help="schedule database (as classroom serve --database)")
    p.add_argument("--tls", choices=("auto", "on", "off"))
    p.add_argument("--tls-cert", metavar="FILE")
    p.add_argument("--tls-key", metavar="FILE")
    p.add_argument("--public-url", metavar="URL")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--log-format", choices=("text", "json"))
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.nodes < 1:
        print("classroom cluster: --nodes must be at least 1", file=sys.stderr)
        return 2
    from classroom.config import ConfigError, load_config
    from classroom.filemodes import secure_data_dir, use_private_umask
    from signaling.tokens import TokenSigner

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"classroom cluster: {exc}", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    if port == 0:
        port = free_port(host)
    data_dir = Path(args.data_dir or config.server.data_dir).resolve()
    use_private_umask()
    secure_data_dir(data_dir)
    # the token secret once, before the nodes start (they all read it)
    TokenSigner.from_data_dir(data_dir, os.environ.get("CLASSROOM_TOKEN_SECRET"),
                              os.environ.get("CLASSROOM_TOKEN_SECRET_FILE"))
    children: list[Supervised] = []
    env = dict(os.environ)
    local_redis: LocalRedis | None = None
    if args.redis:
        redis_url = args.redis
    else:
        local_redis = LocalRedis(data_dir / "redis")
        redis_url = local_redis.url
        env["CLASSROOM_REDIS_PASSWORD"] = local_redis.password
        children.append(local_redis.supervised())
    passthrough: list[str] = ["--data-dir", str(data_dir), "--host", host, "--shared-port", str(port),
                              "--redis", redis_url, "--log-level", args.log_level]  # fmt: skip
    for flag in ("config", "database", "tls", "tls_cert", "tls_key", "public_url", "log_format"):
        value = getattr(args, flag)
        if value:
            passthrough += [f"--{flag.replace('_', '-')}", value]
    if args.no_demo:
        passthrough.append("--no-demo")
    node_ports = [free_port(host) for _ in range(args.nodes)]
    for i, node_port in enumerate(node_ports):
        node_env = dict(env)
        # every node its own media port (media.udp_port): udp_port + i, or one the kernel picks
        node_env["CLASSROOM_MEDIA_UDP_PORT"] = str(config.media.udp_port + i if config.media.udp_port else 0)
        if i > 0:
            node_env["CLASSROOM_SERVER_BANNER"] = "false"  # the first node prints the links
        children.append(Supervised(
            f"node-{i + 1}",
            [sys.executable, "-m", "classroom.cli", "serve", "--port", str(node_port),
             "--node-id", f"node-{i + 1}", *passthrough],
            node_env,
        ))  # fmt: skip

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if local_redis is not None:
            children[0].start()
            local_redis.wait_ready()
        for child in children:
            if child.proc is None:
                child.start()
        scheme = "https" if args.tls == "on" or args.tls_cert else "http"
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        print(f"classroom cluster: {args.nodes} node(s) behind {scheme}://{shown}:{port} (SO_REUSEPORT); "
              f"Redis {'local, port ' + str(local_redis.port) if local_redis else 'given'}")
        for i, node_port in enumerate(node_ports):
            media = f"  media {config.media.udp_port + i}/udp" if config.media.udp_port and config.media.udp_mux else ""
            print(f"  node-{i + 1}  {scheme}://{shown}:{node_port}{media}")
        sys.stdout.flush()
        while not stopping:
            time.sleep(0.2)
            if stopping:  # Ctrl-C reaches the nodes too: their exit is not a crash
                break
            now = time.monotonic()
            for child in children:
                line = child.check(now)
                if line:
                    print(line, flush=True)
    finally:
        print("classroom cluster: stopping", flush=True)
        nodes = [c for c in children if c.name != "redis-server"]
        for child in nodes:
            child.terminate()
        for child in nodes:
            child.wait(15.0)
        for child in children:
            if child.name == "redis-server":
                child.terminate()
                child.wait(5.0)
    return 0
