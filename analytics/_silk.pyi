"""Type stub of the C extension analytics/_silk.c (built when libopus.a is present)."""

from typing import Any

import numpy as np

CELT_ONLY: int
MAX_SAMPLES: int

class Decoder:
    def __init__(self, rate: int = 8000) -> None: ...
    def decode(self, packet: bytes, out: np.ndarray[Any, Any], offset: int, /) -> int: ...
    def reset(self) -> None: ...
