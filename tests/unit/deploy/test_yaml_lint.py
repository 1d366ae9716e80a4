"""yamllint (PyPI, in the test extras) over every YAML file of deploy/ and .ci/ with the
repository's .yamllint.yaml: the same as `yamllint -s deploy .ci` by hand."""

from __future__ import annotations

from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig

REPO = Path(__file__).resolve().parents[3]


def test_yaml_files_lint_clean() -> None:
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    files = sorted(p for d in ("deploy", ".ci") for p in (REPO / d).rglob("*")
                   if p.suffix in (".yml", ".yaml") and "secrets" not in p.parts)
    assert len(files) >= 5, files  # compose, prometheus, alerts, two Grafana provisioning files
    problems = []
    for path in files:
        for p in linter.run(path.read_text(encoding="utf-8"), config, str(path)):
            problems.append(f"{path.relative_to(REPO)}:{p.line}:{p.column}: {p.level} {p.desc} ({p.rule})")
    assert not problems, "\n".join(problems)


def test_lint_catches_a_problem() -> None:
    config = YamlLintConfig(file=str(REPO / ".yamllint.yaml"))
    bad = "services:\n  a:\n    image: x\n  a:\n    image: y\n"
    assert any(p.rule == "key-duplicates" for p in linter.run(bad, config))
