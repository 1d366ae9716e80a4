"""The classroom agent as a real process against a real server process (issue #17, item 2):
it joins a lesson scheduled through the API by itself, publishes its test source to the lead,
decodes the lead, answers a hand raised through its local endpoint, comes back after the server
is killed (-9) and restarted mid-lesson, and leaves at the lesson's end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from agent.display import BANNER
from tests.e2e.conftest import free_port
from tests.integration.peers import ClassroomPeer, PatternTrack
from tests.integration.test_faults_restart import KEY, ROOT, api, start

CST = timezone(timedelta(hours=8))
LEAD_IN_S = 15  # the lesson starts this long after it is scheduled (the agent is already running)
LENGTH_S = 36
SCREEN_W, SCREEN_H = 320, 200  # the agent's (file-backed) framebuffer


def status(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


async def until(predicate: Any, timeout: float, what: str, log: Path | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out: {what}" + (f"\n{log.read_text()[-4000:]}" if log else ""))


def http_status(url: str, headers: dict[str, str], method: str = "GET", data: bytes | None = None) -> int:
    try:
        req = urllib.request.Request(url, headers=headers, method=method, data=data)
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


async def test_the_agent_joins_its_lesson_survives_a_server_restart_and_leaves_at_the_end(tmp_path: Path) -> None:
    data, server_log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port, server_log)
    agent: subprocess.Popen[bytes] | None = None
    peers: list[ClassroomPeer] = []
    try:
        m = KEY.search(server_log.read_text())
        assert m, server_log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        room = api(port, key, "POST", "/api/classrooms",
                   {"school_id": school, "name": "r1", "kind": "hardware", "lead_capable": False})["id"]
        other = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r2"})["id"]
        device = api(port, key, "POST", "/api/devices", {"classroom_id": room, "name": "班班通"})
        key_file = tmp_path / "device.key"
        key_file.write_text(device["credential"] + "\n")
        key_file.chmod(0o600)

        status_file, agent_log = tmp_path / "agent.json", tmp_path / "agent.log"
        env = {k: v for k, v in os.environ.items() if k != "CLASSROOM_DEVICE_KEY"}
        screen = tmp_path / "fb0"  # a file standing in for /dev/fb0 (the same mmap path)
        screen.write_bytes(bytes(SCREEN_W * SCREEN_H * 4))
        agent = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "agent", "--server", url, "--device-key-file", str(key_file),
             "--lead-time", "0", "--poll-interval", "2", "--test-source", "--size", "320x240",
             "--display-device", str(screen), "--display-size", f"{SCREEN_W}x{SCREEN_H}",
             "--hand-port", "0", "--status-file", str(status_file), "--log-interval", "2",
             "--ice-address", "127.0.0.1"],
            cwd=ROOT, env=env, stdout=agent_log.open("wb"), stderr=subprocess.STDOUT)
        await until(lambda: status(status_file).get("state") == "waiting", 20, "agent waiting", agent_log)
        hand = f"http://127.0.0.1:{status(status_file)['hand_port']}/hand"
        assert http_status(hand, {}, "POST") == 409  # not in a lesson
        assert http_status(hand, {"Content-Type": "application/json"}, "POST", b"{") == 400  # bad JSON
        assert http_status(hand, {"Content-Type": "application/json"}, "POST", b'{"raised": 1}') == 400

        start_at = datetime.now(CST).replace(microsecond=0) + timedelta(seconds=LEAD_IN_S)
        end_at = start_at + timedelta(seconds=LENGTH_S)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "agent", "lead_classroom_id": lead_room, "remote_classroom_ids": [room, other],
            "start": start_at.isoformat(), "end": end_at.isoformat(), "recording": False})["id"]
        links = {x["classroom_id"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}

        # the device credential opens its own classroom's lesson only
        bearer = {"Authorization": f"Bearer {device['credential']}"}
        assert http_status(f"{url}/api/lessons/{lesson}/links", bearer) == 401
        assert http_status(f"{url}/api/schedule/today?classroom_id={other}", bearer) == 401
        mine = api(port, device["credential"], "GET", "/api/device/lesson")
        assert mine["classroom_id"] == room and mine["lesson"]["link"]["classroom_id"] == room
        stranger = ClassroomPeer(url, device["credential"])  # the credential is no join token
        peers.append(stranger)
        assert (await stranger.connect())["code"] in ("token_malformed", "token_invalid")

        lead = ClassroomPeer(url, links[lead_room])
        peers.append(lead)
        assert (await lead.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher")])

        # joins by itself at the start
        st = await until(lambda: status(status_file) if status(status_file).get("joins", 0) >= 1 else None,
                         LEAD_IN_S + 15, "agent joined", agent_log)
        join_delay = st["last_joined_at"] - start_at.timestamp()
        print(f"agent joined {join_delay:+.2f} s after the lesson's start")
        assert -1.0 <= join_delay <= 10.0
        await lead.wait_frames("video", 10, timeout=15, classroom_id=room)  # the lead receives the agent
        await until(lambda: status(status_file)["frames_received"]["video"] >= 20, 15, "agent decodes", agent_log)
        # ... and shows the lead's picture on its screen, under the floor banner (no floor yet)
        st = status(status_file)
        assert st["frames_shown"] > 0 and st["display"] == str(screen) and st["display_floor"] == "idle", st
        px = np.frombuffer(screen.read_bytes(), dtype=np.uint8).reshape(SCREEN_H, SCREEN_W, 4)
        banner = max(8, SCREEN_H // 20)
        assert (px[:banner, :, :3] == BANNER["idle"][:3]).all()
        assert px[banner:].std() > 10  # the lead's test pattern, not a blank screen

        # its health reports reach the bureau's device list
        def seen() -> dict[str, Any] | None:
            d = api(port, key, "GET", "/api/devices")["devices"][0]
            return d if d["online"] and (d["health"] or {}).get("state") == "in_lesson" else None

        reported = await until(seen, 10, "health report", agent_log)
        assert reported["health"]["lesson_id"] == lesson and reported["health"]["frames_received_video"] > 0
        assert reported["health"]["cpu_percent"] is not None

        # a hand raised from hardware reaches the lead's floor
        assert http_status(hand, {}, "POST") == 200
        floor = await lead.expect("floor")
        while floor["event"]["type"] != "hand_raised":  # the floor events of the joins come first
            floor = await lead.expect("floor")
        assert room in floor["queue"] and floor["event"]["classroom_id"] == room, floor
        await until(lambda: (status(status_file).get("floor") or {}).get("hand_raised"), 5, "floor in status")
        await until(lambda: status(status_file).get("display_floor") == "hand", 5, "the hand on screen")
        px = np.frombuffer(screen.read_bytes(), dtype=np.uint8).reshape(SCREEN_H, SCREEN_W, 4)
        assert (px[:banner, :, :3] == BANNER["hand"][:3]).all()

        # the server is killed and comes back: the agent rejoins the lesson in progress
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        await lead.close()
        proc = start(data, port, server_log)
        ready = time.time()
        st = await until(lambda: status(status_file) if status(status_file).get("joins", 0) >= 2 else None,
                         15, "agent rejoined", agent_log)
        rejoin = st["last_joined_at"] - ready
        print(f"agent rejoined {rejoin:.2f} s after the restarted server was ready")
        assert rejoin <= 10.0
        assert ready < end_at.timestamp() - 5, "the restart took too long for the lesson's length"
        lead = ClassroomPeer(url, links[lead_room])
        peers.append(lead)
        assert (await lead.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher")])
        before = status(status_file)["frames_received"]["video"]
        await until(lambda: status(status_file)["frames_received"]["video"] >= before + 20, 15,
                    "agent decodes after the restart", agent_log)
        await lead.wait_frames("video", 10, timeout=15, classroom_id=room)

        # it leaves at the end and waits for the next lesson
        left = await lead.expect("participant_left", timeout=end_at.timestamp() - time.time() + 10)
        assert left["participant"]["classroom_id"] == room
        leave_delay = time.time() - end_at.timestamp()
        print(f"agent left {leave_delay:+.2f} s after the lesson's end")
        assert -1.0 <= leave_delay <= 5.0
        await until(lambda: status(status_file).get("state") == "waiting", 5, "agent waits again", agent_log)
        text = agent_log.read_text()
        assert "over (end)" in text and "Traceback" not in text, text[-3000:]
        assert device["credential"] not in text
    finally:
        for p in peers:
            await p.close()
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        proc.terminate()
        proc.wait(10)


class Blackhole:
    """A TCP relay between the agent and the server that can go silent (a dropped network: no RST,
    no FIN, bytes just stop) and come back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.silent = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    while self.silent:  # held, as a dead link holds them
                        await asyncio.sleep(0.1)
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        except asyncio.CancelledError:
            writer.close()
            up_w.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_the_agent_rejoins_after_the_network_went_silent(tmp_path: Path) -> None:
    data, server_log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    proc = start(data, port, server_log)
    relay = Blackhole(port)
    await relay.start()
    agent: subprocess.Popen[bytes] | None = None
    try:
        m = KEY.search(server_log.read_text())
        assert m, server_log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1"})["id"]
        device = api(port, key, "POST", "/api/devices", {"classroom_id": room, "name": "PC"})
        key_file = tmp_path / "device.key"
        key_file.write_text(device["credential"])
        key_file.chmod(0o600)
        now = datetime.now(CST).replace(microsecond=0)
        api(port, key, "POST", "/api/lessons", {  # in progress already: the agent joins at once
            "subject": "s", "title": "net", "lead_classroom_id": lead_room, "remote_classroom_ids": [room],
            "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat(),
            "recording": False})
        status_file, agent_log = tmp_path / "agent.json", tmp_path / "agent.log"
        agent = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "agent", "--server", f"http://127.0.0.1:{relay.port}",
             "--device-key-file", str(key_file), "--test-source", "--size", "160x120", "--no-display",
             "--hand-port", "-1", "--status-file", str(status_file), "--ice-address", "127.0.0.1"],
            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "CLASSROOM_DEVICE_KEY"},
            stdout=agent_log.open("wb"), stderr=subprocess.STDOUT)
        await until(lambda: status(status_file).get("state") == "in_lesson", 20, "agent in the lesson", agent_log)
        relay.silent = True
        await until(lambda: status(status_file).get("state") in ("reconnecting", "joining"), 20, "agent notices",
                    agent_log)
        await asyncio.sleep(3)  # still down: its attempts time out, none hangs
        back = time.time()
        relay.silent = False
        st = await until(lambda: status(status_file) if status(status_file).get("joins", 0) >= 2 else None,
                         20, "agent rejoined", agent_log)
        print(f"agent rejoined {st['last_joined_at'] - back:.2f} s after the network came back")
        assert st["last_joined_at"] - back <= 12.0
        assert "Traceback" not in agent_log.read_text()
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        await relay.stop()
        proc.terminate()
        proc.wait(10)


