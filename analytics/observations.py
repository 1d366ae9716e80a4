"""Observation scores of one recorded lesson, for the term dashboard.

Observers' notes (issue #18: protocol message ``note``) are written into the recording's manifest
timeline as ``observation_note`` events (``t_ms``, ``author``, ``text``, ``dimension``, ``score``).
This is the one place the dashboard reads them: :func:`lesson_scores`. A note without a rubric
dimension or without a 1–5 score carries no score and is left out.
"""

from __future__ import annotations

import math
from pathlib import Path

from analytics.dashboard import Score
from recorder.manifest import read_manifest

NOTE_EVENT = "observation_note"
SCORE_RANGE = (1.0, 5.0)


def lesson_scores(recording_dir: Path) -> tuple[Score, ...]:
    """Every scored observation note in ``recording_dir/manifest.json`` (none when the manifest
    is missing; :class:`recorder.manifest.ManifestError` when it is unreadable)."""
    path = recording_dir / "manifest.json"
    if not path.is_file():
        return ()
    manifest = read_manifest(path)
    out: list[Score] = []
    for event in manifest.events:
        if event.type != NOTE_EVENT:
            continue
        dimension = event.extra.get("dimension")
        score = event.extra.get("score")
        if not isinstance(dimension, str) or not dimension.strip():
            continue
        if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
            continue
        if not SCORE_RANGE[0] <= score <= SCORE_RANGE[1]:
            continue
        author = event.extra.get("author")
        out.append(Score(dimension.strip()[:100], float(score), str(author)[:100] if author is not None else ""))
    return tuple(out)
