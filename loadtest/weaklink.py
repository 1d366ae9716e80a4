"""Weak rural links, measured in real Chromium: what a remote classroom on an impaired link sees
and hears, what the others see, and what it costs the lead and the SFU (issue #13's acceptance).

    python -m loadtest.weaklink --condition cap60 [--condition loss5 ...] [--seconds 60] [--json out.json]
    python -m loadtest.weaklink --all

For each condition, from scratch: an impaired link (:mod:`loadtest.netem`, index ``--link``,
``10.88.X.1`` ↔ ``10.88.X.2``); ``classroom serve --host 10.88.X.1 --tls off`` with
``CLASSROOM_MEDIA_ICE_ADDRESSES=10.88.X.1``; one Chromium in the root namespace holding the lead
page (fed the generated high-detail camera of :mod:`loadtest.y4m`) and an unimpaired remote page;
a second Chromium inside the link's namespace (``ip netns exec``) holding the impaired remote page.
After a warm-up (``--warmup`` s, unimpaired: everyone shows video, the lead's encoder ramps up and
its top layer's bitrate is measured over the last 5 s), the condition's schedule is applied (a
*from-join* condition's link is set before the impaired page even opens: a rural line has its delay
from the start; ``--switch-in`` applies it after the warm-up instead) and
all three pages' ``getStats`` are sampled once a second for ``--seconds``; the bytes the host
offers toward the classroom are read from an nftables counter (before the cap) 5 times a second;
``/metrics`` is read at the start and the end. Before each condition the run waits (≤ 30 s) for
the machine to be 85 % idle, so one condition's browsers do not load the next one's start
(``--no-idle-wait`` skips that).

Conditions (rates relative to the measured top-layer bitrate ``top``):

==================== =============================================================================
clean                no impairment (a reference; not part of ``--all``)
cap60                downlink capped at 0.6 × top
cap30                downlink capped at 0.3 × top
step                 8 Mbit/s, then 0.6 × top from 1/3 of the run, lifted back to 8 Mbit/s at 2/3
swing                downlink cap 1.0 × top ± 20 % (a sine, 20 s period, changed every second)
loss5                5 % random loss each way, no cap
rtt100_loss3_cap3    45 ms + U(0, 10) ms each way (≈ 100 ms RTT), 3 % loss each way, 3 Mbit/s cap;
                     from join (the classroom joins on that link)
upstream             the impaired classroom gets the floor; its uplink capped at 1.5 Mbit/s, 3 % loss
==================== =============================================================================

Figures (see docs/performance.md, "Weak links"): freeze share = growth of ``totalFreezesDuration``
plus a stall still open at the end (seconds with no decoded frame; Chromium only counts a freeze
once the next frame arrives) ÷ run; decoded fps; audio concealment = ``concealedSamples`` ÷
``totalSamplesReceived``; received kbit/s; the resolutions seen (seconds at each); spatial switches
per 10 s; after a step, how long until the offered rate is under the cap; after lifting, how long
until the top resolution is back; keyframe requests (PLI + FIR) the lead's publisher received per
2 s; each layer's measured bitrate; retransmitted vs forwarded packets from ``/metrics``
(server-wide: the server has no per-classroom figure yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtest.chromium import CHROMIUM, CHROMIUM_ARGS
from loadtest.netem import Link, LinkSpec, free_index
from loadtest.serverproc import ServerProcess, start_server
from loadtest.y4m import camera_file

LESSON = "weaklink"
LEAD, OK_REMOTE, WEAK_REMOTE = "lead", "r-ok", "r-weak"
FAST_MBIT = 8.0

# ---------------------------------------------------------------------------------------------
# conditions (pure)


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    relay: bool = False  # needs the delay relay
    upstream: bool = False  # the impaired classroom gets the floor
    # the link is like this from before the impaired classroom joins (a rural line has its delay
    # and loss from the start), not switched in after the warm-up; ``--switch-in`` overrides
    from_join: bool = False


CONDITIONS: dict[str, Condition] = {c.name: c for c in (
    Condition("clean", "no impairment (reference)"),
    Condition("cap60", "downlink cap 60 % of the top layer"),
    Condition("cap30", "downlink cap 30 % of the top layer"),
    Condition("step", "8 Mbit/s → 60 % of the top layer at 1/3 → 8 Mbit/s at 2/3"),
    Condition("swing", "downlink cap 100 % of the top layer ± 20 % (20 s sine)"),
    Condition("loss5", "5 % random loss each way"),
    Condition("rtt100_loss3_cap3", "≈100 ms RTT, 3 % loss each way, 3 Mbit/s cap", relay=True,
              from_join=True),
    Condition("upstream", "floor to the impaired classroom; uplink 1.5 Mbit/s, 3 % loss",
              upstream=True),
)}
ALL = ("cap60", "cap30", "step", "swing", "loss5", "rtt100_loss3_cap3", "upstream")


@dataclass(frozen=True)
class Change:
    """At ``at_s`` seconds into the run, call ``Link.set(**settings)``."""

    at_s: float
    settings: dict[str, float | None]


def schedule(name: str, top_kbps: float, seconds: float) -> list[Change]:
    """The link changes of condition ``name`` for a run of ``seconds`` (rates in Mbit/s)."""
    top = top_kbps / 1000.0
    if name == "clean":
        return []
    if name == "cap60":
        return [Change(0, {"rate": 0.6 * top})]
    if name == "cap30":
        return [Change(0, {"rate": 0.3 * top})]
    if name == "step":
        return [Change(0, {"rate": FAST_MBIT}), Change(seconds / 3, {"rate": 0.6 * top}),
                Change(2 * seconds / 3, {"rate": FAST_MBIT})]
    if name == "swing":
        return [Change(float(t), {"rate": top * (1 + 0.2 * math.sin(2 * math.pi * t / 20))})
                for t in range(int(seconds))]
    if name == "loss5":
        return [Change(0, {"loss": 5, "up_loss": 5})]
    if name == "rtt100_loss3_cap3":
        return [Change(0, {"delay": 45, "jitter": 10, "loss": 3, "up_loss": 3, "rate": 3.0})]
    if name == "upstream":
        return [Change(0, {"up_rate": 1.5, "up_loss": 3})]
    raise ValueError(f"unknown condition {name!r} (known: {', '.join(CONDITIONS)})")


def split_schedule(changes: Sequence[Change], from_join: bool) -> tuple[list[Change], list[Change]]:
    """(applied before the impaired page opens, applied during the run): with ``from_join``, the
    changes at 0 s are the link the classroom joins on; otherwise everything is during the run."""
    if not from_join:
        return [], list(changes)
    return [c for c in changes if c.at_s <= 0], [c for c in changes if c.at_s > 0]


def cpu_idle_share(before: Sequence[int], after: Sequence[int]) -> float:
    """Idle share (0..1) between two ``/proc/stat`` ``cpu`` lines' counters (idle + iowait)."""
    delta = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(delta)
    if total <= 0:
        return 1.0
    idle = delta[3] + (delta[4] if len(delta) > 4 else 0)
    return idle / total


