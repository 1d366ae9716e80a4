"""The ``ice_servers`` a classroom is given (in ``joined``, and as WHIP/WHEP ``Link`` headers):
a fixed list, or a callable that makes the list when it is needed (time-limited TURN
credentials made per join: classroom/turn.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

IceServerList = list[dict[str, Any]]
IceServerSource = IceServerList | Callable[[], IceServerList]


def current_ice_servers(source: IceServerSource | None) -> IceServerList:
    """The list to hand out now."""
    if source is None:
        return []
    if callable(source):
        return source()
    return list(source)
