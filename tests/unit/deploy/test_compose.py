"""deploy/compose.yaml checked the way `docker compose config` would, without docker (there is no
docker on the test machines): interpolation, services, builds, mounts, named volumes, secrets,
healthchecks, restart policies, depends_on; the settings it gives the classroom server are real
config fields; the images run as the users the secret files are made for."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from classroom.cli import COMMANDS
from classroom.config import load_config

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
TOP_LEVEL = {"name", "services", "volumes", "secrets", "networks", "configs"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}
_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")


class InterpolationError(ValueError):
    pass


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, $$ for a dollar."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        have = env.get(name)
        empty = have is None or (op is not None and op.startswith(":") and have == "")
        if op in (":-", "-"):
            return arg if empty else str(have)
        if op in (":?", "?"):
            if empty:
                raise InterpolationError(f"{name}: {arg}")
            return str(have)
        return "" if have is None else have

    return _VAR.sub(sub, value)


def load(env: dict[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(raw, dict)
    return dict(interpolate(raw, env))


ENV = {"PUBLIC_IP": "192.0.2.10"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(ENV)


def test_the_compose_specification_accepts_it(compose: dict[str, Any]) -> None:
    """Strict parsing against the Compose Specification (the compose_spec crate, through its
    Python bindings): unknown keys, wrong types, enum values and durations are errors, and every
    secret/config/network a service names is declared, as with `docker compose config`."""
    from compose_spec import PyCompose

    text = COMPOSE.read_text(encoding="utf-8")
    parsed = PyCompose.from_yaml(yaml.safe_dump(compose))
    parsed.validate()
    assert sorted(parsed.service_names()) == sorted(compose["services"])
    # and it does catch what docker would refuse
    for bad, why in ((text.replace("healthcheck:", "healthchek:", 1), "extension key"),
                     (text.replace("restart: unless-stopped", "restart: sometimes", 1), "unknown variant"),
                     (text.replace("interval: 15s", "interval: fifteen", 1), "duration")):
        with pytest.raises(Exception, match=why):
            PyCompose.from_yaml(bad).validate()
    with pytest.raises(Exception, match="not defined in the top-level `secrets`"):
        PyCompose.from_yaml(text.replace("[turn_secret]", "[turn_secrt]", 1)).validate()


def test_top_level_and_required_variable(compose: dict[str, Any]) -> None:
    assert set(compose) <= TOP_LEVEL, set(compose) - TOP_LEVEL
    with pytest.raises(InterpolationError, match="PUBLIC_IP"):
        load({})
    assert set(compose["services"]) == {"classroom", "prometheus", "grafana", "coturn"}


def test_every_service_is_buildable_mounted_restarted_and_health_checked(compose: dict[str, Any]) -> None:
    named_volumes = set(compose.get("volumes") or {})
    secrets = compose.get("secrets") or {}
    used_volumes: set[str] = set()
    for name, svc in compose["services"].items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert context.is_dir(), name
            assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name
        assert svc.get("restart") in RESTART, f"{name}: restart policy"
        assert svc.get("network_mode") == "host", f"{name}: host networking (ICE candidates, loopback scrape)"
        hc = svc.get("healthcheck")
        assert hc and isinstance(hc["test"], list) and hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck"
        for key in ("interval", "timeout", "start_period"):
            if key in hc:
                assert _DURATION.match(str(hc[key])), f"{name}: healthcheck {key}={hc[key]!r}"
        assert int(hc.get("retries", 3)) >= 1
        for mount in svc.get("volumes", []):
            parts = str(mount).split(":")
            assert 2 <= len(parts) <= 3, mount
            source, target = parts[0], parts[1]
            assert target.startswith("/"), mount
            if len(parts) == 3:
                assert parts[2] in ("ro", "rw"), mount
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in named_volumes, f"{name}: volume {source} is not declared"
                used_volumes.add(source)
        for secret in svc.get("secrets", []):
            key = secret if isinstance(secret, str) else secret["source"]
            assert key in secrets, f"{name}: secret {key} is not declared"
        for dep, spec in (svc.get("depends_on") or {}).items():
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert compose["services"][dep].get("healthcheck"), dep
    assert used_volumes == named_volumes, "declared volumes nobody mounts"


def test_secrets_are_files_made_by_make_secrets(compose: dict[str, Any], tmp_path: Path) -> None:
    secrets = compose["secrets"]
    assert set(secrets) == {"turn_secret", "grafana_admin_password"}
    for name, spec in secrets.items():
        assert set(spec) == {"file"}, name  # a file, not an environment value
        assert Path(spec["file"]).parent == Path("./secrets"), name
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    out = tmp_path / "secrets"
    subprocess.run(["sh", str(DEPLOY / "make-secrets.sh")], env={**os.environ, "SECRETS_DIR": str(out)},
                   check=True, capture_output=True, timeout=30)
    owners = {"turn_secret": 10001, "grafana_admin_password": 472}
    for name in secrets:
        f = out / name
        st = f.stat()
        assert st.st_mode & 0o777 == 0o400, name
        if os.geteuid() == 0:
            assert st.st_uid == owners[name], name
        assert len(f.read_text(encoding="utf-8").strip()) == 64
    first = (out / "turn_secret").read_text(encoding="utf-8")
    subprocess.run(["sh", str(DEPLOY / "make-secrets.sh")], env={**os.environ, "SECRETS_DIR": str(out)},
                   check=True, capture_output=True, timeout=30)
    assert (out / "turn_secret").read_text(encoding="utf-8") == first  # kept, not replaced
    # nothing secret in the compose file's environment or commands
    for svc in compose["services"].values():
        for key in svc.get("environment", {}):
            assert "SECRET" not in key or key.endswith("_FILE"), key
            assert "PASSWORD" not in key or key.endswith("__FILE"), key
        assert not any("secret" in str(a).lower() and "=" in str(a) for a in svc.get("command", []))


def test_classroom_service_settings_are_real_config(compose: dict[str, Any], tmp_path: Path) -> None:
    svc = compose["services"]["classroom"]
    env = {k: str(v) for k, v in svc["environment"].items()}
    for key in env:
        section, _, field = key.removeprefix("CLASSROOM_").lower().partition("_")
        cfg = load_config(env={})
        assert key.startswith("CLASSROOM_") and hasattr(getattr(cfg, section), field), f"{key}: not a setting"
    secret = tmp_path / "turn_secret"
    secret.write_text("x" * 64, encoding="utf-8")
    secret.chmod(0o600)
    env["CLASSROOM_MEDIA_TURN_SECRET_FILE"] = str(secret)  # /run/secrets/turn_secret in the container
    config = load_config(env=env)
    assert config.server.demo_lesson is False  # no demo lesson unless asked (DEMO_LESSON=true)
    asked = load({**ENV, "DEMO_LESSON": "true"})["services"]["classroom"]["environment"]
    assert load_config(env={**env, "CLASSROOM_SERVER_DEMO_LESSON": asked["CLASSROOM_SERVER_DEMO_LESSON"]}
                       ).server.demo_lesson
    assert config.server.log_format == "json"
    assert config.media.turn_secret == "x" * 64 and config.media.ice_addresses == ["192.0.2.10"]
    assert svc["environment"]["CLASSROOM_MEDIA_TURN_SECRET_FILE"] == "/run/secrets/turn_secret"
    assert svc["healthcheck"]["test"][1:] == ["classroom", "healthcheck"] and "healthcheck" in COMMANDS


def test_images_run_unprivileged(compose: dict[str, Any]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert users[-1].split(":")[0] == "10001"  # make-secrets.sh gives turn_secret to this uid
    assert re.search(r"^HEALTHCHECK .*classroom\", \"healthcheck", dockerfile, re.M)
    for src in re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile, re.M):
        for part in src.split():
            assert (REPO / part).exists(), part
    assert compose["services"]["coturn"]["user"].split(":")[0] == "10001"


def test_monitoring_mounts_fit_together(compose: dict[str, Any]) -> None:
    prom = compose["services"]["prometheus"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prom["volumes"]}
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    prom_cfg_path = config_flag.split("=", 1)[1]
    assert mounts[prom_cfg_path] == "./prometheus/prometheus.yml"
    prom_cfg = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    for rule_file in prom_cfg["rule_files"]:
        assert rule_file in mounts and (DEPLOY / mounts[rule_file]).is_file(), rule_file
    listen = next(a for a in prom["command"] if a.startswith("--web.listen-address=")).split("=", 1)[1]

    graf = compose["services"]["grafana"]
    gmounts = {m.split(":")[1]: m.split(":")[0] for m in graf["volumes"]}
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/classroom.yml").read_text(encoding="utf-8"))
    path = provider["providers"][0]["options"]["path"]
    assert gmounts[path] == "./grafana/dashboards"
    assert gmounts["/etc/grafana/provisioning/datasources"] == "./grafana/provisioning/datasources"
    assert gmounts["/etc/grafana/provisioning/dashboards"] == "./grafana/provisioning/dashboards"
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text(encoding="utf-8"))
    (source,) = ds["datasources"]
    assert source["url"] == f"http://{listen}"
    dash = json.loads((DEPLOY / "grafana/dashboards/classroom.json").read_text(encoding="utf-8"))
    uids = {p["datasource"]["uid"] for p in dash["panels"] if "datasource" in p}
    assert uids == {source["uid"]}

    coturn = compose["services"]["coturn"]
    cmounts = {m.split(":")[1]: m.split(":")[0] for m in coturn["volumes"]}
    assert cmounts[coturn["entrypoint"][-1]] == "./coturn/entrypoint.sh"
    assert cmounts[coturn["environment"]["TURN_CONFIG"]] == "./coturn/turnserver.conf"
    assert coturn["environment"]["TURN_SECRET_FILE"] == "/run/secrets/turn_secret"
