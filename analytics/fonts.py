"""Which font the charts draw Chinese with.

The report's labels are bilingual ("教师 Teacher"). matplotlib's bundled DejaVu Sans has no CJK
glyphs, so a CJK font must be installed: Debian's ``fonts-noto-cjk`` (what tests/apt-packages.txt
and tools/venv.sh install) or ``fonts-wqy-microhei``. Without one the charts still draw every label,
but only its Latin part ("Teacher"), and a warning says which package to install.

Only the chart code imports this module (it imports matplotlib).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Droid Sans Fallback",
)
"""Tried in this order; the first that is installed and has the glyphs of :data:`PROBE` is used."""
LATIN_FAMILY = "DejaVu Sans"
PROBE = "教师学生发言"
INSTALL_HINT = "apt-get install fonts-noto-cjk (or fonts-wqy-microhei)"


@dataclass(frozen=True)
class ChartFont:
    family: str | None
    """the CJK family the charts use; ``None``: none installed (labels keep their Latin part)"""
    path: str | None = None

    @property
    def cjk(self) -> bool:
        return self.family is not None

    def families(self) -> list[str]:
        """matplotlib's ``font.family``: the CJK font first (it has Latin glyphs too), then DejaVu."""
        return [self.family, LATIN_FAMILY] if self.family else [LATIN_FAMILY]


def has_glyphs(path: str, text: str) -> bool:
    """Whether the font file at ``path`` (face 0 of a collection) has a glyph for every character."""
    from matplotlib.ft2font import FT2Font

    try:
        face = FT2Font(path)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(face.get_char_index(ord(c)) != 0 for c in text if not c.isspace())


def find_cjk_font(families: tuple[str, ...] = CJK_FAMILIES) -> ChartFont:
    """The first installed family of ``families`` that can draw Chinese; logs a warning if none."""
    from matplotlib import font_manager

    for family in families:
        try:
            path = str(font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False))
        except ValueError:
            continue
        if has_glyphs(path, PROBE):
            return ChartFont(family, path)
    log.warning(
        "no CJK font found (tried %s): the charts show only the Latin part of their labels; to draw Chinese: %s",
        ", ".join(families),
        INSTALL_HINT,
    )
    return ChartFont(None)


def latin_part(text: str) -> str:
    """The part of a bilingual label a Latin-only font can draw ("教师 Teacher" -> "Teacher")."""
    kept = "".join(c if ord(c) < 0x2E80 else " " for c in text)
    out = " ".join(kept.split())
    # brackets and separators left empty by the removed Chinese part
    for empty in ("()", "( )", "（）", "/ ", " /"):
        out = out.replace(empty, "")
    return " ".join(out.split()) or text.strip()
