"""signaling/protocol.py: client message validation and error codes (docs/protocol.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.protocol import (
    MAX_SDP_BYTES,
    SCHEMAS,
    VERSION,
    Message,
    ProtocolError,
    error_message,
    parse_message,
    server_message,
)

LIMIT = 64 * 1024

VALID: dict[str, dict[str, Any]] = {
    "join": {"token": "abc.def"},
    "publish": {"sdp": "v=0\r\n", "sources": {"0": "teacher", "1": "teacher"}},
    "subscribe_answer": {"sdp": "v=0\r\n"},
    "ice": {
        "target": "publish",
        "candidate": {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0"},
    },
    "raise_hand": {},
    "lower_hand": {},
    "grant_floor": {"classroom_id": "c1"},
    "revoke_floor": {"classroom_id": "c1"},
    "mute": {"classroom_id": "c1"},
    "unmute": {"classroom_id": "c1"},
    "spotlight": {"classroom_id": "c2"},
    "end_lesson": {},
    "note": {"text": "学生讨论热烈", "dimension": "学生参与", "score": 4, "moment": 61_500},
    "ping": {},
    "leave": {},
}

REQUIRED = {
    mtype: [name for name, (_, required) in fields.items() if required]
    for mtype, fields in SCHEMAS.items()
}


def text(obj: Any) -> str:
    return json.dumps(obj)


def msg(mtype: str, **fields: Any) -> str:
    return text({"v": 1, "type": mtype, **fields})


def error_of(raw: str, max_bytes: int = LIMIT) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_message(raw, max_bytes)
    return info.value


def test_every_schema_type_has_a_valid_example() -> None:
    assert set(VALID) == set(SCHEMAS)
    # the documented client -> server types are all accepted
    documented = {
        "join", "publish", "subscribe_answer", "ice", "raise_hand", "lower_hand",
        "grant_floor", "revoke_floor", "mute", "spotlight", "end_lesson", "note", "ping", "leave",
    }  # fmt: skip
    assert documented <= set(SCHEMAS)


@pytest.mark.parametrize("mtype", sorted(VALID))
def test_valid_messages_parse(mtype: str) -> None:
    m = parse_message(msg(mtype, id=7, **VALID[mtype]), LIMIT)
    assert isinstance(m, Message)
    assert m.type == mtype
    assert m.id == 7
    for name, value in VALID[mtype].items():
        assert m.data[name] == value


@pytest.mark.parametrize("mtype", sorted(VALID))
def test_id_is_optional(mtype: str) -> None:
    assert parse_message(msg(mtype, **VALID[mtype]), LIMIT).id is None


@pytest.mark.parametrize(
    ("mtype", "name"), [(t, n) for t, names in sorted(REQUIRED.items()) for n in names]
)
def test_missing_required_field(mtype: str, name: str) -> None:
    fields = dict(VALID[mtype])
    del fields[name]
    err = error_of(msg(mtype, id=3, **fields))
    assert err.code == "bad_field"
    assert err.ref == 3
    assert name in str(err)


WRONG_VALUES: list[Any] = [1, 1.5, True, None, [], {}, "x"]


def _wrong_type_cases() -> list[tuple[str, str, Any]]:
    cases = []
    for mtype, fields in sorted(SCHEMAS.items()):
        for name, (types, _) in fields.items():
            for value in WRONG_VALUES:
                if value is None and type(None) in types:
                    continue
                if isinstance(value, bool) or not isinstance(value, types):
                    cases.append((mtype, name, value))
    return cases


@pytest.mark.parametrize(("mtype", "name", "value"), _wrong_type_cases())
def test_wrong_field_type(mtype: str, name: str, value: Any) -> None:
    fields = dict(VALID[mtype])
    fields[name] = value
    err = error_of(msg(mtype, id=11, **fields))
    assert err.code == "bad_field"
    assert err.ref == 11


def test_optional_fields_may_be_absent_or_null() -> None:
    assert parse_message(msg("publish", sdp="v=0"), LIMIT).data == {
        "v": 1, "type": "publish", "sdp": "v=0",
    }  # fmt: skip
    assert parse_message(msg("ice", target="subscribe", candidate=None), LIMIT).type == "ice"
    assert parse_message(msg("ice", target="subscribe"), LIMIT).type == "ice"
    assert parse_message(msg("spotlight", classroom_id=None), LIMIT).data["classroom_id"] is None
    assert parse_message(msg("spotlight"), LIMIT).type == "spotlight"


def test_ice_target_must_be_publish_or_subscribe() -> None:
    err = error_of(msg("ice", id=2, target="other", candidate=None))
    assert (err.code, err.ref) == ("bad_field", 2)


def test_publish_sources_must_map_strings_to_strings() -> None:
    for sources in ({"0": 1}, {"0": None}, {"0": ["teacher"]}):
        err = error_of(msg("publish", id=4, sdp="v=0", sources=sources))
        assert (err.code, err.ref) == ("bad_field", 4)
    assert parse_message(msg("publish", sdp="v=0", sources={}), LIMIT).type == "publish"


@pytest.mark.parametrize("mtype", ["publish", "subscribe_answer"])
def test_sdp_size_limit(mtype: str) -> None:
    ok = "a" * MAX_SDP_BYTES
    assert parse_message(msg(mtype, sdp=ok), LIMIT).data["sdp"] == ok
    err = error_of(msg(mtype, id=5, sdp=ok + "a"))
    assert (err.code, err.ref) == ("bad_field", 5)


def test_extra_fields_are_ignored() -> None:
    m = parse_message(msg("ping", id=1, extra={"x": 1}), LIMIT)
    assert m.type == "ping"


# --- envelope errors ------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "{", "not json", "{'v': 1}", "[1,", "\x00", "{\"v\":1,}"])
def test_bad_json(raw: str) -> None:
    err = error_of(raw)
    assert err.code == "bad_json"
    assert err.ref is None


@pytest.mark.parametrize("raw", ["[]", "1", "\"ping\"", "null", "true", "[{\"v\":1}]"])
def test_non_object_json(raw: str) -> None:
    assert error_of(raw).code == "bad_json"


def test_deeply_nested_json_is_bad_json_not_a_crash() -> None:
    raw = "[" * 50000 + "]" * 50000
    assert error_of(raw, max_bytes=10**6).code == "bad_json"


def test_message_too_large() -> None:
    raw = msg("join", token="x" * LIMIT)
    err = error_of(raw)
    assert err.code == "message_too_large"
    assert err.ref is None


def test_size_limit_counts_utf8_bytes() -> None:
    body = msg("join", token="")
    room = 100 - len(body)
    ok = msg("join", token="a" * room)
    assert len(ok.encode()) == 100
    assert parse_message(ok, 100).type == "join"
    # same number of characters, more bytes
    wide = json.dumps({"v": 1, "type": "join", "token": "é" * room}, ensure_ascii=False)
    assert len(wide) == 100
    assert error_of(wide, 100).code == "message_too_large"
    assert error_of(ok + " ", 100).code == "message_too_large"


@pytest.mark.parametrize("v", [None, 0, 2, "1", [1], {"v": 1}])
def test_bad_version(v: Any) -> None:
    obj: dict[str, Any] = {"type": "ping", "id": 9}
    if v is not None:
        obj["v"] = v
    err = error_of(text(obj))
    assert err.code == "bad_version"
    assert err.ref == 9


def test_missing_version() -> None:
    err = error_of(text({"type": "ping"}))
    assert (err.code, err.ref) == ("bad_version", None)


@pytest.mark.parametrize("mtype", [None, "", "PING", "joined", "error", "pong", 5, ["ping"]])
def test_unknown_type(mtype: Any) -> None:
    obj: dict[str, Any] = {"v": 1, "id": 12}
    if mtype is not None:
        obj["type"] = mtype
    err = error_of(text(obj))
    assert err.code == "unknown_type"
    assert err.ref == 12


@pytest.mark.parametrize("ident", ["7", 1.5, True, False, None, [1], {"a": 1}])
def test_non_integer_id_is_not_echoed(ident: Any) -> None:
    err = error_of(text({"v": 1, "type": "nope", "id": ident}))
    assert err.code == "unknown_type"
    assert err.ref is None
    m = parse_message(text({"v": 1, "type": "ping", "id": ident}), LIMIT)
    assert m.id is None


@pytest.mark.parametrize("ident", [0, -1, 2**40])
def test_integer_ids_are_echoed(ident: int) -> None:
    assert parse_message(msg("ping", id=ident), LIMIT).id == ident
    assert error_of(msg("nope", id=ident)).ref == ident


# --- server messages ------------------------------------------------------------------


def test_server_message_echoes_re() -> None:
    assert server_message("pong", re=5) == {"v": VERSION, "type": "pong", "re": 5}
    assert server_message("pong") == {"v": VERSION, "type": "pong"}
    assert server_message("joined", re=0, role="lead")["re"] == 0
    assert server_message("joined", role="lead") == {"v": 1, "type": "joined", "role": "lead"}


def test_error_message() -> None:
    assert error_message("bad_field", "nope", re=3) == {
        "v": 1, "type": "error", "re": 3, "code": "bad_field", "message": "nope",
    }  # fmt: skip
    assert "re" not in error_message("bad_json", "x")


def test_error_message_from_protocol_error_round_trip() -> None:
    err = error_of(msg("grant_floor", id=42))
    reply = error_message(err.code, str(err), re=err.ref)
    assert reply["re"] == 42
    assert reply["code"] == "bad_field"
    assert json.loads(json.dumps(reply)) == reply


# --- fuzz -----------------------------------------------------------------------------

CODES = {"bad_json", "message_too_large", "bad_version", "unknown_type", "bad_field"}


def _check(raw: str, max_bytes: int = LIMIT) -> None:
    try:
        m = parse_message(raw, max_bytes)
    except ProtocolError as exc:
        assert exc.code in CODES
        assert exc.ref is None or (isinstance(exc.ref, int) and not isinstance(exc.ref, bool))
        return
    assert m.type in SCHEMAS


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_arbitrary_text(raw: str) -> None:
    _check(raw)


LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
JSON = LEAF | st.lists(LEAF, max_size=3) | st.dictionaries(st.text(max_size=6), LEAF, max_size=3)


@settings(max_examples=40, deadline=None)
@given(
    v=st.sampled_from([1, 1, 1, 2, "1", None]),
    mtype=st.sampled_from([*SCHEMAS, "x", None]),
    fields=st.dictionaries(
        st.sampled_from(["token", "sdp", "sources", "target", "candidate", "classroom_id", "id"]),
        JSON,
        max_size=3,
    ),
)
def test_fuzz_structured_json(v: Any, mtype: Any, fields: dict[str, Any]) -> None:
    obj: dict[str, Any] = dict(fields)
    if v is not None:
        obj["v"] = v
    if mtype is not None:
        obj["type"] = mtype
    _check(json.dumps(obj))
    _check(json.dumps(obj), max_bytes=40)


@settings(max_examples=50, deadline=None)
@given(JSON)
def test_fuzz_arbitrary_json_values(value: Any) -> None:
    _check(json.dumps(value))


def test_boolean_version_is_not_version_one() -> None:
    import pytest

    with pytest.raises(ProtocolError) as err:
        parse_message('{"v": true, "type": "ping"}', 65536)
    assert err.value.code == "bad_version"
