"""The classroom agent plays the sound it receives (issue #17: "plays what it receives ... when
there is a display, otherwise counts decoded frames"), as a real process against a real server:
the lead (an aiortc peer) publishes its camera and a 660 Hz tone; the agent decodes the tone and
plays it on an ALSA playback device through PyAV. The device is ALSA's own ``file`` plugin (over
the ``null`` PCM), so the samples the agent played land in a file the test reads back: no sound
card is needed, the path through libasound is the real one. Without a usable device (no such
PCM) the agent says so once and only counts the decoded audio frames, as with ``--no-display``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from agent.speaker import SYSTEM_ALSA_CONFIG
from tests.e2e.conftest import free_port
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack
from tests.integration.test_agent import CST, SCREEN_H, SCREEN_W, status, until
from tests.integration.test_faults_restart import KEY, ROOT, api, start

TONE_HZ = 660.0
TWO_SECONDS = 48000 * 2 * 2 * 2  # bytes of s16 stereo at 48 kHz


def alsa_file_device(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An ALSA configuration with a PCM ``classroom_test`` that writes what is played to a file."""
    raw = tmp_path / "played.raw"
    conf = tmp_path / "asound.conf"
    conf.write_text('pcm.classroom_test {\n  type file\n  slave.pcm "null"\n'
                    f'  file "{raw}"\n  format "raw"\n}}\n')
    return {"ALSA_CONFIG_PATH": f"{SYSTEM_ALSA_CONFIG}:{conf}"}, raw


@asynccontextmanager
async def lesson_with_agent(tmp_path: Path, *agent_args: str,
                            env: dict[str, str] | None = None) -> AsyncIterator[tuple[Path, Path]]:
    """A lesson in progress, the agent of its remote classroom running, the lead publishing video
    and the tone: (status file, agent log) while the agent is in the lesson."""
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
        room = api(port, key, "POST", "/api/classrooms", {"school_id": school, "name": "r1", "kind": "hardware",
                                                          "lead_capable": False})["id"]
        device = api(port, key, "POST", "/api/devices", {"classroom_id": room, "name": "PC"})
        key_file = tmp_path / "device.key"
        key_file.write_text(device["credential"])
        key_file.chmod(0o600)
        now = datetime.now(CST).replace(microsecond=0)
        lesson = api(port, key, "POST", "/api/lessons", {
            "subject": "s", "title": "sound", "lead_classroom_id": lead_room, "remote_classroom_ids": [room],
            "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(minutes=5)).isoformat(),
            "recording": False})["id"]
        links = {x["classroom_id"]: x["token"] for x in api(port, key, "GET", f"/api/lessons/{lesson}/links")["links"]}
        lead = ClassroomPeer(url, links[lead_room])
        assert (await lead.connect())["type"] == "joined"
        await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(freq=TONE_HZ), "teacher")])
        status_file, agent_log = tmp_path / "agent.json", tmp_path / "agent.log"
        screen = tmp_path / "fb0"  # a file standing in for /dev/fb0
        screen.write_bytes(bytes(SCREEN_W * SCREEN_H * 4))
        agent_env = {k: v for k, v in os.environ.items() if k not in ("CLASSROOM_DEVICE_KEY", "ALSA_CONFIG_PATH")}
        agent = subprocess.Popen(
            [sys.executable, "-m", "classroom.cli", "agent", "--server", url, "--device-key-file", str(key_file),
             "--poll-interval", "1", "--test-source", "--size", "160x120", "--hand-port", "-1",
             "--display-device", str(screen), "--display-size", f"{SCREEN_W}x{SCREEN_H}",
             "--status-file", str(status_file), "--ice-address", "127.0.0.1", *agent_args],
            cwd=ROOT, env={**agent_env, **(env or {})}, stdout=agent_log.open("wb"), stderr=subprocess.STDOUT)
        await until(lambda: status(status_file).get("state") == "in_lesson", 20, "agent in the lesson", agent_log)
        yield status_file, agent_log
    finally:
        if lead is not None:
            await lead.close()
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        proc.terminate()
        proc.wait(10)


def dominant_hz(stereo: np.ndarray, rate: int = 48000) -> float:
    left = stereo.reshape(-1, 2)[:, 0].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(left * np.hanning(left.size)))
    return float(np.fft.rfftfreq(left.size, 1 / rate)[int(np.argmax(spectrum))])


async def test_the_agent_plays_the_lead_s_sound_on_its_alsa_device(tmp_path: Path) -> None:
    env, raw = alsa_file_device(tmp_path)
    async with lesson_with_agent(tmp_path, "--speaker", "classroom_test", env=env) as (status_file, agent_log):
        # (libasound's file plugin writes the file a buffer behind what the agent has played)
        await until(lambda: raw.exists() and raw.stat().st_size >= TWO_SECONDS, 25, "2 s of sound in the file",
                    agent_log)
        st = status(status_file)
        assert st["sound"] == "classroom_test" and st["sound_played_ms"] >= 2000, st
        assert st["frames_received"]["audio"] > 0 and st["frames_shown"] > 0, st
        played = np.frombuffer(raw.read_bytes(), dtype=np.int16)
        last = played[-48000 * 2:]  # the last second
        rms = float(np.sqrt(np.mean(last.astype(np.float64) ** 2)))
        peak = dominant_hz(last)
        print(f"\nagent played {st['sound_played_ms']} ms; last second: {peak:.0f} Hz, RMS {rms:.0f}")
        assert abs(peak - TONE_HZ) < 5, peak  # the lead's tone, not noise or the agent's own 440 Hz
        assert rms > 1000, rms  # ToneTrack's amplitude 0.3 ~ RMS 6950; silence or a trickle would fail
        assert "Traceback" not in agent_log.read_text()


async def test_without_a_sound_device_the_agent_counts_decoded_audio(tmp_path: Path) -> None:
    env = {"ALSA_CONFIG_PATH": SYSTEM_ALSA_CONFIG}
    async with lesson_with_agent(tmp_path, "--speaker", "no_such_pcm", env=env) as (status_file, agent_log):
        await until(lambda: status(status_file)["frames_received"]["audio"] >= 50, 20, "audio decoded", agent_log)
        st = status(status_file)
        assert st["sound"] is None and st["sound_played_ms"] == 0, st
        text = agent_log.read_text()
        assert text.count("no sound (cannot open ALSA playback device 'no_such_pcm'") == 1, text[-2000:]
        assert "Traceback" not in text
