"""Fixtures of the cluster tests: a real redis-server (tests/redis_server.py) and node processes
(tests/cluster_nodes.py); ``deployment`` is one scenario target, parametrised over the two
routers: ``local`` (one node, LocalRouter) and ``redis`` (two nodes and Redis; the lead's
connection on node A, the remote classrooms' on node B)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sfu import glue
from signaling.tokens import TokenSigner
from tests.cluster_nodes import NodeProcess, shared_secret
from tests.redis_server import RedisServer, start_redis, stop_redis


@pytest.fixture(scope="session", autouse=True)
def loopback_ice() -> None:
    glue.configure_ice(["127.0.0.1"])  # the test's own aiortc peers, as the nodes do


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        stop_redis(server)


@dataclass
class Deployment:
    router: str  # "local" or "redis"
    nodes: list[NodeProcess]
    signer: TokenSigner

    @property
    def lead_url(self) -> str:
        return self.nodes[0].base_url

    @property
    def remote_url(self) -> str:
        return self.nodes[-1].base_url

    def token(self, lesson: str, classroom: str, role: str) -> str:
        return self.signer.issue(lesson, classroom, role, classroom)


def start_nodes(base: Path, redis_url: str | None, count: int,
                env: dict[str, str] | None = None) -> tuple[list[NodeProcess], TokenSigner]:
    secret_file, signer = shared_secret(base / "secret")
    nodes = [NodeProcess(chr(ord("a") + i), base / "data", secret_file, redis_url, extra_env=dict(env or {}))
             for i in range(count)]
    try:
        for n in nodes:
            n.start(wait=False)
        for n in nodes:
            n.wait_ready()
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes, signer


@pytest.fixture(scope="module", params=["local", "redis"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp(f"deployment-{request.param}")
    redis: RedisServer | None = None
    if request.param == "redis":
        redis = start_redis()
    nodes: list[NodeProcess] = []
    try:
        nodes, signer = start_nodes(base, redis.url if redis else None, 2 if redis else 1)
        yield Deployment(request.param, nodes, signer)
    finally:
        for n in nodes:
            n.stop()
        if redis is not None:
            stop_redis(redis)
