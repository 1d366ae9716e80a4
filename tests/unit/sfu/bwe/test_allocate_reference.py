"""``allocate`` against a plain restatement of its rule, on random tracks, budgets and costs.

The selector's allocation runs a few times per subscriber per evaluation, so it is written for
speed (each track's prices looked up once); this keeps it equal, key order included, to the
straightforward form of the rule: audio first, then every video track's lowest layer in priority
order, then the biggest upgrade that fits, in priority order.
"""

from __future__ import annotations

import random

from sfu.bwe.selector import PAUSED, TrackLayers, allocate


def reference(budget: float, tracks: list[TrackLayers],
              cost: dict[tuple[str, int], float] | None = None) -> dict[str, int]:
    def price(t: TrackLayers, layer: int) -> float:
        if cost is not None and (t.key, layer) in cost:
            return cost[(t.key, layer)]
        return t.bitrates[layer]

    out: dict[str, int] = {}
    left = budget
    ordered = sorted(tracks, key=lambda t: t.priority)
    for t in ordered:
        if t.audio or not t.bitrates:
            out[t.key] = 0
            left -= price(t, 0) if t.bitrates else 0.0
    video = [t for t in ordered if not t.audio and t.bitrates]
    for t in video:
        if price(t, 0) <= left:
            out[t.key] = 0
            left -= price(t, 0)
        else:
            out[t.key] = PAUSED
    for t in video:
        cur = out[t.key]
        if cur == PAUSED:
            continue
        for layer in range(len(t.bitrates) - 1, cur, -1):
            extra = price(t, layer) - price(t, cur)
            if extra <= left:
                out[t.key] = layer
                left -= extra
                break
    return out


def test_allocate_matches_the_plain_rule_on_random_inputs() -> None:
    rng = random.Random(19)
    for _ in range(3000):
        tracks = []
        for i in range(rng.randint(0, 5)):
            audio = rng.random() < 0.3
            n = 1 if audio else rng.randint(0, 4)
            rates = tuple(sorted(rng.choice((0.0, rng.uniform(1e4, 3e6))) for _ in range(n)))
            tracks.append(TrackLayers(f"t{i}", rng.randint(0, 4), rates, audio=audio))
        cost = None
        if tracks and rng.random() < 0.5:
            cost = {(t.key, j): r * rng.choice((0.85, 1.0, 0.5))
                    for t in tracks for j, r in enumerate(t.bitrates) if rng.random() < 0.5}
        budget = rng.choice((0.0, rng.uniform(0, 8e6)))
        got, want = allocate(budget, tracks, cost), reference(budget, tracks, cost)
        assert got == want and list(got) == list(want)
