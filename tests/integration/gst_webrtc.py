"""A WHIP publisher and a WHEP player on GStreamer's own WebRTC stack (``webrtcbin`` from
Debian 12's gstreamer1.0-plugins-bad, libnice from gstreamer1.0-nice): a second WebRTC
implementation we did not write, for the interop tests (tests/integration/test_whip_gstreamer.py).

Debian 12's GStreamer 1.22 has no ``whipsink``/``whipclientsink``/``whepsrc`` (those are in
gst-plugins-rs, which Debian 12 does not package), so this program does the RFC 9725 HTTP
exchange itself around ``webrtcbin``: it makes the offer, ``POST``s it, applies the answer,
optionally trickles its candidates with ``PATCH`` (RFC 8840 fragments) and ``DELETE``s the
resource at the end. Everything else (ICE, DTLS, SRTP, RTP/RTCP, VP8 and Opus) is GStreamer's.

It runs under Debian's ``/usr/bin/python3`` (python3-gst-1.0 and the GObject introspection
data are built for it), not in the project's virtualenv, so it imports nothing of the project.

Usage (the join token is read from the first line of stdin, never from the command line)::

    /usr/bin/python3 tests/integration/gst_webrtc.py whip URL [--seconds N] [--trickle]
    /usr/bin/python3 tests/integration/gst_webrtc.py whep URL [--seconds N]

It prints one JSON object per line: ``{"event": "created", "status": 201, "location": ...}``,
``{"event": "ice", "state": ...}``, ``{"event": "frames", "video": N, "audio": M, "audio_ms": D,
"first": {"video": s, "audio": s}, "size": [w, h]}`` (a player: decoded video frames, audio
buffers and milliseconds of decoded sound, seconds from the ``201`` to the first of each; every
0.5 s), ``{"event": "error", ...}`` and
``{"event": "done", ...}``. Exit status 0 when the exchange worked (for a player: when it
decoded video and audio), else 1.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

VIDEO_CAPS = "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic(), 3), **fields}), flush=True)


def loopback_only(webrtc: Gst.Element) -> None:
    """Make libnice gather on 127.0.0.1 only (it leaves loopback out when the machine has another
    interface), so no packet of the test leaves the machine. ``GstWebRTCNice::add-local-ip-address``
    is called through GObject's C API: reading webrtcbin's ``ice-agent`` property through PyGObject
    takes over the agent's floating reference (a crash when the wrapper goes, an offer of NULL
    while it lives)."""
    gobject = ctypes.CDLL("libgobject-2.0.so.0")
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    element = ctypes.c_void_p(get_pointer(webrtc.__gpointer__, None))
    ice = ctypes.c_void_p()
    gobject.g_object_get(element, b"ice-agent", ctypes.byref(ice), None)
    added = ctypes.c_int(0)
    gobject.g_signal_emit_by_name(ice, b"add-local-ip-address", b"127.0.0.1", ctypes.byref(added))
    gobject.g_object_unref(ice)
    if not added.value:
        raise RuntimeError("libnice refused 127.0.0.1 as its local address")


def sections(sdp: str) -> list[dict[str, str]]:
    """Per m-line: its ``m=`` line and its ``ice-ufrag``, ``ice-pwd`` and ``mid`` values (read
    from the text: a ``GstSDPMedia`` taken from a description does not outlive it in Python)."""
    out: list[dict[str, str]] = []
    for line in sdp.splitlines():
        if line.startswith("m="):
            out.append({"m": line.strip()})
        elif out and line.startswith("a=") and ":" in line:
            name, _, value = line[2:].partition(":")
            if name in ("ice-ufrag", "ice-pwd", "mid"):
                out[-1][name] = value.strip()
    return out


class HttpResult:
    def __init__(self, status: int, headers: dict[str, str], body: str) -> None:
        self.status, self.headers, self.body = status, headers, body


def http(method: str, url: str, token: str, body: str | None = None, ctype: str | None = None,
         extra: dict[str, str] | None = None) -> HttpResult:
    headers = {"Authorization": f"Bearer {token}", **(extra or {})}
    if ctype:
        headers["Content-Type"] = ctype
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return HttpResult(resp.status, dict(resp.headers.items()), resp.read().decode())
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, dict(exc.headers.items()), exc.read().decode())


class Client:
    """One webrtcbin and its HTTP resource. GStreamer's callbacks run on its streaming threads;
    the HTTP exchange runs on the GLib main loop (idle callbacks), never on a streaming thread."""

    def __init__(self, mode: str, url: str, token: str, seconds: float, trickle: bool) -> None:
        self.mode, self.url, self.token, self.seconds, self.trickle = mode, url, token, seconds, trickle
        self.loop = GLib.MainLoop()
        self.location = ""
        self.etag = ""
        self.ok = False
        self.frames = {"video": 0, "audio": 0}
        self.first: dict[str, float] = {}
        self.size: list[int] = []
        self.audio_ns = 0  # decoded audio, in nanoseconds of sound
        self.created_at = 0.0
        self.pending: list[tuple[int, str]] = []  # candidates gathered before the resource exists
        self.lock = threading.Lock()
        self.pipe = Gst.Pipeline.new("client")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.webrtc.set_property("latency", 100)
        loopback_only(self.webrtc)
        self.pipe.add(self.webrtc)
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("notify::ice-connection-state", self.on_ice_state)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("pad-added", self.on_pad_added)
        self.offer_sent = False
        self.posted = False
        self.offer_sdp = ""
        if mode == "whip":
            self._add_sources()
        else:
            for caps in (VIDEO_CAPS, AUDIO_CAPS):
                self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                                 Gst.Caps.from_string(caps))
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_bus_error)

    # -- pipeline ----------------------------------------------------------------------------

    def _add_sources(self) -> None:
        video = Gst.parse_bin_from_description(
            "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 "
            "! videoconvert ! vp8enc deadline=1 keyframe-max-dist=15 target-bitrate=300000 "
            f"! rtpvp8pay pt=96 mtu=1200 ! capsfilter caps=\"{VIDEO_CAPS}\"", True)
        audio = Gst.parse_bin_from_description(
            "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample "
            f"! opusenc ! rtpopuspay pt=111 mtu=1200 ! capsfilter caps=\"{AUDIO_CAPS}\"", True)
        for index, part in enumerate((video, audio)):
            self.pipe.add(part)
            sink = self.webrtc.request_pad_simple(f"sink_{index}")
            part.get_static_pad("src").link(sink)
        for index in range(2):
            trans = self.webrtc.emit("get-transceiver", index)
            trans.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)

    def on_pad_added(self, _element: Gst.Element, pad: Gst.Pad) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        kind = caps.get_structure(0).get_string("media") or "video"
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", lambda _d, p: self._decoded(p, kind))
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def _decoded(self, pad: Gst.Pad, kind: str) -> None:
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count, kind)

    def _count(self, pad: Gst.Pad, info: Gst.PadProbeInfo, kind: str) -> Gst.PadProbeReturn:
        buf = info.get_buffer()
        with self.lock:
            self.frames[kind] += 1
            if kind == "audio" and buf is not None and buf.duration != Gst.CLOCK_TIME_NONE:
                self.audio_ns += buf.duration
            if kind not in self.first:
                self.first[kind] = time.monotonic()
                if kind == "video":
                    s = pad.get_current_caps().get_structure(0)
                    self.size = [s.get_int("width")[1], s.get_int("height")[1]]
        return Gst.PadProbeReturn.OK

    # -- signaling ---------------------------------------------------------------------------

    def on_negotiation_needed(self, _element: Gst.Element) -> None:
        if self.offer_sent:
            return
        self.offer_sent = True
        self._create_offer()

    def _create_offer(self) -> bool:
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)
        return False

    def on_offer_created(self, promise: Gst.Promise, _data: Any) -> None:
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:  # webrtcbin 1.22 now and then replies with no offer: ask again
            emit("offer_retry", reply=reply.to_string() if reply is not None else "")
            GLib.timeout_add(200, self._create_offer)
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new_with_change_func(self.on_local_set, None))

    def on_local_set(self, _promise: Gst.Promise, _data: Any) -> None:
        if self.trickle:
            GLib.idle_add(self.post_offer)  # at once: the candidates follow in PATCH requests

    def on_gathering(self, _element: Gst.Element, _pspec: Any) -> None:
        GLib.idle_add(self._gathering)  # (a notify comes on libnice's thread: act on the main loop)

    def _gathering(self) -> bool:
        state = self.webrtc.get_property("ice-gathering-state")
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE and not self.trickle and not self.posted:
            self.post_offer()  # the local description now holds every candidate
        return False

    def on_ice_candidate(self, _element: Gst.Element, mline: int, candidate: str) -> None:
        if self.trickle:
            GLib.idle_add(self.patch_candidate, mline, candidate)

    def on_ice_state(self, _element: Gst.Element, _pspec: Any) -> None:
        GLib.idle_add(self._ice_state)

    def _ice_state(self) -> bool:
        state = self.webrtc.get_property("ice-connection-state")
        emit("ice", state=state.value_nick)
        return False

    def post_offer(self) -> bool:
        self.posted = True
        desc = self.webrtc.get_property("local-description")
        sdp = self.offer_sdp = desc.sdp.as_text()
        res = http("POST", self.url, self.token, sdp, "application/sdp")
        self.created_at = time.monotonic()
        emit("created", status=res.status, location=res.headers.get("Location", ""),
             offer=[line.strip() for line in sdp.splitlines() if line.startswith(("a=setup:", "a=candidate:"))],
             body=res.body if res.status != 201 else "")
        if res.status != 201:
            self.finish(False)
            return False
        base = urllib.parse.urlsplit(self.url)
        self.location = urllib.parse.urlunsplit((base.scheme, base.netloc, res.headers["Location"], "", ""))
        self.etag = res.headers.get("ETag", "")
        _, parsed = GstSdp.SDPMessage.new_from_text(res.body)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, parsed)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        for mline, candidate in self.pending:
            self.patch_candidate(mline, candidate)
        self.pending.clear()
        GLib.timeout_add(500, self.report)
        GLib.timeout_add(int(self.seconds * 1000), self.stop)
        return False

    def patch_candidate(self, mline: int, candidate: str) -> bool:
        if not self.location:
            self.pending.append((mline, candidate))
            return False
        section = sections(self.offer_sdp)[mline]
        frag = (f"a=ice-ufrag:{section['ice-ufrag']}\r\na=ice-pwd:{section['ice-pwd']}\r\n"
                f"{section['m']}\r\na=mid:{section['mid']}\r\n")
        frag += (candidate if candidate.startswith("a=") else f"a={candidate}") + "\r\n"
        res = http("PATCH", self.location, self.token, frag, "application/trickle-ice-sdpfrag",
                   {"If-Match": self.etag})
        emit("patched", status=res.status, body=res.body)
        return False

    def report(self) -> bool:
        with self.lock:
            first = {k: round(v - self.created_at, 3) for k, v in self.first.items()}
            emit("frames", video=self.frames["video"], audio=self.frames["audio"],
                 audio_ms=self.audio_ns // 1_000_000, first=first, size=self.size)
        return True

    def stop(self) -> bool:
        res = http("DELETE", self.location, self.token)
        emit("deleted", status=res.status)
        with self.lock:
            decoded = self.frames["video"] > 0 and self.frames["audio"] > 0
        self.finish(res.status == 200 and (self.mode == "whip" or decoded))
        return False

    def on_bus_error(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        err, debug = message.parse_error()
        emit("error", message=str(err), debug=str(debug)[:400])
        self.finish(False)

    def finish(self, ok: bool) -> None:
        self.ok = ok
        self.report()
        emit("done", ok=ok)
        self.loop.quit()

    def run(self) -> bool:
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int((self.seconds + 20) * 1000), lambda: self.finish(False) or False)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return self.ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["whip", "whep"])
    ap.add_argument("url")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long to stay (then DELETE)")
    ap.add_argument("--trickle", action="store_true", help="POST at once, PATCH each candidate")
    args = ap.parse_args()
    token = sys.stdin.readline().strip()
    if not token:
        emit("error", message="no join token on stdin")
        return 1
    Gst.init(None)
    return 0 if Client(args.mode, args.url, token, args.seconds, args.trickle).run() else 1


if __name__ == "__main__":
    sys.exit(main())