async def test_a_lesson_the_lead_ended_is_not_joined_again(tmp_path: Path) -> None:
    data, server_log, port = tmp_path / "data", tmp_path / "server.log", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(data, port, server_log)
    agent: subprocess.Popen[bytes] | None = None
    lead: ClassroomPeer | None = None
    try:
        m = KEY.search(server_log.read_text())
        assert m, server_log.read_text()
        key = m.group(1)
        school = api(port, key, "POST", "/api/schools", {"name": "S"})["id"]
        lead_room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "lead"})["id"]
        room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1"})["id"]
        device = api(port, key, "POST", "/api/devices", {"classroom_id": room, "name": "PC"})
        key_file = tmp_path / "device.key"
        key_file.write_text(device["credential"])
        key_file.chmod(0o600)
        now = datetime.now(CST).replace(microsecond=0)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "ended", "lead_classroom_id": lead_room, "remote_classroom_ids": [room],
            "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat(),
            "recording": False})["id"]
        links = {x["classroom_id"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}
        status_file, agent_log = tmp_path / "agent.json", tmp_path / "agent.log"
        agent = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "agent", "--server", url, "--device-key-file", str(key_file),
             "--poll-interval", "1", "--test-source", "--size", "160x120", "--no-display", "--hand-port", "-1",
             "--status-file", str(status_file), "--ice-address", "127.0.0.1"],
            cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "CLASSROOM_DEVICE_KEY"},
            stdout=agent_log.open("wb"), stderr=subprocess.STDOUT)
        await until(lambda: status(status_file).get("state") == "in_lesson", 20, "agent in the lesson", agent_log)
        lead = ClassroomPeer(url, links[lead_room])
        assert (await lead.connect())["type"] == "joined"
        await lead.send({"type": "end_lesson"})
        await lead.expect("lesson_ended")
        await until(lambda: "over (ended)" in agent_log.read_text(), 10, "agent sees the end", agent_log)
        await asyncio.sleep(4)  # several polls later: still not back
        st = status(status_file)
        assert st["state"] == "waiting" and st["joins"] == 1, st
    finally:
        if lead is not None:
            await lead.close()
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        proc.terminate()
        proc.wait(10)
