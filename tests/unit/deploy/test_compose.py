"""deploy/compose.yaml checked the way `docker compose config` would, without docker (there is no
docker on the test machines): the Compose Specification's own JSON schema (as vendored by
check-jsonschema) and the compose_spec crate, interpolation, services, builds, mounts, named
volumes, secrets, healthchecks, restart policies, depends_on; the settings it gives the classroom
nodes are real config fields and real `classroom serve` flags; the images run as the users the
secret files are made for. What was and was not run: deploy/README.md."""

from __future__ import annotations

import importlib.resources
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from classroom.cli import COMMANDS, main
from classroom.config import load_config

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
TOP_LEVEL = {"name", "services", "volumes", "secrets", "networks", "configs"}
NODES = ("node-1", "node-2")
# `classroom serve` flags of a cluster node (issue #16 item 5) that are being built on another
# branch: allowed in the manifests before `classroom serve --help` lists them.
CLUSTER_FLAGS = {"--redis", "--node-id"}
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
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # resolves the <<: merge keys, as compose does
    assert isinstance(raw, dict)
    doc = dict(interpolate(raw, env))
    return {k: v for k, v in doc.items() if not k.startswith("x-")}  # extension fields: compose ignores them


ENV = {"PUBLIC_IP": "192.0.2.10"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(ENV)


def _compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema (compose-spec.json, the one `docker compose`
    itself validates with), as check-jsonschema (test extras) ships it: no download."""
    text = (importlib.resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json").read_text(
        encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def test_the_compose_spec_json_schema_accepts_it(compose: dict[str, Any]) -> None:
    schema = _compose_schema()
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)
    # and it refuses what docker would
    for path, key, value in ((("services", "redis"), "healthchek", {}),
                             (("services", "node-1"), "restart", 3),
                             (("services", "node-2"), "network_mode", ["host"]),
                             ((), "servics", {})):
        bad = json.loads(json.dumps(compose))
        target = bad
        for part in path:
            target = target[part]
        target[key] = value
        assert not validator.is_valid(bad), (path, key)


DOCKER_COMPOSE = "/usr/bin/docker-compose"


def _docker_compose_config(text: str, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "compose.yaml"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([DOCKER_COMPOSE, "-f", str(path), "config", "-q"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env})


def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    """`docker-compose config` itself (1.29.2, Debian's package of the PyPI release: interpolation,
    merge keys, its compose-spec schema of 2021). That release predates the top-level `name` key,
    so it gets the file without that one line; everything else is the file as it is."""
    assert Path(DOCKER_COMPOSE).is_file(), "docker-compose is missing: tests/run.sh installs it (apt-packages.txt)"
    text = COMPOSE.read_text(encoding="utf-8")
    assert text.count("\nname: classroom\n") == 1
    v1 = text.replace("\nname: classroom\n", "\n")
    r = _docker_compose_config(v1, tmp_path, ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    # and it refuses what it should: an unknown key, a missing PUBLIC_IP
    r = _docker_compose_config(v1.replace("healthcheck:", "healthchek:", 1), tmp_path, ENV)
    assert r.returncode != 0 and "healthchek" in r.stderr, r.stderr
    r = _docker_compose_config(v1, tmp_path, {})
    assert r.returncode != 0 and "set PUBLIC_IP in deploy/.env" in r.stderr, r.stderr


def test_the_compose_spec_crate_accepts_it(compose: dict[str, Any]) -> None:
    """Strict parsing against the Compose Specification (the compose_spec crate, through its
    Python bindings): unknown keys, wrong types, enum values and durations are errors, and every
    secret/config/network a service names is declared, as with `docker compose config`. (The
    crate does not resolve YAML merge keys, `<<:`, which docker compose does: it gets the file
    as `yaml.safe_load` resolved it.)"""
    from compose_spec import PyCompose

    text = yaml.safe_dump(compose)
    parsed = PyCompose.from_yaml(text)
    parsed.validate()
    assert sorted(parsed.service_names()) == sorted(compose["services"])
    # and it does catch what docker would refuse
    for bad, why in ((text.replace("healthcheck:", "healthchek:", 1), "extension key"),
                     (text.replace("restart: unless-stopped", "restart: sometimes", 1), "unknown variant"),
                     (text.replace("interval: 15s", "interval: fifteen", 1), "duration")):
        assert bad != text
        with pytest.raises(Exception, match=why):
            PyCompose.from_yaml(bad).validate()
    bad = text.replace("- turn_secret\n", "- turn_secrt\n", 1)
    assert bad != text
    with pytest.raises(Exception, match="not defined in the top-level `secrets`"):
        PyCompose.from_yaml(bad).validate()


def test_top_level_and_required_variable(compose: dict[str, Any]) -> None:
    assert set(compose) <= TOP_LEVEL, set(compose) - TOP_LEVEL
    with pytest.raises(InterpolationError, match="PUBLIC_IP"):
        load({})
    assert set(compose["services"]) == {*NODES, "redis", "postgres", "prometheus", "grafana", "coturn"}


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
    assert set(secrets) == {"turn_secret", "token_secret", "db_password", "postgres_password", "grafana_admin_password"}
    for name, spec in secrets.items():
        assert set(spec) == {"file"}, name  # a file, not an environment value
        assert Path(spec["file"]).parent == Path("./secrets"), name
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    out = tmp_path / "secrets"
    subprocess.run(["sh", str(DEPLOY / "make-secrets.sh")], env={**os.environ, "SECRETS_DIR": str(out)},
                   check=True, capture_output=True, timeout=30)
    owners = {"turn_secret": 10001, "token_secret": 10001, "db_password": 10001, "postgres_password": 999,
              "grafana_admin_password": 472}
    for name in secrets:
        f = out / name
        st = f.stat()
        assert st.st_mode & 0o777 == 0o400, name
        if os.geteuid() == 0:
            assert st.st_uid == owners[name], name
        assert len(f.read_text(encoding="utf-8").strip()) == 64
    # the database password: one value, a file for the nodes and a copy for the postgres image
    assert (out / "db_password").read_bytes() == (out / "postgres_password").read_bytes()
    assert (out / "db_password").read_bytes() != (out / "token_secret").read_bytes()
    first = (out / "turn_secret").read_text(encoding="utf-8")
    subprocess.run(["sh", str(DEPLOY / "make-secrets.sh")], env={**os.environ, "SECRETS_DIR": str(out)},
                   check=True, capture_output=True, timeout=30)
    assert (out / "turn_secret").read_text(encoding="utf-8") == first  # kept, not replaced
    # nothing secret in the compose file's environment or commands
    for svc in compose["services"].values():
        for key in svc.get("environment", {}):
            assert "SECRET" not in key or key.endswith("_FILE"), key
            assert "PASSWORD" not in key or key.endswith("_FILE"), key
        assert not any("secret" in str(a).lower() and "=" in str(a) for a in svc.get("command", []))


# read by classroom/server.py from the environment, not a config field
SERVER_ENV = {"CLASSROOM_TOKEN_SECRET_FILE"}


def test_node_settings_are_real_config(compose: dict[str, Any], tmp_path: Path) -> None:
    server_py = (REPO / "classroom/server.py").read_text(encoding="utf-8")
    assert all(f'"{key}"' in server_py for key in SERVER_ENV)
    for node in NODES:
        svc = compose["services"][node]
        env = {k: str(v) for k, v in svc["environment"].items()}
        cfg = load_config(env={})
        for key in set(env) - SERVER_ENV:
            section, _, field = key.removeprefix("CLASSROOM_").lower().partition("_")
            assert key.startswith("CLASSROOM_") and hasattr(getattr(cfg, section), field), f"{key}: not a setting"
        for name in ("turn_secret", "db_password"):  # /run/secrets/NAME in the container
            secret = tmp_path / name
            secret.write_text(name[0] * 64, encoding="utf-8")
            secret.chmod(0o600)
        assert env["CLASSROOM_MEDIA_TURN_SECRET_FILE"] == "/run/secrets/turn_secret"
        assert env["CLASSROOM_DATABASE_PASSWORD_FILE"] == "/run/secrets/db_password"
        assert env["CLASSROOM_TOKEN_SECRET_FILE"] == "/run/secrets/token_secret"
        env["CLASSROOM_MEDIA_TURN_SECRET_FILE"] = str(tmp_path / "turn_secret")
        env["CLASSROOM_DATABASE_PASSWORD_FILE"] = str(tmp_path / "db_password")
        config = load_config(env=env)
        assert config.server.demo_lesson is False  # no demo lesson unless asked (DEMO_LESSON=true)
        asked = load({**ENV, "DEMO_LESSON": "true"})["services"][node]["environment"]
        assert load_config(env={**env, "CLASSROOM_SERVER_DEMO_LESSON": asked["CLASSROOM_SERVER_DEMO_LESSON"]}
                           ).server.demo_lesson
        assert config.server.log_format == "json"
        assert config.media.turn_secret == "t" * 64 and config.media.ice_addresses == ["192.0.2.10"]
        assert config.database.password == "d" * 64
        assert set(svc["secrets"]) == {"turn_secret", "token_secret", "db_password"}


def command_flags(command: str) -> set[str]:
    """The options `classroom COMMAND --help` lists."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([command, "--help"])
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out.getvalue()))


