// The classroom protocol client shared by the lead, remote and observer pages (docs/protocol.md).
// Plain ES module, no build step. It holds no business rules: the server decides who receives
// what and who may do what; this only negotiates, displays and reconnects.

import { playMedia } from "./autoplay.js";
import { PlayoutSmoother } from "./smoothing.js";

export const PROTOCOL_VERSION = 1;
// reconnect attempts made at most a second apart before the page backs off to 5 s
const RETRY_QUICK = 8;

export function tokenFromUrl() {
  return new URLSearchParams(location.search).get("token") || "";
}

export function claimsOf(token) {
  try {
    const payload = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(escape(atob(payload + "===".slice((payload.length + 3) % 4))));
    return JSON.parse(json);
  } catch (e) {
    return null;
  }
}

// Milestones of this page (ms since navigation start), for the status line and for tests.
export const timeline = (window.classroomTimeline = window.classroomTimeline || []);
export function mark(name) {
  timeline.push([name, Math.round(performance.now())]);
}

export class ClassroomClient extends EventTarget {
  constructor(token, { wsUrl } = {}) {
    super();
    this.token = token;
    this.wsUrl = wsUrl || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.ws = null;
    this.pub = null;
    this.sub = null;
    this.smoother = null;      // PlayoutSmoother of the subscribe connection (smoothing.js)
    this.joined = null;
    this.tracks = [];          // what each subscribe m-line carries: {mid, kind, source, classroom_id, ...}
    this.remoteTracks = new Map(); // mid -> MediaStreamTrack
    this.publishing = null;    // {stream, sources: Map<MediaStreamTrack, source>}
    this.left = false;
    this.retries = 0;
    this.nextId = 1;
    this.pending = new Map();
    this.iceServers = [];
    this.state = "connecting";
    // Back after a drop, what was published is published again; a page may make that wait
    // (a promise): a remote classroom's page lets the lead's picture come first.
    this.republishAfter = null;
  }

