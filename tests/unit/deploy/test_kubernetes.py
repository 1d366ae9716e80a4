"""deploy/kubernetes/ checked without a cluster (none can run here): every object against the
Kubernetes OpenAPI schemas that kubernetes-validate ships (strict: unknown fields are errors), the
newest it has and an older one; the objects made from files by make-objects.sh (the Secret, the
coturn ConfigMap) the same way; and what a schema cannot see: names that must meet (selectors and
labels, named ports, ConfigMap/Secret/PVC references, Secret keys), the nodes' `classroom serve`
flags and config file, host networking for media, no secret value inline. What was and was not
run: deploy/README.md."""

from __future__ import annotations

import base64
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from classroom.config import load_config
from tests.unit.deploy.test_compose import CLUSTER_FLAGS, node_command, serve_flags

REPO = Path(__file__).resolve().parents[3]
KUBE = REPO / "deploy" / "kubernetes"
NAMESPACE = "classroom"
# the newest schema kubernetes-validate ships, and an older minor a district's cluster may still run
OLDEST = "1.30"
SECRET_KEYS = {"token_secret", "db_password", "turn_secret"}
# Secrets the operator makes with kubectl (deploy/README.md), not from the repository
OPERATOR_SECRETS = {"classroom-tls"}


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """make-objects.sh's output for secret files made by make-secrets.sh."""
    secrets = tmp_path_factory.mktemp("secrets")
    env = {**os.environ, "SECRETS_DIR": str(secrets)}
    subprocess.run(["sh", str(REPO / "deploy/make-secrets.sh")], env=env, check=True, capture_output=True, timeout=30)
    out = subprocess.run(["sh", str(KUBE / "make-objects.sh")], env=env, check=True, capture_output=True,
                         text=True, timeout=30).stdout
    docs = _docs(out)
    for doc in docs:
        doc["_files"] = secrets  # where the values came from (removed before validation)
    return docs


@pytest.fixture(scope="module")
def objects(generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(KUBE.glob("*.yaml")):
        docs.extend(_docs(path.read_text(encoding="utf-8")))
    return docs + [{k: v for k, v in d.items() if k != "_files"} for d in generated]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def test_every_object_validates_against_the_kubernetes_schemas(objects: list[dict[str, Any]]) -> None:
    latest = kubernetes_validate.latest_version()
    assert tuple(map(int, latest.split("."))) >= (1, 37), latest  # a current Kubernetes
    kinds = set()
    for obj in objects:
        for version in (latest, OLDEST):
            kubernetes_validate.validate(obj, version, strict=True)
        kinds.add(obj["kind"])
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]
    assert {"Namespace", "StatefulSet", "DaemonSet", "Service", "ConfigMap", "Secret", "Deployment",
            "PersistentVolumeClaim", "PodDisruptionBudget"} <= kinds
    names = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert len(names) == len(set(names)), "an object defined twice"
    assert (KUBE / "00-namespace.yaml").is_file()  # `kubectl apply -f deploy/kubernetes/` makes it first


