"""deploy/grafana and deploy/prometheus against a real ``classroom serve``: every metric that a
dashboard panel, a dashboard variable or an alert rule reads is in the live /metrics of a running
server (a renamed metric would leave an empty panel or an alert that can never fire)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.serverproc import ServerProcess, start_server
from tests.promql_names import SYNTHETIC, exposed_names, metric_names

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "classroom.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"


@pytest.fixture(scope="module")
def live_names() -> Iterator[set[str]]:
    srv: ServerProcess = start_server()
    try:
        with urllib.request.urlopen(srv.base_url + "/metrics", timeout=10) as resp:
            text = resp.read().decode("utf-8")
    finally:
        srv.stop()
    names = exposed_names(text)
    assert "classroom_lessons" in names and "classroom_recorders_running" in names
    yield names


def _panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def dashboard_expressions() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    out = [(f"panel {p['title']!r}", t["expr"]) for p in _panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        m = re.fullmatch(r"label_values\((\w+),\s*\w+\)", var["query"]["query"])
        assert m, var
        out.append((f"variable {var['name']}", m.group(1)))
    return out


def alert_expressions() -> list[tuple[str, str]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [(f"alert {r['alert']}", str(r["expr"])) for g in doc["groups"] for r in g["rules"]]


def test_dashboard_metrics_exist(live_names: set[str]) -> None:
    exprs = dashboard_expressions()
    assert len(exprs) > 30
    used: set[str] = set()
    for where, expr in exprs:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        missing = names - live_names - SYNTHETIC
        assert not missing, f"{where}: {sorted(missing)} not in /metrics ({expr})"
        used |= names
    # the list: lessons, classrooms, forwarded packets, loss, keyframes, join latency,
    # event-loop lag, recorder state, link estimates
    for wanted in ("classroom_lessons", "classroom_classrooms", "classroom_forwarded_packets_total",
                   "classroom_nacks_received_total", "classroom_link_loss_ratio", "classroom_plis_received_total",
                   "classroom_keyframe_requests_sent_total", "classroom_join_latency_seconds_bucket",
                   "classroom_event_loop_lag_max_seconds", "classroom_recorders_running",
                   "classroom_recorder_failures_total", "classroom_link_estimate_bytes_per_second"):
        assert wanted in used, wanted


def test_alert_metrics_exist(live_names: set[str]) -> None:
    exprs = alert_expressions()
    alerts = {where.split()[1] for where, _ in exprs}
    assert {"ClassroomNodeDown", "ClassroomEventLoopLag", "ClassroomRecorderFailing",
            "ClassroomDiskFreeLow"} <= alerts
    for where, expr in exprs:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        missing = names - live_names - SYNTHETIC
        assert not missing, f"{where}: {sorted(missing)} not in /metrics ({expr})"
