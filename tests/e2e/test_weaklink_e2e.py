"""One impaired remote classroom in real Chromium, through the weak-link harness.

The lead page (root namespace, fed the generated high-detail camera of ``loadtest.y4m``) publishes
to ``classroom serve --host 10.88.X.1``; one remote classroom's Chromium runs inside a network
namespace behind ``loadtest.netem``'s link with 5 % random loss each way (nftables at the far end
of each direction), and the run is measured with ``loadtest.weaklink``'s own code (a short run:
10 s warm-up, 20 s measured). Asserted: what today's server already meets on such a link (NACK
repairs the video; see docs/performance.md, "Weak links"), that the loss really happened where
the harness put it, that the server transcoded nothing, and that the link leaves nothing behind.
"""

from __future__ import annotations

import subprocess

import pytest

from loadtest.netem import free_index
from loadtest.weaklink import RunConfig, run_condition

pytestmark = pytest.mark.e2e


async def test_five_percent_loss_is_repaired_and_the_link_is_cleaned_up() -> None:
    index = free_index(start=90)
    cfg = RunConfig(seconds=20, warmup=10, link_index=index, with_ok_remote=False,
                    log=lambda line: print(line))
    r = await run_condition("loss5", cfg)
    print({k: r[k] for k in ("weak_video", "weak_audio", "lead_layers", "lead_keyframes",
                             "server", "link_drops")})
    w, a = r["weak_video"], r["weak_audio"]
    # the impairment happened, at the far end of each direction
    assert r["link_drops"]["down_loss"] > 0 and r["link_drops"]["up_loss"] > 0
    # (the page asked for repairs: the loss reached it; its packetsLost counts only what was never
    # repaired, which is 0–3 packets a minute since subscribers know their round trip (rrtr))
    assert w["nacks"] > 0, w
    # and the classroom still watches and hears the lesson
    assert w["fps"] is not None and w["fps"] >= 5, w
    assert w["freeze_share"] is not None and w["freeze_share"] <= 0.25, w
    assert a["concealment"] is not None and a["concealment"] <= 0.10, a
    assert r["lead_layers"] and r["lead_layers"][0]["kbps"] > 300, r["lead_layers"]
    assert r["lead_keyframes"]["requests_per_2s"] is not None
    # the page saw its repairs and asked Chromium for a little more playout delay (smoothing.js)
    assert max((row.get("w_playout_ms") or 0) for row in r["timeline"]) >= 120, r["timeline"]
    assert r["lead_keyframes"]["requests_per_2s"] <= 1.0, r["lead_keyframes"]
    assert r["server"]["forwarded_packets"] > 0
    assert r["server"]["transcodes"] == 0
    # the weak classroom publishes over its lossy uplink too: the server NACKs what is lost and
    # takes the browser's RTX retransmissions (RFC 4588) as the packets they repair
    assert r["server"]["nacks_sent"] > 0 and r["server"]["rtx_packets_in"] > 0, r["server"]
    assert r["server"]["upstream_repaired"] > 0, r["server"]
    # nothing left behind
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f"wl-{index}-" not in netns and f"wl{index}h" not in links
