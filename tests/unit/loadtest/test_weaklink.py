"""The weak-link benchmark's pure parts: schedules, figures from synthetic getStats samples,
/metrics parsing, acceptance checks."""

from __future__ import annotations

from typing import Any

import pytest

from loadtest.weaklink import (
    ALL,
    CONDITIONS,
    Check,
    audio_figures,
    checks,
    cpu_idle_share,
    first_lower_layer,
    keyframe_requests,
    layer_figures,
    parse_metrics,
    rate_series,
    schedule,
    server_figures,
    split_schedule,
    time_until_top,
    time_until_under,
    video_figures,
)


def v(frames: int, freeze_s: float = 0.0, freezes: int = 0, w: int = 1280, h: int = 720,
      bytes_: int = 0) -> dict[str, Any]:
    return {"frames": frames, "freeze_s": freeze_s, "freezes": freezes, "w": w, "h": h,
            "bytes": bytes_, "lost": 0, "nack": 0, "pli": 0}


def test_every_condition_has_a_schedule() -> None:
    for name in CONDITIONS:
        schedule(name, 2000, 60)
    assert set(ALL) <= set(CONDITIONS)
    with pytest.raises(ValueError):
        schedule("nope", 2000, 60)


def test_schedules() -> None:
    assert schedule("cap60", 2000, 60)[0].settings == {"rate": pytest.approx(1.2)}
    step = schedule("step", 2000, 60)
    assert [(c.at_s, c.settings["rate"]) for c in step] == [(0, 8.0), (20, pytest.approx(1.2)),
                                                           (40, 8.0)]
    swing = [float(c.settings["rate"] or 0) for c in schedule("swing", 2000, 60)]
    assert len(swing) == 60 and min(swing) == pytest.approx(1.6) and max(swing) == \
        pytest.approx(2.4)
    assert schedule("rtt100_loss3_cap3", 2000, 60)[0].settings["delay"] == 45
    assert schedule("upstream", 2000, 60)[0].settings == {"up_rate": 1.5, "up_loss": 3}
    assert CONDITIONS["rtt100_loss3_cap3"].relay and CONDITIONS["upstream"].upstream


def test_from_join_conditions_split_their_schedule() -> None:
    from_join = [c.name for c in CONDITIONS.values() if c.from_join]
    assert from_join == ["rtt100_loss3_cap3"]
    for name in from_join:
        # set before the measured top layer is known: must not depend on it
        assert schedule(name, 0, 60) == schedule(name, 2000, 60)
        before, during = split_schedule(schedule(name, 2000, 60), True)
        assert [c.at_s for c in before] == [0] and during == []
    step = schedule("step", 2000, 60)
    assert split_schedule(step, False) == ([], step)
    before, during = split_schedule(step, True)
    assert [c.at_s for c in before] == [0] and [c.at_s for c in during] == [20, 40]


def test_cpu_idle_share() -> None:
    # user nice system idle iowait ...
    assert cpu_idle_share([100, 0, 100, 800, 0], [110, 0, 110, 880, 0]) == pytest.approx(0.8)
    assert cpu_idle_share([0, 0, 0, 0, 0], [0, 0, 50, 40, 10]) == pytest.approx(0.5)
    assert cpu_idle_share([5, 5, 5, 5], [5, 5, 5, 5]) == 1.0


def test_video_figures_steady() -> None:
    series = [(float(t), v(20 * t, bytes_=250_000 * t)) for t in range(11)]
    f = video_figures(series)
    assert f.fps == pytest.approx(20)
    assert f.kbps == pytest.approx(2000)
    assert f.freeze_share == 0
    assert f.layers == {"1280x720": 10.0}
    assert f.spatial_switches == 0


def test_video_figures_counts_an_open_stall() -> None:
    # frames stop after t=6: Chromium has not counted the freeze yet (no next frame)
    series = [(float(t), v(20 * min(t, 6))) for t in range(11)]
    f = video_figures(series)
    assert f.open_stall_s == pytest.approx(4)
    assert f.freeze_share == pytest.approx(0.4)
    assert f.max_freeze_s == pytest.approx(4)


def test_video_figures_getstats_freezes_and_switches() -> None:
    series = [
        (0.0, v(0)), (1.0, v(20)), (2.0, v(40, 0.5, 1, 640, 360)), (3.0, v(60, 0.5, 1, 640, 360)),
        (4.0, v(80, 0.5, 1)),
    ]
    f = video_figures(series)
    assert f.freeze_share == pytest.approx(0.5 / 4)
    assert f.max_freeze_s == pytest.approx(0.5)
    assert f.spatial_switches == 2
    assert f.switches_per_10s == pytest.approx(5)
    assert f.layers == {"1280x720": 2.0, "640x360": 2.0}


def test_video_figures_without_samples() -> None:
    assert video_figures([(0.0, None), (1.0, None)]).freeze_share is None


def test_audio_concealment() -> None:
    a = {"samples": 0, "concealed": 0, "bytes": 0, "lost": 0}
    b = {"samples": 480_000, "concealed": 9_600, "bytes": 40_000, "lost": 10}
    f = audio_figures([(0.0, a), (10.0, b)])
    assert f.concealment == pytest.approx(0.02)
    assert f.kbps == pytest.approx(32)


