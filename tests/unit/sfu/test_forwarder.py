"""sfu/forwarder.py: sequence/timestamp rewriting, keyframe gating, switching, pausing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sfu.forwarder import MAX_REORDER, Forwarder

VIDEO = 90000
AUDIO = 48000


def video(seq0: int = 1000, ts0: int = 500_000) -> Forwarder:
    return Forwarder(VIDEO, True, initial_seq=seq0, initial_ts=ts0)


def audio(seq0: int = 1000, ts0: int = 500_000) -> Forwarder:
    return Forwarder(AUDIO, False, initial_seq=seq0, initial_ts=ts0)


# --- start ----------------------------------------------------------------------------


def test_audio_starts_at_the_initial_seq_and_ts() -> None:
    f = audio()
    f.switch("a")
    assert f.translate(40000, 123, 0, False) == (1000, 500_000)
    assert f.translate(40001, 123 + 960, 20, False) == (1001, 500_960)
    assert f.translate(40002, 123 + 1920, 40, False) == (1002, 501_920)
    assert (f.last_out_seq, f.last_out_ts, f.last_out_ms) == (1002, 501_920, 40)


def test_random_initial_values_are_in_range() -> None:
    for _ in range(50):
        f = Forwarder(VIDEO, False)
        out = f.translate(7, 7, 0, False)
        assert out is not None
        assert 0 <= out[0] < 0x8000
        assert 0 <= out[1] < 1 << 31


def test_video_waits_for_a_keyframe() -> None:
    f = video()
    f.switch("a")
    assert f.waiting_keyframe
    assert f.translate(10, 0, 0, False) is None
    assert f.translate(11, 0, 0, False) is None
    assert f.dropped_waiting == 2
    assert f.waiting_keyframe
    assert f.translate(12, 3000, 5, True) == (1000, 500_000)
    assert not f.waiting_keyframe
    # the rest of the frame and later interframes go through
    assert f.translate(13, 3000, 5, False) == (1001, 500_000)
    assert f.translate(14, 6000, 38, False) == (1002, 503_000)
    assert f.dropped_waiting == 2


def test_audio_never_waits() -> None:
    f = audio()
    assert not f.waiting_keyframe
    assert f.translate(10, 0, 0, False) == (1000, 500_000)


def test_packets_older_than_the_start_are_dropped() -> None:
    f = audio()
    assert f.translate(100, 1000, 0, False) == (1000, 500_000)
    assert f.translate(99, 40, 0, False) is None
    assert f.translate(50, 40, 0, False) is None
    assert f.translate((100 - 0x7FFF) & 0xFFFF, 0, 0, False) is None
    assert f.last_out_seq == 1000


def test_video_packets_before_the_keyframe_are_dropped_after_it() -> None:
    f = video()
    assert f.translate(200, 9000, 0, True) == (1000, 500_000)
    assert f.translate(199, 6000, 1, False) is None  # late packet of the previous frame


# --- reordering and retransmission ----------------------------------------------------


def test_out_of_order_keeps_mapping_and_last_out_does_not_go_backwards() -> None:
    f = audio()
    assert f.translate(10, 0, 0, False) == (1000, 500_000)
    assert f.translate(12, 1920, 40, False) == (1002, 501_920)
    state = (f.last_out_seq, f.last_out_ts, f.last_out_ms)
    assert f.translate(11, 960, 45, False) == (1001, 500_960)
    assert (f.last_out_seq, f.last_out_ts, f.last_out_ms) == state
    assert f.translate(13, 2880, 60, False) == (1003, 502_880)


def test_retransmission_keeps_its_mapping() -> None:
    f = video()
    assert f.translate(500, 0, 0, True) == (1000, 500_000)
    for i in range(1, 10):
        f.translate(500 + i, 3000 * i, 33 * i, False)
    state = (f.last_out_seq, f.last_out_ts, f.last_out_ms)
    assert f.translate(503, 9000, 400, False) == (1003, 509_000)  # retransmitted
    assert f.translate(500, 0, 401, True) == (1000, 500_000)
    assert (f.last_out_seq, f.last_out_ts, f.last_out_ms) == state


def test_duplicate_of_the_newest_packet() -> None:
    f = audio()
    f.translate(10, 0, 0, False)
    assert f.translate(11, 960, 20, False) == (1001, 500_960)
    assert f.translate(11, 960, 25, False) == (1001, 500_960)
    assert (f.last_out_seq, f.last_out_ts) == (1001, 500_960)


def test_lost_packets_leave_the_same_gap_in_the_output() -> None:
    f = audio()
    f.translate(10, 0, 0, False)
    assert f.translate(15, 4800, 100, False) == (1005, 504_800)


# --- switching ------------------------------------------------------------------------


def test_switch_continues_sequence_and_advances_timestamp_by_wall_time() -> None:
    f = video()
    f.switch("a")
    f.translate(100, 7000, 1000, True)
    f.translate(101, 10000, 1033, False)
    assert (f.last_out_seq, f.last_out_ts) == (1001, 503_000)
    f.switch("b")
    assert f.source == "b"
    assert f.waiting_keyframe
    # b's packets before its keyframe are not forwarded
    assert f.translate(60000, 42, 1100, False) is None
    out = f.translate(60001, 77, 1533, True)
    assert out == (1002, 503_000 + 500 * VIDEO // 1000)
    assert f.translate(60002, 77, 1534, False) == (1003, 503_000 + 45_000)
    assert f.translate(60003, 77 + 3000, 1566, False) == (1004, 503_000 + 48_000)


def test_switch_audio_advances_by_elapsed_time() -> None:
    f = audio()
    f.translate(5, 0, 0, False)
    f.translate(6, 960, 20, False)
    f.switch("other")
    assert f.translate(9000, 123_456, 270, False) == (1002, 500_960 + 250 * 48)


def test_switch_at_the_same_millisecond_still_advances_the_timestamp() -> None:
    f = audio()
    f.translate(5, 0, 7, False)
    f.switch("b")
    out = f.translate(9, 0, 7, False)
    assert out is not None
    assert out[0] == 1001
    assert out[1] > 500_000


def test_switch_back_to_an_earlier_source_rebases() -> None:
    f = audio()
    f.switch("a")
    f.translate(100, 0, 0, False)
    f.switch("b")
    f.translate(5, 0, 100, False)
    f.switch("a")
    # a's sequence went on meanwhile; the output still continues without a gap
    assert f.translate(110, 9600, 200, False) == (1002, 500_000 + 200 * 48)


def test_switch_rebases_old_source_packets_are_dropped() -> None:
    f = audio()
    f.switch("a")
    f.translate(100, 0, 0, False)
    f.switch("b")
    f.translate(5000, 0, 10, False)
    assert f.translate(4999, 0, 11, False) is None


# --- pause / resume -------------------------------------------------------------------


def test_pause_and_resume_make_no_gap() -> None:
    f = audio()
    f.translate(10, 0, 0, False)
    f.translate(11, 960, 20, False)
    f.pause()
    assert not f.waiting_keyframe
    for i in range(12, 100):
        assert f.translate(i, 960 * (i - 10), 20 * (i - 10), False) is None
    f.resume()
    assert f.translate(100, 960 * 90, 1800, False) == (1002, 500_960 + 1780 * 48)


def test_video_resume_waits_for_a_keyframe() -> None:
    f = video()
    f.translate(10, 0, 0, True)
    f.pause()
    assert f.translate(11, 3000, 33, True) is None
    f.resume()
    assert f.waiting_keyframe
    assert f.translate(12, 6000, 66, False) is None
    assert f.translate(13, 9000, 100, True) == (1001, 500_000 + 100 * 90)


def test_resume_without_pause_keeps_the_mapping() -> None:
    f = audio()
    f.translate(10, 0, 0, False)
    f.resume()
    assert f.translate(11, 960, 20, False) == (1001, 500_960)


# --- incoming_seq (NACK) --------------------------------------------------------------


def test_incoming_seq_maps_output_back() -> None:
    f = video()
    assert f.incoming_seq(1000) is None  # not started
    f.translate(30000, 0, 0, True)
    for i in range(1, 20):
        f.translate(30000 + i, 0, i, False)
    for i in range(20):
        assert f.incoming_seq(1000 + i) == 30000 + i
    assert f.incoming_seq(999) is None  # before this segment


def test_incoming_seq_none_for_the_previous_segment() -> None:
    f = audio()
    f.switch("a")
    f.translate(100, 0, 0, False)
    f.translate(101, 960, 20, False)  # out 1001
    f.switch("b")
    assert f.incoming_seq(1001) is None  # switched, b not started yet
    f.translate(7000, 0, 40, False)  # out 1002
    assert f.incoming_seq(1002) == 7000
    assert f.incoming_seq(1001) is None
    assert f.incoming_seq(1000) is None


def test_incoming_seq_across_wrap() -> None:
    f = audio(seq0=65534)
    f.translate(65535, 0, 0, False)  # out 65534
    f.translate(0, 960, 20, False)  # out 65535
    f.translate(1, 1920, 40, False)  # out 0
    assert f.incoming_seq(65534) == 65535
    assert f.incoming_seq(65535) == 0
    assert f.incoming_seq(0) == 1
    assert f.incoming_seq(65533) is None


# --- wrap-around ----------------------------------------------------------------------


def test_input_sequence_wraps() -> None:
    f = audio()
    outs = [f.translate((65530 + i) & 0xFFFF, 960 * i, 20 * i, False) for i in range(12)]
    assert [o[0] for o in outs if o] == list(range(1000, 1012))


def test_output_sequence_wraps() -> None:
    f = audio(seq0=65533)
    outs = [f.translate(100 + i, 960 * i, 20 * i, False) for i in range(6)]
    assert [o[0] for o in outs if o] == [65533, 65534, 65535, 0, 1, 2]
    assert f.last_out_seq == 2
    # a late packet from before the output wrap still maps correctly
    assert f.translate(101, 960, 200, False) == (65534, 500_960)


def test_timestamps_wrap_at_32_bits() -> None:
    f = audio(ts0=0xFFFFFC00)
    assert f.translate(1, 0, 0, False) == (1000, 0xFFFFFC00)
    assert f.translate(2, 960, 20, False) == (1001, 0xFFFFFFC0)
    assert f.translate(3, 1920, 40, False) == (1002, (0xFFFFFC00 + 1920) & 0xFFFFFFFF)


def test_input_timestamps_wrap_at_32_bits() -> None:
    f = audio(ts0=1000)
    assert f.translate(1, 0xFFFFFF00, 0, False) == (1000, 1000)
    assert f.translate(2, (0xFFFFFF00 + 960) & 0xFFFFFFFF, 20, False) == (1001, 1960)


def test_switch_timestamp_advance_wraps() -> None:
    f = video(ts0=0xFFFFFFF0)
    f.translate(1, 0, 0, True)
    f.switch("b")
    assert f.translate(9, 0, 1000, True) == (1001, (0xFFFFFFF0 + VIDEO) & 0xFFFFFFFF)


def test_out_timestamp_at() -> None:
    f = audio(ts0=10)
    f.translate(1, 1000, 0, False)
    assert f.out_timestamp_at(1000) == 10
    assert f.out_timestamp_at(1960) == 970
    assert f.out_timestamp_at(0) == (10 - 1000) & 0xFFFFFFFF


# --- property -------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    base=st.integers(0, 0xFFFF),
    ts_base=st.integers(0, 0xFFFFFFFF),
    seq0=st.integers(0, 0xFFFF),
    offsets=st.lists(st.integers(0, 400), min_size=1, max_size=120),
    video_=st.booleans(),
)
def test_output_is_injective_and_preserves_distance(
    base: int, ts_base: int, seq0: int, offsets: list[int], video_: bool
) -> None:
    """Any reordered/duplicated/lossy arrival order of one source's packets."""
    f = Forwarder(VIDEO, video_, initial_seq=seq0, initial_ts=0)
    mapped: dict[int, tuple[int, int]] = {}  # input offset -> output
    first = offsets[0]
    newest_out: int | None = None
    newest = first
    for i, off in enumerate(offsets):
        seq = (base + off) & 0xFFFF
        ts = (ts_base + 3000 * off) & 0xFFFFFFFF
        out = f.translate(seq, ts, i, keyframe=(i == 0))
        if off < first or off < newest - MAX_REORDER:  # before the start, or beyond SRTP's window
            assert out is None
            continue
        newest = max(newest, off)
        assert out is not None
        if off in mapped:
            assert mapped[off] == out  # duplicates keep their mapping
        mapped[off] = out
        if newest_out is not None:
            # last_out_seq never moves backwards
            assert (f.last_out_seq - newest_out) & 0xFFFF < 0x8000
        newest_out = f.last_out_seq
    outs = [o[0] for o in mapped.values()]
    assert len(set(outs)) == len(outs)
    assert mapped[first] == (seq0, 0)
    for off, (out_seq, out_ts) in mapped.items():
        assert (out_seq - seq0) & 0xFFFF == off - first
        assert (out_ts - 0) & 0xFFFFFFFF == (3000 * (off - first)) & 0xFFFFFFFF
    top = max(mapped)
    assert f.last_out_seq == mapped[top][0]
    for off, (out_seq, _) in mapped.items():
        assert f.incoming_seq(out_seq) == (base + off) & 0xFFFF


