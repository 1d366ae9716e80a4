"""Hands and floor as the server and the recorder really write them: the server's floor state
machine (signaling/floor.py) makes the events, the recorder's handler of ``floor`` messages
(recorder/worker.py) timestamps them into a real manifest, the analytics read it back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.manifest import Event, load_manifest
from analytics.participation import ClassroomStats, audible_intervals, floor_stats
from recorder.core import RecordingSession
from recorder.worker import LiveRecorder
from signaling.floor import Floor, FloorEvent


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


Step = tuple[float, str, tuple[str, ...]] | tuple[float, str, tuple[str, ...], dict[str, str]]


def record(tmp_path: Path, script: list[Step]) -> list[Event]:
    """Runs ``script`` ((lesson second, Floor method, args[, kwargs])) on a real Floor; every event goes
    to a real recorder as the server's ``floor`` message, stamped when it arrives (the same
    millisecond for the events of one action, as on the server)."""
    clock = Clock()
    floor = Floor()
    recorder = LiveRecorder("ws://unused", "unused", tmp_path)
    recorder.session = RecordingSession(tmp_path / "rec", "hands-1", clock=clock)
    start = clock.now
    floor.join("lead", "lead", 0)
    for cid in ("r1", "r2"):
        floor.join(cid, "remote", 0)
    for t_s, method, args, *kwargs in script:
        clock.now = start + t_s
        events: list[FloorEvent] = getattr(floor, method)(*args, int(t_s * 1000), **(kwargs[0] if kwargs else {}))
        for ev in events:
            recorder._on_floor({"type": "floor", **floor.snapshot(ev)})
    recorder.session.add_classroom("lead", "lead", "Lead")
    recorder.session.add_classroom("r1", "remote", "Remote 1")
    recorder.session.add_classroom("r2", "remote", "Remote 2")
    clock.now = start + 60
    recorder.session.close()
    return load_manifest(tmp_path / "rec").events


def stats_of(events: list[Event]) -> dict[str, ClassroomStats]:
    stats = {cid: ClassroomStats(cid) for cid in ("lead", "r1", "r2")}
    floor_stats(stats, events, 60.0)
    return stats


def test_hand_granted_by_the_lead_is_answered(tmp_path: Path) -> None:
    """The issue's lesson: a hand raised at 13.7 s, the floor granted at 16.2 s."""
    events = record(
        tmp_path,
        [(13.7, "raise_hand", ("r1",)), (16.2, "grant", ("lead", "r1")), (30.0, "revoke", ("lead", "r1"))],
    )
    lowered = [e for e in events if e.type == "hand_lowered"]
    granted = [e for e in events if e.type == "floor_granted"]
    assert len(lowered) == 1 and len(granted) == 1
    assert lowered[0].t_ms == granted[0].t_ms == 16200  # the same millisecond, lowering first
    assert lowered[0].data == {"by": "lead", "reason": "granted"}
    r1 = stats_of(events)["r1"]
    assert r1.unanswered_hands == 0
    assert r1.hand_wait_s == [pytest.approx(2.5)]
    assert r1.as_dict()["mean_hand_wait_s"] == 2.5
    assert r1.floor_s == pytest.approx(13.8)


def old_recording(events: list[Event]) -> list[Event]:
    """The same events as a recorder written before ``reason`` existed wrote them."""
    return [Event(e.t_ms, e.type, e.classroom_id, {k: v for k, v in e.data.items() if k != "reason"}) for e in events]


def test_old_recording_without_reason_either_order(tmp_path: Path) -> None:
    events = old_recording(record(tmp_path, [(13.7, "raise_hand", ("r1",)), (16.2, "grant", ("lead", "r1"))]))
    for order in (events, [*events[:1], *reversed(events[1:])]):
        r1 = stats_of(order)["r1"]
        assert (r1.unanswered_hands, r1.hand_wait_s) == (0, [pytest.approx(2.5)]), order
    # the recorder may also stamp the grant a few milliseconds after the lowering
    late = [
        Event(e.t_ms + 3 * (e.type in ("floor_granted", "spotlight")), e.type, e.classroom_id, e.data) for e in events
    ]
    assert stats_of(late)["r1"].hand_wait_s == [pytest.approx(2.503)]


