"""A fixed-size ring of recent RTP packets of one track, indexed by sequence number (for NACK)."""

from __future__ import annotations


class PacketCache:
    """Keeps the last ``size`` packets; ``size`` is a power of two so the index is a mask.

    A slot remembers which sequence number it holds, so a NACK for a packet that was
    overwritten (or never arrived) gets ``None`` rather than a wrong packet.
    """

    __slots__ = ("_mask", "_seqs", "_packets")

    def __init__(self, size: int = 1024) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError("cache size must be a power of two")
        self._mask = size - 1
        self._seqs: list[int] = [-1] * size
        self._packets: list[bytes | None] = [None] * size

    def put(self, seq: int, packet: bytes) -> None:
        i = seq & self._mask
        self._seqs[i] = seq
        self._packets[i] = packet

    def get(self, seq: int) -> bytes | None:
        i = seq & self._mask
        if self._seqs[i] != seq:
            return None
        return self._packets[i]

    def __len__(self) -> int:
        return self._mask + 1
