"""Synthetic lessons with known speech timelines, built once per test session.

Speech is espeak-ng (one voice per speaker), mixed with background noise and with attenuated,
delayed copies of the other speakers on every microphone (same-room pickup at the lead
classroom, loudspeaker pickup in the remote classrooms).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from analytics import synth


@dataclass
class Lesson:
    kind: str
    directory: Path
    duration_s: float
    truth: dict[str, list[tuple[float, float]]]

    def copy_to(self, target: Path) -> Path:
        shutil.copytree(self.directory, target)
        return target

    def manifest(self, directory: Path | None = None) -> dict[str, object]:
        return json.loads(((directory or self.directory) / "manifest.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def _clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """espeak-ng clips are generated once per session (in a session temp dir)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CLASSROOM_ANALYTICS_CACHE", str(tmp_path_factory.mktemp("clips")))
    yield
    mp.undo()


def build(
    tmp_path_factory: pytest.TempPathFactory,
    kind: str,
    duration_s: float,
    n_remote: int,
    file_ext: str = "wav",
    seed: int = 7,
) -> Lesson:
    spec = synth.standard_lesson(f"{kind}-{file_ext}", kind, duration_s, n_remote, file_ext, seed)
    directory = tmp_path_factory.mktemp(f"lesson-{kind}-{file_ext}")
    # 16 kHz input keeps the Opus encoding quick; the benchmark encodes 48 kHz input
    truth = synth.build_lesson(spec, directory, rate=16000)
    return Lesson(kind, directory, duration_s, truth)


@pytest.fixture(scope="session")
def lecture(tmp_path_factory: pytest.TempPathFactory) -> Lesson:
    return build(tmp_path_factory, "lecture", 330.0, 2, seed=11)


@pytest.fixture(scope="session")
def dialogue(tmp_path_factory: pytest.TempPathFactory) -> Lesson:
    return build(tmp_path_factory, "dialogue", 330.0, 2, seed=12)


@pytest.fixture(scope="session")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Lesson:
    return build(tmp_path_factory, "practice", 330.0, 2, seed=13)


@pytest.fixture(scope="session")
def opus_lesson(tmp_path_factory: pytest.TempPathFactory) -> Lesson:
    """Opus in WebM (teacher) and Ogg (remote classroom) next to a WAV track."""
    spec = synth.standard_lesson("dialogue-opus", "dialogue", 150.0, 1, "wav", seed=14)
    spec.tracks[0].file_ext = "webm"
    spec.tracks[2].file_ext = "ogg"
    directory = tmp_path_factory.mktemp("lesson-opus")
    truth = synth.build_lesson(spec, directory, rate=16000, opus_complexity=3)
    return Lesson("dialogue", directory, 150.0, truth)
