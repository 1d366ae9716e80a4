"""The compiled fan-out loop (sfu/_fanout.c, through sfu.lane) against the Python path.

Real UDP sockets on loopback and real libsrtp sessions: what the C loop sends is read back,
unprotected and compared with what ``DownTrack.forward`` produces for the same packets.
"""

from __future__ import annotations

import os
import socket
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pylibsrtp import Policy, Session

from sfu import demux, glue, lane
from sfu.downtrack import DownTrack
from sfu.forwarder import Forwarder

KEY = bytes(range(30))
PROFILE = Policy.SRTP_PROFILE_AES128_CM_SHA1_80


def _sessions() -> tuple[Session, Session]:
    tx = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=PROFILE)
    tx.allow_repeat_tx = True
    rx = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE)
    return Session(tx), Session(rx)


class SocketTransport:
    """A RawTransport over a connected loopback socket: the C loop sends through ``egress``,
    ``DownTrack.forward`` through ``send_rtp_parts``; ``received()`` reads both back."""

    def __init__(self, ready: bool = True) -> None:
        self.tx_session, self.rx_session = _sessions()
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.rx.setblocking(False)
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.connect(self.rx.getsockname())
        self.egress = lane.Egress()
        if ready:
            self.egress.set(self.tx.fileno(), glue.srtp_session_address(self.tx_session), (self.tx_session, self.tx))
        self.python_sends = 0

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        self.python_sends += 1
        try:
            self.tx.send(self.tx_session.protect(header + payload))
        except OSError:
            return False
        return True

    def write_buffer_size(self) -> int:
        return 0

    def received(self) -> list[bytes]:
        """The datagrams sent so far, unprotected (each sequence number once: replay check)."""
        return [self.rx_session.unprotect(d) for d in self.datagrams()]

    def datagrams(self) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.rx.recv(4096))
            except BlockingIOError:
                return out

    def close(self) -> None:
        self.egress.clear()
        self.tx.close()
        self.rx.close()


class RecordingTransport:
    """No egress: every packet goes through ``DownTrack.forward``; keeps them in the clear."""

    egress: Any = None

    def __init__(self) -> None:
        self.rtp: list[bytes] = []

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        self.rtp.append(header + payload)
        return True

    def write_buffer_size(self) -> int:
        return 0


@pytest.fixture
def transports() -> Iterator[list[SocketTransport]]:
    made: list[SocketTransport] = []
    yield made
    for t in made:
        t.close()


def _down(transport: Any, kind: str = "video", ssrc: int = 0x1234, pt: int = 100) -> DownTrack:
    d = DownTrack("s1", "0", kind, ssrc, pt, 90000 if kind == "video" else 48000, transport)
    d.fwd.last_out_seq, d.fwd.last_out_ts = 4999, 777_000  # the same start for every lane
    d.fwd.switch("source")
    return d


def _fan(downs: list[DownTrack], payload: bytes, seq: int, ts: int, ms: int, key: bool, marker: int = 0) -> int:
    assert lane.fanout is not None
    return lane.fanout(tuple(downs), tuple(d.fwd for d in downs), payload, marker, seq, ts, ms, key)


def test_built() -> None:
    """CI builds the extension (pip install -e . compiles it): the benchmark figures depend on it."""
    assert lane.FAST_PATH == "c" and lane.fanout is not None
    assert glue.fast_fanout_ready()


def test_python_lane_has_the_fields_of_the_c_lane() -> None:
    c_fields = {n for n, v in vars(lane.Lane).items() if type(v).__name__ == "member_descriptor"}
    assert c_fields == set(lane._PyLane.__slots__)


