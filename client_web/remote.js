// Remote classroom (听讲/互动课堂) page: plays the lead full-screen with sound, shows the
// spotlighted classroom beside it, publishes its own camera + mic (the server forwards the mic
// only while this classroom holds the floor), raises its hand, and rejoins by itself.
import { ClassroomClient, tokenFromUrl, claimsOf, mediaFor, explainInsecureOrigin, linkText } from "./classroom.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
// This classroom's link to the lesson's recording (valid for 30 days after the lesson).
document.getElementById("recording-link").href =
  `/api/recordings/${encodeURIComponent(claims.lesson_id || "")}/playback?token=${encodeURIComponent(token)}`;
window.classroom = client;
window.firstFrameMs = null;
let floor = { queue: [], granted: [], spotlight: null, muted: [] };
let handUp = false;

if (!token) notice("缺少加入令牌 No join token in the link — ask your bureau for the classroom link.");
$("title").textContent = `${claims.lesson_title || "课堂 Lesson"} — ${claims.name || ""}`;
// On an insecure origin there is no camera or microphone: watch only, and say why at the top.
const insecure = claims.role === "remote" && explainInsecureOrigin("remote");

function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("show", !!text);
}

const STATES = {
  connecting: ["连接中 connecting", ""], joined: ["已连接 connected", "ok"],
  reconnecting: ["重连中 reconnecting", "warn"], left: ["已离开 left", ""],
};
client.addEventListener("state", (e) => {
  const [text, cls] = STATES[e.detail] || [e.detail, ""];
  $("state").textContent = text;
  $("state").className = `badge ${cls}`;
  $("hand").disabled = e.detail !== "joined" || claims.role !== "remote" || insecure;
});

client.addEventListener("error", (e) => {
  const m = e.detail;
  if (m.code && m.code.startsWith("token")) notice(`无法加入 Cannot join: ${m.message}`);
  else if (m.code === "replaced") notice("本课堂已在另一处打开 This classroom was opened elsewhere.");
  else console.warn("classroom error", m);
});

client.addEventListener("joined", async (e) => {
  notice("");
  if (e.detail.floor) showFloor(e.detail.floor);
  if (claims.role !== "remote" || insecure) { $("self-tile").classList.add("hidden"); return; }
  // Watching the lead comes first: publish our own camera once the lead plays (or after 2 s),
  // so a late joiner's first picture does not wait behind its own camera's negotiation.
  await Promise.race([
    new Promise((resolve) => $("main").addEventListener("loadeddata", resolve, { once: true })),
    new Promise((resolve) => setTimeout(resolve, 2000)),
  ]);
  try {
    const stream = window.localStream || await navigator.mediaDevices.getUserMedia({
      video: { width: 640, height: 360, frameRate: 15 }, audio: true,
    });
    window.localStream = stream;
    $("self").srcObject = stream;
    const sources = new Map(stream.getTracks().map((t) => [t, "students"]));
    if (!client.publishing) await client.publish(stream, sources);
  } catch (err) {
    console.warn("no local camera/mic: watching only", err);
  }
});

client.addEventListener("tracks", (e) => render(e.detail));

function render(list) {
  const fromLead = list.filter((t) => t.source === "teacher" || t.source === "screen")
    .filter((t) => t.classroom_id === leadClassroom(list));
  const screen = fromLead.find((t) => t.kind === "video" && t.source === "screen");
  const teacher = fromLead.find((t) => t.kind === "video" && t.source === "teacher");
  const main = screen || teacher;
  attach($("main"), main);
  const pip = $("pip");
  if (screen && teacher) {
    pip.classList.remove("hidden");
    mediaFor(pip, "pip", teacher.track, "video");
  } else pip.classList.add("hidden");
  const spot = list.find((t) => t.kind === "video" && t.classroom_id !== leadClassroom(list) &&
    (t.classroom_id === floor.spotlight || floor.granted.includes(t.classroom_id)));
  $("spotlight-tile").classList.toggle("hidden", !spot);
  if (spot) { attach($("spotlight"), spot); $("spotlight-label").textContent = `发言课堂 ${nameOf(spot.classroom_id)}`; }
  const audio = $("audio");
  const keep = new Set();
  for (const t of list.filter((t) => t.kind === "audio")) { mediaFor(audio, t.mid, t.track, "audio"); keep.add(t.mid); }
  for (const node of [...audio.children]) if (!keep.has(node.dataset.key)) node.remove();
}

function leadClassroom(list) {
  const lead = (client.joined?.participants || []).find((p) => p.role === "lead");
  if (lead) return lead.classroom_id;
  const t = list.find((t) => t.source === "teacher" || t.source === "screen");
  return t ? t.classroom_id : null;
}

function nameOf(classroomId) {
  const p = (client.joined?.participants || []).find((p) => p.classroom_id === classroomId);
  return p ? p.name : classroomId;
}

function attach(video, t) {
  if (!t) { video.srcObject = null; return; }
  if (!video.srcObject || video.srcObject.getTracks()[0] !== t.track) {
    video.srcObject = new MediaStream([t.track]);
    video.play().catch(() => {});
  }
}

$("main").addEventListener("loadeddata", () => {
  if (window.firstFrameMs === null) { window.firstFrameMs = performance.now(); window.classroomTimeline.push(["first_frame", Math.round(window.firstFrameMs)]); }
});

client.addEventListener("participant_joined", (e) => {
  const list = client.joined.participants;
  if (!list.find((p) => p.participant_id === e.detail.participant.participant_id)) list.push(e.detail.participant);
  render(client.trackList());
});
client.addEventListener("participant_left", (e) => {
  client.joined.participants = client.joined.participants.filter((p) => p.participant_id !== e.detail.participant.participant_id);
});

function showFloor(f) {
  floor = f;
  const me = claims.classroom_id;
  handUp = f.queue.includes(me);
  const hasFloor = f.granted.includes(me);
  $("floor-banner").classList.toggle("show", hasFloor);
  $("hand").textContent = handUp ? "🙌 放下 Lower hand" : "✋ 举手 Raise hand";
  $("hand").classList.toggle("secondary", handUp);
  $("self-tile").classList.toggle("floor", hasFloor);
  render(client.trackList());
}
client.addEventListener("floor", (e) => showFloor(e.detail));

$("hand").addEventListener("click", () => {
  client.request({ type: handUp ? "lower_hand" : "raise_hand" }).catch((err) => notice(err.message));
});

client.connect();

// This classroom's own link quality (a "link" message every 2 s from the server).
client.addEventListener("link", (e) => {
  const net = $("net");
  net.dataset.quality = e.detail.quality;
  net.textContent = { good: "网络良好 Network good", fair: "网络一般 Network fair", poor: "网络较差 Network poor" }[e.detail.quality] || "";
  net.title = linkText(e.detail);
});
