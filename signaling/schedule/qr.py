"""QR codes of join links for the printable sheet (classroom PCs scan or type the link).

Drawn by ``segno`` (a maintained pure-Python QR encoder) as an SVG data URI that the bureau
page shows in an ``<img>`` (no markup from the server is put into the page).
"""

from __future__ import annotations

import segno


def qr_data_uri(text: str) -> str:
    """An SVG ``data:`` URI of a QR code (error correction M, 4 px modules, quiet zone 4)."""
    return str(segno.make(text, error="m", micro=False).svg_data_uri(scale=4, border=4))
