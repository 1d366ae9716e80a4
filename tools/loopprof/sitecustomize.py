"""What blocks the event loop of ``classroom serve``: a measurement aid, never imported by the product.

Put this directory first on ``PYTHONPATH`` and set ``CLASSROOM_LOOPPROF=/tmp/prof``; every
``classroom.cli`` process started so (the fuzzers' servers inherit the environment) then

* runs on the plain asyncio loop instead of uvloop (so that callbacks can be timed),
* times every callback and every loop iteration, and every garbage collection (``gc.callbacks``),
  in wall time and in the main thread's CPU time (much less CPU than wall: the process was not
  running — a busy machine — rather than busy),
* samples the main thread's stack every 3 ms while a callback has run for more than 5 ms,

and at exit writes ``/tmp/prof.<pid>``: the iterations with more than 20 ms of callbacks, the
collections over 3 ms by generation, the slow callbacks (> 10 ms) summed by coroutine, and the
50 slowest with their sampled stacks; ``/tmp/prof.<pid>.objs`` counts the live objects by type.

    CLASSROOM_LOOPPROF=/tmp/prof PYTHONPATH=tools/loopprof python3 -m pytest -s tests/fuzz/sfu/test_peer.py

It adds its own overhead (the timing and the sampler thread): read its figures relative to one
another, and the fuzzers' own ping/lag figures without it. docs/reliability.md has what it found.
"""

from __future__ import annotations

import os
import sys
from typing import Any

if os.environ.get("CLASSROOM_LOOPPROF") and "classroom.cli" in " ".join(getattr(sys, "orig_argv", [])):
    sys.modules["uvloop"] = None  # type: ignore[assignment]  # ImportError: classroom serve uses asyncio.run
    import asyncio
    import asyncio.base_events
    import asyncio.events
    import atexit
    import collections
    import gc
    import threading
    import time
    import traceback

    _OUT = os.environ["CLASSROOM_LOOPPROF"] + f".{os.getpid()}"
    _MAIN = threading.main_thread().ident
    _slow: list[tuple[float, str, collections.Counter[str]]] = []
    _iterations: list[tuple[float, int, list[float]]] = []
    _collections: list[tuple[float, int, float]] = []
    _current: dict[str, Any] = {"handle": None, "t": 0.0, "samples": collections.Counter()}
    _this_iteration: list[float] = []
    _gc_started = [0.0, 0.0]

    def _on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _gc_started[:] = [time.perf_counter(), time.thread_time()]
        else:
            ms = (time.perf_counter() - _gc_started[0]) * 1000
            if ms > 3:
                cpu_ms = (time.thread_time() - _gc_started[1]) * 1000
                if gc.get_freeze_count():  # after start-up (classroom/gcpolicy.py froze its objects)
                    _collections.append((round(ms, 1), int(info["generation"]), round(cpu_ms, 1)))

    gc.callbacks.append(_on_gc)

    def _describe(handle: asyncio.Handle) -> str:
        task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        if isinstance(task, asyncio.Task):
            coro = task.get_coro()
            frames = task.get_stack(limit=20)[-6:]
            where = " > ".join(f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}:{f.f_code.co_name}"
                               for f in frames)
            return f"task {getattr(coro, '__qualname__', coro)} now at [{where}]"
        return repr(handle)[:200]

    _run = asyncio.events.Handle._run

    def _timed_run(self: asyncio.Handle) -> None:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        _current.update(handle=self, t=started, samples=collections.Counter())
        try:
            _run(self)
        finally:
            ms = (time.perf_counter() - started) * 1000
            _current["handle"] = None
            _this_iteration.append(ms)
            if ms > 10:  # wall time, and the CPU time the main thread got meanwhile
                cpu_ms = (time.thread_time() - cpu_started) * 1000
                _slow.append((round(ms, 1), f"(cpu {cpu_ms:.1f} ms) {_describe(self)}", _current["samples"]))

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
    _run_once = asyncio.base_events.BaseEventLoop._run_once  # type: ignore[attr-defined]

    def _timed_run_once(self: asyncio.base_events.BaseEventLoop) -> None:
        _this_iteration.clear()
        _run_once(self)
        work = sum(_this_iteration)
        if work > 20:
            _iterations.append((round(work, 1), len(_this_iteration),
                                sorted((round(x, 1) for x in _this_iteration), reverse=True)[:5]))

    asyncio.base_events.BaseEventLoop._run_once = _timed_run_once  # type: ignore[attr-defined]

    def _sampler() -> None:
        while True:
            time.sleep(0.003)
            if _current["handle"] is None or time.perf_counter() - _current["t"] < 0.005:
                continue
            frame = sys._current_frames().get(_MAIN or 0)
            if frame is not None:
                stack = traceback.extract_stack(frame)[-9:]
                _current["samples"][" < ".join(f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}"
                                               for f in reversed(stack))] += 1

    threading.Thread(target=_sampler, name="loopprof", daemon=True).start()

    def _dump() -> None:
        before = len(gc.get_objects())
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collection finds goes to gc.garbage: count it by type
        unreachable = gc.collect()
        garbage = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.collect()  # the saved garbage, now unreferenced
        objects = gc.get_objects()
        kinds = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)
        with open(_OUT + ".objs", "w", encoding="utf-8") as f:
            f.write(f"tracked objects at exit: {before}, of which garbage {unreachable}; after a full "
                    f"collection {len(objects)} (frozen {gc.get_freeze_count()}); {gc.get_stats()}\n")
            f.writelines(f"  {n:8d} {k}\n" for k, n in kinds.most_common(40))
            f.write("garbage found at exit, by type:\n")
            f.writelines(f"  {n:8d} {k}\n" for k, n in garbage.most_common(40))
        del objects
        by_coroutine: collections.Counter[str] = collections.Counter()
        for ms, what, _ in _slow:
            by_coroutine[what.split(" now at")[0].split(") ", 1)[-1]] += ms  # type: ignore[assignment]
        with open(_OUT, "w", encoding="utf-8") as f:
            f.write(f"callbacks > 10 ms: {len(_slow)}; iterations with > 20 ms of callbacks: {len(_iterations)}\n")
            f.write("iterations (ms of callbacks, callbacks, the largest):\n")
            f.writelines(f"  {x}\n" for x in sorted(_iterations, reverse=True)[:40])
            f.write(f"collections > 3 ms once serving (wall ms, generation, cpu ms): "
                    f"{sorted(_collections, reverse=True)[:40]} n={len(_collections)}\n\n")
            f.write("slow callbacks, ms by coroutine:\n")
            f.writelines(f"  {ms:8.1f} {what}\n" for what, ms in by_coroutine.most_common(20))
            for ms, what, samples in sorted(_slow, key=lambda x: -x[0])[:50]:
                f.write(f"\n=== {ms} ms {what}\n")
                f.writelines(f"   {n:3d} {stack}\n" for stack, n in samples.most_common(4))

    atexit.register(_dump)
