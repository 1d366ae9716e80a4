"""The agent's main loop: ask the schedule, wait, attend each lesson, reconnect when the server or
the network goes away; a local hand-raise endpoint and a status file beside it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agent import VERSION
from agent.config import AgentConfig
from agent.display import DisplayError, FramebufferDisplay, Geometry, floor_state
from agent.schedule import Backoff, Join, Lesson, Planner, ScheduleError, parse_answer
from agent.session import ConnectionLost, Counters, Floor, LessonSession, Refused
from agent.speaker import SoundError, Speaker

log = logging.getLogger("agent")


class Unauthorized(Exception):
    pass


def open_display(cfg: AgentConfig) -> FramebufferDisplay | None:
    """The framebuffer to show received video on, or None (``--no-display``, or no usable display:
    then decoded frames are only counted)."""
    if not cfg.display:
        return None
    try:
        geometry = Geometry(*cfg.display_size) if cfg.display_size else None
        display = FramebufferDisplay(cfg.display_device, geometry)
    except DisplayError as exc:
        log.warning("no display (%s): counting decoded frames instead", exc)
        return None
    log.info("showing received video on %s (%dx%d)", cfg.display_device, display.geometry.width,
             display.geometry.height)
    return display


def open_speaker(cfg: AgentConfig) -> Speaker | None:
    """The ALSA device to play received sound on, or None (``--no-display``/``--no-sound``, or no
    usable sound device: then decoded audio frames are only counted)."""
    if not cfg.sound:
        return None
    try:
        speaker = Speaker(cfg.speaker_device)
    except SoundError as exc:
        log.warning("no sound (%s): counting decoded audio frames instead", exc)
        return None
    log.info("playing received sound on ALSA device %s", cfg.speaker_device)
    return speaker


class Agent:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.planner = Planner(cfg.lead_time_s, cfg.poll_s)
        self.counters = Counters()
        self.state = "starting"
        self.lesson: Lesson | None = None
        self.session: LessonSession | None = None
        self.joins = 0
        self.started = time.time()
        self.last_joined_at: float | None = None
        self.floor: Floor | None = None
        self.hand_runner: web.AppRunner | None = None
        self.hand_port: int | None = None
        self._cpu_mark = (time.monotonic(), time.process_time())
        self.display = open_display(cfg)
        self.speaker = open_speaker(cfg)

    # -- the schedule
    async def fetch(self, http: aiohttp.ClientSession) -> Lesson | None:
        url = self.cfg.server.rstrip("/") + "/api/device/lesson"
        async with http.get(url, headers={"Authorization": f"Bearer {self.cfg.device_key}"},
                            timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status == 401:
                raise Unauthorized((await resp.text())[:300])
            if resp.status != 200:
                raise ScheduleError(f"HTTP {resp.status}: {(await resp.text())[:300]}")
            return parse_answer(await resp.json(content_type=None))

    async def run(self) -> None:
        await self.start_hand_endpoint()
        reporter = asyncio.ensure_future(self.report_loop())
        backoff = Backoff()
        try:
            async with aiohttp.ClientSession() as http:
                while True:
                    try:
                        lesson = await self.fetch(http)
                    except Unauthorized as exc:
                        self.state = "unauthorized"
                        log.error("the server refused the device credential (revoked?): %s", exc)
                        await asyncio.sleep(self.cfg.poll_s)
                        continue
                    except ScheduleError as exc:
                        self.state = "schedule_error"
                        log.error("unexpected schedule answer: %s", exc)
                        await asyncio.sleep(self.cfg.poll_s)
                        continue
                    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                        self.state = "offline"
                        delay = backoff.next()
                        log.warning("cannot reach the server (%s); again in %.1f s", exc or type(exc).__name__, delay)
                        await asyncio.sleep(delay)
                        continue
                    backoff.reset()
                    self.lesson = lesson
                    decision = self.planner.decide(lesson, time.time())
                    if isinstance(decision, Join):
                        await self.attend(decision.lesson, http)
                        continue
                    if self.state != "waiting" or decision.reason != getattr(self, "_last_reason", None):
                        log.info("waiting: %s", decision.reason)
                        self._last_reason = decision.reason
                    self.state = "waiting"
                    await asyncio.sleep(max(0.2, decision.until - time.time()))
        finally:
            reporter.cancel()
            if self.hand_runner is not None:
                await self.hand_runner.cleanup()
            if self.speaker is not None:
                self.speaker.close()

    async def attend(self, lesson: Lesson, http: aiohttp.ClientSession) -> None:
        """Be in ``lesson`` until its end, joining again after every lost connection."""
        assert lesson.token is not None
        backoff = Backoff()
        log.info("joining lesson %s (%s), %.1f s %s its start", lesson.occurrence_id, lesson.title,
                 abs(time.time() - lesson.start), "after" if time.time() >= lesson.start else "before")
        while time.time() < lesson.end:
            self.state = "joining"
            self.session = LessonSession(self.cfg.server, lesson.token, self.cfg.sources, self.counters,
                                         on_floor=self._floor_changed, http=http, display=self.display,
                                         speaker=self.speaker)
            try:
                task = asyncio.ensure_future(self.session.run(until=lesson.end))
                while not task.done():
                    await asyncio.sleep(0.1)
                    if self.session.joined_at is not None and self.state != "in_lesson":
                        self.state = "in_lesson"
                        self.joins += 1
                        self.last_joined_at = self.session.joined_at
                        backoff.reset()
                outcome = task.result()
                log.info("lesson %s over (%s)", lesson.occurrence_id, outcome)
                break
            except Refused as exc:
                log.error("the server refused lesson %s: %s", lesson.occurrence_id, exc)
                break
            except Exception as exc:  # noqa: BLE001 - unattended: log, back off and join again, never crash
                if not isinstance(exc, ConnectionLost):
                    log.exception("unexpected failure in lesson %s", lesson.occurrence_id)
                self.state = "reconnecting"
                delay = backoff.next()
                log.warning("lost the lesson (%s); joining again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.session = None
                self.floor = None
        self.planner.finished(lesson)
        self.state = "waiting"

    def _floor_changed(self, floor: Floor) -> None:
        self.floor = floor
        if self.display is not None:
            me = self.session.classroom_id if self.session is not None else ""
            self.display.set_floor(floor_state(me, floor.queue, floor.granted, floor.spotlight))

    # -- health, status file
    def status(self) -> dict[str, Any]:
        me = self.session.classroom_id if self.session is not None else ""
        return {
            "version": VERSION,
            "state": self.state,
            "uptime_s": round(time.time() - self.started, 1),
            "lesson": None if self.lesson is None else {
                "occurrence_id": self.lesson.occurrence_id, "title": self.lesson.title,
                "start": self.lesson.start, "end": self.lesson.end},
            "hand_port": self.hand_port,
            "joins": self.joins,
            "last_joined_at": self.last_joined_at,
            "frames_sent": dict(self.counters.sent),
            "frames_received": dict(self.counters.received),
            "frames_shown": self.display.shown if self.display is not None else 0,
            "display": self.display.path if self.display is not None else None,
            "display_floor": self.display.state if self.display is not None else None,
            "sound": self.speaker.device if self.speaker is not None and self.speaker.failed is None else None,
            "sound_played_ms": self.speaker.played_ms if self.speaker is not None else 0,
            "floor": None if self.floor is None else {**asdict(self.floor), "hand_raised": me in self.floor.queue,
                                                       "has_floor": me in self.floor.granted},
        }

    def write_status(self) -> None:
        if not self.cfg.status_file:
            return
        path = Path(self.cfg.status_file)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self.status(), f)
        os.replace(tmp, path)

    def cpu_percent(self) -> float:
        """This process's CPU since the last call, % of one core."""
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._cpu_mark
        self._cpu_mark = (wall, cpu)
        return round(100.0 * (cpu - last_cpu) / max(wall - last_wall, 1e-3), 1)

    def health(self) -> dict[str, Any]:
        """The body of ``POST /api/device/health``."""
        s = self.status()
        link = self.session.link if self.session is not None else {}

        def measure(key: str, top: float) -> float | None:
            v = link.get(key)
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= top else None

        return {
            "cpu_percent": min(self.cpu_percent(), 100_000.0),
            "rtt_ms": measure("rtt_ms", 3_600_000.0),
            "loss": measure("loss", 1.0),
            "version": VERSION, "uptime_s": s["uptime_s"], "state": self.state,
            "lesson_id": self.lesson.occurrence_id if self.lesson is not None and self.state == "in_lesson" else None,
            "frames_sent_video": self.counters.sent.get("video", 0),
            "frames_sent_audio": self.counters.sent.get("audio", 0),
            "frames_received_video": self.counters.received.get("video", 0),
            "frames_received_audio": self.counters.received.get("audio", 0),
        }

    async def report_health(self, http: aiohttp.ClientSession) -> None:
        url = self.cfg.server.rstrip("/") + "/api/device/health"
        try:
            async with http.post(url, json=self.health(), timeout=aiohttp.ClientTimeout(total=5),
                                 headers={"Authorization": f"Bearer {self.cfg.device_key}"}) as resp:
                if resp.status != 200:
                    log.warning("health report refused: HTTP %d %s", resp.status, (await resp.text())[:200])
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.debug("health report not sent: %r", exc)

    async def report_loop(self) -> None:
        last = last_health = 0.0
        async with aiohttp.ClientSession() as http:
            while True:
                now = time.monotonic()
                if self.cfg.health_interval_s > 0 and now - last_health >= self.cfg.health_interval_s:
                    last_health = now
                    await self.report_health(http)
                last = self._report_once(last)
                await asyncio.sleep(1.0)

    def _report_once(self, last: float) -> float:
        """Write the status file; log the frame counts every ``log_interval_s``. Returns the last log time."""
        self.write_status()
        now = time.monotonic()
        if now - last >= self.cfg.log_interval_s:
            last = now
            s = self.status()
            log.info("state %s; frames sent video=%d audio=%d, decoded video=%d audio=%d", s["state"],
                     s["frames_sent"]["video"], s["frames_sent"]["audio"],
                     s["frames_received"]["video"], s["frames_received"]["audio"])
        return last

    # -- hand raise from hardware: POST /hand on 127.0.0.1
    async def start_hand_endpoint(self) -> None:
        if self.cfg.hand_port < 0:
            return
        app = web.Application(client_max_size=4096)
        app.router.add_post("/hand", self._hand)
        app.router.add_delete("/hand", self._hand)
        app.router.add_get("/status", self._status)
        self.hand_runner = web.AppRunner(app, access_log=None)
        await self.hand_runner.setup()
        site = web.TCPSite(self.hand_runner, "127.0.0.1", self.cfg.hand_port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.hand_port = sockets[0].getsockname()[1] if sockets else self.cfg.hand_port
        log.info("hand-raise endpoint: POST http://127.0.0.1:%d/hand (DELETE /hand lowers it; GET /status)",
                 self.hand_port)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _hand(self, request: web.Request) -> web.Response:
        up = request.method == "POST"
        if up and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "bad_json", "the body must be JSON, e.g. {\"raised\": false}, or empty")
            if not isinstance(body, dict) or not isinstance(body.get("raised", True), bool):
                return _error(400, "invalid_field", "raised must be true or false")
            up = bool(body.get("raised", True))
        session = self.session
        if session is None or session.joined_at is None:
            return _error(409, "not_in_lesson", "the agent is not in a lesson now")
        try:
            reply = await session.raise_hand(up)
        except ConnectionLost:
            return _error(503, "reconnecting", "the agent is reconnecting to the lesson")
        if reply.get("type") == "error":
            return _error(409, str(reply.get("code")), str(reply.get("message")))
        log.info("hand %s from the local endpoint", "raised" if up else "lowered")
        return web.json_response({"raised": up, "floor": self.status()["floor"]})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)
