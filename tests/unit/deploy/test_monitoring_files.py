"""The Grafana dashboard and the Prometheus alert rules are well-formed (their metric names are
checked against a live server in tests/integration/test_deploy_monitoring.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def test_dashboard_layout_and_targets() -> None:
    dash: dict[str, Any] = json.loads((DEPLOY / "grafana/dashboards/classroom.json").read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    boxes = [p["gridPos"] for p in dash["panels"]]
    for i, a in enumerate(boxes):
        assert 0 <= a["x"] and a["x"] + a["w"] <= 24, a
        for b in boxes[i + 1:]:
            overlap = (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
                       and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])
            assert not overlap, (a, b)
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["type"] in ("timeseries", "stat", "gauge", "table", "state-timeline"), p["type"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            assert t["expr"].count("{") == t["expr"].count("}"), t["expr"]
    variables = {v["name"] for v in dash["templating"]["list"]}
    used = set(re.findall(r"\$(\w+)", json.dumps(dash["panels"])))
    assert used - {"__rate_interval"} <= variables, used


def test_alert_rules_are_well_formed() -> None:
    doc = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text(encoding="utf-8"))
    names = []
    for group in doc["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            names.append(rule["alert"])
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["alert"])
            assert str(rule["expr"]).count("(") == str(rule["expr"]).count(")")
            if "for" in rule:
                assert _DURATION.match(rule["for"]), rule["for"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert len(names) == len(set(names))
    docs = (DEPLOY.parent / "docs/ops.md").read_text(encoding="utf-8")
    for name in names:
        assert name in docs, f"{name} is not explained in docs/ops.md"
