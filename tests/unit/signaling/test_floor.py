"""Floor control: one test per rule, then a stateful property test over random action sequences."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from signaling.floor import ERROR_CODES, Floor, FloorConfig, FloorError, FloorEvent
from signaling.tokens import ROLES

GRACE = 30_000


def lesson(config: FloorConfig | None = None) -> Floor:
    f = Floor(config or FloorConfig())
    f.join("L", "lead", 0)
    for cid in ("A", "B", "C"):
        f.join(cid, "remote", 0)
    f.join("O", "observer", 0)
    f.join("REC", "recorder", 0)
    return f


def types(events: list[FloorEvent]) -> list[tuple[str, str | None]]:
    return [(e.type, e.classroom_id) for e in events]


def err(code: str, fn, *args, **kwargs) -> FloorError:  # type: ignore[no-untyped-def]
    with pytest.raises(FloorError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


# ---------------------------------------------------------------------------------- membership
def test_join_events_and_hidden_roles() -> None:
    f = Floor()
    (ev,) = f.join("L", "lead", 5)
    assert ev == FloorEvent(5, "join", "L", "L", hidden=False)
    (ev,) = f.join("O", "observer", 6)
    assert ev.hidden and ev.type == "join"
    (ev,) = f.join("REC", "recorder", 7)
    assert ev.hidden
    assert f.members() == {"L": "lead", "O": "observer", "REC": "recorder"}
    assert [e.t_ms for e in f.history] == [5, 6, 7]
    # the snapshot's event is the latest visible one
    assert f.snapshot()["event"] == {"t_ms": 5, "type": "join", "classroom_id": "L", "by": "L"}


def test_unknown_role_is_forbidden() -> None:
    err("forbidden", Floor().join, "X", "teacher", 0)


def test_second_lead_while_first_connected_is_lead_present() -> None:
    f = lesson()
    err("lead_present", f.join, "L2", "lead", 1)
    f.leave("L", 2)
    f.join("L2", "lead", 3)  # the old lead is disconnected: replaced
    assert f.lead == "L2" and f.role_of("L") is None


def test_lead_reconnects_same_id() -> None:
    f = lesson()
    f.leave("L", 1)
    assert f.lead == "L" and not f.is_connected("L")
    err("bad_state", f.grant, "L", "A", 2)  # a disconnected lead cannot act
    f.join("L", "lead", 3)
    f.grant("L", "A", 4)


def test_leave_unknown_and_twice() -> None:
    f = lesson()
    err("unknown_classroom", f.leave, "Z", 1)
    f.leave("A", 1)
    err("bad_state", f.leave, "A", 2)


# ------------------------------------------------------------------------------------- hands
def test_raise_lower_in_order() -> None:
    f = lesson()
    assert types(f.raise_hand("B", 1)) == [("hand_raised", "B")]
    f.raise_hand("A", 2)
    f.raise_hand("C", 3)
    assert f.queue == ["B", "A", "C"]
    assert types(f.lower_hand("A", 4)) == [("hand_lowered", "A")]
    assert f.queue == ["B", "C"]
    snap = f.snapshot()
    assert snap["queue"] == ["B", "C"]
    assert snap["event"] == {"t_ms": 4, "type": "hand_lowered", "classroom_id": "A", "by": "A"}


def test_raise_twice_and_lower_without_raise_are_bad_state() -> None:
    f = lesson()
    f.raise_hand("A", 1)
    err("bad_state", f.raise_hand, "A", 2)
    err("bad_state", f.lower_hand, "B", 2)
    assert f.queue == ["A"]


@pytest.mark.parametrize("role_id", ["L", "O", "REC"])
def test_only_remote_raises_hands(role_id: str) -> None:
    f = lesson()
    e = err("forbidden", f.raise_hand, role_id, 1)
    assert "raise_hand" in e.message and str(f.role_of(role_id)) in e.message
    assert f.queue == []


def test_lead_dismisses_a_hand_remote_cannot_lower_anothers() -> None:
    f = lesson()
    f.raise_hand("A", 1)
    e = err("forbidden", f.lower_hand, "A", 2, by="B")
    assert e.message == "role remote may not dismiss_hand"
    err("forbidden", f.lower_hand, "A", 2, by="O")
    (ev,) = f.lower_hand("A", 3, by="L")
    assert ev == FloorEvent(3, "hand_lowered", "A", "L")


def test_unknown_classroom() -> None:
    f = lesson()
    err("unknown_classroom", f.raise_hand, "Z", 1)
    err("unknown_classroom", f.grant, "L", "Z", 1)
    err("unknown_classroom", f.grant, "Z", "A", 1)
    err("unknown_classroom", f.revoke, "L", "Z", 1)
    err("unknown_classroom", f.mute, "L", "Z", 1)
    err("unknown_classroom", f.unmute, "L", "Z", 1)
    err("unknown_classroom", f.spotlight, "L", "Z", 1)
    err("unknown_classroom", f.lower_hand, "Z", 1, by="L")


# ------------------------------------------------------------------------------------- floor
def test_grant_lowers_hand_and_spotlights() -> None:
    f = lesson()
    f.raise_hand("A", 1)
    f.raise_hand("B", 2)
    events = f.grant("L", "B", 3)
    assert types(events) == [("hand_lowered", "B"), ("floor_granted", "B"), ("spotlight", "B")]
    assert all(e.by == "L" and e.t_ms == 3 for e in events)
    assert f.queue == ["A"] and f.granted == ["B"] and f.spotlighted == "B"
    assert f.audible("B") and not f.audible("A") and not f.audible("L")
    assert f.snapshot() == {
        "queue": ["A"],
        "granted": ["B"],
        "spotlight": "B",
        "muted": [],
        "event": {"t_ms": 3, "type": "spotlight", "classroom_id": "B", "by": "L"},
    }


def test_grant_without_raised_hand() -> None:
    f = lesson()
    assert types(f.grant("L", "C", 1)) == [("floor_granted", "C"), ("spotlight", "C")]


@pytest.mark.parametrize("actor", ["A", "O", "REC"])
def test_only_lead_grants(actor: str) -> None:
    f = lesson()
    e = err("forbidden", f.grant, actor, "B", 1)
    assert e.message == f"role {f.role_of(actor)} may not grant_floor"
    assert f.granted == []


@pytest.mark.parametrize("target", ["L", "O", "REC"])
def test_only_remote_holds_the_floor(target: str) -> None:
    f = lesson()
    e = err("forbidden", f.grant, "L", target, 1)
    assert e.message == f"role {f.role_of(target)} may not hold the floor"
    err("forbidden", f.mute, "L", target, 1)
    err("forbidden", f.spotlight, "L", target, 1)


def test_floor_full_and_grant_twice() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    err("bad_state", f.grant, "L", "A", 2)
    e = err("floor_full", f.grant, "L", "B", 2)
    assert "1" in e.message
    f.revoke("L", "A", 3)
    f.grant("L", "B", 4)


def test_several_holders_spotlight_follows_latest() -> None:
    f = lesson(FloorConfig(max_granted=2))
    f.grant("L", "A", 1)
    f.grant("L", "B", 2)
    assert f.granted == ["A", "B"] and f.spotlighted == "B"
    err("floor_full", f.grant, "L", "C", 3)
    assert types(f.revoke("L", "B", 4)) == [("floor_revoked", "B"), ("spotlight", "A")]
    assert types(f.revoke("L", "A", 5)) == [("floor_revoked", "A"), ("spotlight", None)]
    assert f.spotlighted is None


def test_revoke_not_granted_and_forbidden() -> None:
    f = lesson()
    err("bad_state", f.revoke, "L", "A", 1)
    f.grant("L", "A", 1)
    err("forbidden", f.revoke, "A", "A", 2)
    err("forbidden", f.revoke, "O", "A", 2)
    assert f.granted == ["A"]


def test_revoke_keeps_a_manual_spotlight_elsewhere() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    f.spotlight("L", "C", 2)
    assert types(f.revoke("L", "A", 3)) == [("floor_revoked", "A")]
    assert f.spotlighted == "C"


def test_grant_lowers_hand_off_keeps_hand() -> None:
    f = lesson(FloorConfig(grant_lowers_hand=False))
    f.raise_hand("A", 1)
    assert types(f.grant("L", "A", 2)) == [("floor_granted", "A"), ("spotlight", "A")]
    assert f.queue == ["A"] and f.granted == ["A"]
    f.lower_hand("A", 3)
    f.raise_hand("A", 4)  # allowed while holding the floor in this mode


def test_grant_lowers_hand_on_no_raise_while_holding() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    err("bad_state", f.raise_hand, "A", 2)


def test_spotlight_follows_floor_off() -> None:
    f = lesson(FloorConfig(spotlight_follows_floor=False))
    assert types(f.grant("L", "A", 1)) == [("floor_granted", "A")]
    assert f.spotlighted is None
    f.spotlight("L", "A", 2)
    f.revoke("L", "A", 3)
    assert f.spotlighted == "A"  # a spotlight without the floor is allowed


# -------------------------------------------------------------------------------------- mute
def test_mute_unmute() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    assert f.audible("A")
    assert types(f.mute("L", "A", 2)) == [("mute", "A")]
    assert not f.audible("A") and f.muted == {"A"}
    err("bad_state", f.mute, "L", "A", 3)
    err("forbidden", f.unmute, "A", "A", 3)  # the lead's mute is authoritative
    err("forbidden", f.mute, "B", "A", 3)
    f.revoke("L", "A", 4)
    f.grant("L", "A", 5)
    assert not f.audible("A")  # grant does not lift the mute
    assert types(f.unmute("L", "A", 6)) == [("unmute", "A")]
    assert f.audible("A")
    err("bad_state", f.unmute, "L", "A", 7)


def test_mute_without_floor_then_grant() -> None:
    f = lesson()
    f.mute("L", "B", 1)
    f.grant("L", "B", 2)
    assert not f.audible("B")
    assert f.snapshot()["muted"] == ["B"]


# --------------------------------------------------------------------------------- spotlight
def test_spotlight_without_audio() -> None:
    f = lesson()
    (ev,) = f.spotlight("L", "C", 1)
    assert ev == FloorEvent(1, "spotlight", "C", "L")
    assert f.spotlighted == "C" and not f.audible("C")
    err("bad_state", f.spotlight, "L", "C", 2)
    (ev,) = f.spotlight("L", None, 3)
    assert ev.classroom_id is None and f.spotlighted is None
    err("bad_state", f.spotlight, "L", None, 4)
    e = err("forbidden", f.spotlight, "A", "A", 5)
    assert e.message == "role remote may not spotlight"


def test_spotlight_a_disconnected_classroom_is_bad_state() -> None:
    f = lesson()
    f.leave("A", 1)
    err("bad_state", f.spotlight, "L", "A", 2)
    err("bad_state", f.grant, "L", "A", 2)


# ----------------------------------------------------------------------- disconnect / grace
def test_disconnect_keeps_hand_and_floor_reconnect_restores() -> None:
    f = lesson()
    f.raise_hand("B", 1)
    f.grant("L", "A", 2)
    f.mute("L", "A", 3)
    f.unmute("L", "A", 4)
    events = f.leave("A", 10)
    assert types(events) == [("leave", "A"), ("spotlight", None)]
    assert all(e.by is None for e in events[1:])
    f.leave("B", 11)
    assert f.granted == ["A"] and f.queue == ["B"]
    assert not f.audible("A") and f.spotlighted is None and f.away == {"A", "B"}
    assert f.expire(10 + GRACE - 1) == []
    assert types(f.join("A", "remote", 20)) == [("join", "A"), ("spotlight", "A")]
    assert f.audible("A") and f.spotlighted == "A"
    f.join("B", "remote", 21)
    assert f.queue == ["B"]
    assert f.expire(10 + GRACE + 5) == []


def test_grace_expiry_drops_everything() -> None:
    f = lesson()
    f.raise_hand("B", 1)
    f.grant("L", "A", 2)
    f.mute("L", "A", 3)
    f.raise_hand("C", 4)
    f.leave("A", 10)
    f.leave("C", 12)
    events = f.expire(10 + GRACE)
    assert types(events) == [("floor_revoked", "A"), ("unmute", "A")]
    assert all(e.by is None and e.t_ms == 10 + GRACE for e in events)
    assert f.role_of("A") is None and f.granted == [] and f.queue == ["B", "C"]
    assert types(f.expire(12 + GRACE)) == [("hand_lowered", "C")]
    assert f.queue == ["B"]
    # coming back after expiry is a fresh join
    assert types(f.join("A", "remote", 50_000)) == [("join", "A")]
    assert f.granted == [] and f.muted == frozenset()


def test_graceful_leave_drops_at_once() -> None:
    f = lesson()
    f.raise_hand("B", 1)
    f.grant("L", "A", 2)
    events = f.leave("A", 3, graceful=True)
    assert types(events) == [("leave", "A"), ("spotlight", None), ("floor_revoked", "A")]
    assert types(f.leave("B", 4, graceful=True)) == [("leave", "B"), ("hand_lowered", "B")]
    assert f.queue == [] and f.granted == [] and f.members().keys() == {"L", "C", "O", "REC"}


def test_disconnect_moves_spotlight_to_other_holder_and_back() -> None:
    f = lesson(FloorConfig(max_granted=2))
    f.grant("L", "A", 1)
    f.grant("L", "B", 2)
    assert types(f.leave("B", 3)) == [("leave", "B"), ("spotlight", "A")]
    assert types(f.join("B", "remote", 4)) == [("join", "B"), ("spotlight", "B")]


def test_reconnect_does_not_override_leads_spotlight_choice() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    f.leave("A", 2)
    f.spotlight("L", "C", 3)
    assert types(f.join("A", "remote", 4)) == [("join", "A")]
    assert f.spotlighted == "C"


def test_session_replaced_without_leave_keeps_state() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    f.raise_hand("B", 2)
    assert types(f.join("A", "remote", 3)) == [("join", "A")]
    assert f.granted == ["A"] and f.queue == ["B"] and f.audible("A")


def test_rejoin_with_another_role_drops_old_state() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    f.mute("L", "A", 2)
    events = f.join("A", "observer", 3)
    assert types(events) == [
        ("floor_revoked", "A"),
        ("spotlight", None),
        ("unmute", "A"),
        ("leave", "A"),
        ("join", "A"),
    ]
    assert events[-1].hidden and not events[-2].hidden
    assert f.role_of("A") == "observer" and f.granted == [] and f.muted == frozenset()


def test_removed_lead_does_not_keep_floor_state_elsewhere() -> None:
    f = lesson()
    f.grant("L", "A", 1)
    f.leave("L", 2)
    f.expire(2 + GRACE)
    assert f.lead is None and f.granted == ["A"]  # the floor outlives the lead's absence
    f.join("L", "lead", 3 + GRACE)
    f.revoke("L", "A", 4 + GRACE)


def test_observer_leave_is_hidden() -> None:
    f = lesson()
    (ev,) = f.leave("O", 1)
    assert ev.hidden
    assert f.snapshot()["event"]["type"] != "leave"


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        FloorConfig(max_granted=0)
    with pytest.raises(ValueError):
        FloorConfig(reconnect_grace_ms=-1)


# ------------------------------------------------------------------ stateful property test
IDS = ("L", "L2", "A", "B", "C", "D", "O", "REC")
ROLE = {
    "L": "lead",
    "L2": "lead",
    "A": "remote",
    "B": "remote",
    "C": "remote",
    "D": "remote",
    "O": "observer",
    "REC": "recorder",
}
ids = st.sampled_from(IDS)
# biased so that most actions are allowed and reach interesting states; the rest are forbidden
actors = st.one_of(st.just("L"), ids)
targets = st.one_of(st.sampled_from(("A", "B", "C", "D")), ids)
targets_or_none = st.one_of(st.none(), targets)


def replay(state: dict, events: list[FloorEvent]) -> dict:  # type: ignore[type-arg]
    """Apply events to a snapshot: the events must explain every change."""
    queue, granted = list(state["queue"]), list(state["granted"])
    muted, spotlight = set(state["muted"]), state["spotlight"]
    for e in events:
        if e.type == "hand_raised":
            assert e.classroom_id not in queue
            queue.append(e.classroom_id)
        elif e.type == "hand_lowered":
            queue.remove(e.classroom_id)
        elif e.type == "floor_granted":
            assert e.classroom_id not in granted
            granted.append(e.classroom_id)
        elif e.type == "floor_revoked":
            granted.remove(e.classroom_id)
        elif e.type == "mute":
            assert e.classroom_id not in muted
            muted.add(e.classroom_id)
        elif e.type == "unmute":
            muted.remove(e.classroom_id)
        elif e.type == "spotlight":
            assert e.classroom_id != spotlight
            spotlight = e.classroom_id
        else:
            assert e.type in ("join", "leave")
    return {"queue": queue, "granted": granted, "muted": sorted(muted), "spotlight": spotlight}


class FloorMachine(RuleBasedStateMachine):
    config = FloorConfig(reconnect_grace_ms=1_000)

    def __init__(self) -> None:
        super().__init__()
        self.floor = Floor(self.config)
        self.t = 0
        self.role = dict(ROLE)

    @initialize()
    def everybody_joins(self) -> None:
        for cid in ("L", "A", "B", "C", "D", "O", "REC"):
            self._do(self.floor.join, cid, self.role[cid])

    def _state(self) -> dict:  # type: ignore[type-arg]
        s = self.floor.snapshot()
        s.pop("event")
        return s

    def _do(self, fn, *args, **kwargs) -> list[FloorEvent] | None:  # type: ignore[no-untyped-def]
        self.t += 7
        before = self._state()
        history_len = len(self.floor.history)
        try:
            events = fn(*args, self.t, **kwargs)
        except FloorError as exc:
            assert exc.code in ERROR_CODES
            assert exc.message
            if exc.code == "forbidden":
                assert "may not" in exc.message
            # an error changes nothing
            assert self._state() == before
            assert len(self.floor.history) == history_len
            return None
        assert events is not None
        assert all(e.t_ms == self.t for e in events)
        assert self.floor.history[history_len:] == events
        assert replay(before, events) == self._state()
        return events

    def _pick(self, data: st.DataObject, preferred: list[str]) -> str:
        """Mostly a classroom the action suits (e.g. a granted one for revoke), else any."""
        if preferred and data.draw(st.integers(0, 3)) > 0:
            return data.draw(st.sampled_from(preferred))
        return data.draw(targets)

    @rule(cid=ids)
    def join(self, cid: str) -> None:
        self._do(self.floor.join, cid, self.role[cid])

    @rule(cid=ids, role=st.sampled_from(ROLES), dice=st.integers(0, 3))
    def join_with_any_role(self, cid: str, role: str, dice: int) -> None:
        if dice == 0 and self._do(self.floor.join, cid, role) is not None:
            self.role[cid] = role

    @rule(cid=ids, graceful=st.booleans())
    def leave(self, cid: str, graceful: bool) -> None:
        self._do(lambda c, t: self.floor.leave(c, t, graceful=graceful), cid)

    @rule(cid=ids)
    def reconnect(self, cid: str) -> None:
        if self.floor.is_connected(cid):
            self._do(self.floor.leave, cid)
            self._do(self.floor.join, cid, self.floor.role_of(cid))

    @rule(dt=st.integers(0, 1_500))
    def expire(self, dt: int) -> None:
        self.t += dt
        self._do(self.floor.expire)

    @rule()
    def expire_all(self) -> None:
        self.t += self.config.reconnect_grace_ms
        self._do(self.floor.expire)
        f = self.floor
        connected_remotes = {
            c for c, r in f.members().items() if r == "remote" and f.is_connected(c)
        }
        assert set(f.granted) <= connected_remotes
        assert set(f.queue) <= connected_remotes
        assert set(f.muted) <= connected_remotes
        assert f.away == frozenset()

    @rule(cid=targets)
    def raise_hand(self, cid: str) -> None:
        self._do(self.floor.raise_hand, cid)

    @rule(data=st.data(), by=st.one_of(st.none(), actors))
    def lower_hand(self, data: st.DataObject, by: str | None) -> None:
        cid = self._pick(data, self.floor.queue)
        self._do(lambda c, t: self.floor.lower_hand(c, t, by=by), cid)

    @rule(by=actors, data=st.data())
    def grant(self, by: str, data: st.DataObject) -> None:
        self._do(self.floor.grant, by, self._pick(data, self.floor.queue))

    @rule(by=actors, data=st.data())
    def revoke(self, by: str, data: st.DataObject) -> None:
        self._do(self.floor.revoke, by, self._pick(data, self.floor.granted))

    @rule(by=actors, cid=targets)
    def mute(self, by: str, cid: str) -> None:
        self._do(self.floor.mute, by, cid)

    @rule(by=actors, data=st.data())
    def unmute(self, by: str, data: st.DataObject) -> None:
        self._do(self.floor.unmute, by, self._pick(data, sorted(self.floor.muted)))

    @rule(by=actors, cid=targets_or_none)
    def spotlight(self, by: str, cid: str | None) -> None:
        self._do(self.floor.spotlight, by, cid)

    @invariant()
    def invariants(self) -> None:
        f = self.floor
        members = f.members()
        remotes = {c for c, r in members.items() if r == "remote"}
        connected = {c for c in members if f.is_connected(c)}
        queue, granted = f.queue, f.granted
        assert len(queue) == len(set(queue))
        assert len(granted) == len(set(granted))
        assert len(granted) <= self.config.max_granted
        # only remote classrooms are ever in the queue, granted, muted or spotlighted
        assert set(queue) <= remotes and set(granted) <= remotes and set(f.muted) <= remotes
        if self.config.grant_lowers_hand:
            assert not set(queue) & set(granted)
        assert f.spotlighted is None or f.spotlighted in (remotes & connected)
        leads = [c for c, r in members.items() if r == "lead"]
        assert len(leads) <= 1
        for c in IDS:
            expected = c in granted and c not in f.muted and c in connected
            assert f.audible(c) == expected
        assert f.away == frozenset(members) - connected
        snap = f.snapshot()
        assert snap["queue"] == queue and snap["granted"] == granted
        assert snap["spotlight"] == f.spotlighted and snap["muted"] == sorted(f.muted)
        # carried over to a fresh floor (the lesson's next node) and every member back: the same
        # hands, floor and mute; the same spotlight when nobody was away
        carried = f.carried()
        again = Floor(self.config)
        again.restore(json.loads(json.dumps(carried)), self.t)
        assert again.away == frozenset(carried["members"]) and not again.history
        for cid, role in carried["members"].items():
            again.join(cid, role, self.t + 1)
        assert again.queue == [c for c in queue if c in carried["members"]]
        assert again.granted == granted and again.muted == f.muted
        if not f.away:
            assert again.spotlighted == f.spotlighted


class FloorMachineSeveral(FloorMachine):
    config = FloorConfig(
        max_granted=2,
        grant_lowers_hand=False,
        spotlight_follows_floor=False,
        reconnect_grace_ms=500,
    )


class FloorMachineThree(FloorMachine):
    config = FloorConfig(max_granted=3, reconnect_grace_ms=0)


_settings = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestFloorMachine = FloorMachine.TestCase
TestFloorMachine.settings = _settings
TestFloorMachineSeveral = FloorMachineSeveral.TestCase
TestFloorMachineSeveral.settings = _settings
TestFloorMachineThree = FloorMachineThree.TestCase
TestFloorMachineThree.settings = _settings


# ---------------------------------------------------------------------------------- carry-over
def test_carried_state_rebuilds_hands_floor_mute_and_spotlight_on_a_new_floor() -> None:
    f = lesson()
    f.raise_hand("A", 1)
    f.raise_hand("B", 2)
    f.grant("L", "A", 3)  # spotlight follows the floor
    f.mute("L", "C", 4)
    carried = f.carried()
    assert carried == {"members": {"L": "lead", "A": "remote", "B": "remote", "C": "remote"},
                       "queue": ["B"], "granted": ["A"], "muted": ["C"], "spotlight": "A"}
    new = Floor(FloorConfig())
    new.restore(carried, 100)
    # nobody is connected on the new node yet: nothing audible, nobody spotlighted, all within grace
    assert new.away == {"L", "A", "B", "C"} and new.history == []
    assert new.queue == ["B"] and new.granted == ["A"] and new.muted == {"C"}
    assert new.spotlighted is None and not new.audible("A")
    assert new.snapshot()["granted"] == ["A"]  # the first page to join sees the floor as it was
    new.join("L", "lead", 200)
    assert types(new.join("A", "remote", 300)) == [("join", "A"), ("spotlight", "A")]
    assert new.spotlighted == "A" and new.audible("A")
    new.join("B", "remote", 400)
    assert new.queue == ["B"]
    # whoever does not come back within the grace is dropped as after any disconnect
    assert types(new.expire(100 + GRACE)) == [("unmute", "C")]


def test_a_restored_floor_needs_an_empty_floor_and_a_state_carried_makes() -> None:
    with pytest.raises(ValueError):
        lesson().restore({"members": {}}, 0)
    for bad in ({}, {"members": []}, {"members": {"X": "observer"}},
                {"members": {"L": "lead", "M": "lead"}}, {"members": {"A": "remote"}, "queue": "A"}):
        with pytest.raises(ValueError):
            Floor().restore(bad, 0)  # type: ignore[arg-type]
    f = Floor()
    # ids that are not remote members are left out
    f.restore({"members": {"L": "lead", "A": "remote"}, "queue": ["A", "Z", "L"], "granted": ["Z"],
               "muted": ["L"], "spotlight": "Z"}, 0)
    assert f.queue == ["A"] and f.granted == [] and f.muted == frozenset()
    f.join("A", "remote", 1)
    assert f.spotlighted is None


def test_observers_and_recorders_are_not_carried() -> None:
    f = lesson()
    assert set(f.carried()["members"]) == {"L", "A", "B", "C"}


def test_a_spotlighted_classroom_away_just_now_is_carried_with_its_spotlight() -> None:
    f = lesson()
    f.spotlight("L", "B", 1)
    f.leave("B", 2)  # disconnected: the spotlight moves to nobody, and comes back on its return
    assert f.spotlighted is None and f.carried()["spotlight"] == "B"
