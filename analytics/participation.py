"""Talk time, turns and floor/hand events per classroom."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.config import ParticipationConfig
from analytics.manifest import Event
from analytics.vad import runs


@dataclass
class ClassroomStats:
    classroom_id: str
    student_talk_s: float = 0.0
    turns: int = 0
    hand_raises: int = 0
    floor_grants: int = 0
    floor_s: float = 0.0
    hand_wait_s: list[float] = field(default_factory=list)
    """seconds from each hand raise to the floor grant that answered it."""
    unanswered_hands: int = 0
    has_audio: bool = False
    audible_s: float = 0.0
    """seconds the server forwarded this classroom's audio (floor held, not muted, connected)."""
    heard_s: float = 0.0
    """seconds of student speech that was forwarded (``student_talk_s`` while audible)."""

    def as_dict(self) -> dict[str, object]:
        waits = [round(w, 2) for w in self.hand_wait_s]
        return {
            "student_talk_s": round(self.student_talk_s, 2),
            "turns": self.turns,
            "hand_raises": self.hand_raises,
            "floor_grants": self.floor_grants,
            "floor_s": round(self.floor_s, 2),
            "hand_wait_s": waits,
            "mean_hand_wait_s": round(sum(waits) / len(waits), 2) if waits else None,
            "unanswered_hands": self.unanswered_hands,
            "has_audio": self.has_audio,
            "audible_s": round(self.audible_s, 2),
            "heard_s": round(self.heard_s, 2),
        }


def count_turns(mask: np.ndarray, frame_s: float, config: ParticipationConfig) -> int:
    gap = config.turn_gap_s / frame_s
    min_len = config.min_turn_s / frame_s
    turns = 0
    current: list[int] | None = None  # [start, end, speech frames]
    for s, e in runs(mask):
        if current is not None and s - current[1] < gap:
            current[1] = e
            current[2] += e - s
            continue
        if current is not None and current[2] >= min_len:
            turns += 1
        current = [s, e, e - s]
    if current is not None and current[2] >= min_len:
        turns += 1
    return turns


GRANT_MATCH_S = 1.0
"""A ``hand_lowered`` without ``reason`` followed within this many seconds by a ``floor_granted``
for the same classroom is that grant lowering the hand (recordings made before the server wrote
``reason``: the recorder timestamps the two messages as it receives them, same millisecond or a
few apart)."""


def floor_stats(stats: dict[str, ClassroomStats], events: list[Event], duration_s: float) -> None:
    """Fills hand raises, floor grants, floor time and hand-to-floor waits from the events.

    A hand is answered by the first ``floor_granted`` for its classroom after it was raised,
    whatever the order of the ``hand_lowered`` that the grant causes: the server writes that
    lowering just before the grant, at the same ``t_ms``, with ``reason: "granted"``; without
    ``reason`` (older recordings) a lowering is answered when a grant follows within
    :data:`GRANT_MATCH_S`.
    """
    granted_at: dict[str, float] = {}
    raised_at: dict[str, float] = {}
    lowered: dict[str, tuple[float, float]] = {}  # classroom -> (lowered at, raised at), undecided

    def settle(now: float) -> None:
        for cid, (t_low, _) in list(lowered.items()):
            if now - t_low > GRANT_MATCH_S:
                del lowered[cid]
                stats[cid].unanswered_hands += 1

    for ev in events:
        cid = ev.classroom_id
        if cid is None or cid not in stats:
            continue
        t = ev.t_ms / 1000.0
        settle(t)
        st = stats[cid]
        if ev.type == "hand_raised":
            st.hand_raises += 1
            if cid in lowered:  # raised again before any grant: the earlier hand went unanswered
                del lowered[cid]
                st.unanswered_hands += 1
            raised_at.setdefault(cid, t)
        elif ev.type == "hand_lowered":
            if cid not in raised_at:
                continue  # after its grant (same t_ms, other order) or a hand never seen raised
            reason = ev.data.get("reason")
            if reason == "granted":
                continue  # the floor_granted at the same t_ms answers the hand
            t_raised = raised_at.pop(cid)
            if reason is None:
                lowered[cid] = (t, t_raised)
            else:  # "gone" or any other stated cause: nobody answered it
                st.unanswered_hands += 1
        elif ev.type == "floor_granted":
            st.floor_grants += 1
            if cid in raised_at:
                st.hand_wait_s.append(max(0.0, t - raised_at.pop(cid)))
            elif cid in lowered:
                st.hand_wait_s.append(max(0.0, t - lowered.pop(cid)[1]))
            granted_at.setdefault(cid, t)
        elif ev.type in ("floor_revoked", "leave"):
            if cid in granted_at:
                st.floor_s += max(0.0, t - granted_at.pop(cid))
            if ev.type == "leave" and cid in raised_at:
                del raised_at[cid]
                st.unanswered_hands += 1
    settle(float("inf"))
    for cid, t in granted_at.items():
        stats[cid].floor_s += max(0.0, duration_s - t)
    for cid in raised_at:
        stats[cid].unanswered_hands += 1


def audible_intervals(events: list[Event], classroom_ids: list[str], duration_s: float) -> dict[str, list[list[float]]]:
    """When the server forwarded each classroom's audio to the others: while it held the floor,
    was not muted and was connected (``Floor.audible`` in signaling/floor.py), from the events.

    Returns ``[start_s, end_s]`` lists per classroom id (every id of ``classroom_ids``).
    """
    granted: set[str] = set()
    muted: set[str] = set()
    away: set[str] = set()
    since: dict[str, float] = {}
    out: dict[str, list[list[float]]] = {cid: [] for cid in classroom_ids}

    def update(cid: str, t: float) -> None:
        now = cid in granted and cid not in muted and cid not in away
        if now and cid not in since:
            since[cid] = t
        elif not now and cid in since:
            start = since.pop(cid)
            if t > start:
                out[cid].append([start, t])

    for ev in events:
        cid = ev.classroom_id
        if cid is None or cid not in out:
            continue
        t = min(max(ev.t_ms / 1000.0, 0.0), duration_s)
        if ev.type == "floor_granted":
            granted.add(cid)
        elif ev.type == "floor_revoked":
            granted.discard(cid)
        elif ev.type == "mute":
            muted.add(cid)
        elif ev.type == "unmute":
            muted.discard(cid)
        elif ev.type == "leave":
            away.add(cid)
        elif ev.type == "join":
            away.discard(cid)
        else:
            continue
        update(cid, t)
    for cid, start in since.items():
        if duration_s > start:
            out[cid].append([start, duration_s])
    return out
