"""Nothing the server writes is readable by other local users (docs/security.md).

Two layers: the process umask is 0o077 from server start (every file created afterwards, by
the server or by the recorder and analysis processes it starts, is 0600 / 0700), and the files
that hold secrets are created with an explicit 0600 whatever the umask. A data dir left by an
older version is tightened on start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
# Files directly in the data dir that hold secrets or the schedule.
PRIVATE_FILES = (
    "schedule.sqlite3",
    "schedule.sqlite3-wal",
    "schedule.sqlite3-shm",
    "schedule.sqlite3-journal",
    "token_secret",
    "recording_secret",
    "demo-links.txt",
    "admin-key.txt",
)


def use_private_umask() -> int:
    """Set the process umask to 0o077; returns the previous one."""
    return os.umask(PRIVATE_UMASK)


def _tighten(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink() or current & 0o077 == 0:
            return
        os.chmod(path, current & ~0o077 & mode)
        log.info("%s was readable by others (%o): now %o", path, current, current & ~0o077 & mode)
    except FileNotFoundError:
        pass


def secure_data_dir(data_dir: Path) -> None:
    """Create the data dir 0700 (or make it so), and take group/other access away from the
    files in it that hold secrets and from the recordings directory."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(data_dir, 0o700)
    for name in PRIVATE_FILES:
        _tighten(data_dir / name, 0o600)
    recordings = data_dir / "recordings"
    if recordings.is_dir():
        _tighten(recordings, 0o700)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a 0600 file (also when it existed with another mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1
            handle.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
