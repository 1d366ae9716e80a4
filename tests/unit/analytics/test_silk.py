"""Contract of analytics/_silk.c (libopus' SILK decoder linked from its static library).

It calls libopus functions that are not part of the public API (silk_Decode, silk_InitDecoder,
silk_Get_Decoder_Size, ec_dec_init), declared in the C file with libopus 1.3's signatures. These
tests hold it to libopus' public decoder (opus_decode through ctypes, PyAV's or the system's
libopus): the same samples, to the bit, for hybrid and SILK-only packets, and CELT-only packets
handed back.
"""

from __future__ import annotations

import ctypes
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

# _silk is not optional here: tests/run.sh installs libopus-dev, and the install builds it
from analytics import _silk, audio
from analytics.manifest import load_manifest
from analytics.synth import _OpusWriter

RATE = audio.RATE


def _voice(rate: int, seconds: float, seed: int = 3) -> np.ndarray:
    """Voiced sounds with a moving pitch and formant-like harmonics, pauses, noise bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    x = sum(np.sin(k * phase) / k * (1.0 + np.sin(2 * np.pi * (0.3 + 0.1 * k) * t)) for k in range(1, 25))
    syllables = (np.sin(2 * np.pi * 3.1 * t) > -0.2) & (np.sin(2 * np.pi * 0.45 * t) > -0.5)
    x = x * syllables + rng.standard_normal(len(t)) * 0.05
    x += rng.standard_normal(len(t)) * 0.6 * (np.sin(2 * np.pi * 1.3 * t) > 0.93)  # fricatives
    return np.clip(x / np.abs(x).max() * 12000, -32768, 32767).astype(np.int16)


def _encode(tmp: Path, rate: int, **options: str) -> list[bytes]:
    path = tmp / f"voice-{rate}-{'-'.join(options.values()) or 'voip'}.webm"
    writer = _OpusWriter(path, rate, "webm", 10)
    for key, value in options.items():
        writer.stream.codec_context.options[key] = value
    writer.write(_voice(rate, 2.0))
    writer.close()
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def _reference(packets: list[bytes]) -> np.ndarray:
    lib = audio._Opus.library()
    assert lib is not None, "libopus cannot be loaded through ctypes"
    err = ctypes.c_int()
    dec = lib.opus_decoder_create(RATE, 1, ctypes.byref(err))
    out = np.zeros(len(packets) * 960 + 960, np.int16)
    n = 0
    try:
        for p in packets:
            got = lib.opus_decode(dec, p, len(p), out.ctypes.data + 2 * n, 960, 0)
            assert got > 0, got
            n += got
    finally:
        lib.opus_decoder_destroy(dec)
    return out[:n]


def _silk_decode(packets: list[bytes]) -> np.ndarray:
    dec = _silk.Decoder(RATE)
    out = np.zeros(len(packets) * 960 + _silk.MAX_SAMPLES, np.int16)
    n = 0
    for p in packets:
        got = dec.decode(p, out, n)
        assert got > 0, got
        n += got
    return out[:n]


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return _encode(tmp_path_factory.mktemp("silk"), 48000)


def test_hybrid_packets_decode_to_the_same_samples_as_opus_decode(hybrid: list[bytes]) -> None:
    configs = {p[0] >> 3 for p in hybrid}
    assert configs & {12, 13, 14, 15}, configs  # the browsers' case: hybrid SWB/FB
    ours, ref = _silk_decode(hybrid), _reference(hybrid)
    assert len(ours) == len(ref) == len(hybrid) * RATE // 50
    assert np.abs(ref.astype(np.int32)).max() > 1000  # real audio, not silence
    assert np.array_equal(ours, ref)


def test_silk_only_packets_are_bit_exact(tmp_path: Path) -> None:
    packets = _encode(tmp_path, 16000, cutoff="8000")
    assert {p[0] >> 3 for p in packets} <= set(range(12)), {p[0] >> 3 for p in packets}
    assert np.array_equal(_silk_decode(packets), _reference(packets))


def test_packets_of_several_frames(hybrid: list[bytes]) -> None:
    # code 1 (two equal frames), code 2 (two frames, first size coded), code 3 (VBR, padded)
    singles = [p for p in hybrid if p[0] & 3 == 0][:40]
    joined: list[bytes] = []
    for a, b in zip(singles[0::2], singles[1::2], strict=True):
        fa, fb = a[1:], b[1:]
        toc = a[0] & 0xFC
        if len(fa) == len(fb):
            joined.append(bytes([toc | 1]) + fa + fb)
        elif len(fa) < 252:
            joined.append(bytes([toc | 2, len(fa)]) + fa + fb)
        else:
            joined.append(bytes([toc | 2, 252 + (len(fa) - 252) % 4, (len(fa) - 252) // 4]) + fa + fb)
        assert len(fb) < 252
        joined.append(bytes([toc | 3, 0x80 | 0x40 | 2, 3, len(fb)]) + fb + fa + b"\0\0\0")
    assert np.array_equal(_silk_decode(joined), _reference(joined))


def test_celt_only_packets_are_handed_back(tmp_path: Path) -> None:
    packets = _encode(tmp_path, 48000, application="lowdelay")
    assert {p[0] >> 3 for p in packets} >= {31} or all(p[0] >> 3 >= 16 for p in packets)
    out = np.zeros(4000, np.int16)
    dec = _silk.Decoder(RATE)
    assert dec.decode(packets[5], out, 0) == _silk.CELT_ONLY
    assert not out.any()


def test_clipping_to_the_buffer_and_bad_input(hybrid: list[bytes]) -> None:
    ref = _reference(hybrid[:10])
    for offset in (-50, -160, 5):
        dec = _silk.Decoder(RATE)
        out = np.zeros(10 * 160 - 30, np.int16)
        pos = offset
        for p in hybrid[:10]:
            assert dec.decode(p, out, pos) == 160
            pos += 160
        lo = max(offset, 0)
        hi = min(len(out), offset + len(ref))
        assert np.array_equal(out[lo:hi], ref[lo - offset : hi - offset])
        assert not out[hi:].any()
    dec = _silk.Decoder(RATE)
    out = np.zeros(960, np.int16)
    assert dec.decode(b"", out, 0) < 0
    assert dec.decode(bytes([hybrid[0][0] | 3, 0]), out, 0) < 0  # code 3 with no frame
    assert dec.decode(bytes([hybrid[0][0] | 1]) + b"\1\2\3", out, 0) < 0  # code 1, odd length
    with pytest.raises(ValueError):
        dec.decode(hybrid[0], np.zeros(960, np.float32), 0)
    with pytest.raises(ValueError):
        _silk.Decoder(44100)
    rng = np.random.default_rng(7)  # garbage after a valid TOC: decoded or refused, never a crash
    for _ in range(200):
        dec.decode(bytes([hybrid[0][0]]) + rng.bytes(int(rng.integers(1, 120))), out, 0)


def test_a_track_decodes_the_same_with_and_without_the_extension(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = _OpusWriter(tmp_path / "t.webm", 48000, "webm", 10)
    writer.write(_voice(48000, 3.0))
    writer.close()
    (tmp_path / "manifest.json").write_text(
        '{"format": "classroom-recording/1", "lesson_id": "x", "duration_ms": 3000,'
        ' "classrooms": [{"id": "lead", "role": "lead"}],'
        ' "tracks": [{"id": "t", "kind": "audio", "source": "teacher", "classroom_id": "lead",'
        ' "file": "t.webm", "complete": true}], "events": []}'
    )
    manifest = load_manifest(tmp_path)
    assert audio.opus_path() == "silk"
    ours = audio.decode_track(manifest, manifest.tracks[0], 3 * RATE)
    monkeypatch.setattr(audio, "_silk", None)
    assert audio.opus_path() == "libopus"
    ref = audio.decode_track(manifest, manifest.tracks[0], 3 * RATE)
    assert np.array_equal(ours.samples, ref.samples)
    assert ours.covered == ref.covered and ours.quiet == ref.quiet


class _PacketByPacket:
    """analytics._silk without ``place``: decode_track falls back to its Python loop."""

    CELT_ONLY = _silk.CELT_ONLY

    class Decoder:
        def __init__(self, rate: int) -> None:
            self._dec = _silk.Decoder(rate)

        def decode(self, packet: bytes, out: np.ndarray, offset: int) -> int:
            return self._dec.decode(packet, out, offset)

        def reset(self) -> None:
            self._dec.reset()

        def place(self, *args: object) -> None:
            return None


class _Packet:
    def __init__(self, data: bytes, pts: int | None) -> None:
        self.data, self.pts, self.size = data, pts, len(data)

    def __bytes__(self) -> bytes:
        return self.data


class _Demuxer:
    """The two things _decode_opus asks of a PyAV container and stream."""

    def __init__(self, packets: list[_Packet]) -> None:
        self.packets = packets
        self.time_base = Fraction(1, 1000)
        self.codec_context = SimpleNamespace(extradata=None)

    def demux(self, stream: object) -> list[_Packet]:
        return self.packets


def _place(packets: list[_Packet], total: int, base: int) -> audio._Placer:
    placer = audio._Placer(np.zeros(total, np.int16), base)
    demuxer = _Demuxer(packets)
    placer.bad = audio._decode_opus(demuxer, demuxer, placer, True)  # type: ignore[attr-defined]
    return placer


def test_the_c_placement_loop_is_the_python_loop(hybrid: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    # lost packets (a gap), a voiceless stretch (skipped), corrupt packets, packets without a
    # timestamp, audio before the lesson start and past its end: Decoder.place must give what the
    # packet-by-packet loop gives
    unvoiced = bytes([hybrid[0][0], 0x10]) + bytes(30)  # voice-activity bit clear
    stream: list[_Packet] = []
    t = 0
    for i, data in enumerate(hybrid[:60]):
        stream.append(_Packet(data, t))
        t += 20
        if i == 20:
            t += 400  # a gap
        if i == 30:
            stream.append(_Packet(bytes([data[0] | 3, 0]), t))  # corrupt
            stream += [_Packet(unvoiced, t + 20 * k) for k in range(1, 41)]
            t += 20 * 41
        if i == 45:
            stream.append(_Packet(data, None))
    for total, base in ((3 * RATE, 0), (2 * RATE, -400), (4 * RATE, 1000)):
        ours = _place(stream, total, base)
        monkeypatch.setattr(audio, "_silk", _PacketByPacket)
        ref = _place(stream, total, base)
        monkeypatch.setattr(audio, "_silk", _silk)
        assert ours.quiet and len(ours.covered) >= 2, (ours.quiet, ours.covered)
        assert ours.bad == ref.bad == 1  # type: ignore[attr-defined]
        assert np.array_equal(ours.out, ref.out)
        assert (ours.covered, ours.quiet, ours.cursor, ours.written, ours.overflow) == (
            ref.covered,
            ref.quiet,
            ref.cursor,
            ref.written,
            ref.overflow,
        )


def _demuxed(path: Path) -> tuple[list[bytes], list[int | None]]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        got = [(bytes(p), p.pts) for p in container.demux(stream) if p.size]
    return [g[0] for g in got], [g[1] for g in got]


def test_the_webm_block_reader_gives_pyav_s_packets_and_stamps(tmp_path: Path) -> None:
    # the extension's Matroska walk (Segment/Cluster/BlockGroup, codec delay) against FFmpeg's
    # demuxer, on a file the project's own writer makes (the recorder and synth use the same)
    path = tmp_path / "t.webm"
    writer = _OpusWriter(path, 48000, "webm", 10)
    writer.write(_voice(48000, 3.0))
    writer.close()
    packets, stamps = _demuxed(path)
    got = _silk.webm_blocks(path.read_bytes(), 0)
    assert got is not None
    assert got[0] == packets and got[1] == stamps
    assert got[2] == 1_000_000 and got[3] == 1
    with av.open(str(path)) as container:
        assert audio._webm_blocks(container, container.streams.audio[0]) == (packets, stamps)


def test_the_webm_block_reader_leaves_odd_files_to_pyav(tmp_path: Path) -> None:
    path = tmp_path / "t.webm"
    writer = _OpusWriter(path, 48000, "webm", 10)
    writer.write(_voice(48000, 2.0))
    writer.close()
    data = path.read_bytes()
    # truncated mid-block, a track that is not there, garbage: None (PyAV reads them and
    # reports the problem as before), never a crash
    assert _silk.webm_blocks(data[: len(data) - 7], 0) is None
    assert _silk.webm_blocks(data, 3) is None
    rng = np.random.default_rng(5)
    for _ in range(200):
        cut = int(rng.integers(0, len(data)))
        mangled = bytearray(data)
        mangled[cut : cut + 4] = rng.bytes(4)
        got = _silk.webm_blocks(bytes(mangled), 0)
        assert got is None or len(got[0]) == len(got[1])
    assert _silk.webm_blocks(b"", 0) == ([], [], 1_000_000, 0)
    _silk.webm_blocks(rng.bytes(1000), 0)  # whatever it finds, no crash