def test_long_stream_keeps_forwarding_past_half_the_sequence_space() -> None:
    # Regression: the "older than the start" check once compared with the first packet and
    # dropped everything from 32768 packets on.
    f = Forwarder(48000, False, initial_seq=100, initial_ts=1000)
    outs = [f.translate((5 + i) & 0xFFFF, i * 960, i * 20, False) for i in range(70_000)]
    assert all(o is not None for o in outs)
    last = outs[-1]
    assert last is not None
    assert f.incoming_seq(last[0]) == (5 + 69_999) & 0xFFFF
    assert f.incoming_seq((last[0] + 1) & 0xFFFF) is None  # not sent yet


def test_a_packet_beyond_the_srtp_window_is_dropped() -> None:
    """libsrtp refuses to protect an index older than its replay window: such a straggler is
    dropped here instead of failing the send (which would freeze the subscriber's video)."""
    f = Forwarder(VIDEO, True, initial_seq=0, initial_ts=0)
    assert f.translate(1000, 0, 0, keyframe=True) is not None
    assert f.translate(1000 + 150, 3000, 1, keyframe=False) is not None
    assert f.translate(1000 + 150 - MAX_REORDER, 0, 2, keyframe=False) is not None
    assert f.translate(1000 + 150 - MAX_REORDER - 1, 0, 3, keyframe=False) is None


