"""Decode audio tracks to 8 kHz mono int16 laid out on the lesson's timeline.

Containers are read with PyAV. Opus packets are decoded straight to 8 kHz by libopus: with the
optional extension :mod:`analytics._silk` (libopus' SILK decoder linked from its static library;
the CELT layer of hybrid packets, 8-20 kHz, is not decoded), else through ctypes on the libopus
PyAV ships or the system's; either is about twice as fast as decoding at 48 kHz and resampling.
Every other codec (and Opus when libopus cannot be loaded) goes through PyAV's decoder and
resampler. :func:`opus_path` says which path Opus takes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import threading
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from analytics.manifest import Manifest, Segment, Track

try:
    from analytics import _silk
except ImportError:  # not built (no libopus.a at install time): the ctypes path is used
    _silk = None  # type: ignore[assignment]

RATE = 8000
_GAP_TOLERANCE = RATE // 10  # timestamp jumps above 100 ms are gaps (lost packets, DTX, pauses)


@dataclass
class DecodedTrack:
    track: Track
    samples: np.ndarray
    """int16 samples at 16 kHz; index 0 is the lesson start; zeros where nothing was decoded."""
    covered: list[tuple[int, int]] = field(default_factory=list)
    """[start, end) sample ranges that hold audio."""
    quiet: list[tuple[int, int]] = field(default_factory=list)
    """covered ranges left undecoded because the sender's encoder flagged them as no voice."""
    warnings: list[str] = field(default_factory=list)

    @property
    def decoded_s(self) -> float:
        return sum(e - s for s, e in self.covered) / RATE


class _Opus:
    """Minimal ctypes binding of libopus' decoder."""

    _lock = threading.Lock()
    _lib: Any = None
    _tried = False

    @classmethod
    def library(cls) -> Any:
        with cls._lock:
            if cls._tried:
                return cls._lib
            cls._tried = True
            candidates: list[str] = []
            libs_dir = os.path.join(os.path.dirname(av.__file__), os.pardir, "av.libs")
            candidates += sorted(glob.glob(os.path.join(libs_dir, "libopus*.so*")))
            found = ctypes.util.find_library("opus")
            if found:
                candidates.append(found)
            for name in candidates:
                try:
                    lib = ctypes.CDLL(name)
                    lib.opus_decoder_create.restype = ctypes.c_void_p
                    lib.opus_decoder_create.argtypes = [
                        ctypes.c_int32,
                        ctypes.c_int,
                        ctypes.POINTER(ctypes.c_int),
                    ]
                    lib.opus_decode.restype = ctypes.c_int
                    lib.opus_decode.argtypes = [
                        ctypes.c_void_p,
                        ctypes.c_char_p,
                        ctypes.c_int32,
                        ctypes.c_void_p,
                        ctypes.c_int,
                        ctypes.c_int,
                    ]
                    lib.opus_decoder_destroy.restype = None
                    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
                except (OSError, AttributeError):
                    continue
                cls._lib = lib
                break
            return cls._lib


def opus_available() -> bool:
    return _silk is not None or _Opus.library() is not None


def opus_path() -> str:
    """How Opus is decoded: ``silk`` (the extension, no CELT layer for hybrid packets),
    ``libopus`` (ctypes, whole packets) or ``pyav`` (PyAV's decoder and resampler)."""
    if _silk is not None:
        return "silk"
    return "libopus" if _Opus.library() is not None else "pyav"


class _Placer:
    """Writes decoded chunks at their timestamps, tolerating gaps and jitter."""

    def __init__(self, out: np.ndarray, base: int) -> None:
        self.out = out
        self.base = base
        self.cursor: int | None = None
        self.t0: float | None = None
        self.covered: list[tuple[int, int]] = []
        self.quiet: list[tuple[int, int]] = []
        self.overflow = 0
        self.written = 0

    def put(self, chunk: np.ndarray, t: float | None) -> None:
        n = len(chunk)
        if n == 0:
            return
        if t is not None and self.t0 is None:
            self.t0 = t
        expected = None if t is None or self.t0 is None else self.base + round((t - self.t0) * RATE)
        if self.cursor is None:
            self.cursor = self.base if expected is None else expected
        elif expected is not None and expected - self.cursor > _GAP_TOLERANCE:
            self.cursor = expected
        start = self.cursor
        self.cursor += n
        self.written += n
        lo, hi = max(start, 0), min(start + n, len(self.out))
        if hi > lo:
            self.out[lo:hi] = chunk[lo - start : hi - start]
            if self.covered and self.covered[-1][1] >= lo:
                self.covered[-1] = (self.covered[-1][0], max(hi, self.covered[-1][1]))
            else:
                self.covered.append((lo, hi))
        self.overflow += n - max(hi - lo, 0)

    @property
    def end(self) -> int:
        return self.base if self.cursor is None else self.cursor


