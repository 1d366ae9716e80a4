"""sfu/packet_cache.py: the NACK ring buffer."""

from __future__ import annotations

import pytest

from sfu.packet_cache import PacketCache


def test_put_get() -> None:
    cache = PacketCache(16)
    cache.put(5, b"five")
    cache.put(6, b"six")
    assert cache.get(5) == b"five"
    assert cache.get(6) == b"six"
    assert cache.get(7) is None


def test_empty_cache_returns_none() -> None:
    cache = PacketCache(8)
    for seq in (0, 1, 7, 8, 65535):
        assert cache.get(seq) is None


def test_overwrite_same_seq() -> None:
    cache = PacketCache(8)
    cache.put(3, b"old")
    cache.put(3, b"new")
    assert cache.get(3) == b"new"


def test_stale_slot_returns_none() -> None:
    cache = PacketCache(8)
    cache.put(1, b"one")
    cache.put(9, b"nine")  # same slot, newer packet
    assert cache.get(1) is None
    assert cache.get(9) == b"nine"
    assert cache.get(17) is None  # same slot, never stored


def test_keeps_the_last_size_packets() -> None:
    cache = PacketCache(64)
    for seq in range(1000):
        cache.put(seq, seq.to_bytes(2, "big"))
    for seq in range(1000 - 64, 1000):
        assert cache.get(seq) == seq.to_bytes(2, "big")
    for seq in range(0, 1000 - 64):
        assert cache.get(seq) is None


def test_sixteen_bit_wrap() -> None:
    cache = PacketCache(16)
    for i in range(20):
        seq = (65530 + i) & 0xFFFF
        cache.put(seq, bytes([i]))
    assert cache.get(65535) == bytes([5])
    assert cache.get(0) == bytes([6])
    assert cache.get(13) == bytes([19])


def test_default_size_and_len() -> None:
    assert len(PacketCache()) == 1024
    assert len(PacketCache(1)) == 1
    assert len(PacketCache(4096)) == 4096


@pytest.mark.parametrize("size", [0, -1, -8, 3, 6, 100, 1000, 1023, 1025])
def test_size_must_be_a_power_of_two(size: int) -> None:
    with pytest.raises(ValueError):
        PacketCache(size)