def test_strict_validation_refuses_what_the_api_server_would(objects: list[dict[str, Any]]) -> None:
    sts = find(objects, "StatefulSet", "classroom-node")
    bad = yaml.safe_load(yaml.safe_dump(sts))
    bad["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    bad = yaml.safe_load(yaml.safe_dump(sts))
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def _pod_specs(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, its pod template) for every workload."""
    return [(o, o["spec"]["template"]) for o in objects if o["kind"] in ("StatefulSet", "DaemonSet", "Deployment")]


def test_references_meet(objects: list[dict[str, Any]], generated: list[dict[str, Any]]) -> None:
    configmaps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    claims = {o["metadata"]["name"] for o in objects if o["kind"] == "PersistentVolumeClaim"}
    workloads = _pod_specs(objects)
    for workload, template in workloads:
        name = workload["metadata"]["name"]
        labels = template["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        spec = template["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        templates = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for v in volumes.values():
            if "configMap" in v:
                cm = configmaps[v["configMap"]["name"]]
                for item in v["configMap"].get("items", []):
                    assert item["key"] in cm["data"], (name, item)
            if "secret" in v:
                secret_name = v["secret"]["secretName"]
                assert secret_name in secrets or secret_name in OPERATOR_SECRETS, (name, secret_name)
                for item in v["secret"].get("items", []):
                    assert item["key"] in secrets[secret_name]["data"], (name, item)
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims, name
        for c in spec.get("initContainers", []) + spec["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes or m["name"] in templates, (name, c["name"], m["name"])
                if "subPath" in m:
                    cm = configmaps[volumes[m["name"]]["configMap"]["name"]]
                    assert m["subPath"] in cm["data"], (name, m)
    # every Service selects some pods and targets ports they name
    for svc in (o for o in objects if o["kind"] == "Service"):
        pods = [t for _, t in workloads if svc["spec"]["selector"].items() <= t["metadata"]["labels"].items()]
        assert pods, svc["metadata"]["name"]
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for t in pods:
                named = {p.get("name") for c in t["spec"]["containers"] for p in c.get("ports", [])}
                numbers = {p["containerPort"] for c in t["spec"]["containers"] for p in c.get("ports", [])}
                assert target in named or target in numbers, (svc["metadata"]["name"], target)
    # a StatefulSet's governing Service exists and is headless
    for sts in (o for o in objects if o["kind"] == "StatefulSet"):
        governing = find(objects, "Service", sts["spec"]["serviceName"])
        assert governing["spec"].get("clusterIP") in ("None", None), sts["metadata"]["name"]
    # the Secret: exactly the keys the pods read, the values of the files make-secrets.sh made
    (secret,) = [d for d in generated if d["kind"] == "Secret"]
    assert set(secret["data"]) == SECRET_KEYS
    for key, value in secret["data"].items():
        assert base64.b64decode(value) == (secret["_files"] / key).read_bytes(), key
    (coturn_cm,) = [d for d in generated if d["kind"] == "ConfigMap"]
    for key in ("turnserver.conf", "entrypoint.sh"):
        assert coturn_cm["data"][key] == (REPO / "deploy/coturn" / key).read_text(encoding="utf-8"), key


def test_make_objects_refuses_missing_secret_files(tmp_path: Path) -> None:
    r = subprocess.run(["sh", str(KUBE / "make-objects.sh")], env={**os.environ, "SECRETS_DIR": str(tmp_path)},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "make-secrets.sh" in r.stderr and not r.stdout


def _container(objects: list[dict[str, Any]], kind: str, name: str, container: str) -> dict[str, Any]:
    spec = find(objects, kind, name)["spec"]["template"]["spec"]
    (c,) = [c for c in spec["containers"] if c["name"] == container]
    return dict(c)


def test_nodes_use_host_networking_and_the_cluster_flags(objects: list[dict[str, Any]]) -> None:
    sts = find(objects, "StatefulSet", "classroom-node")
    pod = sts["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"  # one node per machine: host ports
    assert sts["spec"]["replicas"] >= 2
    node = _container(objects, "StatefulSet", "classroom-node", "classroom")
    flags = node_command(node["command"])
    known = serve_flags() | CLUSTER_FLAGS
    assert set(flags) <= known, set(flags) - known
    assert {"--redis", "--node-id", "--database", "--config", "--host", "--port", "--data-dir"} <= set(flags)
    env = [e["name"] for e in node["env"]]
    values = {e["name"]: e for e in node["env"]}
    # $(VAR) in the command and env refer to variables defined before (Kubernetes expands only those)
    assert flags["--node-id"] == "$(POD_NAME)"
    assert values["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert values["HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert values["CLASSROOM_MEDIA_ICE_ADDRESSES"]["value"] == "$(HOST_IP)"
    for i, e in enumerate(node["env"]):
        for ref in re.findall(r"\$\((\w+)\)", e.get("value", "")):
            assert ref in env[:i], (e["name"], ref)
    # the URLs name the Services in this namespace; no password in a command line
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}
    redis = re.fullmatch(r"redis://([\w.-]+):(\d+)/\d+", flags["--redis"])
    assert redis and redis.group(1) == f"redis.{NAMESPACE}.svc.cluster.local"
    assert int(redis.group(2)) == services["redis"]["spec"]["ports"][0]["port"]
    db = re.fullmatch(r"postgresql://(\w+)@([\w.-]+):(\d+)/(\w+)", flags["--database"])
    assert db and db.group(2) == f"postgres.{NAMESPACE}.svc.cluster.local"
    assert int(db.group(3)) == services["postgres"]["spec"]["ports"][0]["port"]
    pg_env = {e["name"]: e.get("value") for e in _container(objects, "StatefulSet", "postgres", "postgres")["env"]}
    assert (db.group(1), db.group(4)) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"])
    # the HTTP Service reaches the nodes' port; the node serves it
    http = services["classroom-http"]
    assert http["spec"]["ports"][0]["targetPort"] == "https"
    assert {p["name"]: p["containerPort"] for p in node["ports"]}["https"] == int(flags["--port"])
    assert node["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # the same image compose builds
    compose = yaml.safe_load((REPO / "deploy/compose.yaml").read_text(encoding="utf-8"))
    assert node["image"] == compose["services"]["node-1"]["image"]


def test_node_config_file_is_real_config(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    text = find(objects, "ConfigMap", "classroom-config")["data"]["config.yaml"]
    raw = yaml.safe_load(text)
    node = _container(objects, "StatefulSet", "classroom-node", "classroom")
    mounts = {m["name"]: m["mountPath"] for m in node["volumeMounts"]}
    assert node_command(node["command"])["--config"] == mounts["config"]
    # the secret files the config and the env name are the ones the init container copies
    secret_dir = mounts["secret-files"]
    named = {raw["media"]["turn_secret_file"], raw["database"]["password_file"]}
    named |= {e["value"] for e in node["env"] if e["name"].endswith("_FILE")}
    assert named == {f"{secret_dir}/{k}" for k in SECRET_KEYS}
    pod = find(objects, "StatefulSet", "classroom-node")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert all(k in script for k in SECRET_KEYS) and "chmod 0400" in script
    init_mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert init_mounts["secret-files"] == secret_dir
    # run the init script on stand-ins for the two volumes: private copies of the Secret's files
    given, copies = tmp_path / "secret-volume", tmp_path / "secret-files"
    given.mkdir()
    copies.mkdir()
    for key in SECRET_KEYS:
        (given / key).write_text(key + "\n", encoding="utf-8")
        (given / key).chmod(0o440)
    local_script = script.replace(init_mounts["secret-volume"], str(given)).replace(secret_dir, str(copies))
    subprocess.run(init["command"][:-1] + [local_script], check=True, capture_output=True, timeout=30)
    for key in SECRET_KEYS:
        assert (copies / key).read_text(encoding="utf-8") == key + "\n"
        assert (copies / key).stat().st_mode & 0o777 == 0o400, key
    assert raw["server"]["tls_cert"].startswith(mounts["tls"] + "/")
    # load it as `classroom serve --config` would, with the secret files where the pod has them
    for key in ("turn_secret", "db_password"):
        (tmp_path / key).write_text(key[0] * 64, encoding="utf-8")
        (tmp_path / key).chmod(0o600)
    local = text.replace(secret_dir, str(tmp_path))
    (tmp_path / "config.yaml").write_text(local, encoding="utf-8")
    config = load_config(tmp_path / "config.yaml", env={})
    assert config.server.demo_lesson is False and config.server.tls == "on"
    assert config.server.public_url.startswith("https://")
    assert config.media.turn_secret == "t" * 64 and config.database.password == "d" * 64


def test_no_secret_value_inline(objects: list[dict[str, Any]]) -> None:
    for workload, template in _pod_specs(objects):
        for c in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            for e in c.get("env", []):
                if "SECRET" in e["name"] or "PASSWORD" in e["name"]:
                    assert e["name"].endswith("_FILE"), (workload["metadata"]["name"], e["name"])
            assert not any(re.search(r"(secret|password)=", str(a), re.I) for a in c.get("command", [])), c["name"]
            assert not re.search(r"://[^@/\s]+:[^@/\s]+@", " ".join(map(str, c.get("command", [])))), c["name"]
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, workload["metadata"]["name"]
    # the repository holds no Secret object: it is made from files (make-objects.sh)
    for path in KUBE.glob("*.yaml"):
        assert all(d["kind"] != "Secret" for d in _docs(path.read_text(encoding="utf-8"))), path.name
