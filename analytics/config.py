"""Tunable parameters of the analysis, loadable from a YAML or JSON file (``--config``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from analytics.errors import AnalysisError


@dataclass
class VadConfig:
    aggressiveness: int = 2
    """webrtcvad mode 0..3."""
    frame_ms: int = 30
    """analysis frame (10, 20 or 30 ms; webrtcvad frame sizes)."""
    gate_db: float = 9.0
    """a frame can only be speech if its energy is this far above the track's noise floor."""
    gap_fill_s: float = 0.45
    """speech pauses shorter than this are counted as speech (pauses inside a sentence)."""
    min_speech_s: float = 0.12
    """isolated speech bursts shorter than this are dropped."""


@dataclass
class AttributionConfig:
    max_delay_s: float = 1.5
    """largest delay between a voice and its copy on another track (loudspeaker path)."""
    min_attenuation_db: float = 6.0
    """a copy must be at least this much weaker than the original to be recognised as one."""
    margin_db: float = 8.0
    """a frame is a copy if it is no louder than the predicted copy level plus this margin."""
    min_correlation: float = 0.12
    """envelope correlation needed before two tracks are considered acoustically coupled."""
    copy_share: float = 0.4
    """waveform comparison: a 60-ms block is a copy when at least this share of its power (the
    squared normalised correlation) is another track's sound arriving later."""
    same_room_max_delay_s: float = 0.025
    """largest delay between two microphones of the same classroom (about 8 m of sound path)."""
    level_margin_db: float = 3.0
    """a weakly correlated block between rooms is still a copy if it is no louder than the
    source's level there plus the copy gain plus this margin."""
    delay_search_s: float = 0.05
    """how far each minute's delay between rooms is searched around the lesson-wide estimate."""
    copy_level_margin_db: float = 9.0
    """a block between rooms louder than the source's level there plus the copy gain plus this
    margin is no copy of that source, however well they correlate."""


@dataclass
class StConfig:
    practice_rt_max: float = 0.3
    lecture_rt_min: float = 0.7
    dialogue_ch_min: float = 0.4


@dataclass
class ParticipationConfig:
    turn_gap_s: float = 2.0
    """student speech separated by less than this belongs to the same turn."""
    min_turn_s: float = 1.0
    """a turn must hold at least this much speech."""
    never_heard_s: float = 1.0
    """a classroom with less student talk than this counts as never heard."""


@dataclass
class AnalysisConfig:
    vad: VadConfig = field(default_factory=VadConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    st: StConfig = field(default_factory=StConfig)
    participation: ParticipationConfig = field(default_factory=ParticipationConfig)
    threads: int = 0
    """decoder threads (0 = one per CPU, at most 4)."""
    skip_unvoiced_opus: bool = True
    """leave long runs of Opus packets that the sender flagged as voiceless undecoded."""


def _apply(obj: Any, data: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(obj)}
    for key, value in data.items():
        if key not in known:
            raise AnalysisError(f"config: unknown setting {where}{key}")
        current = getattr(obj, key)
        if hasattr(current, "__dataclass_fields__"):
            if not isinstance(value, dict):
                raise AnalysisError(f"config: {where}{key} must be a mapping")
            _apply(current, value, f"{where}{key}.")
            continue
        if isinstance(current, bool) or not isinstance(value, int | float) or isinstance(value, bool):
            raise AnalysisError(f"config: {where}{key} must be a number, got {value!r}")
        setattr(obj, key, type(current)(value))


def load_config(path: Path | None) -> AnalysisConfig:
    """Defaults, overridden by the file's ``analytics:`` section (or its top level)."""
    config = AnalysisConfig()
    if path is None:
        return config
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        if str(path).endswith(".json"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError both derive from it
        raise AnalysisError(f"config: {path} is not valid: {exc}") from None
    except Exception as exc:  # yaml.YAMLError
        raise AnalysisError(f"config: {path} is not valid YAML: {exc}") from None
    if data is None:
        return config
    if not isinstance(data, dict):
        raise AnalysisError(f"config: {path} must hold a mapping")
    if "analytics" in data:
        data = data["analytics"]
        if not isinstance(data, dict):
            raise AnalysisError("config: analytics must be a mapping")
    _apply(config, data, "")
    if config.vad.frame_ms not in (10, 20, 30):
        raise AnalysisError("config: vad.frame_ms must be 10, 20 or 30")
    if not 0 <= config.vad.aggressiveness <= 3:
        raise AnalysisError("config: vad.aggressiveness must be 0..3")
    return config
