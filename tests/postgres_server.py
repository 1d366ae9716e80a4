"""A real PostgreSQL for tests: Debian's ``postgresql`` package (tests/apt-packages.txt), a
throw-away cluster in a temp dir, on 127.0.0.1 and a free port, with password (SCRAM) auth.

initdb and postgres refuse to run as root: as root the cluster belongs to an unprivileged user
(``nobody``) and its processes run as that user; as anyone else they run as the caller.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_USER = "classroom"


def pg_bindir() -> Path:
    """The newest installed server's bin directory (e.g. /usr/lib/postgresql/15/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql (tests/apt-packages.txt)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    base: Path
    port: int
    password: str
    run_as: str | None  # the unprivileged user when started by root

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, dbname: str = "postgres") -> str:
        """A URL without the password (it is given apart, as in production)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(pg_bindir() / args[0]), *args[1:]],
            user=self.run_as,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
        )

    @classmethod
    def start(cls) -> PostgresServer:
        run_as = "nobody" if os.geteuid() == 0 else None
        base = Path(tempfile.mkdtemp(prefix="classroom-pg-"))
        os.chmod(base, 0o700)
        if run_as is not None:
            pw = pwd.getpwnam(run_as)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        password = secrets.token_hex(16)
        server = cls(base, _free_port(), password, run_as)
        pwfile = base / "initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if run_as is not None:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            server._run("initdb", "-D", str(server.data), "-U", PG_USER, "--auth=scram-sha-256",
                        f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-sync")
            pwfile.unlink()
            options = (f"-p {server.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
            server._run("pg_ctl", "-D", str(server.data), "-o", options, "-l", str(base / "server.log"),
                        "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as exc:
            log = (base / "server.log").read_text(errors="replace") if (base / "server.log").exists() else ""
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc
        return server

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (no password in it)."""
        import psycopg

        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
