"""Which layer of each track one subscriber connection receives, within its estimate.

Priorities (lower number first): audio > the lead's teacher camera > courseware > the
spotlighted classroom > other classrooms. Audio is never dropped to make room for video. Every
video track gets its lowest layer before any track gets a higher one; a track that cannot have
even its lowest layer is paused (``PAUSED``).

Hysteresis, so capacity swinging ±20 % around a layer boundary does not flap:
* a track keeps its layer until the estimate is below ``keep`` × that layer's bitrate, and moves
  down at once when it is;
* it moves up only when the estimate covers ``up`` × the higher layer, continuously for
  ``up_hold_s``; an upgrade that had to be undone within ``probe_fail_s`` doubles that track's
  wait before the next try (``cooldown_s`` up to ``max_cooldown_s``), which a stable stretch of
  ``cooldown_reset_s`` resets.
"""

from __future__ import annotations

from dataclasses import dataclass

PAUSED = -1

# priorities
PRIORITY_AUDIO = 0
PRIORITY_TEACHER = 1
PRIORITY_COURSEWARE = 2
PRIORITY_SPOTLIGHT = 3
PRIORITY_OTHER = 4


@dataclass(frozen=True)
class TrackLayers:
    key: str
    priority: int
    bitrates: tuple[float, ...]  # per layer, lowest first (one entry for a single-layer track)
    audio: bool = False


@dataclass
class SelectorConfig:
    keep: float = 0.85
    up: float = 1.15
    up_hold_s: float = 2.0
    probe_fail_s: float = 10.0
    cooldown_s: float = 8.0
    max_cooldown_s: float = 60.0
    cooldown_reset_s: float = 30.0


@dataclass
class _TrackState:
    layer: int
    up_since: float = -1.0
    upgraded_at: float = -1e9
    changed_at: float = -1e9
    cooldown: float = 0.0
    blocked_until: float = -1e9


def _by_priority(t: TrackLayers) -> int:
    return t.priority


def allocate(
    budget: float, tracks: list[TrackLayers], cost: dict[tuple[str, int], float] | None = None
) -> dict[str, int]:
    """Greedy allocation: audio first, then every video track's lowest layer in priority
    order, then upgrades in priority order. ``cost`` overrides a (track, layer)'s bitrate."""

    # (hot: a few calls per subscriber per evaluation; each track's prices are looked up once)
    out: dict[str, int] = {}
    left = budget
    ordered = sorted(tracks, key=_by_priority) if len(tracks) > 1 else tracks
    video: list[tuple[TrackLayers, list[float]]] = []
    for t in ordered:
        rates = t.bitrates
        if cost:
            key = t.key
            prices = [cost.get((key, i), r) for i, r in enumerate(rates)]
        else:
            prices = list(rates)
        if t.audio or not rates:
            out[t.key] = 0
            left -= prices[0] if rates else 0.0
        else:
            video.append((t, prices))
    for t, prices in video:
        if prices[0] <= left:
            out[t.key] = 0
            left -= prices[0]
        else:
            out[t.key] = PAUSED
    for t, prices in video:
        cur = out[t.key]
        if cur == PAUSED:
            continue
        base = prices[cur]
        for layer in range(len(prices) - 1, cur, -1):
            extra = prices[layer] - base
            if extra <= left:
                out[t.key] = layer
                left -= extra
                break
    return out


class LayerSelector:
    def __init__(self, config: SelectorConfig | None = None) -> None:
        self.config = config or SelectorConfig()
        self._state: dict[str, _TrackState] = {}
        self.switches = 0  # layer changes made (for metrics)

    def layer(self, key: str) -> int | None:
        s = self._state.get(key)
        return None if s is None else s.layer

    def forget(self, key: str) -> None:
        self._state.pop(key, None)

    def select(self, budget: float, tracks: list[TrackLayers], now: float, congested: bool = False,
               floor: float = 0.0) -> dict[str, int]:
        """The layer each track should be on now (``PAUSED`` for a paused video track). While
        ``congested`` (the link's queue is growing now), a layer is kept only if it fits: the
        hysteresis is for an estimate that wobbles, not for a line that is too narrow.
        ``floor``: what the link vouches for whatever the estimate says (no congestion seen
        lately: every track's lowest layer); what fits in it is given at once, with no up margin
        and no hold — a classroom joining a 1.6 Mbit/s single-layer camera on a fresh 1.5 Mbit/s
        estimate would otherwise wait seconds for its first picture."""
        c = self.config
        keep_share = 1.0 if congested else c.keep
        keys = {t.key for t in tracks}
        for k in list(self._state):
            if k not in keys:
                del self._state[k]
        # what to keep: the current layer costs only keep × its bitrate
        stay: dict[tuple[str, int], float] = {}
        for t in tracks:
            s = self._state.get(t.key)
            if s is not None and 0 <= s.layer < len(t.bitrates):
                stay[(t.key, s.layer)] = t.bitrates[s.layer] * keep_share
        keep = allocate(budget, tracks, stay)
        reach = allocate(budget / c.up, tracks)
        assured = allocate(floor, tracks) if floor > 0 else {}
        out: dict[str, int] = {}
        for t in tracks:
            s = self._state.get(t.key)
            sure = assured.get(t.key, PAUSED)
            if s is None:  # first time: no hold for the initial choice
                first = max(reach[t.key], sure)
                self._state[t.key] = _TrackState(layer=first, changed_at=now)
                out[t.key] = first
                continue
            if sure > s.layer and keep[t.key] >= sure:  # vouched for: at once
                s.layer = sure
                s.changed_at = now
                s.up_since = -1.0
                self.switches += 1
                out[t.key] = s.layer
                continue
            if s.cooldown and now - s.changed_at > c.cooldown_reset_s:
                s.cooldown = 0.0
            if keep[t.key] < s.layer:  # down at once
                if now - s.upgraded_at < c.probe_fail_s:
                    s.cooldown = min(c.max_cooldown_s, max(c.cooldown_s, 2 * s.cooldown))
                    s.blocked_until = now + s.cooldown
                s.layer = keep[t.key]
                s.changed_at = now
                s.up_since = -1.0
                self.switches += 1
            elif reach[t.key] > s.layer:
                if s.up_since < 0:
                    s.up_since = now
                if now - s.up_since >= c.up_hold_s and now >= s.blocked_until:
                    s.layer = reach[t.key]
                    s.changed_at = s.upgraded_at = now
                    s.up_since = -1.0
                    self.switches += 1
            else:
                s.up_since = -1.0
            out[t.key] = s.layer
        return out

