"""Who may join a lesson as its ``recorder``: only the recorder process this server launched.

A recorder token is signed like any join token, but it also carries a per-launch ``nonce`` that
the server remembers here (:meth:`RecorderAccess.grant`), bound to the lesson and, once the
process is started, to its pid (:meth:`RecorderAccess.bind`). A recorder ``join`` is admitted only
when (:meth:`RecorderAccess.admit`):

- the nonce is the lesson's current grant (a newer launch, or the lesson's end, revokes it);
- it was not used before (one join per launch: a copied token replayed later is refused);
- it is used within ``ttl_s`` of the launch;
- the WebSocket comes from a TCP socket owned by the launched process (Linux ``/proc``), so the
  token is of no use to another process even before the real recorder joined.

Every refusal raises :class:`~signaling.tokens.TokenError` with code ``recorder_refused``; so a
recorder that is admitted is always the supervised one, and only it may take the place of an
earlier recorder connection of the lesson.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from signaling.tokens import TokenClaims, TokenError

log = logging.getLogger(__name__)

REFUSED = "recorder_refused"


@dataclass
class RecorderGrant:
    lesson_id: str
    nonce: str
    issued: float  # time.monotonic()
    pid: int | None = None
    used: bool = False


def _ports(address: object) -> int | None:
    if isinstance(address, tuple | list) and len(address) >= 2 and isinstance(address[1], int):
        return address[1]
    return None


def _socket_inodes(local_port: int, remote_port: int, proc: Path = Path("/proc")) -> set[str]:
    """Inodes of the TCP sockets (v4 and v6) whose local/remote ports are these."""
    inodes: set[str] = set()
    want = (f"{local_port:04X}", f"{remote_port:04X}")
    for name in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if (local, remote) == want:
                inodes.add(fields[9])
    return inodes


def connection_owned_by(pid: int, peer: object, server: object, proc: Path = Path("/proc")) -> bool:
    """True if the client end of the TCP connection ``peer`` → ``server`` (addresses as the
    server's socket reports them) is an open file of process ``pid``."""
    peer_port, server_port = _ports(peer), _ports(server)
    if peer_port is None or server_port is None:
        return False
    inodes = _socket_inodes(peer_port, server_port, proc)
    if not inodes:
        return False
    links = {f"socket:[{inode}]" for inode in inodes}
    try:
        fds = os.listdir(proc / str(pid) / "fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(proc / str(pid) / "fd" / fd) in links:
                return True
        except OSError:
            continue
    return False


class RecorderAccess:
    """The server's memory of the recorder launches it made (one current grant per lesson)."""

    def __init__(self, ttl_s: float = 120.0, check_process: bool = True) -> None:
        self.ttl_s = ttl_s
        self.check_process = check_process
        self._grants: dict[str, RecorderGrant] = {}
        self.refused = 0

    def grant(self, lesson_id: str) -> str:
        """A new launch for ``lesson_id``: returns its nonce; any earlier grant is revoked."""
        nonce = secrets.token_urlsafe(24)
        self._grants[lesson_id] = RecorderGrant(lesson_id, nonce, time.monotonic())
        return nonce

    def bind(self, nonce: str, pid: int) -> None:
        """The launched process's pid: only its connections may use the grant."""
        for grant in self._grants.values():
            if hmac.compare_digest(grant.nonce, nonce):
                grant.pid = pid

    def revoke(self, lesson_id: str) -> None:
        """The lesson's recording ended (or its room closed): its recorder token is dead."""
        self._grants.pop(lesson_id, None)

    def granted(self, lesson_id: str) -> RecorderGrant | None:
        return self._grants.get(lesson_id)

    def _refuse(self, claims: TokenClaims, why: str) -> TokenError:
        self.refused += 1
        log.warning("recorder join for lesson %s refused: %s", claims.lesson_id, why)
        return TokenError(REFUSED, f"recorder token refused: {why}")

    def admit(self, claims: TokenClaims, peer: object = None, server: object = None) -> None:
        """Admit a recorder join or raise ``TokenError(recorder_refused)``; ``peer``/``server``
        are the WebSocket's TCP addresses (``peername``/``sockname`` of the server's socket)."""
        grant = self._grants.get(claims.lesson_id)
        if grant is None:
            raise self._refuse(claims, "no recorder was launched for this lesson (or its recording ended)")
        if not claims.nonce or not hmac.compare_digest(grant.nonce, claims.nonce):
            raise self._refuse(claims, "not the lesson's current recorder launch")
        if grant.used:
            raise self._refuse(claims, "this recorder launch has joined already")
        if time.monotonic() - grant.issued > self.ttl_s:
            raise self._refuse(claims, "the recorder launch is too old")
        if self.check_process:
            if grant.pid is None:
                raise self._refuse(claims, "the recorder process is not started yet")
            if not connection_owned_by(grant.pid, peer, server):
                raise self._refuse(claims, f"the connection is not the launched recorder's (pid {grant.pid})")
        grant.used = True