def serve_flags() -> set[str]:
    return command_flags("serve")


def node_command(argv: list[str]) -> dict[str, str]:
    """`classroom serve --flag value …` as {flag: value}; every flag of a node takes a value."""
    assert argv[:2] == ["classroom", "serve"], argv
    rest = argv[2:]
    assert len(rest) % 2 == 0 and all(a.startswith("--") for a in rest[::2]), rest
    flags = dict(zip(rest[::2], rest[1::2], strict=True))
    assert len(flags) == len(rest) // 2, "a flag given twice"
    return flags


def test_nodes_are_cluster_nodes_with_the_serve_flags(compose: dict[str, Any]) -> None:
    known = serve_flags() | CLUSTER_FLAGS
    assert {"--host", "--port", "--data-dir", "--database"} <= known
    prom = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text(encoding="utf-8"))
    (job,) = prom["scrape_configs"]
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    ids, ports = set(), set()
    for node in NODES:
        svc = compose["services"][node]
        flags = node_command(svc["command"])
        assert set(flags) <= known, set(flags) - known
        assert {"--redis", "--node-id", "--database", "--port", "--host", "--data-dir"} <= set(flags)
        assert flags["--node-id"] == node
        assert flags["--redis"] == "redis://127.0.0.1:6379/0"  # the redis service, loopback (host networking)
        assert flags["--database"] == "postgresql://classroom@127.0.0.1:5432/schedule"
        assert "@" in flags["--database"] and ":" not in flags["--database"].split("//")[1].split("@")[0], \
            "no password in the URL (a command line is public)"
        ids.add(flags["--node-id"])
        ports.add(flags["--port"])
        assert svc["healthcheck"]["test"][1:] == ["classroom", "healthcheck", "--port", flags["--port"]]
        assert "--port" in command_flags("healthcheck")
        assert f"127.0.0.1:{flags['--port']}" in targets, "Prometheus scrapes every node"
        deps = svc["depends_on"]
        assert deps["redis"]["condition"] == deps["postgres"]["condition"] == "service_healthy"
        assert svc["volumes"] == ["classroom-data:/data"]  # one data dir for the nodes of a machine
    assert len(ids) == len(ports) == len(NODES) == len(targets)
    assert compose["services"]["node-2"]["depends_on"]["node-1"]["condition"] == "service_healthy"
    assert "healthcheck" in COMMANDS
    pg = compose["services"]["postgres"]
    assert pg["environment"]["POSTGRES_USER"] == "classroom" and pg["environment"]["POSTGRES_DB"] == "schedule"
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert "listen_addresses=127.0.0.1" in pg["command"]
    redis = compose["services"]["redis"]
    assert redis["command"][redis["command"].index("--bind") + 1] == "127.0.0.1"


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