@settings(max_examples=80, deadline=None)
@given(
    base=st.integers(0, 0xFFFF),
    seq0=st.integers(0, 0xFFFF),
    steps=st.lists(st.tuples(st.integers(-5, 4), st.booleans()), min_size=1, max_size=150),
)
def test_padding_probes_keep_the_numbering_and_nacks_exact(
    base: int, seq0: int, steps: list[tuple[int, bool]]
) -> None:
    """Media (in any order) with padding probes inserted between packets: every output number is
    used once, and a NACK of any media number maps back to its own incoming packet."""
    f = Forwarder(VIDEO, True, initial_seq=seq0, initial_ts=0)
    out_of: dict[int, int] = {}  # out seq -> in seq
    padding: set[int] = set()
    off = 0
    assert f.translate(base, 0, 0, keyframe=True) == (seq0, 0)
    out_of[seq0] = base
    for i, (step, pad) in enumerate(steps):
        off += step
        seq = (base + off) & 0xFFFF
        out = f.translate(seq, 0, i + 1, keyframe=False)
        if out is not None:
            if out[0] in out_of:
                assert out_of[out[0]] == seq  # a duplicate keeps its number
            else:
                assert out[0] not in padding
                out_of[out[0]] = seq
        if pad:
            probe = f.insert_padding()
            assert probe is not None
            assert probe[0] not in out_of and probe[0] not in padding
            padding.add(probe[0])
    for out_seq, in_seq in out_of.items():
        if (f.last_out_seq - out_seq) & 0xFFFF < 90:  # within the reorder window
            assert f.incoming_seq(out_seq) == in_seq
    for p in padding:
        assert f.incoming_seq(p) is None


def test_padding_needs_a_started_forwarder() -> None:
    f = Forwarder(VIDEO, True, initial_seq=0, initial_ts=0)
    assert f.insert_padding() is None
    f.translate(10, 0, 0, keyframe=True)
    f.pause()
    assert f.insert_padding() is None


def test_a_probe_burst_after_every_frame_keeps_older_frames_repairable() -> None:
    """24 padding packets after each of 10 frames: a NACK for the first frame's packets (a
    100-ms line asks ~6 frames later) still maps back; a burst takes one offset segment."""
    f = Forwarder(VIDEO, True, initial_seq=500, initial_ts=0)
    out_of: dict[int, int] = {}
    seq = 1000
    for frame in range(10):
        for _ in range(3):
            out = f.translate(seq, frame * 4500, frame * 50, keyframe=frame == 0 and seq == 1000)
            assert out is not None
            out_of[out[0]] = seq
            seq += 1
        for _ in range(24):
            assert f.insert_padding() is not None
    for out_seq, in_seq in out_of.items():
        assert f.incoming_seq(out_seq) == in_seq
