"""Classroom protocol messages (docs/protocol.md): parsing and validation of what clients send,
and the constructors of what the server sends. Nothing here touches sockets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

VERSION = 1

# type -> {field: (accepted types, required)}
_NONE = type(None)
SCHEMAS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "join": {"token": ((str,), True)},
    "publish": {"sdp": ((str,), True), "sources": ((dict,), False)},
    "subscribe_answer": {"sdp": ((str,), True)},
    "ice": {"target": ((str,), True), "candidate": ((dict, _NONE), False)},
    "raise_hand": {},
    "lower_hand": {},
    "grant_floor": {"classroom_id": ((str,), True)},
    "revoke_floor": {"classroom_id": ((str,), True)},
    "mute": {"classroom_id": ((str,), True)},
    "unmute": {"classroom_id": ((str,), True)},
    "spotlight": {"classroom_id": ((str, _NONE), False)},
    "end_lesson": {},
    "note": {"text": ((str,), True), "dimension": ((str, _NONE), False), "score": ((int, _NONE), False),
             "moment": ((int, _NONE), False)},
    "ping": {},
    "leave": {},
}

MAX_SDP_BYTES = 32 * 1024


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str, ref: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.ref = ref


@dataclass(frozen=True)
class Message:
    type: str
    data: dict[str, Any]
    id: int | None = None


def parse_message(text: str, max_bytes: int) -> Message:
    """Validate one client message; raise :class:`ProtocolError` with a protocol error code."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError("message_too_large", f"messages are limited to {max_bytes} bytes")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "a message must be a JSON object")
    ref = data.get("id")
    if not isinstance(ref, int) or isinstance(ref, bool):
        ref = None
    version = data.get("v")
    if type(version) is not int or version != VERSION:
        raise ProtocolError("bad_version", f"unsupported protocol version {version!r}; use 1", ref)
    mtype = data.get("type")
    if not isinstance(mtype, str) or mtype not in SCHEMAS:
        raise ProtocolError("unknown_type", f"unknown message type {mtype!r}", ref)
    for name, (types, required) in SCHEMAS[mtype].items():
        if name not in data:
            if required:
                raise ProtocolError("bad_field", f"{mtype}: field {name!r} is required", ref)
            continue
        value = data[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = "/".join("null" if t is _NONE else t.__name__ for t in types)
            raise ProtocolError("bad_field", f"{mtype}: field {name!r} must be {names}", ref)
    if mtype in ("publish", "subscribe_answer") and len(data["sdp"]) > MAX_SDP_BYTES:
        raise ProtocolError("bad_field", f"{mtype}: sdp is larger than {MAX_SDP_BYTES} bytes", ref)
    if mtype == "ice" and data["target"] not in ("publish", "subscribe"):
        raise ProtocolError("bad_field", "ice: target must be 'publish' or 'subscribe'", ref)
    if mtype == "publish":
        sources = data.get("sources") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
            raise ProtocolError("bad_field", "publish: sources must map mid strings to labels", ref)
    return Message(type=mtype, data=data, id=ref)


def server_message(mtype: str, re: int | None = None, **fields: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"v": VERSION, "type": mtype}
    if re is not None:
        msg["re"] = re
    msg.update(fields)
    return msg


def error_message(code: str, message: str, re: int | None = None) -> dict[str, Any]:
    return server_message("error", re=re, code=code, message=message)
