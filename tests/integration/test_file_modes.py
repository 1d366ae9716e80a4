"""After a recorded lesson, no file or directory the server (or the recorder and analysis
processes it started) wrote into the data dir is readable by other local users (issue #14,
item 8): the process umask is 0o077 from server start, secrets are created 0600 explicitly."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from classroom.server import _print_banner, start_server
from tests.integration.conftest import server_config
from tests.integration.peers import ClassroomPeer, PatternTrack, ToneTrack


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    out["."] = stat.S_IMODE(root.stat().st_mode)
    return out


async def test_nothing_in_the_data_dir_is_readable_by_others(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # an ordinary login umask before the server starts
    try:
        srv = await start_server(server_config(tmp_path, recording=True, demo=True))
        try:
            _print_banner(srv)  # what `classroom serve` prints, and writes to demo-links.txt
            lead = ClassroomPeer(srv.base_url, srv.signer.issue("modes-1", "lead", "lead", "Lead"))
            remote = ClassroomPeer(srv.base_url, srv.signer.issue("modes-1", "r1", "remote", "Remote 1"))
            await lead.connect()
            await remote.connect()
            await lead.publish([(PatternTrack(), "teacher"), (ToneTrack(), "teacher")])
            await remote.wait_frames("video", 5)
            await asyncio.sleep(3)
            await lead.close()
            await remote.close()
            report = srv.config.data_path / "recordings" / "modes-1" / "report" / "report.html"
            for _ in range(300):
                if report.exists():
                    break
                await asyncio.sleep(0.1)
            assert report.exists(), "the recorded lesson was not analysed"
            found = modes(srv.config.data_path)
        finally:
            await srv.stop()
    finally:
        os.umask(previous)
    for name in ("schedule.sqlite3", "schedule.sqlite3-wal", "schedule.sqlite3-shm", "token_secret",
                 "demo-links.txt", "recordings/modes-1/manifest.json", "recordings/modes-1/report/report.json"):
        assert name in found, (name, sorted(found))
    assert any(name.startswith("recordings/modes-1/") and name.endswith((".webm", ".mkv", ".ogg", ".mka"))
               for name in found), sorted(found)
    readable = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not readable, readable
