"""The layer selector on synthetic budgets with a fake clock."""

from __future__ import annotations

from sfu.bwe.selector import (
    PAUSED,
    PRIORITY_AUDIO,
    PRIORITY_COURSEWARE,
    PRIORITY_OTHER,
    PRIORITY_TEACHER,
    LayerSelector,
    TrackLayers,
    allocate,
)

AUDIO = TrackLayers("mic", PRIORITY_AUDIO, (64_000.0,), audio=True)
CAM = TrackLayers("cam", PRIORITY_TEACHER, (150_000.0, 500_000.0, 2_000_000.0))
SCREEN = TrackLayers("screen", PRIORITY_COURSEWARE, (800_000.0,))
OTHER = TrackLayers("other", PRIORITY_OTHER, (150_000.0, 500_000.0))


def test_allocation_in_priority_order_and_audio_always() -> None:
    assert allocate(10_000_000, [AUDIO, CAM, SCREEN]) == {"mic": 0, "cam": 2, "screen": 0}
    # every video track's lowest layer before anybody's higher layer
    assert allocate(1_100_000, [AUDIO, CAM, SCREEN]) == {"mic": 0, "cam": 0, "screen": 0}
    assert allocate(600_000, [AUDIO, CAM, SCREEN]) == {"mic": 0, "cam": 1, "screen": PAUSED}
    assert allocate(30_000, [AUDIO, CAM, OTHER]) == {"mic": 0, "cam": PAUSED, "other": PAUSED}
    # the teacher camera wins over another classroom
    assert allocate(300_000, [AUDIO, OTHER, CAM]) == {"mic": 0, "cam": 0, "other": PAUSED}


def test_first_choice_is_immediate_then_down_at_once_and_up_after_the_hold() -> None:
    sel = LayerSelector()
    assert sel.select(5_000_000, [AUDIO, CAM], 0.0)["cam"] == 2
    assert sel.select(1_200_000, [AUDIO, CAM], 1.0)["cam"] == 1  # cap at 60 %: down at once
    assert sel.select(5_000_000, [AUDIO, CAM], 2.0)["cam"] == 1  # up: hold first
    assert sel.select(5_000_000, [AUDIO, CAM], 3.5)["cam"] == 1
    # the upgrade at 1 s undone at once counted as a failed probe: wait for the cooldown
    assert sel.select(5_000_000, [AUDIO, CAM], 9.5)["cam"] == 2


def test_a_layer_is_kept_inside_the_keep_margin() -> None:
    sel = LayerSelector()
    sel.select(3_000_000, [AUDIO, CAM], 0.0)
    # 2.0 M layer + audio; 0.85 x 2.0 M + 64 k = 1.764 M still keeps it
    assert sel.select(1_800_000, [AUDIO, CAM], 1.0)["cam"] == 2
    assert sel.select(1_700_000, [AUDIO, CAM], 2.0)["cam"] == 1


def test_swinging_capacity_does_not_flap() -> None:
    """The cap swings ±20 % around the top layer's boundary every 2 s for 60 s."""
    sel = LayerSelector()
    boundary = (2_000_000 + 64_000) * 1.0
    t = 0.0
    layers = []
    while t < 60.0:
        budget = boundary * (1.2 if int(t / 2) % 2 else 0.8)
        layers.append(sel.select(budget, [AUDIO, CAM], t)["cam"])
        t += 0.2
    switches = sum(1 for a, b in zip(layers, layers[1:], strict=False) if a != b)
    assert switches <= 6  # at most one per 10 s


def test_pause_and_resume() -> None:
    sel = LayerSelector()
    assert sel.select(100_000, [AUDIO, CAM], 0.0)["cam"] == PAUSED
    assert sel.select(400_000, [AUDIO, CAM], 1.0)["cam"] == PAUSED
    assert sel.select(400_000, [AUDIO, CAM], 3.1)["cam"] == 0
    assert sel.layer("cam") == 0 and sel.switches == 1
    sel.select(400_000, [AUDIO], 4.0)
    assert sel.layer("cam") is None


def test_what_the_link_vouches_for_is_given_at_once() -> None:
    """A single-layer camera a little above a fresh estimate: with no congestion seen the link
    vouches for every track's lowest layer (``floor``), and the first choice and a resume take
    it at once, with no up margin and no hold."""
    cam = TrackLayers("cam", PRIORITY_TEACHER, (1_600_000.0,))
    lowest = 64_000.0 + 1_600_000.0
    sel = LayerSelector()
    assert sel.select(lowest, [AUDIO, cam], 0.0)["cam"] == PAUSED  # not vouched for: up margin
    sel = LayerSelector()
    assert sel.select(lowest, [AUDIO, cam], 0.0, floor=lowest)["cam"] == 0
    assert sel.select(100_000, [AUDIO, cam], 1.0)["cam"] == PAUSED  # congestion: down at once
    assert sel.select(lowest, [AUDIO, cam], 1.2, floor=lowest)["cam"] == 0  # vouched again: at once