def _cpu_counters() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def wait_for_idle(min_idle: float = 0.85, timeout: float = 30.0, window: float = 2.0,
                  log: Callable[[str], None] = print) -> float:
    """Block until the machine is ``min_idle`` idle over ``window`` s (the previous condition's
    browsers and server have wound down), at most ``timeout`` s; returns the last idle share."""
    deadline = time.monotonic() + timeout
    idle = 0.0
    while True:
        a = _cpu_counters()
        time.sleep(window)
        idle = cpu_idle_share(a, _cpu_counters())
        if idle >= min_idle or time.monotonic() >= deadline:
            break
    if idle < min_idle:
        log(f"machine still {100 * (1 - idle):.0f} % busy after {timeout:.0f} s; starting anyway")
    return idle


# ---------------------------------------------------------------------------------------------
# what a page reports each second

STATS_JS = """
async () => {
  const c = window.classroom;
  const out = { t: performance.now() / 1000, inbound: [], outbound: [], rtt: null, playout_ms: null };
  if (!c) return out;
  if (c.smoother) out.playout_ms = c.smoother.targetMs;
  const info = new Map((c.tracks || []).map((t) => [t.mid, t]));
  if (c.sub) (await c.sub.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") {
      const t = info.get(s.mid) || {};
      out.inbound.push({ mid: s.mid, kind: s.kind, source: t.source || null,
        classroom_id: t.classroom_id || null, bytes: s.bytesReceived || 0,
        packets: s.packetsReceived || 0, lost: s.packetsLost || 0, frames: s.framesDecoded || 0,
        w: s.frameWidth || 0, h: s.frameHeight || 0, freezes: s.freezeCount || 0,
        freeze_s: s.totalFreezesDuration || 0, concealed: s.concealedSamples || 0,
        samples: s.totalSamplesReceived || 0, nack: s.nackCount || 0, pli: s.pliCount || 0,
        keyframes: s.keyFramesDecoded || 0, jb_delay_s: s.jitterBufferDelay || 0,
        jb_emitted: s.jitterBufferEmittedCount || 0, dropped: s.framesDropped || 0 });
    }
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" &&
        s.currentRoundTripTime !== undefined) out.rtt = s.currentRoundTripTime;
  });
  if (c.pub) (await c.pub.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp") out.outbound.push({ mid: s.mid, rid: s.rid || null,
      kind: s.kind, ssrc: s.ssrc, bytes: s.bytesSent || 0, frames: s.framesEncoded || 0,
      w: s.frameWidth || 0, h: s.frameHeight || 0, pli: s.pliCount || 0, fir: s.firCount || 0,
      nack: s.nackCount || 0, keyframes: s.keyFramesEncoded || 0,
      qlr: s.qualityLimitationReason || null, retx_bytes: s.retransmittedBytesSent || 0,
      encoder: s.encoderImplementation || null });
  });
  return out;
}
"""

Sample = dict[str, Any]


def pick_inbound(sample: Sample, kind: str, classroom_id: str | None = None,
                 source: str | None = None) -> dict[str, Any] | None:
    """The inbound-rtp of ``kind`` from ``classroom_id``/``source`` (the biggest if several)."""
    cands = [s for s in sample.get("inbound", []) if s["kind"] == kind
             and (classroom_id is None or s.get("classroom_id") == classroom_id)
             and (source is None or s.get("source") == source)]
    return max(cands, key=lambda s: s["bytes"]) if cands else None


# ---------------------------------------------------------------------------------------------
# figures from samples (pure)


@dataclass
class TrackFigures:
    seconds: float = 0.0
    freeze_share: float | None = None  # 0..1
    freezes_getstats_s: float | None = None
    open_stall_s: float = 0.0
    max_freeze_s: float | None = None
    fps: float | None = None
    kbps: float | None = None
    concealment: float | None = None  # 0..1 (audio)
    layers: dict[str, float] = field(default_factory=dict)  # "WxH" -> seconds
    spatial_switches: int = 0
    switches_per_10s: float | None = None
    packets_lost: int = 0
    nacks: int = 0
    plis: int = 0
    # what the browser's jitter buffer held each frame (or audio sample) on average, in ms
    # (jitterBufferDelay / jitterBufferEmittedCount over the run), and frames it dropped
    playout_delay_ms: float | None = None
    frames_dropped: int = 0


