"""The free-disk guard: is there room on the recordings volume to go on recording?

Pure decision logic plus one reader (``statvfs``). The server (classroom/recording.py) asks
:meth:`DiskGuard.check` before it starts a recorder and every few seconds while any runs; when
the answer is "low" it stops the recorders cleanly (SIGTERM: files closed, manifest finalized)
long before the disk is full. The recorder's own "no space left on device" handling
(``EXIT_DISK_FULL``, docs/recording.md "Disk full") stays the last line of defence for a disk
another program fills faster than the guard looks.

Low means: free space under ``min_free_bytes``, or under ``min_free_percent`` of the volume.
Recording resumes only once free space is ``resume_margin`` (10 %) above the threshold, so a
volume hovering at the limit does not start and stop recorders every check.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskSpace:
    free_bytes: int  # available to this (unprivileged-style) user: f_bavail
    total_bytes: int

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes > 0 else 0.0


def read_disk_space(path: Path) -> DiskSpace:
    """Free and total bytes of the filesystem holding ``path`` (its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    st = os.statvfs(probe)
    return DiskSpace(free_bytes=st.f_bavail * st.f_frsize, total_bytes=st.f_blocks * st.f_frsize)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class GuardReading:
    """One look at the volume: what was measured, and whether recording may go on."""

    space: DiskSpace | None  # None: the volume could not be read (counted as low)
    low: bool
    threshold_bytes: int
    error: str = ""

    def describe(self) -> str:
        if self.space is None:
            return f"free space unknown ({self.error})"
        return (f"{format_bytes(self.space.free_bytes)} free of {format_bytes(self.space.total_bytes)} "
                f"({self.space.free_percent:.1f} %), the guard needs {format_bytes(self.threshold_bytes)}")


@dataclass
class DiskGuard:
    path: Path
    min_free_bytes: int = 2 * 1024**3
    min_free_percent: float = 5.0
    resume_margin: float = 0.10
    reader: Callable[[Path], DiskSpace] = read_disk_space
    tripped: bool = False  # True from a low reading until one with room to spare
    checks: int = 0
    trips: int = 0  # times the guard went from ok to low
    last: GuardReading | None = None

    def __post_init__(self) -> None:
        if self.min_free_bytes < 0 or not 0.0 <= self.min_free_percent < 100.0:
            raise ValueError("min_free_bytes must be >= 0 and min_free_percent in [0, 100)")

    def threshold(self, space: DiskSpace) -> int:
        """The free bytes under which recording stops on this volume."""
        return max(self.min_free_bytes, int(space.total_bytes * self.min_free_percent / 100.0))

    def check(self) -> GuardReading:
        """Read the volume and update :attr:`tripped` (with hysteresis on the way back up)."""
        self.checks += 1
        try:
            space = self.reader(self.path)
        except OSError as exc:
            reading = GuardReading(None, True, self.min_free_bytes, error=str(exc))
        else:
            threshold = self.threshold(space)
            needed = int(threshold * (1.0 + self.resume_margin)) if self.tripped else threshold
            reading = GuardReading(space, space.free_bytes < needed, threshold)
        if reading.low and not self.tripped:
            self.trips += 1
        self.tripped = reading.low
        self.last = reading
        return reading
