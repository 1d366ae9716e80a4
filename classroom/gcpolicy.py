"""The server's garbage-collector policy: keep full collections short.

Measured on the 2-core development machine (2026-12-02, tests/fuzz with a per-callback timer):
every event-loop stall over 50 ms during the fuzzers was a **full (generation 2) collection**
of CPython's cyclic garbage collector, 70–130 ms each, not SDP parsing or negotiation (an
offer's ``setRemoteDescription``/``createAnswer`` costs ~5 ms). A full collection walks every
tracked object, and ~60,000 of them — modules, classes, functions of aiohttp, aiortc, av,
cryptography — are created by the imports and live as long as the process: walking them alone
took 33–38 ms per collection here.

:func:`freeze_startup_objects` runs once the server is up: it collects, then moves every
object that survived into the permanent generation (``gc.freeze()``), which no collection walks
again. A full collection then costs what the lessons' own objects cost (peer connections,
sockets), a few ms per live classroom. Nothing allocated later is frozen, so later garbage is
still collected.

After these changes (and ``glue.lean_receivers``), the main thread's CPU time in the longest full
collections under the WebSocket fuzzer was 25–47 ms (their wall time more when the machine was
busy); :data:`FULL_COLLECTION_EVERY` makes them smaller still.
"""

from __future__ import annotations

import gc

# A full collection when 3 (CPython's default: 10) younger collections of generation 1 have
# passed since the last one (and, as always, the objects promoted since then are over 25 % of the
# long-lived ones): what a closed classroom connection leaves is mostly cyclic garbage that only a
# full collection frees (~15,000 of the 15,000 post-start objects at the end of a fuzzer run);
# collected three times as often, each collection walks a third of it.
FULL_COLLECTION_EVERY = 3


def freeze_startup_objects() -> int:
    """Collect, then freeze what survives, and collect fully more often (above); returns how
    many objects were frozen."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    return gc.get_freeze_count()