def test_hand_lowered_by_itself_or_dismissed_is_unanswered(tmp_path: Path) -> None:
    events = record(
        tmp_path,
        [
            (5.0, "raise_hand", ("r1",)),
            (8.0, "lower_hand", ("r1",)),  # the classroom changed its mind
            (9.0, "raise_hand", ("r2",)),
            (12.0, "lower_hand", ("r2",), {"by": "lead"}),  # the lead dismissed it
            (20.0, "grant", ("lead", "r1")),  # a grant without a raised hand
        ],
    )
    assert [e.data.get("reason") for e in events if e.type == "hand_lowered"] == [None, None]
    stats = stats_of(events)
    assert (stats["r1"].hand_raises, stats["r1"].unanswered_hands, stats["r1"].hand_wait_s) == (1, 1, [])
    assert (stats["r2"].hand_raises, stats["r2"].unanswered_hands) == (1, 1)
    assert stats["r1"].floor_grants == 1


def test_hand_of_a_classroom_gone_for_good(tmp_path: Path) -> None:
    events = record(tmp_path, [(5.0, "raise_hand", ("r2",)), (7.0, "leave", ("r2",))])
    # leave(graceful=False) keeps the hand for the grace; expire() drops it with reason "gone"
    floor_events = [e for e in events if e.classroom_id == "r2"]
    assert [e.type for e in floor_events] == ["hand_raised", "leave"]
    assert stats_of(events)["r2"].unanswered_hands == 1
    gone = [*events, Event(40_000, "hand_lowered", "r2", {"reason": "gone"}), Event(40_000, "floor_granted", "r2")]
    r2 = stats_of(gone)["r2"]
    assert r2.unanswered_hands == 1 and r2.hand_wait_s == []


def test_expired_hand_has_reason_gone() -> None:
    floor = Floor()
    floor.join("lead", "lead", 0)
    floor.join("r1", "remote", 0)
    floor.raise_hand("r1", 1000)
    floor.leave("r1", 2000)
    events = floor.expire(2000 + floor.config.reconnect_grace_ms)
    assert [(e.type, e.reason) for e in events] == [("hand_lowered", "gone")]
    assert events[0].to_json()["reason"] == "gone"


def test_grant_event_json_names_the_cause() -> None:
    floor = Floor()
    floor.join("lead", "lead", 0)
    floor.join("r1", "remote", 0)
    floor.raise_hand("r1", 100)
    lowered, granted, _spotlight = floor.grant("lead", "r1", 200)
    assert lowered.to_json() == {
        "t_ms": 200,
        "type": "hand_lowered",
        "classroom_id": "r1",
        "by": "lead",
        "reason": "granted",
    }
    assert "reason" not in granted.to_json()
    assert floor.snapshot(lowered)["event"]["reason"] == "granted"


def test_manifest_keeps_reason(tmp_path: Path) -> None:
    record(tmp_path, [(1.0, "raise_hand", ("r1",)), (2.0, "grant", ("lead", "r1"))])
    raw = json.loads((tmp_path / "rec" / "manifest.json").read_text())
    assert {"t_ms": 2000, "type": "hand_lowered", "classroom_id": "r1", "by": "lead", "reason": "granted"} in [
        {k: v for k, v in e.items() if k in ("t_ms", "type", "classroom_id", "by", "reason")} for e in raw["events"]
    ]


def test_audible_intervals_follow_floor_mute_and_connection(tmp_path: Path) -> None:
    events = record(
        tmp_path,
        [
            (2.0, "mute", ("lead", "r2")),  # muted before it has the floor: stays muted
            (5.0, "grant", ("lead", "r1")),
            (10.0, "mute", ("lead", "r1")),
            (12.0, "unmute", ("lead", "r1")),
            (15.0, "leave", ("r1",)),  # disconnected: keeps the floor, is not forwarded
            (17.0, "join", ("r1", "remote")),
            (20.0, "revoke", ("lead", "r1")),
            (30.0, "grant", ("lead", "r2")),
        ],
    )
    audible = audible_intervals(events, ["r1", "r2"], 60.0)
    assert audible["r1"] == [[5.0, 10.0], [12.0, 15.0], [17.0, 20.0]]
    assert audible["r2"] == []  # held the floor from 30 s but muted all along


def test_audible_until_the_end(tmp_path: Path) -> None:
    events = record(tmp_path, [(50.0, "grant", ("lead", "r2"))])
    assert audible_intervals(events, ["r1", "r2"], 60.0) == {"r1": [], "r2": [[50.0, 60.0]]}