  async republish() {
    const joined = this.joined;
    if (this.republishAfter) await this.republishAfter();
    if (this.joined !== joined || this.state !== "joined" || !this.publishing) return; // dropped again meanwhile
    mark("republish");
    await this.publish(this.publishing.stream, this.publishing.sources).catch((e) => this.emit("error", e));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  setState(state) {
    this.state = state;
    this.emit("state", state);
  }

  connect() {
    this.left = false;
    const ws = new WebSocket(this.wsUrl);
    this.ws = ws;
    ws.onopen = () => { mark("ws_open"); this.request({ type: "join", token: this.token }).catch(() => {}); };
    ws.onmessage = (ev) => this.onMessage(JSON.parse(ev.data));
    ws.onclose = () => this.onDisconnected("signaling connection closed");
    ws.onerror = () => {};
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, id, ...msg }));
    return id;
  }

  request(msg) {
    const id = this.send(msg);
    return new Promise((resolve, reject) => {
      if (id === null) return reject(new Error("not connected"));
      this.pending.set(id, { resolve, reject });
    });
  }

  async onMessage(msg) {
    const waiter = msg.re !== undefined ? this.pending.get(msg.re) : null;
    if (waiter) {
      this.pending.delete(msg.re);
      msg.type === "error" ? waiter.reject(Object.assign(new Error(msg.message), { code: msg.code })) : waiter.resolve(msg);
    }
    switch (msg.type) {
      case "joined":
        mark("joined");
        this.joined = msg;
        this.retries = 0;
        this.iceServers = msg.ice_servers || [];
        this.setState("joined");
        this.emit("joined", msg);
        if (this.publishing) this.republish();
        break;
      case "subscribe_offer":
        await this.onSubscribeOffer(msg);
        break;
      case "tracks":
        this.tracks = msg.tracks;
        this.emit("tracks", this.trackList());
        break;
      case "lesson_ended": // the lead ended the lesson: the server closes the socket next; stay away
        this.left = true;
        this.emit("lesson_ended", msg);
        break;
      case "error":
        if (msg.code === "replaced") this.left = true;
        this.emit("error", msg);
        break;
      default:
        this.emit(msg.type, msg);
    }
  }

  newPeer(target) {
    // ?relay=1 forces every packet through the TURN server (what a classroom behind a strict
    // firewall does anyway; useful to check a school's network from the IT room).
    const relay = new URLSearchParams(location.search).get("relay") === "1";
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers, bundlePolicy: "max-bundle",
      iceTransportPolicy: relay ? "relay" : "all",
    });
    pc.onicecandidate = (ev) => {
      this.send({ type: "ice", target, candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.oniceconnectionstatechange = () => mark(`${target}_ice_${pc.iceConnectionState}`);
    pc.onconnectionstatechange = () => {
      mark(`${target}_${pc.connectionState}`);
      this.emit("connection", { target, state: pc.connectionState });
      if (pc.connectionState === "failed") this.onDisconnected(`${target} connection failed`);
    };
    return pc;
  }

  async onSubscribeOffer(msg) {
    mark("subscribe_offer");
    if (!this.sub) {
      this.sub = this.newPeer("subscribe");
      // ?smooth=0: no extra playout delay on a lossy, long link (smoothing.js)
      if (new URLSearchParams(location.search).get("smooth") !== "0") {
        this.smoother = new PlayoutSmoother(this.sub, (ms) => { mark(`playout_target_${ms}`); this.emit("playout", ms); });
      }
      this.sub.ontrack = (ev) => {
        mark(`track_${ev.transceiver.mid}`);
        if (this.smoother && this.smoother.targetMs) {
          try { ev.receiver.jitterBufferTarget = this.smoother.targetMs; } catch (e) { /* unsupported */ }
        }
        this.remoteTracks.set(ev.transceiver.mid, ev.track);
        this.emit("tracks", this.trackList());
      };
    }
    this.tracks = msg.tracks;
    await this.sub.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    const answer = await this.sub.createAnswer();
    await this.sub.setLocalDescription(answer);
    this.send({ type: "subscribe_answer", sdp: this.sub.localDescription.sdp });
    mark("subscribe_answer");
    this.emit("tracks", this.trackList());
  }

  // [{mid, kind, source, classroom_id, participant_id, track}] for m-lines that carry something now
  trackList() {
    return this.tracks
      .filter((t) => t.track_id && this.remoteTracks.has(t.mid))
      .map((t) => ({ ...t, track: this.remoteTracks.get(t.mid) }));
  }

  // sources: Map<MediaStreamTrack, "teacher"|"screen"|"students">. Cameras are sent as simulcast
  // (three layers, lowest first) so the server can give a weak link a lower
  // layer; courseware keeps its detail and drops frame rate first.
  async publish(stream, sources) {
    this.publishing = { stream, sources };
    if (this.pub) { this.pub.close(); this.pub = null; }
    const pc = this.newPeer("publish");
    this.pub = pc;
    const byMid = {};
    const transceivers = [];
    for (const [track, source] of sources) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [stream], ...encodingsFor(track, source) });
      if (track.kind === "audio") preferRed(t);
      else preferVideoCodec(t);
      transceivers.push([t, source]);
    }
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    for (const [t, source] of transceivers) byMid[t.mid] = source;
    mark("publish_offer");
    const reply = await this.request({ type: "publish", sdp: pc.localDescription.sdp, sources: byMid });
    mark("publish_answer");
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
    this.emit("published", reply);
    return reply;
  }

  async addSource(track, source) {
    if (!this.publishing) throw new Error("publish first");
    this.publishing.stream.addTrack(track);
    this.publishing.sources.set(track, source);
    return this.publish(this.publishing.stream, this.publishing.sources);
  }

  async removeSource(track) {
    if (!this.publishing) return;
    this.publishing.sources.delete(track);
    this.publishing.stream.removeTrack(track);
    return this.publish(this.publishing.stream, this.publishing.sources);
  }

  onDisconnected(reason) {
    if (this.state === "reconnecting") return;
    mark("disconnected");
    if (this.smoother) { this.smoother.stop(); this.smoother = null; }
    for (const pc of [this.pub, this.sub]) if (pc) pc.close();
    this.pub = this.sub = null;
    this.remoteTracks.clear();
    this.tracks = [];
    for (const w of this.pending.values()) w.reject(new Error(reason));
    this.pending.clear();
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    this.emit("tracks", []);
    if (this.left) { this.setState("left"); return; }
    this.setState("reconnecting");
    // Quick first retries (a node that died: the lesson is back on another one within a few
    // seconds, and a page must not sleep through it), then at most every 5 s; ±20 % so that a
    // lesson's pages do not all come back in the same instant.
    const cap = this.retries < RETRY_QUICK ? 1000 : 5000;
    const delay = Math.min(cap, 300 * 2 ** this.retries++) * (0.8 + 0.4 * Math.random());
    setTimeout(() => { this.setState("connecting"); this.connect(); }, delay);
  }

  leave() {
    this.left = true;
    this.send({ type: "leave" });
    this.onDisconnected("left");
  }

  // Figures for the page's status line and for tests: per subscribe m-line inbound stats.
  async stats() {
    const out = { inbound: {}, outbound: {} };
    for (const [name, pc] of [["inbound", this.sub], ["outbound", this.pub]]) {
      if (!pc) continue;
      const report = await pc.getStats();
      report.forEach((s) => {
        if ((s.type === "inbound-rtp" && name === "inbound") || (s.type === "outbound-rtp" && name === "outbound")) {
          // a simulcast sender has one outbound-rtp per layer, all on the same mid
          out[name][s.rid ? `${s.mid}:${s.rid}` : (s.mid || s.id)] = {
            kind: s.kind, packets: s.packetsReceived ?? s.packetsSent, bytes: s.bytesReceived ?? s.bytesSent,
            framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, audioLevel: s.audioLevel,
            packetsLost: s.packetsLost, nackCount: s.nackCount, jitter: s.jitter,
            codec: report.get(s.codecId)?.mimeType, rid: s.rid, concealedSamples: s.concealedSamples,
            totalSamplesReceived: s.totalSamplesReceived,
          };
        }
      });
    }
    return out;
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// Attach a track to a <video>/<audio> element (creating it if needed) and play it.
export function mediaFor(container, key, track, kind) {
  let node = container.querySelector(`[data-key="${key}"]`);
  if (!node) {
    node = document.createElement(kind === "video" ? "video" : "audio");
    node.dataset.key = key;
    node.autoplay = true;
    node.playsInline = true;
    if (kind === "video") node.muted = true;
    container.append(node);
  }
  if (!node.srcObject || node.srcObject.getTracks()[0] !== track) {
    node.srcObject = new MediaStream([track]);
    playMedia(node); // a refusal (autoplay with sound blocked) shows "click to start audio"
  }
  return node;
}

// Browsers give a page the camera and microphone only in a secure context: an https:// address,
// or http:// on the machine itself (localhost, 127.0.0.1). A lead or remote page opened over
// http:// on a school-network address cannot use them; say so plainly instead of failing silently.
export function mediaUnavailable() {
  if (window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) return false;
  return true;
}

const INSECURE_EFFECT = {
  lead: {
    zh: "本课堂的老师画面和声音无法传给各远端课堂。",
    en: "This classroom's picture and sound cannot be sent to the remote classrooms.",
  },
  remote: {
    zh: "本班仍然可以听讲，但其他课堂看不到、听不到本班，老师也无法让本班发言（连麦）。",
    en: "This classroom can still watch and listen, but nobody sees or hears it, and the teacher cannot give it the floor.",
  },
};

// Shows the explanation at the top of the page; returns true when the camera/mic are unavailable.
export function explainInsecureOrigin(role) {
  if (!mediaUnavailable()) return false;
  const effect = INSECURE_EFFECT[role] || INSECURE_EFFECT.remote;
  const origin = location.origin;
  const box = el("div", { id: "insecure", class: "insecure", role: "alert" },
    el("strong", {}, "无法使用摄像头和麦克风 · Camera and microphone unavailable"),
    el("p", { lang: "zh-CN" },
      `本页是用不安全的地址（${origin}）打开的：浏览器只允许以 https:// 开头的网页使用摄像头和麦克风。${effect.zh}` +
      "请改用以 https:// 开头的加入链接打开本页（向学校或教育局的管理员索取，服务器启动时会显示）。" +
      "如果浏览器提示“您的连接不是私密连接”，请管理员按服务器的说明在本机安装服务器的证书。"),
    el("p", { lang: "en" },
      `This page was opened on an insecure address (${origin}): browsers allow the camera and microphone only on ` +
      `pages whose address starts with https://. ${effect.en} Open the https:// join link instead (ask your ` +
      "school's or bureau's administrator; the server prints it when it starts). If the browser says " +
      "\"Your connection is not private\", ask the administrator to install the server's certificate on this PC."));
  if (location.protocol === "http:") {
    const https = `https://${location.host}${location.pathname}${location.search}`;
    box.append(el("p", {}, el("a", { href: https, id: "insecure-https" }, "尝试 https:// 链接 · Try the https:// link")));
  }
  document.body.prepend(box);
  return true;
}

// Simulcast layers for a camera: rid q (1/4), h (1/2), f (full), listed lowest first: the server
// reads the order from the SDP. The browser sends fewer layers for a small picture by itself.
export const SIMULCAST_LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];

