"""The agent's sound mixer (agent/speaker.py): bounded per-track buffers, one 20-ms chunk per
tick with the tracks that have one summed and clipped."""

from __future__ import annotations

import numpy as np

from agent.speaker import CHANNELS, CHUNK_SAMPLES, SYSTEM_ALSA_CONFIG, Mixer, alsa_environment

CHUNK = CHUNK_SAMPLES * CHANNELS


def samples(value: int, chunks: float = 1.0) -> np.ndarray:
    return np.full(int(CHUNK * chunks), value, dtype=np.int16)


def test_one_track_comes_out_as_it_went_in_in_20_ms_chunks() -> None:
    m = Mixer()
    assert m.pull() is None
    m.push("a", samples(5, 0.5))
    assert m.pull() is None  # half a chunk: not yet
    m.push("a", samples(7, 1.0))
    out = m.pull()
    assert out is not None and out.size == CHUNK
    assert (out[:CHUNK // 2] == 5).all() and (out[CHUNK // 2:] == 7).all()
    assert m.pull() is None  # half a chunk left
    assert m.stats.chunks == 1


def test_two_tracks_are_summed_and_clipped() -> None:
    m = Mixer()
    m.push("lead", samples(1000))
    m.push("floor", samples(-300))
    out = m.pull()
    assert out is not None and (out == 700).all()
    m.push("lead", samples(30000))
    m.push("floor", samples(10000))
    out = m.pull()
    assert out is not None and (out == 32767).all() and out.dtype == np.int16
    m.push("lead", samples(-30000))
    m.push("floor", samples(-10000))
    assert (m.pull() == -32768).all()  # type: ignore[union-attr]


def test_a_track_without_a_whole_chunk_is_left_out_for_now() -> None:
    m = Mixer()
    m.push("lead", samples(100))
    m.push("late", samples(50, 0.25))
    assert (m.pull() == 100).all()  # type: ignore[union-attr]
    assert m.stats.tracks == 2


def test_a_burst_is_trimmed_to_the_newest_sound() -> None:
    m = Mixer(max_buffer_ms=100)  # 5 chunks
    for i in range(10):
        m.push("a", samples(i))
    assert m.stats.dropped_ms == 100
    first = m.pull()
    assert first is not None and (first == 5).all()  # the five oldest chunks were dropped


def test_removed_tracks_stop_at_once() -> None:
    m = Mixer()
    m.push("a", samples(1, 3))
    m.remove("a")
    assert m.pull() is None


def test_pyav_s_libasound_is_pointed_at_the_system_configuration() -> None:
    env: dict[str, str] = {}
    alsa_environment(env)
    assert env.get("ALSA_CONFIG_PATH") == SYSTEM_ALSA_CONFIG  # Debian's libasound2-data is installed here
    env = {"ALSA_CONFIG_PATH": "/etc/mine.conf"}
    alsa_environment(env)
    assert env["ALSA_CONFIG_PATH"] == "/etc/mine.conf"