def test_rate_series_and_time_under_cap() -> None:
    # 2000 kbit/s until t=20, then 1000 kbit/s from t=20.6
    pts = []
    total = 0
    for i in range(0, 300):
        t = i * 0.1
        pts.append((t, total))
        total += int((2000 if t < 20.6 else 1000) * 1000 / 8 * 0.1)
    rates = rate_series(pts, 0.5)
    assert rates[10][1] == pytest.approx(2000, rel=0.02)
    under = time_until_under(rates, 20.0, 29.0, 1200)
    assert under is not None and 0.6 < under <= 1.2
    assert time_until_under(rates, 0.0, 19.0, 1200) is None


def test_time_until_top_and_first_lower_layer() -> None:
    series = [(float(t), v(15 * t, w=640 if 3 <= t < 8 else 1280, h=360 if 3 <= t < 8 else 720))
              for t in range(12)]
    assert first_lower_layer(series, 0.0, 1280) == 3.0
    assert time_until_top(series, 6.0, 1280) == 2.0


def test_layer_figures_by_rid() -> None:
    def out(rid: str, b: int, fr: int, w: int) -> dict[str, Any]:
        return {"kind": "video", "rid": rid, "ssrc": hash(rid) % 1000, "bytes": b, "frames": fr,
                "w": w, "h": w * 9 // 16, "qlr": "none", "encoder": "libvpx", "pli": 0, "fir": 0,
                "keyframes": 0}

    a = {"t": 0.0, "outbound": [out("f", 0, 0, 1280), out("q", 0, 0, 320)]}
    b = {"t": 10.0, "outbound": [out("f", 2_500_000, 200, 1280), out("q", 150_000, 200, 320)]}
    layers = layer_figures([a, b])
    assert [(x["layer"], x["kbps"], x["fps"], x["size"]) for x in layers] == [
        ("f", 2000.0, 20.0, "1280x720"), ("q", 120.0, 20.0, "320x180")]


def test_keyframe_requests() -> None:
    def s(t: float, pli: int, fir: int, kf: int) -> dict[str, Any]:
        return {"t": t, "outbound": [{"kind": "video", "pli": pli, "fir": fir, "keyframes": kf},
                                     {"kind": "audio"}]}

    k = keyframe_requests([s(0, 1, 0, 1), s(60, 21, 2, 13)])
    assert k["requests"] == 22 and k["requests_per_2s"] == pytest.approx(22 / 30)
    assert k["keyframes_per_2s"] == pytest.approx(0.4)


def test_parse_metrics_and_server_figures() -> None:
    text = ("# HELP classroom_forwarded_packets x\n# TYPE classroom_forwarded_packets counter\n"
            "classroom_forwarded_packets_total 1000.0\nclassroom_retransmitted_packets_total 50.0\n"
            "classroom_sent_packets_total 1050.0\nclassroom_sent_bytes_total 1050000.0\n"
            'classroom_classrooms{role="lead"} 1.0\nclassroom_lessons 1.0\n'
            'classroom_link_forwarded_bytes{lesson="wl",classroom="r-weak"} 200000.0\n'
            'classroom_link_retransmitted_bytes{lesson="wl",classroom="r-weak"} 3000.0\n'
            'classroom_link_forwarded_bytes{lesson="wl",classroom="r-ok"} 900000.0\n')
    m = parse_metrics(text)
    assert m["classroom_forwarded_packets"] == 1000 and m["classroom_lessons"] == 1
    assert "classroom_classrooms" not in m
    assert m["classroom_link_forwarded_bytes:r-ok"] == 900000
    s = server_figures({"classroom_link_forwarded_bytes:r-weak": 100000.0}, m)
    assert s["retransmitted_vs_forwarded"] == pytest.approx(0.05)
    assert s["retransmitted_bytes_est"] == 50_000
    assert s["weak_retransmitted_vs_forwarded"] == pytest.approx(0.03)  # 3000 of the 100000 in the run
    assert "server-wide" in s["scope"]


def test_checks() -> None:
    assert Check("x", 0.5, "<=", 1).passed and not Check("x", None, "<=", 1).passed
    assert Check("fps", 16, ">=", 15).passed
    r: dict[str, Any] = {
        "weak_video": {"freeze_share": 0.004, "fps": 20.0, "max_freeze_s": 0.1,
                       "switches_per_10s": 0.0},
        "weak_audio": {"concealment": 0.03},
        "ok_video": {"freeze_share": 0.0},
        "lead_keyframes": {"requests_per_2s": 0.2},
        "server": {"retransmitted_vs_forwarded": 0.01},
        "first_lower_layer_s": None,
    }
    res = {c.figure: c.passed for c in checks("loss5", r)}
    assert res == {"weak freeze": True, "weak audio concealed": False,
                   "other remote freeze": True, "lead keyframe requests/2s": True}
    assert not {c.figure: c.passed for c in checks("cap60", r)}["lower layer after"]
