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


def floor_stats(stats: dict[str, ClassroomStats], events: list[Event], duration_s: float) -> None:
    """Fills hand raises, floor grants, floor time and hand-to-floor waits from the events."""
    granted_at: dict[str, float] = {}
    raised_at: dict[str, float] = {}
    for ev in events:
        cid = ev.classroom_id
        if cid is None or cid not in stats:
            continue
        t = ev.t_ms / 1000.0
        st = stats[cid]
        if ev.type == "hand_raised":
            st.hand_raises += 1
            raised_at.setdefault(cid, t)
        elif ev.type == "hand_lowered":
            if cid in raised_at:
                del raised_at[cid]
                st.unanswered_hands += 1
        elif ev.type == "floor_granted":
            st.floor_grants += 1
            if cid in raised_at:
                st.hand_wait_s.append(max(0.0, t - raised_at.pop(cid)))
            granted_at.setdefault(cid, t)
        elif ev.type in ("floor_revoked", "leave"):
            if cid in granted_at:
                st.floor_s += max(0.0, t - granted_at.pop(cid))
            if ev.type == "leave" and cid in raised_at:
                del raised_at[cid]
                st.unanswered_hands += 1
    for cid, t in granted_at.items():
        stats[cid].floor_s += max(0.0, duration_s - t)
    for cid in raised_at:
        stats[cid].unanswered_hands += 1
