"""Locust load test of the classroom signaling and the bureau's scheduling API.

Run it through ``python -m loadtest.signaling_load`` (which starts the server and sets the
environment below), or by hand against a running server::

    LOADTEST_TOKEN_SECRET=... locust -f loadtest/locustfile.py --headless -u 50 -r 5 -t 60s \
        --host http://127.0.0.1:8080

Classroom users (``ClassroomUser``) each stand for one classroom: open the WebSocket, ``join``
with a token minted here (lessons of ``LOADTEST_LESSON_SIZE`` classrooms: one lead, the rest
remote), hold the lesson for ``LOADTEST_HOLD_S`` seconds sending ``ping`` every
``LOADTEST_PING_S`` seconds (and reading every broadcast), then ``leave``; then join again.
Signaling only: no SDP/ICE/DTLS (see docs/performance.md, "Signaling load").

Reported request names (type ``WS``): ``connect`` (TCP + WebSocket upgrade), ``join`` (token
sent → ``joined`` received), ``ping`` (→ ``pong``), ``leave``. Raw join latencies are also
written as JSON to ``LOADTEST_SAMPLES`` at the end, for exact percentiles.

Bureau users (``BureauUser``, a fixed number) use the schedule's REST API with the admin key in
``LOADTEST_ADMIN_KEY`` when the schedule is wired into the server (``LOADTEST_SCHEDULE=api``):
each creates a school, three classrooms, a teacher and a lesson, then polls today's and this
week's schedule, its lesson (with live status and join links), ``/api/me`` and the OpenAPI
document; otherwise they poll ``/healthz`` and the client's index page.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import websocket
from gevent.event import Event
from locust import FastHttpUser, User, between, constant, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from signaling.tokens import TokenSigner  # noqa: E402


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


SECRET = os.environ.get("LOADTEST_TOKEN_SECRET", "")
LESSON_SIZE = max(1, int(os.environ.get("LOADTEST_LESSON_SIZE", "10")))
HOLD_S = _env_float("LOADTEST_HOLD_S", 60.0)
PING_S = _env_float("LOADTEST_PING_S", 5.0)
TIMEOUT_S = _env_float("LOADTEST_TIMEOUT_S", 10.0)
RUN_ID = os.environ.get("LOADTEST_RUN_ID", str(int(time.time())))
SAMPLES_PATH = os.environ.get("LOADTEST_SAMPLES", "")
SCHEDULE_MODE = os.environ.get("LOADTEST_SCHEDULE", "none")
ADMIN_KEY = os.environ.get("LOADTEST_ADMIN_KEY", "")
BUREAU_USERS = int(os.environ.get("LOADTEST_BUREAU_USERS", "2"))

_user_numbers = itertools.count()
JOIN_MS: list[float] = []
COUNTS: dict[str, int] = {"joined": 0, "left": 0, "messages_in": 0, "server_errors": 0}


def _fire(name: str, started: float, exc: Exception | None = None, length: int = 0) -> float:
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    events.request.fire(
        request_type="WS", name=name, response_time=elapsed_ms, response_length=length,
        exception=exc, context={},
    )
    return elapsed_ms


class LoadError(Exception):
    pass


def open_websocket(url: str, timeout: float) -> websocket.WebSocket:
    """The classroom WebSocket (websocket-client; locust's gevent makes its socket cooperative).
    ``timeout`` bounds the connect and the upgrade; afterwards reads block (cooperatively) and
    callers bound their waits. The client answers the server's heartbeat pings itself, and
    ``recv()`` returns "" once the server has closed."""
    try:
        ws = websocket.create_connection(url, timeout=timeout, enable_multithread=True)
    except websocket.WebSocketBadStatusException as exc:
        raise LoadError(f"WebSocket upgrade refused: {exc}") from exc
    except (websocket.WebSocketException, OSError) as exc:
        raise LoadError(f"WebSocket connect failed: {exc}") from exc
    ws.settimeout(None)
    return ws


class ClassroomUser(User):
    """One classroom: join, hold the lesson (ping), leave, again."""

    wait_time = constant(1)
    weight = 100

    def on_start(self) -> None:
        n = next(_user_numbers)
        lesson = n // LESSON_SIZE
        seat = n % LESSON_SIZE
        role = "lead" if seat == 0 else "remote"
        signer = TokenSigner(SECRET.encode("utf-8"))
        self.lesson_id = f"load-{RUN_ID}-{lesson}"
        self.classroom_id = f"c{n}"
        self.token = signer.issue(
            self.lesson_id, self.classroom_id, role, f"Classroom {n}",
            lesson_title=f"Load lesson {lesson}",
        )
        base = (self.host or "http://127.0.0.1:8080").rstrip("/")
        self.url = base.replace("http", "ws", 1) + "/ws"
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        self.pongs: dict[int, Event] = {}
        self.next_id = 1
        self.closed = Event()

    # -- transport
    def _send(self, msg: dict[str, Any]) -> int:
        assert self.ws is not None
        mid = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"v": 1, "id": mid, **msg}))
        return mid

    def _recv(self) -> dict[str, Any]:
        assert self.ws is not None
        try:
            data = self.ws.recv()
        except websocket.WebSocketConnectionClosedException:
            data = ""
        if not data:
            raise LoadError("connection closed by the server")
        msg: dict[str, Any] = json.loads(data)
        COUNTS["messages_in"] += 1
        return msg

    def _read_loop(self) -> None:
        try:
            while True:
                msg = self._recv()
                kind = msg.get("type")
                if kind == "pong":
                    ev = self.pongs.get(int(msg.get("re") or 0))
                    if ev is not None:
                        ev.set()
                elif kind == "error":
                    COUNTS["server_errors"] += 1
                    _fire(f"server error {msg.get('code')}", time.perf_counter(),
                          LoadError(f"{msg.get('code')}: {msg.get('message')}"))
        except Exception:
            pass
        finally:
            self.closed.set()

    # -- the lesson
    @task
    def lesson(self) -> None:
        t0 = time.perf_counter()
        try:
            self.ws = open_websocket(self.url, TIMEOUT_S)
        except Exception as exc:
            _fire("connect", t0, exc)
            return
        _fire("connect", t0)
        self.closed = Event()
        try:
            if not self._join():
                return
            self.reader = gevent.spawn(self._read_loop)
            self._hold()
            self._leave()
        finally:
            self._close()

    def _join(self) -> bool:
        t0 = time.perf_counter()
        try:
            with gevent.Timeout(TIMEOUT_S, LoadError(f"no joined within {TIMEOUT_S:g} s")):
                self._send({"type": "join", "token": self.token})
                while True:
                    msg = self._recv()
                    if msg.get("type") == "joined":
                        break
                    if msg.get("type") == "error":
                        raise LoadError(f"join refused: {msg.get('code')}: {msg.get('message')}")
        except Exception as exc:
            _fire("join", t0, exc)
            return False
        JOIN_MS.append(_fire("join", t0))
        COUNTS["joined"] += 1
        return True

    def _hold(self) -> None:
        end = time.monotonic() + HOLD_S
        while time.monotonic() < end and not self.closed.is_set():
            gevent.sleep(min(PING_S, max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            t0 = time.perf_counter()
            try:
                ev = Event()
                mid = self.next_id
                self.pongs[mid] = ev
                self._send({"type": "ping"})
                if not ev.wait(TIMEOUT_S):
                    raise LoadError("no pong" if not self.closed.is_set() else "connection lost")
                _fire("ping", t0)
            except Exception as exc:
                _fire("ping", t0, exc)
                return
            finally:
                self.pongs.pop(mid, None)

    def _leave(self) -> None:
        if self.closed.is_set():
            _fire("leave", time.perf_counter(), LoadError("connection lost before leave"))
            return
        t0 = time.perf_counter()
        try:
            self._send({"type": "leave"})
            if not self.closed.wait(TIMEOUT_S):
                raise LoadError("the server did not close the socket after leave")
        except Exception as exc:
            _fire("leave", t0, exc)
            return
        _fire("leave", t0)
        COUNTS["left"] += 1

    def _close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close(timeout=1)
            except Exception:
                pass
            self.ws = None
        if self.reader is not None:
            self.reader.kill(block=False)
            self.reader = None

    def on_stop(self) -> None:
        # Stopped mid-lesson (end of the run): say goodbye properly.
        if self.ws is not None and not self.closed.is_set():
            try:
                self._send({"type": "leave"})
                self.closed.wait(2)
            except Exception:
                pass
        self._close()


class BureauUser(FastHttpUser):
    """An education-bureau admin: sets up a school with three classrooms and a lesson, then
    polls the schedule (or health, if the schedule is not wired into the server)."""

    fixed_count = BUREAU_USERS
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Bearer {ADMIN_KEY}"} if ADMIN_KEY else {}
        self.lesson_id = ""
        if SCHEDULE_MODE == "api":
            self._set_up()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.client.post(path, json=body, headers=self.headers, catch_response=True) as r:
            if r.status_code != 201:
                r.failure(f"{r.status_code}: {r.text[:200]}")
                return {}
            data: dict[str, Any] = r.json()
            return data

    def _set_up(self) -> None:
        n = next(_user_numbers)
        school = self._post("/api/schools", {"name": f"Load school {RUN_ID}-{n}"})
        if not school:
            return
        rooms = [
            self._post("/api/classrooms", {"school_id": school["id"], "name": f"Room {i}"})
            for i in range(3)
        ]
        teacher = self._post("/api/teachers", {"school_id": school["id"], "name": "Teacher"})
        if not all(rooms) or not teacher:
            return
        # a 45-minute lesson starting n hours from now (UTC), so no two users' lessons clash
        start = time.time() + 3600 * (1 + n)
        iso = "%Y-%m-%dT%H:%M:%SZ"
        lesson = self._post("/api/lessons", {
            "subject": "数学", "title": f"Load lesson {n}",
            "lead_classroom_id": rooms[0]["id"], "lead_teacher_id": teacher["id"],
            "remote_classroom_ids": [rooms[1]["id"], rooms[2]["id"]],
            "start": time.strftime(iso, time.gmtime(start)),
            "end": time.strftime(iso, time.gmtime(start + 45 * 60)),
        })
        self.lesson_id = str(lesson.get("id", ""))

    @task(3)
    def today(self) -> None:
        if SCHEDULE_MODE == "api":
            self.client.get("/api/schedule/today", headers=self.headers)
        else:
            self.client.get("/healthz")

    @task(1)
    def week(self) -> None:
        if SCHEDULE_MODE == "api":
            self.client.get("/api/schedule/week", headers=self.headers)
            self.client.get("/api/lessons", headers=self.headers)
        else:
            self.client.get("/", name="/ (index page)")

    @task(1)
    def lesson(self) -> None:
        if SCHEDULE_MODE == "api" and self.lesson_id:
            base = f"/api/lessons/{self.lesson_id}"
            self.client.get(base, headers=self.headers, name="/api/lessons/{id}")
            self.client.get(base + "/live", headers=self.headers, name="/api/lessons/{id}/live")
            self.client.get(base + "/links", headers=self.headers,
                            name="/api/lessons/{id}/links")
        else:
            self.client.get("/healthz")

    @task(1)
    def reference(self) -> None:
        if SCHEDULE_MODE == "api":
            self.client.get("/api/openapi.json")
            self.client.get("/api/me", headers=self.headers)
        else:
            self.client.get("/healthz")


@events.test_stop.add_listener
def _dump_samples(**_: Any) -> None:
    if SAMPLES_PATH:
        Path(SAMPLES_PATH).write_text(
            json.dumps({"join_ms": JOIN_MS, "counts": COUNTS}), encoding="utf-8"
        )