def video_figures(series: Sequence[tuple[float, dict[str, Any] | None]]) -> TrackFigures:
    """Figures of one received video track from its (t, inbound-rtp) samples."""
    pts = [(t, s) for t, s in series if s is not None]
    f = TrackFigures()
    if len(pts) < 2:
        return f
    (t0, a), (t1, b) = pts[0], pts[-1]
    dur = t1 - t0
    f.seconds = round(dur, 2)
    if dur <= 0:
        return f
    freezes = b["freeze_s"] - a["freeze_s"]
    # a stall still open at the end: trailing samples with no new frame
    open_stall = 0.0
    for (tp, p), (tn, n) in zip(reversed(pts[:-1]), reversed(pts[1:]), strict=True):
        if n["frames"] > p["frames"]:
            break
        open_stall += tn - tp
    max_freeze = 0.0
    run = 0.0
    for (tp, p), (tn, n) in zip(pts, pts[1:], strict=False):
        dfreeze = n["freeze_s"] - p["freeze_s"]
        count = max(1, n["freezes"] - p["freezes"])
        max_freeze = max(max_freeze, dfreeze / count)
        run = run + (tn - tp) if n["frames"] == p["frames"] else 0.0
        max_freeze = max(max_freeze, run)
    f.freezes_getstats_s = round(freezes, 3)
    f.open_stall_s = round(open_stall, 2)
    f.freeze_share = min(1.0, (freezes + open_stall) / dur)
    f.max_freeze_s = round(max_freeze, 3)
    f.fps = (b["frames"] - a["frames"]) / dur
    f.kbps = 8 * (b["bytes"] - a["bytes"]) / dur / 1000
    prev_layer = None
    for (tp, p), (tn, n) in zip(pts, pts[1:], strict=False):
        if n["frames"] <= p["frames"] or not n["w"]:
            continue
        layer = f"{n['w']}x{n['h']}"
        f.layers[layer] = round(f.layers.get(layer, 0.0) + (tn - tp), 1)
        if prev_layer is not None and layer != prev_layer:
            f.spatial_switches += 1
        prev_layer = layer
    f.switches_per_10s = 10 * f.spatial_switches / dur
    f.packets_lost = b["lost"] - a["lost"]
    f.nacks = b["nack"] - a["nack"]
    f.plis = b["pli"] - a["pli"]
    f.playout_delay_ms = _playout_delay_ms(a, b)
    f.frames_dropped = b.get("dropped", 0) - a.get("dropped", 0)
    return f