def _pre_skip(stream: Any) -> int:
    extra = bytes(stream.codec_context.extradata or b"")
    if len(extra) >= 12 and extra[:8] == b"OpusHead":
        return int.from_bytes(extra[10:12], "little")
    return 312


_OPUS_RESET_STATE = 4028
_SKIP_BEFORE = 15  # packets decoded before the encoder's first voice flag (300 ms at 20 ms)
_SKIP_AFTER = 15


def _voice_flags(packets: list[bytes]) -> np.ndarray:
    """The encoder's voice-activity flag of each packet, 1 where it cannot be read.

    In SILK and hybrid packets holding one frame (TOC config < 16, code 0), the first coded
    symbol of the payload is SILK's VAD flag, coded with probability 1/2: the top bit of the
    byte after the TOC (RFC 6716, 4.2.3)."""
    flags = np.ones(len(packets), dtype=bool)
    for i, data in enumerate(packets):
        if len(data) > 1 and data[0] < 128 and data[0] & 3 == 0:
            flags[i] = data[1] >= 128
    return flags


def _unvoiced_samples(data: bytes) -> int:
    config = data[0] >> 3
    ms = (10, 20, 40, 60)[config % 4] if config < 12 else (10, 20)[config % 2]
    return ms * RATE // 1000


def _webm_blocks(container: Any, stream: Any) -> tuple[list[bytes], list[int | None]] | None:
    """The stream's packets and stamps read by the extension's Matroska block reader (the same
    as PyAV's demuxer gives, at a hundredth of its cost), or None: no extension, not a WebM/
    Matroska file, or something in it that reader leaves to PyAV (laced or truncated blocks)."""
    reader = getattr(_silk, "webm_blocks", None)
    fmt = getattr(container, "format", None)
    if reader is None or fmt is None or "matroska" not in (fmt.name or ""):
        return None
    try:
        data = Path(container.name).read_bytes()
    except (OSError, TypeError, ValueError):
        return None
    got = reader(data, stream.index)
    if got is None:
        return None
    packets, stamps, scale_ns, entries = got
    if entries != len(container.streams) or stream.time_base != Fraction(scale_ns, 1_000_000_000):
        return None
    return packets, list(stamps)