// Audio as RED (each packet also carries the previous Opus frame, RFC 2198): one lost packet on
// a rural link then costs nothing. RED first in the offer, so the browser sends it when the
// server accepts it; ?red=0 leaves RED out of the offer: plain Opus.
function preferRed(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender?.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities("audio")?.codecs || [];
  const isRed = (c) => c.mimeType.toLowerCase() === "audio/red";
  if (!codecs.some(isRed)) return;
  const off = new URLSearchParams(location.search).get("red") === "0";
  try {
    transceiver.setCodecPreferences(off ? codecs.filter((c) => !isRed(c))
      : [...codecs.filter(isRed), ...codecs.filter((c) => !isRed(c))]);
  } catch (err) {
    console.warn("RED preference not applied", err);
  }
}

// ?codec=h264 publishes H.264 (simulcast too) instead of VP8, e.g. to check what room hardware
// that only has H.264 will look like; the server forwards whichever the publisher sends.
function preferVideoCodec(transceiver) {
  const want = new URLSearchParams(location.search).get("codec");
  if (!want || !transceiver.setCodecPreferences || !window.RTCRtpSender?.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities("video")?.codecs || [];
  const mime = `video/${want}`.toLowerCase();
  const first = codecs.filter((c) => c.mimeType.toLowerCase() === mime);
  if (!first.length) return;
  const helpers = codecs.filter((c) => ["video/rtx", "video/red", "video/ulpfec"].includes(c.mimeType.toLowerCase()));
  try {
    transceiver.setCodecPreferences([...first, ...helpers]);
  } catch (err) {
    console.warn("codec preference not applied", err);
  }
}

function encodingsFor(track, source) {
  if (track.kind !== "video") return {};
  if (source === "screen") {
    try { track.contentHint = "detail"; } catch (e) { /* older browsers */ }
    return {};
  }
  if (new URLSearchParams(location.search).get("simulcast") === "0") return {};
  // VP8 layers carry three temporal layers (L1T3) by default, so the SFU can lower a weak
  // classroom's frame rate at once and thin the old layer while a switch waits for a keyframe
  // (docs/weak-links.md); ?temporal=0 sends one (L1T1). H.264 always sends one.
  const params = new URLSearchParams(location.search);
  const h264 = (params.get("codec") || "").toLowerCase() === "h264";
  const mode = params.get("temporal") !== "0" && !h264 ? "L1T3" : "L1T1";
  return { sendEncodings: SIMULCAST_LAYERS.map((l) => ({ ...l, scalabilityMode: mode })) };
}