def _playout_delay_ms(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    emitted = b.get("jb_emitted", 0) - a.get("jb_emitted", 0)
    if emitted <= 0:
        return None
    return round(1000 * (b.get("jb_delay_s", 0) - a.get("jb_delay_s", 0)) / emitted, 1)


def audio_figures(series: Sequence[tuple[float, dict[str, Any] | None]]) -> TrackFigures:
    pts = [(t, s) for t, s in series if s is not None]
    f = TrackFigures()
    if len(pts) < 2:
        return f
    (t0, a), (t1, b) = pts[0], pts[-1]
    f.seconds = round(t1 - t0, 2)
    samples = b["samples"] - a["samples"]
    f.concealment = (b["concealed"] - a["concealed"]) / samples if samples > 0 else None
    f.kbps = 8 * (b["bytes"] - a["bytes"]) / (t1 - t0) / 1000 if t1 > t0 else None
    f.packets_lost = b["lost"] - a["lost"]
    f.playout_delay_ms = _playout_delay_ms(a, b)
    return f


def rate_series(points: Sequence[tuple[float, int]], window_s: float = 0.5
                ) -> list[tuple[float, float]]:
    """(t, kbit/s over the trailing ``window_s``) from cumulative (t, bytes) counter readings."""
    out = []
    j = 0
    for i, (t, b) in enumerate(points):
        while j < i and t - points[j][0] > window_s + 1e-9:
            j += 1
        k = j if t - points[j][0] >= window_s * 0.8 or j == 0 else j - 1
        if k < i and t > points[k][0]:
            out.append((t, 8 * (b - points[k][1]) / (t - points[k][0]) / 1000))
    return out


def time_until_under(rates: Sequence[tuple[float, float]], since: float, until: float,
                     cap_kbps: float) -> float | None:
    """Seconds after ``since`` until the offered rate is first ≤ ``cap_kbps`` (before
    ``until``), or ``None`` if it never is."""
    for t, r in rates:
        if since < t <= until and r <= cap_kbps:
            return round(t - since, 2)
    return None


def share_over(rates: Sequence[tuple[float, float]], since: float, until: float,
               cap_kbps: float) -> float | None:
    inside = [r for t, r in rates if since < t <= until]
    return sum(r > cap_kbps for r in inside) / len(inside) if inside else None


def time_until_top(series: Sequence[tuple[float, dict[str, Any] | None]], since: float,
                   top_width: int, min_fps: float = 10.0) -> float | None:
    """Seconds after ``since`` until a one-second sample decodes ≥ ``min_fps`` at ≥ ``top_width``."""
    pts = [(t, s) for t, s in series if s is not None]
    for (tp, p), (tn, n) in zip(pts, pts[1:], strict=False):
        if tn <= since or tn <= tp:
            continue
        fps = (n["frames"] - p["frames"]) / (tn - tp)
        if n["w"] >= top_width and fps >= min_fps:
            return round(max(0.0, tn - since), 2)
    return None


def first_lower_layer(series: Sequence[tuple[float, dict[str, Any] | None]], since: float,
                      top_width: int) -> float | None:
    """Seconds after ``since`` until frames arrive below the top width, or ``None``."""
    pts = [(t, s) for t, s in series if s is not None]
    for (_tp, p), (tn, n) in zip(pts, pts[1:], strict=False):
        if tn > since and n["frames"] > p["frames"] and 0 < n["w"] < top_width:
            return round(tn - since, 2)
    return None


def layer_figures(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """The lead's outbound video layers (per rid, else per SSRC): kbit/s, fps, size, limits."""
    if len(samples) < 2:
        return []
    a, b = samples[0], samples[-1]
    dur = b["t"] - a["t"]
    first = {(o.get("rid") or o["ssrc"]): o for o in a["outbound"] if o["kind"] == "video"}
    out = []
    for o in b["outbound"]:
        if o["kind"] != "video":
            continue
        key = o.get("rid") or o["ssrc"]
        p = first.get(key)
        if p is None or dur <= 0:
            continue
        out.append({
            "layer": o.get("rid") or f"ssrc {o['ssrc']}",
            "kbps": round(8 * (o["bytes"] - p["bytes"]) / dur / 1000, 1),
            "fps": round((o["frames"] - p["frames"]) / dur, 1),
            "size": f"{o['w']}x{o['h']}", "quality_limitation": o.get("qlr"),
            "encoder": o.get("encoder"),
        })
    return sorted(out, key=lambda x: -x["kbps"])


def keyframe_requests(samples: Sequence[Sample]) -> dict[str, float | None]:
    """PLI + FIR the lead's video senders received, and keyframes they encoded, per 2 s."""
    if len(samples) < 2:
        return {"requests_per_2s": None, "keyframes_per_2s": None}
    a, b = samples[0], samples[-1]
    dur = b["t"] - a["t"]

    def total(s: Sample, *keys: str) -> int:
        return sum(o[k] for o in s["outbound"] if o["kind"] == "video" for k in keys)

    req = total(b, "pli", "fir") - total(a, "pli", "fir")
    kf = total(b, "keyframes") - total(a, "keyframes")
    return {"requests": req, "requests_per_2s": 2 * req / dur if dur > 0 else None,
            "keyframes": kf, "keyframes_per_2s": 2 * kf / dur if dur > 0 else None}


_METRIC = re.compile(r"^(classroom_[a-z_]+?)(?:_total)?(?:\{[^}]*\})? ([0-9.eE+-]+)$")


_LINK_BYTES = re.compile(r'^(classroom_link_(?:forwarded|retransmitted)_bytes)\{[^}]*classroom="([^"]*)"[^}]*\} '
                        r'([0-9.eE+-]+)$')


def parse_metrics(text: str) -> dict[str, float]:
    """``classroom_*`` counters/gauges without labels (``_total`` dropped) from /metrics, and
    each classroom's link byte counts as ``classroom_link_…_bytes:CLASSROOM``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if "{" in line:
            lm = _LINK_BYTES.match(line.strip())
            if lm:
                out[f"{lm.group(1)}:{lm.group(2)}"] = float(lm.group(3))
            continue
        m = _METRIC.match(line.strip())
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def server_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    fwd = d.get("classroom_forwarded_packets", 0.0)
    rtx = d.get("classroom_retransmitted_packets", 0.0)
    pkts, byts = d.get("classroom_sent_packets", 0.0), d.get("classroom_sent_bytes", 0.0)
    weak_fwd = d.get(f"classroom_link_forwarded_bytes:{WEAK_REMOTE}", 0.0)
    weak_rtx = d.get(f"classroom_link_retransmitted_bytes:{WEAK_REMOTE}", 0.0)
    return {
        "scope": "server-wide, but weak_* for the impaired classroom's connection",
        "forwarded_packets": int(fwd), "retransmitted_packets": int(rtx),
        "retransmitted_vs_forwarded": rtx / fwd if fwd else None,
        "weak_forwarded_bytes": int(weak_fwd), "weak_retransmitted_bytes": int(weak_rtx),
        "weak_retransmitted_vs_forwarded": weak_rtx / weak_fwd if weak_fwd else None,
        "retransmitted_bytes_est": int(rtx * byts / pkts) if pkts else None,
        "bytes_out": int(byts),
        "nacks_received": int(d.get("classroom_nacks_received", 0)),
        "plis_received": int(d.get("classroom_plis_received", 0)),
        "keyframe_requests_sent": int(d.get("classroom_keyframe_requests_sent", 0)),
        "keyframe_requests_by_reason": {r: int(d.get(f"classroom_keyframe_requests_for_{r}", 0))
                                        for r in ("join", "switch", "resync", "loss", "pli")},
        "dropped_congested": int(d.get("classroom_dropped_congested", 0)),
        "nack_misses": int(d.get("classroom_nack_misses", 0)),
        "nacks_crossed": int(d.get("classroom_nacks_crossed", 0)),
        "rtcp_dlrr_sent": int(d.get("classroom_rtcp_dlrr_sent", 0)),
        "transcodes": int(d.get("classroom_transcodes", 0)),
        "red_packets_in": int(d.get("classroom_red_packets_in", 0)),
        "red_packets_out": int(d.get("classroom_red_packets_out", 0)),
        "retransmits_skipped": int(d.get("classroom_retransmits_skipped", 0)),
        "remb_sent": int(d.get("classroom_remb_sent", 0)),
        "nacks_sent": int(d.get("classroom_nacks_sent", 0)),
        "upstream_repaired": int(d.get("classroom_upstream_repaired", 0)),
        "rtx_packets_in": int(d.get("classroom_rtx_packets_in", 0)),
        "rtx_redundant": int(d.get("classroom_rtx_redundant", 0)),
        "repairs_duplicated": int(d.get("classroom_repairs_duplicated", 0)),
        "feedback_repairs": int(d.get("classroom_feedback_repairs", 0)),
        "gop_replays": int(d.get("classroom_gop_replays", 0)),
        "keyframe_repairs": int(d.get("classroom_keyframe_repairs", 0)),
    }


# ---------------------------------------------------------------------------------------------
# acceptance (pure)


@dataclass(frozen=True)
class Check:
    figure: str
    value: float | None
    op: str  # "<=" or ">="
    threshold: float
    unit: str = ""

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value <= self.threshold if self.op == "<=" else self.value >= self.threshold

    def render(self) -> str:
        v = "n/a" if self.value is None else f"{self.value:.3g}{self.unit}"
        return f"{self.figure} {v} {self.op} {self.threshold:g}{self.unit} " + \
            ("PASS" if self.passed else "FAIL")


def _pct(x: float | None) -> float | None:
    return None if x is None else 100 * x


def checks(name: str, r: dict[str, Any]) -> list[Check]:
    """Issue #13's acceptance thresholds for condition ``name`` applied to result ``r``."""
    w, a = r["weak_video"], r["weak_audio"]
    out: list[Check] = []
    if name == "cap60":
        out += [Check("weak freeze", _pct(w["freeze_share"]), "<=", 1, "%"),
                Check("weak fps", w["fps"], ">=", 15),
                Check("weak audio concealed", _pct(a["concealment"]), "<=", 1, "%"),
                Check("lower layer after", r.get("first_lower_layer_s"), "<=", 3, "s")]
    elif name == "cap30":
        out += [Check("weak audio concealed", _pct(a["concealment"]), "<=", 1, "%"),
                Check("weak fps", w["fps"], ">=", 7),
                Check("rtx/forwarded bytes (this classroom)",
                      _pct(r["server"].get("weak_retransmitted_vs_forwarded")), "<=", 10, "%")]
    elif name == "step":
        out += [Check("under cap after step", r.get("under_cap_after_s"), "<=", 1, "s"),
                Check("longest freeze", w["max_freeze_s"], "<=", 0.3, "s"),
                Check("top layer after lift", r.get("top_after_lift_s"), "<=", 10, "s")]
    elif name == "swing":
        out += [Check("spatial switches/10s", w["switches_per_10s"], "<=", 1)]
    elif name == "loss5":
        out += [Check("weak freeze", _pct(w["freeze_share"]), "<=", 1, "%"),
                Check("weak audio concealed", _pct(a["concealment"]), "<=", 2, "%")]
    elif name == "rtt100_loss3_cap3":
        out += [Check("weak freeze", _pct(w["freeze_share"]), "<=", 2, "%")]
    elif name == "upstream":
        lv, la = r["lead_sees_weak_video"], r["lead_hears_weak_audio"]
        out += [Check("lead sees weak: freeze", _pct(lv["freeze_share"]), "<=", 2, "%"),
                Check("lead hears weak: concealed", _pct(la["concealment"]), "<=", 2, "%")]
    out += [Check("other remote freeze", _pct(r["ok_video"]["freeze_share"]), "<=", 1, "%"),
            Check("lead keyframe requests/2s", r["lead_keyframes"]["requests_per_2s"], "<=", 1)]
    return out


# ---------------------------------------------------------------------------------------------
# running one condition


@dataclass
class RunConfig:
    seconds: float = 60.0
    warmup: float = 20.0
    link_index: int | None = None
    with_ok_remote: bool = True
    top_kbps: float | None = None  # fixed reference instead of the measured top layer
    echo_server: bool = False
    log_level: str = "WARNING"  # the server's (INFO with --echo-server: layer changes, probes)
    page_query: str = ""  # appended to every page's URL, e.g. "temporal=0" (L1T1 publishers)
    switch_in: bool = False  # apply from-join conditions after the warm-up like the others
    log: Callable[[str], None] = print


def _netns_chromium(link: Link, directory: Path) -> Path:
    """An executable that starts Chromium inside the link's namespace (for playwright)."""
    path = directory / "chromium-in-netns"
    path.write_text("#!/bin/sh\nexec " + " ".join(link.exec_argv([CHROMIUM])) + ' "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def _wait(page: Any, expr: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await page.evaluate(expr):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what} (waited {timeout:.0f} s for {expr})")


def _get_metrics(server: ServerProcess, host: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{host}:{server.port}/metrics", timeout=5) as r:
        return parse_metrics(r.read().decode())


async def _offered_meter(link: Link, points: list[tuple[float, int]], stop: asyncio.Event,
                         interval: float = 0.2) -> None:
    argv = ["nft", "list", "table", "inet", link.spec.meter_table]
    while not stop.is_set():
        t = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE,
                                                    stderr=subprocess.DEVNULL)
        out, _ = await proc.communicate()
        for line in out.decode().splitlines():
            if "counter packets" in line:
                parts = line.split()
                points.append((t, int(parts[parts.index("bytes") + 1])))
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - t)))


