"""The live recorder (phase 2): joins a lesson as the ``recorder`` participant."""

from __future__ import annotations

from pathlib import Path


async def run_worker(
    url: str,
    token: str,
    data_dir: Path,
    out: Path | None = None,
    segment_seconds: float = 2.0,
    duration: float | None = None,
) -> int:
    raise NotImplementedError("the live recorder is not written yet")