def _decode_opus(container: Any, stream: Any, placer: _Placer, skip_unvoiced: bool) -> int:
    """Decode straight into the output array; returns the number of packets libopus rejected.

    With ``skip_unvoiced``, long runs of packets that the sender's encoder flagged as holding no
    voice are not decoded (they stay zero and are recorded in ``placer.quiet``): the decoder is
    reset and restarted 300 ms before the next voiced packet."""
    problem: BaseException | None = None
    read = _webm_blocks(container, stream)
    if read is not None:
        packets, stamps = read
    else:
        packets, stamps = [], []
        try:
            for packet in container.demux(stream):
                if packet.size:
                    packets.append(bytes(packet))
                    stamps.append(packet.pts)
        except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
            problem = exc
    if skip_unvoiced and packets:
        flags = _voice_flags(packets)
        edges = np.zeros(len(packets) + 1, dtype=np.int32)
        voiced = np.flatnonzero(flags)
        np.add.at(edges, np.maximum(voiced - _SKIP_BEFORE, 0), 1)
        np.add.at(edges, np.minimum(voiced + _SKIP_AFTER + 1, len(packets)), -1)
        wanted = (np.cumsum(edges)[:-1] > 0).tolist()
    else:
        wanted = [True] * len(packets)

    fast = _silk.Decoder(RATE) if _silk is not None else None
    lib = _Opus.library()
    dec = None

    def whole_packets() -> Any:  # libopus' own decoder: every packet without the extension, else CELT-only ones
        nonlocal dec
        if dec is None:
            if lib is None:
                raise RuntimeError("a CELT-only Opus packet needs libopus, which cannot be loaded")
            err = ctypes.c_int()
            dec = lib.opus_decoder_create(RATE, 1, ctypes.byref(err))
            if not dec or err.value != 0:
                dec = None
                raise RuntimeError(f"opus_decoder_create failed ({err.value})")
        return dec

    tb = float(stream.time_base) if stream.time_base else 0.0
    start = placer.base - _pre_skip(stream) * RATE // 48000  # pre-skip counts 48-kHz samples
    if fast is not None:
        # the loop below, in C (no CELT-only packet in the file), when nothing went wrong
        placed = fast.place(packets, stamps, bytes(wanted), placer.out, start, tb, _GAP_TOLERANCE)
        if placed is not None:
            end, written, overflow, bad_packets, covered_ranges, quiet_ranges = placed
            placer.covered.extend(covered_ranges)
            placer.quiet.extend(quiet_ranges)
            placer.written += written
            placer.overflow += overflow
            if end is not None:
                placer.cursor = end
            if problem is not None:
                raise problem
            return int(bad_packets)
        fast.reset()
    else:
        whole_packets()
    celt_only = _silk.CELT_ONLY if _silk is not None else 0
    out = placer.out
    total = len(out)
    out_ptr = out.ctypes.data
    buf = np.zeros(1920, dtype=np.int16)  # 120 ms at 16 kHz: the longest Opus packet
    buf_ptr = buf.ctypes.data
    cursor: int | None = None
    t0: int | None = None
    bad = 0
    run_start = -1
    quiet_start = -1
    covered = placer.covered
    quiet = placer.quiet
    decode: Any = lib.opus_decode if lib is not None else None
    skipping = False
    try:
        for data, pts, want in zip(packets, stamps, wanted, strict=True):
            if pts is not None and tb:
                if t0 is None:
                    t0 = pts
                expected = start + round((pts - t0) * tb * RATE)
                if cursor is None or expected - cursor > _GAP_TOLERANCE:
                    if cursor is not None and run_start >= 0:
                        covered.append((run_start, min(cursor, total)))
                        run_start = -1
                    cursor = expected
            elif cursor is None:
                cursor = start
            assert cursor is not None
            if not want:
                n = _unvoiced_samples(data)
                if not skipping:
                    skipping = True
                    quiet_start = max(cursor, 0)
            else:
                if skipping:
                    skipping = False
                    quiet.append((quiet_start, min(max(cursor, 0), total)))
                    if fast is not None:
                        fast.reset()
                    if dec is not None:
                        lib.opus_decoder_ctl(ctypes.c_void_p(dec), _OPUS_RESET_STATE)
                n = celt_only
                if fast is not None:
                    n = fast.decode(data, out, cursor)  # clipped to the array by the extension
                    if n > 0:
                        placer.overflow += n - max(min(cursor + n, total) - max(cursor, 0), 0)
                if n != celt_only:
                    pass
                elif 0 <= cursor and cursor + 1920 <= total:
                    n = decode(whole_packets(), data, len(data), out_ptr + 2 * cursor, 1920, 0)
                else:
                    n = decode(whole_packets(), data, len(data), buf_ptr, 1920, 0)
                    if n > 0:
                        lo, hi = max(cursor, 0), min(cursor + n, total)
                        if hi > lo:
                            out[lo:hi] = buf[lo - cursor : hi - cursor]
                        placer.overflow += n - max(hi - lo, 0)
                if n < 0:
                    bad += 1
                    continue
            if run_start < 0 and cursor + n > 0 and cursor < total:
                run_start = max(cursor, 0)
            cursor += n
            placer.written += n
    finally:
        if dec is not None:
            lib.opus_decoder_destroy(dec)
        if cursor is not None:
            if run_start >= 0:
                covered.append((run_start, min(cursor, total)))
            if skipping:
                quiet.append((quiet_start, min(max(cursor, 0), total)))
            placer.cursor = cursor
    if problem is not None:
        raise problem
    return bad


def _decode_generic(container: Any, stream: Any, placer: _Placer) -> None:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    for frame in container.decode(stream):
        t = frame.time
        for out in resampler.resample(frame):
            placer.put(out.to_ndarray().reshape(-1), t)
            t = None
    for out in resampler.resample(None):
        placer.put(out.to_ndarray().reshape(-1), None)


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """Float mono samples at ``rate`` -> int16 at 16 kHz (box-filter decimation or linear
    interpolation)."""
    if rate != RATE:
        if rate % RATE == 0:
            k = rate // RATE
            n = len(x) // k
            x = x[: n * k].reshape(n, k).mean(axis=1)
        else:
            n = int(len(x) * RATE / rate)
            x = np.interp(np.arange(n) * (rate / RATE), np.arange(len(x)), x)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _read_wav(path: Path, placer: _Placer) -> str | None:
    """Fast path for 16-bit PCM WAV; returns None if the file needs PyAV instead, else '' or a
    problem description."""
    try:
        w = wave.open(str(path), "rb")
    except (wave.Error, EOFError, OSError):
        return None
    with w:
        if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
            return None
        channels, rate, expected = w.getnchannels(), w.getframerate(), w.getnframes()
        block = rate * 60
        got = 0
        while True:
            data = w.readframes(block)
            if not data:
                break
            usable = len(data) - len(data) % (2 * channels)
            x = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32)
            if channels > 1:
                x = x.reshape(-1, channels).mean(axis=1)
            got += len(x)
            placer.put(to_16k(x, rate), got / rate - len(x) / rate)
            if len(x) < block:
                break
    if got < expected:
        return f"data ends after {got / rate:.1f} s of the {expected / rate:.1f} s in its header"
    return ""


