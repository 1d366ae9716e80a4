"""Prometheus figures of the schedule database (signaling/schedule/database.py): which backend,
calls refused while it was unavailable, reconnects, live-lesson calls that went ahead without it.
Plain ints read at scrape time (nothing on the hot path)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class ScheduleDatabaseCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def describe(self) -> Iterable[Any]:
        return self.collect()

    def collect(self) -> Iterable[Any]:
        db = self.store.database
        info = GaugeMetricFamily("classroom_schedule_database_info", "the schedule database's backend",
                                 labels=["backend"])
        info.add_metric([db.dialect], 1)
        yield info
        yield CounterMetricFamily("classroom_schedule_database_unavailable",
                                  "schedule database calls refused with database_unavailable",
                                  value=int(getattr(db, "failures", 0)))
        yield CounterMetricFamily("classroom_schedule_database_reconnects",
                                  "connections to the schedule database restored after a loss",
                                  value=int(getattr(db, "reconnects", 0)))
        yield CounterMetricFamily("classroom_schedule_outage_skips",
                                  "live-lesson calls (admit, join/leave records) that went ahead without the database",
                                  value=int(getattr(self.store, "outage_skips", 0)))