async def run_condition(name: str, cfg: RunConfig) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    cond = CONDITIONS[name]
    log = cfg.log
    camera = camera_file()
    index = cfg.link_index if cfg.link_index is not None else free_index()
    with Link(LinkSpec(index, relay=cond.relay)) as link, \
            tempfile.TemporaryDirectory(prefix="wl-weaklink-") as tmp:
        host = link.spec.host_ip
        env = {**os.environ, "CLASSROOM_MEDIA_ICE_ADDRESSES": host}
        server = start_server(extra_args=["--host", host, "--tls", "off"], env=env, log_level=cfg.log_level,
                              echo=cfg.echo_server)
        base = f"http://{host}:{server.port}"
        origin_flag = f"--unsafely-treat-insecure-origin-as-secure={base}"
        plain = [*CHROMIUM_ARGS, origin_flag]  # the default fake camera: cheap to encode
        detailed = [*plain, f"--use-file-for-fake-video-capture={camera}"]
        signer = server.signer

        def url(classroom: str, role: str, page: str) -> str:
            tok = signer.issue(LESSON, classroom, role, classroom, lesson_title="weak link")
            extra = f"&{cfg.page_query}" if cfg.page_query else ""
            return f"{base}/{page}?token={tok}{extra}"

        try:
            async with async_playwright() as pw:
                # the lead (and, when it publishes to be measured, the weak remote) get the
                # high-detail camera; the unimpaired remote the default one
                lead_browser = await pw.chromium.launch(executable_path=CHROMIUM, args=detailed,
                                                        headless=True)
                ok_browser = await pw.chromium.launch(executable_path=CHROMIUM, args=plain,
                                                      headless=True) \
                    if cfg.with_ok_remote else None
                ns_browser = await pw.chromium.launch(
                    executable_path=str(_netns_chromium(link, Path(tmp))),
                    args=detailed if cond.upstream else plain, headless=True)
                try:
                    return await _measure(name, cfg, link, server, host, url, lead_browser,
                                          ok_browser, ns_browser, log)
                finally:
                    for b in (ns_browser, ok_browser, lead_browser):
                        if b is not None:
                            await b.close()
        finally:
            server.stop()


