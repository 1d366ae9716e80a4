"""Every cell of the role x action table, publish sources per kind, track limits, visibility."""

from __future__ import annotations

import itertools

import pytest

from signaling import permissions
from signaling.permissions import (
    ACTIONS,
    PermissionDenied,
    allowed,
    check,
    check_publish,
    may_hold_floor,
    track_limit,
    visible_to_classrooms,
)
from signaling.tokens import ROLES

# the specification, written out independently of the module's tables
EXPECTED_ACTIONS = {
    "lead": {
        "publish",
        "subscribe",
        "dismiss_hand",
        "grant_floor",
        "revoke_floor",
        "mute",
        "unmute",
        "spotlight",
        "end_lesson",
    },
    "remote": {"publish", "subscribe", "raise_hand", "lower_hand"},
    "observer": {"subscribe", "note"},
    "recorder": {"subscribe"},
}
EXPECTED_SOURCES = {
    ("lead", "video"): {"teacher", "screen", "students"},
    ("lead", "audio"): {"teacher", "students"},
    ("remote", "video"): {"students"},
    ("remote", "audio"): {"students"},
}
SOURCES = ("teacher", "screen", "students", "whiteboard")


def test_action_list() -> None:
    assert set(ACTIONS) == {
        "publish",
        "subscribe",
        "raise_hand",
        "lower_hand",
        "dismiss_hand",
        "grant_floor",
        "revoke_floor",
        "mute",
        "unmute",
        "spotlight",
        "end_lesson",
        "note",
    }


@pytest.mark.parametrize(("role", "action"), list(itertools.product(ROLES, ACTIONS)))
def test_role_action_cell(role: str, action: str) -> None:
    expected = action in EXPECTED_ACTIONS[role]
    assert allowed(role, action) is expected
    if expected:
        check(role, action)  # does not raise
    else:
        with pytest.raises(PermissionDenied) as info:
            check(role, action)
        assert info.value.code == "forbidden"
        assert info.value.message == f"role {role} may not {action}"
        assert str(info.value) == info.value.message


@pytest.mark.parametrize(
    ("role", "kind", "source"), list(itertools.product(ROLES, ("video", "audio"), SOURCES))
)
def test_publish_source_cell(role: str, kind: str, source: str) -> None:
    expected = source in EXPECTED_SOURCES.get((role, kind), set())
    assert allowed(role, "publish", source=source, kind=kind) is expected
    if not expected:
        with pytest.raises(PermissionDenied) as info:
            check(role, "publish", source=source, kind=kind)
        msg = info.value.message
        assert msg.startswith(f"role {role} may not publish")
        if role in ("lead", "remote"):
            assert source in msg


@pytest.mark.parametrize(("role", "source"), list(itertools.product(ROLES, SOURCES)))
def test_publish_source_any_kind(role: str, source: str) -> None:
    expected = any(source in EXPECTED_SOURCES.get((role, k), set()) for k in ("video", "audio"))
    assert allowed(role, "publish", source=source) is expected


def test_messages_name_role_and_source() -> None:
    with pytest.raises(PermissionDenied, match="^role remote may not publish source teacher$"):
        check("remote", "publish", source="teacher")
    with pytest.raises(PermissionDenied, match="^role remote may not publish source teacher$"):
        check("remote", "publish", source="teacher", kind="video")
    with pytest.raises(
        PermissionDenied, match="^role lead may not publish source screen as audio$"
    ):
        check("lead", "publish", source="screen", kind="audio")
    with pytest.raises(PermissionDenied, match="^role observer may not publish$"):
        check("observer", "publish", source="students", kind="video")
    with pytest.raises(PermissionDenied, match="^role lead may not publish kind data$"):
        check("lead", "publish", source="teacher", kind="data")


def test_unknown_role_and_action() -> None:
    with pytest.raises(PermissionDenied) as info:
        check("teacher", "subscribe")
    assert info.value.code == "forbidden" and "teacher" in info.value.message
    with pytest.raises(PermissionDenied) as info:
        check("lead", "fly")
    assert "role lead may not fly" in info.value.message


@pytest.mark.parametrize(
    ("role", "video", "audio"),
    [("lead", 3, 2), ("remote", 1, 1), ("observer", 0, 0), ("recorder", 0, 0)],
)
def test_track_limits(role: str, video: int, audio: int) -> None:
    assert track_limit(role, "video") == video
    assert track_limit(role, "audio") == audio
    assert track_limit("nobody", "video") == 0 and track_limit(role, "data") == 0


def test_check_publish_lead_within_limits() -> None:
    check_publish(
        "lead",
        [
            ("video", "teacher"),
            ("video", "screen"),
            ("video", "students"),
            ("audio", "teacher"),
            ("audio", "students"),
        ],
    )
    check_publish("lead", [])


def test_check_publish_over_limits() -> None:
    with pytest.raises(PermissionDenied, match="at most|more than 3 video"):
        check_publish("lead", [("video", "teacher")] * 4)
    with pytest.raises(PermissionDenied, match="more than 2 audio"):
        check_publish("lead", [("audio", "teacher"), ("audio", "students"), ("audio", "teacher")])
    with pytest.raises(PermissionDenied, match="role remote may not publish more than 1 video"):
        check_publish("remote", [("video", "students"), ("video", "students")])
    check_publish("remote", [("video", "students"), ("audio", "students")])


def test_check_publish_bad_source_and_role() -> None:
    with pytest.raises(PermissionDenied, match="role remote may not publish source screen"):
        check_publish("remote", [("video", "screen")])
    with pytest.raises(PermissionDenied, match="role recorder may not publish"):
        check_publish("recorder", [])


@pytest.mark.parametrize("role", ROLES)
def test_visibility_and_floor(role: str) -> None:
    assert visible_to_classrooms(role) is (role in ("lead", "remote"))
    assert may_hold_floor(role) is (role == "remote")


def test_tables_cover_every_role() -> None:
    assert set(permissions.PUBLISH_SOURCES) == set(ROLES) == set(permissions.TRACK_LIMITS)