def _resolve(directory: Path, name: str) -> Path | None:
    if os.path.isabs(name):
        return None
    path = (directory / name).resolve()
    try:
        path.relative_to(directory.resolve())
    except ValueError:
        return None
    return path


def decode_track(manifest: Manifest, track: Track, total_samples: int, skip_unvoiced: bool = True) -> DecodedTrack:
    out = np.zeros(total_samples, dtype=np.int16)
    result = DecodedTrack(track=track, samples=out)
    warn = result.warnings.append
    prev_end = track.start_ms * RATE // 1000
    overflow = 0
    segments = track.segments

    def present(seg: Segment) -> bool:
        path = _resolve(manifest.directory, seg.file)
        return path is not None and path.is_file()

    if track.alternative and not all(map(present, segments)) and all(map(present, track.alternative)):
        missing = next(seg.file for seg in segments if not present(seg))
        instead = "its segments" if len(track.alternative) > 1 else track.alternative[0].file
        warn(f"track {track.id}: file {missing} is missing; reading {instead} instead")
        segments = track.alternative
    for index, seg in enumerate(segments):
        label = f"track {track.id}" + (f" segment {index}" if len(segments) > 1 else "")
        base = prev_end if seg.start_ms < 0 else seg.start_ms * RATE // 1000
        path = _resolve(manifest.directory, seg.file)
        if path is None:
            warn(f"{label}: file name {seg.file!r} points outside the recording; skipped")
            continue
        if not path.is_file():
            warn(f"{label}: file {seg.file} is missing; no audio for it")
            continue
        placer = _Placer(out, base)
        expected_s = None if seg.end_ms is None else (seg.end_ms - max(seg.start_ms, 0)) / 1000
        if seg.start_ms < 0:
            expected_s = None
        try:
            container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as exc:
            warn(f"{label}: cannot open {seg.file} ({_why(exc)}); no audio for it")
            continue
        try:
            streams = list(container.streams.audio)
            if not streams:
                warn(f"{label}: {seg.file} has no audio stream; skipped")
                continue
            stream = streams[0]
            name = stream.codec_context.name
            channels = stream.codec_context.channels
            problem = None
            try:
                wav_problem = _read_wav(path, placer) if name.startswith("pcm_") else None
                if wav_problem is not None:
                    if wav_problem:
                        raise ValueError(wav_problem)
                elif name == "opus" and channels <= 2 and opus_available():
                    bad = _decode_opus(container, stream, placer, skip_unvoiced)
                    if bad:
                        warn(f"{label}: {bad} corrupt Opus packet(s) in {seg.file} skipped")
                else:
                    _decode_generic(container, stream, placer)
            except (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError) as exc:
                problem = _why(exc)
            got_s = placer.written / RATE
            if problem is not None:
                warn(
                    f"{label}: decoding {seg.file} stopped after {got_s:.1f} s ({problem}); "
                    "the file is corrupt or truncated, the rest of it is treated as missing"
                )
            elif placer.written == 0:
                warn(f"{label}: {seg.file} holds no decodable audio")
            elif expected_s is not None and got_s < expected_s - 1.0:
                warn(
                    f"{label}: {seg.file} holds {got_s:.1f} s of audio but the manifest says "
                    f"{expected_s:.1f} s (truncated?); the rest is treated as missing"
                )
        finally:
            container.close()
        result.covered.extend(placer.covered)
        result.quiet.extend(placer.quiet)
        overflow += placer.overflow
        prev_end = placer.end
    if overflow > RATE:
        warn(f"track {track.id}: {overflow / RATE:.1f} s of audio beyond the lesson end ignored")
    result.covered = _merge(result.covered)
    return result


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(ranges):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def probe_end_samples(manifest: Manifest, track: Track) -> int:
    """Rough end of a track in samples (for manifests without a usable duration)."""
    end = track.end_ms if track.end_ms is not None else track.start_ms
    for seg in track.segments:
        if seg.end_ms is not None:
            end = max(end, seg.end_ms)
    return end * RATE // 1000


def probe_duration_ms(manifest: Manifest, tracks: list[Track]) -> int:
    """Longest track end, asking the containers when the manifest has no times."""
    best = 0
    for track in tracks:
        end = probe_end_samples(manifest, track) * 1000 // RATE
        if end <= track.start_ms:
            for seg in track.segments:
                path = _resolve(manifest.directory, seg.file)
                if path is None or not path.is_file():
                    continue
                try:
                    with av.open(str(path)) as container:
                        if container.duration:
                            end = max(
                                end,
                                max(seg.start_ms, 0) + container.duration * 1000 // av.time_base,
                            )
                except (av.FFmpegError, OSError, ValueError):
                    continue
        best = max(best, end)
    return int(best)
