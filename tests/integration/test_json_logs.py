"""``classroom serve --log-format json`` (a real subprocess): every log line on stderr is one JSON
object, and what a joined classroom's session logs carries its lesson, classroom and participant."""

from __future__ import annotations

import json
import time

import pytest
import websocket

from loadtest.serverproc import start_server


def _json_lines(lines: list[str]) -> list[dict[str, object]]:
    out = []
    for line in lines:
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


@pytest.mark.timeout(60)
def test_json_logs_carry_lesson_classroom_participant() -> None:
    with start_server(log_level="INFO", extra_args=["--log-format", "json"]) as srv:
        token = srv.signer.issue("log-lesson", "log-room-1", "remote", "Room 1", lesson_title="Logs")
        ws = websocket.create_connection(srv.base_url.replace("http", "ws", 1) + "/ws", timeout=10)
        try:
            ws.send(json.dumps({"v": 1, "id": 1, "type": "join", "token": token}))
            while json.loads(ws.recv()).get("type") != "joined":
                pass
            ws.send(json.dumps({"v": 1, "id": 2, "type": "no_such_message"}))
            while json.loads(ws.recv()).get("type") != "error":
                pass
        finally:
            ws.close()
        deadline = time.monotonic() + 10
        wanted: list[dict[str, object]] = []
        while time.monotonic() < deadline and not wanted:
            wanted = [r for r in _json_lines(srv.lines) if "unknown_type" in str(r.get("message"))]
            time.sleep(0.1)
        assert wanted, "\n".join(srv.lines[-30:])
        rec = wanted[0]
        assert rec["lesson"] == "log-lesson" and rec["classroom"] == "log-room-1"
        assert str(rec["participant"]).startswith("p")
        assert rec["level"] == "INFO" and rec["logger"] == "signaling.session"
        # nothing on the log stream is a plain-text log line (the banner is on stdout, not a log)
        records = _json_lines(srv.lines)
        assert any(r["logger"] == "signaling.schedule.store" for r in records)
        plain = [ln for ln in srv.lines if " INFO " in ln or " WARNING " in ln or " ERROR " in ln]
        assert not plain, plain
