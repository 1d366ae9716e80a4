"""Type stub of the C extension analytics/_fit.c (the between-room fit's shift search)."""

from typing import Any

import numpy as np

def aligned(
    a: np.ndarray[Any, Any],
    keep: np.ndarray[Any, Any] | None,
    pad: int,
    rb: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    lags: np.ndarray[Any, Any],
    spread: int,
    nb: np.ndarray[Any, Any],
    quiet: float,
    rows_out: np.ndarray[Any, Any],
    r_out: np.ndarray[Any, Any],
    /,
) -> None: ...