async def _measure(name: str, cfg: RunConfig, link: Link, server: ServerProcess, host: str,
                   url: Callable[[str, str, str], str], lead_browser: Any,
                   ok_browser: Any | None, ns_browser: Any,
                   log: Callable[[str], None]) -> dict[str, Any]:
    cond = CONDITIONS[name]

    async def open_page(browser: Any, classroom: str, role: str, page_name: str) -> Any:
        page = await (await browser.new_context()).new_page()
        await page.goto(url(classroom, role, page_name), timeout=30_000)
        return page

    lead = await open_page(lead_browser, LEAD, "lead", "lead.html")
    await _wait(lead, "document.getElementById('live').textContent.includes('LIVE')", 30,
                "lead page live")
    pages = {"lead": lead}
    if ok_browser is not None:
        pages["ok"] = await open_page(ok_browser, OK_REMOTE, "remote", "remote.html")
    # a from-join condition's link is set before the impaired classroom opens its page; its
    # top-layer reference is the lead's own (unimpaired) encoder, so the warm-up is unaffected
    before_join, during = split_schedule(schedule(name, cfg.top_kbps or 0.0, cfg.seconds),
                                         cond.from_join and not cfg.switch_in)
    applied: list[dict[str, Any]] = []
    for ch in before_join:
        c = await asyncio.to_thread(link.set, **ch.settings)  # type: ignore[arg-type]
        applied.append({"at_s": "before join", "settings": ch.settings,
                        "conditions": c.describe()})
    pages["weak"] = await open_page(ns_browser, WEAK_REMOTE, "remote", "remote.html")
    for key in ("ok", "weak"):
        if key in pages:
            await _wait(pages[key], "window.firstFrameMs !== null", 30, f"{key} remote video")
    if cond.upstream:
        await _wait(pages["weak"], "!!(window.classroom && window.classroom.publishing)", 20,
                    "weak remote publishing")
        # fire and forget: the answer is a ``floor`` event to everyone, awaited below
        await pages["weak"].evaluate("window.classroom.request({type: 'raise_hand'})"
                                     ".catch(() => {}), true")
        await asyncio.sleep(0.5)
        await lead.evaluate(f"window.classroom.request({{type: 'grant_floor', classroom_id: "
                            f"'{WEAK_REMOTE}'}}).catch(() => {{}}), true")
        await _wait(pages["weak"], "document.getElementById('floor-banner').classList"
                    ".contains('show')", 10, "floor granted to the weak remote")
    # warm-up: the lead's encoder ramps up; measure its top layer over the last 5 s
    t_warm = time.monotonic()
    await asyncio.sleep(max(0.0, cfg.warmup - 5))
    s0 = await lead.evaluate(STATS_JS)
    await asyncio.sleep(min(5.0, cfg.warmup))
    s1 = await lead.evaluate(STATS_JS)
    warm_layers = layer_figures([s0, s1])
    top_kbps = cfg.top_kbps or (warm_layers[0]["kbps"] if warm_layers else 0.0)
    if top_kbps <= 0:
        raise RuntimeError("the lead sends no video after the warm-up")
    top_width = max((int(x["size"].split("x")[0]) for x in warm_layers), default=1280)
    log(f"[{name}] warm-up {time.monotonic() - t_warm:.0f} s: lead top layer "
        f"{top_kbps:.0f} kbit/s; layers {warm_layers}")
    changes = schedule(name, top_kbps, cfg.seconds)
    if before_join:  # already applied (these conditions' settings do not depend on ``top``)
        changes = split_schedule(changes, True)[1]
    samples: dict[str, list[tuple[float, Sample]]] = {k: [] for k in pages}
    offered: list[tuple[float, int]] = []
    stop = asyncio.Event()
    meter = asyncio.create_task(_offered_meter(link, offered, stop))
    metrics_before = await asyncio.to_thread(_get_metrics, server, host)
    t0 = time.monotonic()
    pending = list(changes)
    next_tick = t0
    while True:
        now = time.monotonic() - t0
        while pending and pending[0].at_s <= now:
            ch = pending.pop(0)
            c = await asyncio.to_thread(link.set, **ch.settings)  # type: ignore[arg-type]
            applied.append({"at_s": round(now, 2), "settings": ch.settings,
                            "conditions": c.describe()})
            if cfg.echo_server:  # beside the server's lines, in its clock
                log(f"[{name}] {datetime.now():%H:%M:%S.%f}"[:-3] + f" t={now:.2f} s: {c.describe()}")
        stamp = time.monotonic() - t0
        results = await asyncio.gather(*(p.evaluate(STATS_JS) for p in pages.values()),
                                       return_exceptions=True)
        for key, res in zip(pages, results, strict=True):
            if isinstance(res, BaseException):
                continue
            samples[key].append((stamp, res))
        if stamp >= cfg.seconds:
            break
        next_tick += 1.0
        wait = next_tick - time.monotonic()
        if pending:
            wait = min(wait, pending[0].at_s - (time.monotonic() - t0))
        await asyncio.sleep(max(0.0, wait))
        if next_tick < time.monotonic() - 0.5:
            next_tick = time.monotonic()
    metrics_after = await asyncio.to_thread(_get_metrics, server, host)
    stop.set()
    await meter
    drops = await asyncio.to_thread(link.dropped_packets)
    offered_rel = [(t - t0, b) for t, b in offered]
    return analyse(name, cfg.seconds, top_kbps, top_width, samples, offered_rel, applied,
                   metrics_before, metrics_after, drops, warm_layers)


