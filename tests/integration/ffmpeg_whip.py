"""A WHIP publisher on FFmpeg 8's own ``whip`` muxer (libavformat/whip.c, the FFmpeg bundled with
PyAV's wheel): a third WebRTC implementation we did not write, for the interop test
(tests/integration/test_whip_ffmpeg.py).

PyAV only encodes here: a synthetic picture (libx264, baseline, no B-frames) and a tone (libopus,
48 kHz stereo) go into ``av.open(URL, "w", format="whip")``; the HTTP exchange, ICE, DTLS (GnuTLS
in PyAV's build), SRTP and RTP are FFmpeg's. FFmpeg's log (verbose) is printed with a
``time.monotonic()`` stamp per line (the system-wide clock, comparable with the test's), so the
test sees when the muxer got its ``201`` answer and how far ICE and DTLS went.

Usage (the join token is read from the first line of stdin, never from the command line)::

    python tests/integration/ffmpeg_whip.py URL [--seconds N] [--dtls-active] [--cert PEM --key PEM]

``--dtls-active`` sets the muxer's ``whip_flags=dtls_active`` (FFmpeg offers ``a=setup:active``,
the DTLS client; by default it offers ``passive``); ``--cert``/``--key`` its ``cert_file``/
``key_file`` (without them FFmpeg makes a P-224 certificate, which aiortc's OpenSSL refuses:
docs/whip-whep.md).

It prints one JSON object per line: ``{"event": "log", "level": ..., "msg": ...}`` for FFmpeg's
log lines, ``{"event": "connected"}`` when the muxer's header is written (ICE and DTLS done),
``{"event": "sent", "video": N, "audio": M}`` at the end, ``{"event": "error", "message": ...}``.
Exit status 0 when it published for the given seconds, else 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from fractions import Fraction
from typing import Any

import av
import av.logging
import numpy as np

WIDTH, HEIGHT, FPS = 320, 240, 15
RATE, SAMPLES = 48000, 960  # 20 ms Opus frames


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


class FFmpegLog(logging.Handler):
    """PyAV forwards FFmpeg's av_log to Python's ``logging`` (logger names ``libav.*``)."""

    def emit(self, record: logging.LogRecord) -> None:
        emit("log", level=record.levelname, name=record.name, msg=record.getMessage().strip())


def picture(n: int) -> av.VideoFrame:
    img = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[:, :, 0] = (n * 8) % 256
    x = (n * 4) % WIDTH
    img[:, x:x + 16, 1] = 255
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    return frame.reformat(format="yuv420p")


def tone(n: int) -> av.AudioFrame:
    t = (np.arange(SAMPLES) + n * SAMPLES) / RATE
    wave = (0.3 * np.sin(2 * math.pi * 440 * t) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = RATE
    return frame


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--dtls-active", action="store_true", help="whip_flags=dtls_active")
    parser.add_argument("--cert", help="a PEM certificate file for DTLS (and --key)")
    parser.add_argument("--key", help="its PEM private key file")
    args = parser.parse_args()
    token = sys.stdin.readline().strip()

    handler = FFmpegLog()
    logging.getLogger("libav").addHandler(handler)
    logging.getLogger("libav").setLevel(logging.DEBUG)
    av.logging.set_level(av.logging.VERBOSE)

    options = {"authorization": token, "handshake_timeout": "8000"}
    if args.dtls_active:
        options["whip_flags"] = "dtls_active"
    if args.cert and args.key:
        options["cert_file"], options["key_file"] = args.cert, args.key
    try:
        out = av.open(args.url, "w", format="whip", options=options)
    except av.FFmpegError as exc:
        emit("error", message=f"open: {exc}")
        return 1
    video = out.add_stream("libx264", rate=FPS)
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.options = {"profile": "baseline", "bf": "0", "g": str(FPS), "tune": "zerolatency",
                     "preset": "ultrafast"}
    audio = out.add_stream("libopus", rate=RATE)
    audio.layout = "stereo"
    sent = {"video": 0, "audio": 0}
    try:
        out.start_encoding()  # writes the header: the WHIP POST, ICE and DTLS happen in here
        emit("connected")
        start = time.monotonic()
        vn = an = 0
        while time.monotonic() - start < args.seconds:
            due = time.monotonic() - start
            while vn / FPS <= due:
                frame = picture(vn)
                frame.pts, frame.time_base = vn, Fraction(1, FPS)
                for packet in video.encode(frame):
                    out.mux(packet)
                    sent["video"] += 1
                vn += 1
            while an * SAMPLES / RATE <= due:
                aframe = tone(an)
                aframe.pts, aframe.time_base = an * SAMPLES, Fraction(1, RATE)
                for packet in audio.encode(aframe):
                    out.mux(packet)
                    sent["audio"] += 1
                an += 1
            time.sleep(0.005)
        emit("sent", **sent)
        out.close()  # the muxer's trailer DELETEs the resource
        emit("done")
        return 0
    except (av.FFmpegError, OSError) as exc:
        emit("error", message=str(exc), **sent)
        return 1


if __name__ == "__main__":
    sys.exit(main())
