"""Fuzzing the recording readers: ``classroom record --repair``, ``classroom analyze`` and
``classroom composite`` on copies of a real recording (docs/recording-format.md) with truncated,
corrupted, missing or swapped segment and track files and broken manifests (wrong types, missing
and unknown fields, hostile paths, absurd numbers, invalid JSON and UTF-8). Each command must
succeed or exit non-zero with a clear one-line message — never a Python traceback.

The commands run in-process (``classroom.cli.main``: anything it raises instead of returning is
the defect) and, for the first inputs of each command, as real subprocesses too."""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from classroom.cli import main as classroom_main
from tests.fuzz.harness import SEED, budget, report
from tests.fuzz.mutate import INTERESTING_INTS, INTERESTING_TEXT, mutate_bytes, wild_value
from tests.integration.recorder.media import record_short_lesson

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = tmp_path_factory.mktemp("seed") / "rec"
    record_short_lesson(rec, "fuzz-lesson", duration=4.0)
    return rec


def break_manifest(rng: random.Random, manifest: dict[str, Any]) -> bytes:
    m = json.loads(json.dumps(manifest))
    op = rng.randrange(10)
    if op == 0:
        return rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe{}", json.dumps(m).encode()[: rng.randrange(200)],
                           b'{"format": "classroom-recording/1"}', b"[" * 100_000])
    targets: list[tuple[dict[str, Any], str]] = [(m, k) for k in m]
    for t in m.get("tracks", []):
        targets += [(t, k) for k in t]
        for s in t.get("segments", []):
            targets += [(s, k) for k in s]
    for e in m.get("events", []):
        targets += [(e, k) for k in e]
    for _ in range(rng.randint(1, 3)):
        obj, key = rng.choice(targets)
        kind = rng.randrange(6)
        if kind == 0:
            obj.pop(key, None)
        elif kind == 1:
            obj[key] = wild_value(rng)
        elif kind == 2 and key in ("file",):
            obj[key] = rng.choice(["../../../etc/passwd", "/etc/passwd", "", ".", "segments", "x/../../y.webm",
                                   "nul\x00.webm", "manifest.json", "missing.webm"])
        elif kind == 3:
            obj[key] = rng.choice(INTERESTING_INTS)
        elif kind == 4:
            obj[key] = rng.choice(INTERESTING_TEXT)
        else:
            obj["unknown_" + key] = wild_value(rng)
    if rng.random() < 0.1:
        m["tracks"] = m.get("tracks", []) * rng.choice([0, 2, 50])
    if rng.random() < 0.1 and isinstance(m.get("events"), list):
        m["events"] = list(reversed(m["events"])) + [{"t_ms": -5, "type": "spotlight", "classroom_id": "zz"}]
    return json.dumps(m, ensure_ascii=rng.random() < 0.5, allow_nan=True).encode("utf-8", "surrogatepass")


def break_files(rng: random.Random, rec: Path) -> None:
    files = sorted(p for p in rec.rglob("*") if p.is_file() and p.name != "manifest.json")
    for _ in range(rng.randint(1, 3)):
        victim = rng.choice(files)
        op = rng.randrange(6)
        if not victim.exists():
            continue
        if op == 0:
            data = victim.read_bytes()
            victim.write_bytes(data[: rng.randrange(len(data) + 1)])
        elif op == 1:
            victim.write_bytes(mutate_bytes(rng, victim.read_bytes(), rng.randint(1, 20)))
        elif op == 2:
            victim.unlink(missing_ok=True)
        elif op == 3:
            victim.write_bytes(b"")
        elif op == 4:
            other = rng.choice(files)
            if other.exists() and victim.exists():
                victim.write_bytes(other.read_bytes())
        else:
            victim.write_bytes(rng.randbytes(rng.choice([10, 1000, 20_000])))


COMMANDS = {
    "repair": lambda d, out: ["record", "--repair", str(d), "--log-level", "ERROR"],
    "analyze": lambda d, out: ["analyze", str(d), "--out", str(out), "--quiet", "--interval", "1"],
    "composite": lambda d, out: ["composite", str(d), "--out", str(out / "c.mp4"), "--quiet", "--width", "64",
                                 "--height", "64", "--fps", "2"],
}


def run_in_process(argv: list[str]) -> tuple[int, str, str | None]:
    """(exit status, stderr, traceback if it raised instead of returning)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = classroom_main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            return -1, err.getvalue(), traceback.format_exc()
    return status, err.getvalue(), None


@pytest.mark.timeout(240)
def test_recording_files(recording: Path, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    seconds = budget(10.0)
    manifest = json.loads((recording / "manifest.json").read_text())
    rng = random.Random(SEED)
    started = time.monotonic()
    end = started + seconds
    inputs = 0
    outcomes: dict[str, int] = {}
    defects: list[str] = []
    subprocess_runs = 0
    while time.monotonic() < end:
        work = tmp_path / f"case{inputs}"
        shutil.copytree(recording, work)
        what = rng.choice(["manifest", "files", "both"])
        if what in ("manifest", "both"):
            (work / "manifest.json").write_bytes(break_manifest(rng, manifest))
        if what in ("files", "both"):
            break_files(rng, work)
        name = rng.choice(list(COMMANDS))
        out = tmp_path / f"out{inputs}"
        out.mkdir()
        argv = COMMANDS[name](work, out)
        inputs += 1
        if subprocess_runs < 3 and inputs % 4 == 1:  # the real command line, now and then
            subprocess_runs += 1
            proc = subprocess.run([sys.executable, "-m", "classroom.cli", *argv], cwd=ROOT, capture_output=True,
                                  text=True, timeout=120)
            status, stderr, tb = proc.returncode, proc.stderr, None
            if "Traceback (most recent call last)" in stderr:
                tb = stderr
        else:
            status, stderr, tb = run_in_process(argv)
        key = f"{name}:{'ok' if status == 0 else 'refused'}"
        outcomes[key] = outcomes.get(key, 0) + 1
        if tb is not None:
            text = (work / "manifest.json").read_bytes()[:600]
            defects.append(f"{name} on {what} raised:\n{tb[-3000:]}\nmanifest: {text!r}")
        elif status != 0 and not stderr.strip():
            defects.append(f"{name} exited {status} without a message")
        elif stderr.count("\n") > 20:
            defects.append(f"{name}: a message of {stderr.count(chr(10))} lines: {stderr[:500]}")
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
    elapsed = time.monotonic() - started
    report(record_property, "recording_files", inputs, elapsed, subprocess_runs=subprocess_runs,
           defects=len(defects))
    print("  outcomes:", dict(sorted(outcomes.items())))
    assert not defects, "\n\n".join(defects[:3])
    assert inputs > 10
