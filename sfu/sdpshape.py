"""Bounds on the shape of SDP a classroom sends, checked before anything parses it.

aiortc's SDP parser has quadratic corners, and everything it builds stays for the garbage
collector to walk. Measured on the development machine (2026-12-02): a 32 KB offer (under the
protocol's 64 KiB message limit) with 700 ``a=rtpmap`` and 700 ``a=rtcp-fb:*`` lines took 3.2 s
to parse — every lesson on the node stalled for that long; 1500 ``a=ssrc`` lines took 110 ms, 1000
``a=candidate`` lines 450 ms. A publish parses the offer four times (session, mids check,
simulcast, aiortc).

:func:`check_sdp_shape` counts lines with plain string operations (linear, well under a
millisecond for 64 KiB) and refuses SDP beyond :class:`SdpShape`'s bounds, with
``sdp_invalid`` and a message that names the bound. A browser's offer is far below every one of
them (Chromium: 3 m-sections, ~25 ``a=rtpmap`` and ~60 ``a=rtcp-fb`` per video section).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class SdpShapeError(ValueError):
    pass


@dataclass(frozen=True)
class SdpShape:
    max_lines: int = 2000
    max_media_sections: int = 16
    max_rtpmap_per_section: int = 64
    max_ssrc_lines_per_section: int = 64
    # a=rtcp-fb:* applies to every codec of its section: what counts is codecs x such lines
    max_feedback_per_section: int = 1024
    max_candidates: int = 32  # in the whole description


DEFAULT_SHAPE = SdpShape()


def answer_shape(offer_sdp: str | None, shape: SdpShape = DEFAULT_SHAPE) -> SdpShape:
    """The bounds for a classroom's answer to the server's own offer ``offer_sdp``: as many
    m-sections as that offer has (a lead, an observer or the recorder receives every classroom's
    tracks: dozens of m-lines in a big lesson), and room for their lines and candidates. The
    per-section bounds stay; the session checks separately that the answer's mids are the offer's."""
    sections = offer_sdp.count("\nm=") + offer_sdp.startswith("m=") if offer_sdp else 0
    return replace(
        shape,
        max_media_sections=max(shape.max_media_sections, sections),
        max_lines=shape.max_lines + 100 * sections,
        max_candidates=shape.max_candidates + 8 * sections,
    )


def check_sdp_shape(sdp: str, shape: SdpShape = DEFAULT_SHAPE) -> None:
    """Raise :class:`SdpShapeError` if ``sdp`` is beyond ``shape``'s bounds."""
    lines = sdp.splitlines()
    if len(lines) > shape.max_lines:
        raise SdpShapeError(f"the SDP has {len(lines)} lines; at most {shape.max_lines} are accepted")
    sections = 0
    candidates = 0
    rtpmap = ssrc = fb_lines = fb_star = 0

    def close_section() -> None:
        feedback = fb_lines + fb_star * rtpmap
        if rtpmap > shape.max_rtpmap_per_section:
            raise SdpShapeError(f"an m-section has {rtpmap} a=rtpmap lines; at most "
                                f"{shape.max_rtpmap_per_section} are accepted")
        if ssrc > shape.max_ssrc_lines_per_section:
            raise SdpShapeError(f"an m-section has {ssrc} a=ssrc lines; at most "
                                f"{shape.max_ssrc_lines_per_section} are accepted")
        if feedback > shape.max_feedback_per_section:
            raise SdpShapeError(f"an m-section's a=rtcp-fb lines give {feedback} feedback entries; at most "
                                f"{shape.max_feedback_per_section} are accepted")

    for line in lines:
        if line.startswith("m="):
            close_section()
            sections += 1
            if sections > shape.max_media_sections:
                raise SdpShapeError(f"the SDP has more than {shape.max_media_sections} m-sections")
            rtpmap = ssrc = fb_lines = fb_star = 0
        elif line.startswith("a="):
            if line.startswith("a=rtpmap:"):
                rtpmap += 1
            elif line.startswith("a=ssrc:"):
                ssrc += 1
            elif line.startswith("a=rtcp-fb:"):
                if line.startswith("a=rtcp-fb:*"):
                    fb_star += 1
                else:
                    fb_lines += 1
            elif line.startswith("a=candidate:"):
                candidates += 1
                if candidates > shape.max_candidates:
                    raise SdpShapeError(f"the SDP has more than {shape.max_candidates} a=candidate lines")
    close_section()
