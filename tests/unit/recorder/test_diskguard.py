"""recorder/diskguard.py: the free-disk guard's decision, with injected readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.diskguard import DiskGuard, DiskSpace, format_bytes, read_disk_space

GiB = 1024**3


class Volume:
    def __init__(self, free: int, total: int = 100 * GiB) -> None:
        self.free, self.total = free, total
        self.fail: OSError | None = None

    def __call__(self, path: Path) -> DiskSpace:
        if self.fail is not None:
            raise self.fail
        return DiskSpace(self.free, self.total)


def test_low_under_the_byte_threshold_or_the_percentage() -> None:
    vol = Volume(free=10 * GiB)
    guard = DiskGuard(Path("/x"), min_free_bytes=2 * GiB, min_free_percent=5.0, reader=vol)
    assert guard.threshold(DiskSpace(0, 100 * GiB)) == 5 * GiB  # 5 % of 100 GiB beats 2 GiB
    assert not guard.check().low
    vol.free = 4 * GiB  # over 2 GiB, under 5 %
    assert guard.check().low and guard.tripped and guard.trips == 1
    small = DiskGuard(Path("/x"), min_free_bytes=2 * GiB, min_free_percent=5.0, reader=Volume(1 * GiB, 10 * GiB))
    assert small.check().low  # 10 % free, but under 2 GiB


def test_resume_needs_a_margin_above_the_threshold() -> None:
    vol = Volume(free=1 * GiB)
    guard = DiskGuard(Path("/x"), min_free_bytes=2 * GiB, min_free_percent=0.0, reader=vol)
    assert guard.check().low
    vol.free = 2 * GiB + 1  # just over: still held (hysteresis)
    assert guard.check().low and guard.trips == 1
    vol.free = int(2.3 * GiB)
    assert not guard.check().low and not guard.tripped
    vol.free = 2 * GiB + 1  # from "ok", just over the threshold is fine
    assert not guard.check().low


def test_an_unreadable_volume_counts_as_low() -> None:
    vol = Volume(free=50 * GiB)
    vol.fail = OSError(5, "Input/output error")
    reading = DiskGuard(Path("/x"), reader=vol).check()
    assert reading.low and reading.space is None and "Input/output error" in reading.describe()


def test_zero_thresholds_turn_the_guard_off() -> None:
    assert not DiskGuard(Path("/x"), 0, 0.0, reader=Volume(free=0)).check().low


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError):
        DiskGuard(Path("/x"), min_free_bytes=-1)
    with pytest.raises(ValueError):
        DiskGuard(Path("/x"), min_free_percent=100.0)


def test_real_statvfs_of_a_path_not_created_yet(tmp_path: Path) -> None:
    space = read_disk_space(tmp_path / "recordings" / "not-yet")
    assert 0 < space.free_bytes <= space.total_bytes


def test_describe_and_format() -> None:
    reading = DiskGuard(Path("/x"), 2 * GiB, 0.0, reader=Volume(free=GiB // 2, total=4 * GiB)).check()
    assert reading.describe() == "512.0 MiB free of 4.0 GiB (12.5 %), the guard needs 2.0 GiB"
    assert format_bytes(512) == "512 B"