# A packet stream with reordering, duplicates, gaps and sequence wrap-around.
steps = st.lists(st.integers(min_value=-40, max_value=60), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(steps=steps, start=st.integers(min_value=0, max_value=0xFFFF), ast=st.sampled_from([0, 3, 14]),
       twcc=st.sampled_from([0, 5]))
def test_c_loop_sends_what_python_forward_sends(steps: list[int], start: int, ast: int, twcc: int) -> None:
    fast = SocketTransport()
    try:
        slow = RecordingTransport()
        if twcc:  # transport-wide sequence numbers: both connections number from 0
            slow.egress = lane.Egress()
            for t in (fast, slow):
                t.egress.twcc_enable()
        downs = [_down(fast), _down(slow)]
        for d in downs:
            d.fwd.abs_send_time_id = ast  # with it, the header carries abs-send-time (RFC 8285)
            d.fwd.twcc_id = twcc  # and with this, the transport-wide sequence number
        seq, ts = start, 1_000_000
        sent = [0, 0]
        for i, step in enumerate([0, *steps]):
            seq = (seq + step) & 0xFFFF
            ts = (ts + 3000 * step) & 0xFFFFFFFF
            payload = os.urandom(20 + i % 7) + bytes([i & 0xFF])
            result = _fan(downs, payload, seq, ts, 33 * i, i == 0, marker=0x80 if i % 3 == 0 else 0)
            assert result >> 32 == 0
        # SRTP is deterministic for one key, SSRC and packet index: protecting what Python
        # forward produced, in order, must give exactly the datagrams the C loop sent.
        expected_tx, _ = _sessions()
        got = fast.datagrams()
        assert got == [expected_tx.protect(p) for p in slow.rtp]
        sent = [downs[0].packets, downs[1].packets]
        assert sent[0] == sent[1] == len(got)
        for name in ("seq_offset", "ts_offset", "highest_in_seq", "ext_first", "ext_highest", "last_out_seq",
                     "last_out_ts", "last_out_ms", "out_seq", "out_ts", "started", "octets"):
            assert getattr(downs[0].fwd, name) == getattr(downs[1].fwd, name), name
        assert fast.python_sends == 1  # only the segment's first packet (the rebase) took Python
    finally:
        fast.close()


def test_first_packet_and_not_ready_lanes_take_python(transports: list[SocketTransport]) -> None:
    ready, not_ready = SocketTransport(), SocketTransport(ready=False)
    transports += [ready, not_ready]
    downs = [_down(ready), _down(not_ready)]
    before = lane.c_forwarded()
    assert _fan(downs, b"\x10key", 10, 0, 0, True) == 2  # rebase: both in Python
    assert (ready.python_sends, not_ready.python_sends) == (1, 1)
    assert _fan(downs, b"\x11delta", 11, 3000, 33, False) == 2
    assert (ready.python_sends, not_ready.python_sends) == (1, 2)
    assert lane.c_forwarded() - before == 1
    assert ready.egress.sent == 1
    assert [p[12:] for p in ready.received()] == [b"\x10key", b"\x11delta"]
    assert downs[0].first_sent_at > 0 and downs[0].packets == 2 and downs[0].octets == 4 + 6


def test_waiting_for_a_keyframe_sends_nothing(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    assert _fan([d], b"\x11delta", 10, 0, 0, False) == 0
    assert d.fwd.dropped_waiting == 1 and t.received() == []


def test_a_refused_send_is_dropped_and_video_waits_for_a_keyframe(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    assert _fan([d], b"\x10key", 10, 0, 0, True) == 1
    t.received()
    t.rx.close()  # nobody listens any more: the kernel refuses the next sends (ICMP)
    results = [_fan([d], b"\x11delta", 11 + i, 3000 * i, 33 * i, False) for i in range(1, 4)]
    dropped = sum(r >> 32 for r in results)
    assert dropped >= 1 and t.egress.send_errors == dropped
    assert d.fwd.started is False  # goes on from the next keyframe
    t.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # for close()


def test_audio_lane_keeps_going_after_a_refused_send(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t, kind="audio")
    _fan([d], b"a0", 10, 0, 0, False)
    t.rx.close()
    for i in range(1, 4):
        _fan([d], b"a", 10 + i, 960 * i, 20 * i, False)
    assert d.fwd.started is True
    t.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)


def test_cleared_egress_is_never_used(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    _fan([d], b"\x10key", 10, 0, 0, True)
    keep = object.__new__(type("Keep", (), {}))
    ref = weakref.ref(keep)
    t.egress.set(t.tx.fileno(), glue.srtp_session_address(t.tx_session), keep)
    del keep
    assert ref() is not None  # held while set
    t.egress.clear()
    assert ref() is None and t.egress.fd == -1
    _fan([d], b"\x11delta", 11, 3000, 33, False)
    assert t.egress.sent == 0 and t.python_sends == 2


def test_bad_arguments_raise_type_errors(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    assert lane.fanout is not None
    with pytest.raises(TypeError):
        lane.fanout((d,), (), b"x", 0, 1, 2, 3, False)
    with pytest.raises(TypeError):
        lane.fanout((d,), (d.fwd,), bytearray(b"x"), 0, 1, 2, 3, False)
    with pytest.raises(TypeError):
        lane.fanout((d,), (object(),), b"x", 0, 1, 2, 3, False)
    with pytest.raises(TypeError):
        lane.fanout((d,), (d.fwd,), b"x", 0, 1, 2)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        t.egress.set(-1, 1, None)


def test_an_oversized_payload_takes_python_and_its_error(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    _fan([d], b"\x10key", 10, 0, 0, True)
    with pytest.raises(ValueError):  # more than the C loop's buffer: Python's protect refuses it too
        _fan([d], bytes(5000), 11, 3000, 33, False)
    assert t.python_sends == 2 and t.egress.sent == 0


def test_forwarder_is_a_lane() -> None:
    f = Forwarder(90000, True, initial_seq=100, initial_ts=5)
    assert isinstance(f, lane.Lane) and not hasattr(f, "__dict__")
    assert f.last_out_ms == -1 and f.egress is None
    with pytest.raises(TypeError):
        f.started = 1  # type: ignore[assignment]  # bool members take bools only


def test_use_compiled_switches_the_loop_at_once() -> None:
    compiled = lane.fanout
    try:
        lane.use_compiled(False)
        assert lane.fanout is None  # UpTrack.on_rtp reads it per packet: the Python loop
        lane.use_compiled(True)
        assert lane.fanout is compiled is not None
    finally:
        lane.use_compiled(True)


def test_the_media_plane_works_without_the_extension() -> None:
    """Without a C compiler sfu.lane falls back to Python classes: the forwarding tests pass on
    them too (in a child process that does not load sfu._fanout)."""
    import subprocess
    import sys

    env = dict(os.environ, CLASSROOM_NO_EXTENSION="1")
    check = "import sfu.lane as l, sfu.forwarder as f; assert l.FAST_PATH == 'python' and l.fanout is None; " \
            "assert f.Forwarder.__mro__[1] is l._PyLane"
    subprocess.run([sys.executable, "-c", check], env=env, check=True, timeout=60)
    tests = ["tests/unit/sfu/test_forwarder.py", "tests/unit/sfu/test_uptrack.py", "tests/unit/sfu/test_stats.py"]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                       env=env, capture_output=True, text=True, timeout=240, cwd=root)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " passed" in r.stdout and "skipped" not in r.stdout


def _vp8_payload(pid: int, tl0: int, tid: int, start: bool, key: bool, body: bytes) -> bytes:
    return bytes([0x90 if start else 0x80, 0xE0, 0x80 | (pid >> 8), pid & 0xFF, tl0, tid << 6,
                  0x00 if key else 0x01]) + body


@settings(max_examples=60, deadline=None)
@given(steps=steps, start=st.integers(min_value=0, max_value=0xFFFF),
       targets=st.lists(st.sampled_from([0, 1, 7]), min_size=1, max_size=8))
def test_c_loop_rewrites_vp8_as_python_does(steps: list[int], start: int, targets: list[int]) -> None:
    """Picture ids, TL0PICIDX and temporal drops: byte-identical to ``DownTrack.forward``."""
    fast = SocketTransport()
    try:
        slow = RecordingTransport()
        downs = [_down(fast), _down(slow)]
        for d in downs:
            d.fwd.vp8 = True
            d.fwd.last_out_pid, d.fwd.last_out_tl0 = 7000, 40  # as after an earlier source
        seq, ts = start, 1_000_000
        for i, step in enumerate([0, *steps]):
            if i % 15 == 0:
                for d in downs:
                    d.set_temporal(targets[(i // 15) % len(targets)])
            seq = (seq + step) & 0xFFFF
            ts = (ts + 3000 * step) & 0xFFFFFFFF
            frame = (seq // 3) & 0x7FFF  # three packets a frame, in sequence order
            tid = (0, 2, 1, 2)[frame % 4]
            payload = _vp8_payload(frame, (frame // 4) & 0xFF, tid, seq % 3 == 0, i == 0, os.urandom(5 + i % 7))
            assert _fan(downs, payload, seq, ts, 33 * i, i == 0, marker=0x80 if seq % 3 == 2 else 0) >> 32 == 0
        expected_tx, _ = _sessions()
        got = fast.datagrams()
        assert got == [expected_tx.protect(p) for p in slow.rtp]
        for name in ("seq_offset", "ts_offset", "highest_in_seq", "ext_first", "ext_highest", "last_out_seq",
                     "last_out_ts", "out_seq", "pid_offset", "tl0_offset", "last_in_pid", "last_out_pid",
                     "last_out_tl0", "drop_pid", "max_tid", "dropped_temporal", "octets"):
            assert getattr(downs[0].fwd, name) == getattr(downs[1].fwd, name), name
        assert downs[0].fwd._segments == downs[1].fwd._segments
    finally:
        fast.close()


def test_c_loop_keeps_vp8_lanes_on_the_fast_path(transports: list[SocketTransport]) -> None:
    t = SocketTransport()
    transports.append(t)
    d = _down(t)
    d.fwd.vp8 = True
    before = lane.c_forwarded()
    for i in range(12):
        frame = i // 2
        payload = _vp8_payload(frame, frame // 4, (0, 2, 1, 2)[frame % 4], i % 2 == 0, i == 0, b"x")
        _fan([d], payload, 100 + i, 3000 * frame, 10 * i, i == 0)
    assert lane.c_forwarded() - before == 11 and t.python_sends == 1  # all but the rebase in C
    pids = [((p[14] & 0x7F) << 8) | p[15] for p in t.received()]
    assert pids == sorted(pids) and len(set(pids)) == 6


# --- the node's shared media port: one unconnected socket, every copy with its address (sendmmsg) ---


class SharedTransport(SocketTransport):
    """A subscriber reached through one socket shared by all (``media.udp_port``): the Egress
    carries the subscriber's address and the C loop batches its copies into sendmmsg."""

    def __init__(self, shared: socket.socket, address: tuple[str, int] | None = None) -> None:
        self.tx_session, self.rx_session = _sessions()
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.rx.setblocking(False)
        self.tx = shared
        self.address = address or self.rx.getsockname()
        self.egress = lane.Egress()
        self.egress.set(shared.fileno(), glue.srtp_session_address(self.tx_session), (self.tx_session, shared),
                        demux.sockaddr_bytes(*self.address))
        self.python_sends = 0

    def send_rtp_parts(self, header: bytes, payload: bytes) -> bool:
        self.python_sends += 1
        try:
            self.tx.sendto(self.tx_session.protect(header + payload), self.address)
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.egress.clear()
        self.rx.close()


@pytest.fixture
def shared_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()
    lane.set_batch_size(64)


@settings(max_examples=12, deadline=None)
@given(steps=st.lists(st.integers(min_value=-20, max_value=30), min_size=1, max_size=30),
       start=st.integers(min_value=0, max_value=0xFFFF), batch=st.sampled_from([64, 5, 1]),
       twcc=st.sampled_from([0, 5]))
def test_c_loop_batches_what_python_forward_sends_across_batch_boundaries(
        steps: list[int], start: int, batch: int, twcc: int) -> None:
    """66 subscribers on one shared socket (past one batch of 64; or batches of 5, or 1) and one
    Python-only lane among them (the batch goes out before Python runs): every subscriber gets
    exactly the datagrams ``DownTrack.forward`` produces, byte for byte."""
    lane.set_batch_size(batch)
    shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.bind(("127.0.0.1", 0))
    shared.setblocking(False)
    fast = [SharedTransport(shared) for _ in range(66)]
    try:
        slow = RecordingTransport()
        if twcc:
            slow.egress = lane.Egress()
            for t in [*fast, slow]:
                t.egress.twcc_enable()
        transports: list[Any] = [*fast[:33], slow, *fast[33:]]
        downs = [_down(t) for t in transports]
        for d in downs:
            d.fwd.twcc_id = twcc
        seq, ts = start, 1_000_000
        for i, step in enumerate([0, *steps]):
            seq = (seq + step) & 0xFFFF
            ts = (ts + 3000 * step) & 0xFFFFFFFF
            assert _fan(downs, os.urandom(30) + bytes([i]), seq, ts, 33 * i, i == 0) >> 32 == 0
        expected_tx, _ = _sessions()
        expected = [expected_tx.protect(p) for p in slow.rtp]
        for t, d in zip(fast, [d for d in downs if d.transport is not slow], strict=True):
            assert t.datagrams() == expected
            assert d.packets == len(expected) and t.python_sends == 1
    finally:
        for t in fast:
            t.close()
        shared.close()
        lane.set_batch_size(64)


def test_a_copy_the_kernel_refuses_in_a_batch_costs_that_subscriber_alone(shared_socket: socket.socket) -> None:
    """Port 0 is refused by sendmmsg (EINVAL) for that copy only: the subscribers before and
    after it in the batch get theirs; the refused one's video waits for the next keyframe."""
    good = SharedTransport(shared_socket)
    bad = SharedTransport(shared_socket, address=("127.0.0.1", 0))
    after = SharedTransport(shared_socket)
    try:
        downs = [_down(good), _down(bad), _down(after)]
        assert _fan(downs, b"\x10key", 10, 0, 0, True) >> 32 == 0  # the rebase: Python (bad's fails there)
        downs[1].fwd.started = True  # as if its first packet had gone out
        downs[1].fwd.packets = 1
        calls, batched = lane.batch_stats()
        result = _fan(downs, b"\x11delta", 11, 3000, 33, False)
        assert result & 0xFFFFFFFF == 2 and result >> 32 == 1
        assert bad.egress.send_errors == 1 and downs[1].fwd.started is False
        assert downs[0].fwd.started and downs[2].fwd.started
        assert [p[12:] for p in good.received()] == [b"\x10key", b"\x11delta"]
        assert [p[12:] for p in after.received()] == [b"\x10key", b"\x11delta"]
        assert lane.batch_stats()[1] - batched == 2 and lane.batch_stats()[0] - calls >= 2
    finally:
        for t in (good, bad, after):
            t.close()


def test_egress_takes_only_a_sockaddr_as_address(shared_socket: socket.socket) -> None:
    e = lane.Egress()
    session, _ = _sessions()
    with pytest.raises(ValueError):
        e.set(shared_socket.fileno(), glue.srtp_session_address(session), None, b"\x02\x00")
    e.set(shared_socket.fileno(), glue.srtp_session_address(session), None, demux.sockaddr_bytes("::1", 9))
    assert e.batched == 28
    e.clear()
    assert e.batched == 0 and e.fd == -1
    with pytest.raises(ValueError):
        lane.set_batch_size(65)