def analyse(name: str, seconds: float, top_kbps: float, top_width: int,
            samples: dict[str, list[tuple[float, Sample]]], offered: list[tuple[float, int]],
            applied: list[dict[str, Any]], metrics_before: dict[str, float],
            metrics_after: dict[str, float], drops: dict[str, int],
            warm_layers: list[dict[str, Any]]) -> dict[str, Any]:
    """All figures of one run (pure: from what was sampled)."""
    weak = samples.get("weak", [])
    ok = samples.get("ok", [])
    lead = samples.get("lead", [])

    def ser(rows: list[tuple[float, Sample]], kind: str, classroom: str | None = None,
            source: str | None = None) -> list[tuple[float, dict[str, Any] | None]]:
        return [(t, pick_inbound(s, kind, classroom, source)) for t, s in rows]

    weak_v = ser(weak, "video", LEAD, "teacher")
    rates = rate_series(offered)
    r: dict[str, Any] = {
        "condition": name, "description": CONDITIONS[name].description, "seconds": seconds,
        "top_kbps": round(top_kbps, 1), "top_width": top_width, "changes": applied[:5] + (
            [{"more": len(applied) - 5}] if len(applied) > 5 else []),
        "weak_video": asdict(video_figures(weak_v)),
        "weak_audio": asdict(audio_figures(ser(weak, "audio", LEAD, "teacher"))),
        "ok_video": asdict(video_figures(ser(ok, "video", LEAD, "teacher"))),
        "ok_audio": asdict(audio_figures(ser(ok, "audio", LEAD, "teacher"))),
        "lead_layers": layer_figures([s for _, s in lead]),
        "lead_layers_warmup": warm_layers,
        "lead_keyframes": keyframe_requests([s for _, s in lead]),
        "server": server_figures(metrics_before, metrics_after),
        "link_drops": drops,
        "offered_kbps_mean": round(8 * (offered[-1][1] - offered[0][1]) / 1000 /
                                   (offered[-1][0] - offered[0][0]), 1)
        if len(offered) > 1 and offered[-1][0] > offered[0][0] else None,
        "weak_rtt_ms_median": _median([s["rtt"] * 1000 for _, s in weak if s.get("rtt")]),
        "first_lower_layer_s": first_lower_layer(weak_v, 0.0, top_width),
    }
    if CONDITIONS[name].upstream:
        r["lead_sees_weak_video"] = asdict(video_figures(ser(lead, "video", WEAK_REMOTE)))
        r["lead_hears_weak_audio"] = asdict(audio_figures(ser(lead, "audio", WEAK_REMOTE)))
        r["weak_publishes"] = layer_figures([s for _, s in weak])
    if name == "step":
        step_at, lift_at = seconds / 3, 2 * seconds / 3
        cap = 0.6 * top_kbps
        r["cap_kbps"] = round(cap, 1)
        r["under_cap_after_s"] = time_until_under(rates, step_at, lift_at, cap)
        r["offered_over_cap_share"] = share_over(rates, step_at + 1, lift_at, cap)
        r["top_after_lift_s"] = time_until_top(weak_v, lift_at, top_width)
        r["during_cap_video"] = asdict(video_figures(
            [(t, s) for t, s in weak_v if step_at <= t <= lift_at]))
    if name in ("cap60", "cap30"):
        cap = (0.6 if name == "cap60" else 0.3) * top_kbps
        r["cap_kbps"] = round(cap, 1)
        r["offered_over_cap_share"] = share_over(rates, 1.0, seconds, cap)
    r["timeline"] = timeline(weak_v, ser(ok, "video", LEAD, "teacher"), lead, weak,
                             ser(weak, "audio", LEAD, "teacher"))
    r["checks"] = [asdict(c) | {"passed": c.passed} for c in checks(name, r)]
    return r


def timeline(weak: Sequence[tuple[float, dict[str, Any] | None]],
             ok: Sequence[tuple[float, dict[str, Any] | None]],
             lead: Sequence[tuple[float, Sample]],
             weak_raw: Sequence[tuple[float, Sample]] = (),
             weak_audio: Sequence[tuple[float, dict[str, Any] | None]] = ()) -> list[dict[str, Any]]:
    """Second by second (for reading a run afterwards): frames decoded, freeze seconds added
    and the width received by the impaired (``w_*``) and the unimpaired remote (``o_*``), and
    the frames the lead encoded per layer (``enc``, widest first), the keyframe requests it
    received (``pli``) and the keyframes it made (``kf``) per layer; the impaired page's extra
    playout delay asked for (``w_playout_ms``, client_web/smoothing.js); what each page's jitter
    buffer held the frames emitted that second (``*_jb_ms``) and the frames it dropped
    (``*_dropped``); the impaired page's concealed audio that second, in ms (``w_conc_ms``)."""
    rows: list[dict[str, Any]] = []
    for i in range(1, min(len(weak), len(lead))):
        row: dict[str, Any] = {"t": round(weak[i][0], 1)}
        for tag, ser in (("w", weak), ("o", ok)):
            if i >= len(ser):
                continue
            a, b = ser[i - 1][1], ser[i][1]
            if a is None or b is None:
                continue
            row[f"{tag}_frames"] = b["frames"] - a["frames"]
            row[f"{tag}_freeze_s"] = round(b["freeze_s"] - a["freeze_s"], 3)
            row[f"{tag}_w"] = b["w"]
            row[f"{tag}_jb_ms"] = _playout_delay_ms(a, b)
            row[f"{tag}_dropped"] = b.get("dropped", 0) - a.get("dropped", 0)
        before = {o["rid"]: o["frames"] for o in lead[i - 1][1].get("outbound", []) if o["kind"] == "video"}
        now = [o for o in lead[i][1].get("outbound", []) if o["kind"] == "video"]
        widest = sorted(now, key=lambda o: -o["w"])
        row["enc"] = [o["frames"] - before.get(o["rid"], o["frames"]) for o in widest]
        # keyframe requests the lead received and keyframes it made, per layer (widest first)
        for key, name in (("pli", "pli"), ("kf", "keyframes")):
            was = {o["rid"]: o.get(name, 0) for o in lead[i - 1][1].get("outbound", []) if o["kind"] == "video"}
            row[key] = [o.get(name, 0) - was.get(o["rid"], o.get(name, 0)) for o in widest]
        if i < len(weak_raw):
            row["w_playout_ms"] = weak_raw[i][1].get("playout_ms")
        if i < len(weak_audio):
            a, b = weak_audio[i - 1][1], weak_audio[i][1]
            got = (b["samples"] - a["samples"]) if a is not None and b is not None else 0
            if got > 0 and a is not None and b is not None:  # 48 kHz at most; a share, in ms a second
                row["w_conc_ms"] = round(1000 * (b["concealed"] - a["concealed"]) / got
                                         * (weak_audio[i][0] - weak_audio[i - 1][0]))
        rows.append(row)
    return rows


