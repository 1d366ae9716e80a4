"""deploy/prometheus with a real Prometheus (Debian's ``prometheus`` package, tests/apt-packages.txt)
scraping a real ``classroom serve``: ``promtool`` accepts the config and the alert rules and
passes the rules' unit tests (deploy/prometheus/alerts_test.yml); every
dashboard query evaluates without error (most return data); the rules load healthy; and when
the node goes away, ClassroomNodeDown becomes pending."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadtest.serverproc import ServerProcess, start_server
from tests.integration.test_deploy_monitoring import dashboard_expressions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.loads(resp.read().decode("utf-8"))
    assert body["status"] == "success", body
    return body["data"]


def _wait(what: str, check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, AssertionError, KeyError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_promtool_accepts_config_and_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: tests/run.sh installs Debian's prometheus package"
    r = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]  # where compose mounts it
    config["rule_files"] = [str(ALERTS)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    r = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # the rules' own unit tests (synthetic series: each alert fires when it should, with its text)
    r = subprocess.run([promtool, "test", "rules", str(DEPLOY / "prometheus/alerts_test.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[str, ServerProcess]]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: tests/run.sh installs Debian's prometheus package"
    srv = start_server()
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    job["scheme"] = "http"  # the test server is on loopback: plain HTTP
    job.pop("tls_config", None)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{srv.port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = _free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait("Prometheus ready", lambda: urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200)
        yield base, srv
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        srv.stop()


@pytest.mark.timeout(120)
def test_dashboard_and_alerts_on_a_real_prometheus(stack: tuple[str, ServerProcess]) -> None:
    base, srv = stack

    def scraped_twice() -> bool:
        up = _api(base, "/api/v1/query", query='count_over_time(up{job="classroom"}[1m])')["result"]
        return bool(up) and float(up[0]["value"][1]) >= 3

    _wait("three scrapes of the classroom node", scraped_twice)
    assert _api(base, "/api/v1/query", query='up{job="classroom"}')["result"][0]["value"][1] == "1"

    empty = []
    for where, expr in dashboard_expressions():
        query = (expr.replace("$__rate_interval", "10s").replace('=~"$instance"', '=~".*"')
                 .replace('=~"$lesson"', '=~".*"'))
        data = _api(base, "/api/v1/query", query=query)  # status success: valid and evaluable
        if not data["result"]:
            empty.append(where)
    # only per-classroom link series (no classroom is connected) and filtered-out error codes
    # may be empty
    unexpected = [w for w in empty if "link" not in w.lower() and "layer" not in w.lower()
                  and "round-trip" not in w.lower() and "sent to each" not in w.lower()
                  and "errors by code" not in w.lower() and "quality" not in w.lower()
                  and w != "variable lesson"]
    assert not unexpected, unexpected

    def rules_healthy() -> bool:
        groups = _api(base, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        expected = sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"])
        return len(rules) == expected and all(r["health"] == "ok" for r in rules)

    _wait("every alert rule loaded and evaluated healthy", rules_healthy)
    firing = [a["labels"]["alertname"] for a in _api(base, "/api/v1/alerts")["alerts"]]
    assert firing == [], firing  # a healthy idle node raises nothing

    srv.stop()  # the node goes away

    def node_down_pending() -> bool:
        alerts = _api(base, "/api/v1/alerts")["alerts"]
        return any(a["labels"]["alertname"] == "ClassroomNodeDown" and a["state"] in ("pending", "firing")
                   for a in alerts)

    _wait("ClassroomNodeDown pending", node_down_pending)
