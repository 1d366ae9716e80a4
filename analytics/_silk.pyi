"""Type stub of the C extension analytics/_silk.c (built when libopus.a is present)."""

from typing import Any

import numpy as np

CELT_ONLY: int
MAX_SAMPLES: int

class Decoder:
    def __init__(self, rate: int = 8000) -> None: ...
    def decode(self, packet: bytes, out: np.ndarray[Any, Any], offset: int, /) -> int: ...
    def reset(self) -> None: ...
    def place(
        self,
        packets: list[bytes],
        stamps: list[int | None],
        wanted: bytes,
        out: np.ndarray[Any, Any],
        start: int,
        time_base: float,
        gap: int,
        /,
    ) -> tuple[int | None, int, int, int, list[tuple[int, int]], list[tuple[int, int]]] | None: ...

def webm_blocks(data: bytes, index: int, /) -> tuple[list[bytes], list[int | None], int, int] | None: ...