def _median(xs: list[float]) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[len(xs) // 2], 1)


# ---------------------------------------------------------------------------------------------
# the table


def _fmt(x: float | None, spec: str = ".1f", scale: float = 1.0, unit: str = "") -> str:
    return "–" if x is None else f"{x * scale:{spec}}{unit}"


def table(results: Sequence[dict[str, Any]], markdown: bool = False) -> str:
    """The result table (plain text, or Markdown for docs), then each condition's checks."""
    head = ("condition", "freeze", "fps", "a.conc", "kbps", "layers seen", "cap→", "top←",
            "sw/10s", "other frz", "KFreq/2s", "lead layers kbps", "rtx/fwd*", "checks")
    rows = [head]
    for r in results:
        w, a = r["weak_video"], r["weak_audio"]
        if r["condition"] == "upstream":
            w, a = r["lead_sees_weak_video"], r["lead_hears_weak_audio"]
        layers = " ".join(f"{k}:{v:.0f}s" for k, v in sorted(w["layers"].items(),
                                                              key=lambda kv: -kv[1]))
        lead_layers = " ".join(f"{x['size']}@{x['kbps']:.0f}" for x in r["lead_layers"])
        passed = [c for c in r["checks"] if c["passed"]]
        rows.append((
            r["condition"] + (" (lead←weak)" if r["condition"] == "upstream" else ""),
            _fmt(w["freeze_share"], ".1f", 100, "%"), _fmt(w["fps"], ".1f"),
            _fmt(a["concealment"], ".1f", 100, "%"), _fmt(w["kbps"], ".0f"), layers or "–",
            _fmt(r.get("under_cap_after_s"), ".1f", 1, "s") if "under_cap_after_s" in r else "",
            _fmt(r.get("top_after_lift_s"), ".1f", 1, "s") if "top_after_lift_s" in r else "",
            _fmt(w["switches_per_10s"], ".1f"), _fmt(r["ok_video"]["freeze_share"], ".1f", 100, "%"),
            _fmt(r["lead_keyframes"]["requests_per_2s"], ".2f"), lead_layers or "–",
            _fmt(r["server"].get("weak_retransmitted_vs_forwarded"), ".1f", 100, "%"),
            f"{len(passed)}/{len(r['checks'])}",
        ))
    if markdown:
        lines = ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines.insert(1, "|" + "---|" * len(head))
    else:
        widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
        lines = [" | ".join(str(c).ljust(widths[i]) for i, c in enumerate(row)) for row in rows]
        lines.insert(1, "-+-".join("-" * wd for wd in widths))
    out = ["\n".join(lines), ""]
    for r in results:
        out.append(f"{r['condition']}: " + "; ".join(
            Check(c["figure"], c["value"], c["op"], c["threshold"], c["unit"]).render()
            for c in r["checks"]))
    out.append("* rtx/fwd: retransmitted ÷ forwarded RTP bytes on the impaired classroom's connection "
               "(classroom_link_*_bytes in /metrics).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.weaklink", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--condition", action="append", choices=sorted(CONDITIONS), default=[])
    parser.add_argument("--all", action="store_true", help=f"run {', '.join(ALL)}")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--link", type=int, default=None, help="X of 10.88.X.0/24 (default: free)")
    parser.add_argument("--top-kbps", type=float, default=None,
                        help="reference top-layer bitrate instead of measuring it")
    parser.add_argument("--no-second-remote", action="store_true")
    parser.add_argument("--echo-server", action="store_true", help="show the server's output")
    parser.add_argument("--page-query", default="", metavar="K=V[&K=V]",
                        help="added to every page's URL (e.g. temporal=0: VP8 with one temporal layer)")
    parser.add_argument("--switch-in", action="store_true",
                        help="apply rtt100_loss3_cap3 after the warm-up (default: from before the "
                             "impaired classroom joins, as a rural line is)")
    parser.add_argument("--no-idle-wait", action="store_true",
                        help="do not wait (≤ 30 s) for an idle machine before each condition")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path, metavar="JSON",
                        help="print the table of an earlier --json file as Markdown and exit")
    args = parser.parse_args(argv)
    if args.markdown:
        print(table(json.loads(args.markdown.read_text()), markdown=True))
        return 0
    names = list(ALL) if args.all else []
    names += [n for n in args.condition if n not in names]
    if not names:
        parser.error("give --condition NAME (repeatable) or --all")
    cfg = RunConfig(seconds=args.seconds, warmup=args.warmup, link_index=args.link,
                    with_ok_remote=not args.no_second_remote, top_kbps=args.top_kbps,
                    echo_server=args.echo_server, page_query=args.page_query.lstrip("?&"),
                    switch_in=args.switch_in, log_level="INFO" if args.echo_server else "WARNING")
    results = []
    for n in names:
        # the previous condition's browsers and server must not load this one's start (a lead
        # encoder stalled by a busy machine looks like a freeze on every remote)
        idle = None if args.no_idle_wait else wait_for_idle()
        load = os.getloadavg()
        r = asyncio.run(run_condition(n, cfg))
        r["loadavg_at_start"] = [round(x, 2) for x in load]
        r["cpu_idle_at_start"] = None if idle is None else round(idle, 3)
        r["switch_in"] = bool(cfg.switch_in and CONDITIONS[n].from_join)
        r["page_query"] = cfg.page_query
        results.append(r)
        print(table([r]).split("\n\n")[0].splitlines()[-1], flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
