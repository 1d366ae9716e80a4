"""Prometheus figures of a cluster node (signaling/routing/redis.py): whether Redis is reachable,
the live nodes it sees, Redis outages and returns, joins refused with ``cluster_unavailable``,
nodes declared dead, relayed messages, placements rebuilt. Plain ints read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

COUNTERS: dict[str, tuple[str, str]] = {
    "redis_outages": ("classroom_cluster_redis_outages", "times Redis became unreachable"),
    "redis_restored": ("classroom_cluster_redis_restored", "times Redis was reachable again"),
    "unavailable_joins": ("classroom_cluster_unavailable_joins", "joins refused with cluster_unavailable"),
    "nodes_declared_dead": ("classroom_cluster_nodes_declared_dead", "other nodes declared dead (heartbeat TTL)"),
    "relayed_to_owner": ("classroom_cluster_relayed_to_owner",
                         "messages relayed from classrooms connected here to their lessons' nodes"),
    "relayed_to_client": ("classroom_cluster_relayed_to_client",
                          "messages relayed from the lessons' nodes to classrooms connected here"),
    "placements_rebuilt": ("classroom_cluster_placements_rebuilt", "lessons claimed again after (re)connecting"),
    "lessons_given_up": ("classroom_cluster_lessons_given_up",
                         "lessons closed here because another node held them after an outage"),
    "floors_restored": ("classroom_cluster_floors_restored",
                        "lessons opened here with the floor state (hands, floor, mute, spotlight) their previous "
                        "node left"),
}


class ClusterCollector(Collector):
    def __init__(self, router: Any) -> None:
        self.router = router

    def describe(self) -> Iterable[Any]:
        return self.collect()

    def collect(self) -> Iterable[Any]:
        r = self.router
        yield GaugeMetricFamily("classroom_cluster_redis_up", "1 while this node reaches Redis",
                                value=1 if r.available else 0)
        yield GaugeMetricFamily("classroom_cluster_nodes", "live nodes this node sees in the registry",
                                value=len(r.live))
        yield GaugeMetricFamily("classroom_cluster_relayed_connections",
                                "classrooms connected here whose lessons other nodes hold", value=len(r.edges))
        yield GaugeMetricFamily("classroom_cluster_hosted_connections",
                                "sessions here of classrooms connected to other nodes", value=len(r.hosted))
        counters = vars(r.counters)
        for key, (name, help_text) in COUNTERS.items():
            yield CounterMetricFamily(name, help_text, value=int(counters.get(key, 0)))
