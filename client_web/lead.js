// Lead classroom (主讲课堂) page: publishes the teacher camera + mic (and the courseware screen
// on demand), shows that the lesson is live and how many classrooms watch, the hand-raise queue,
// and a grid of the remote classrooms with grant / revoke / mute / spotlight.
import { ClassroomClient, tokenFromUrl, claimsOf, el, mediaFor, explainInsecureOrigin, linkText } from "./classroom.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
// This classroom's link to the lesson's recording (valid for 30 days after the lesson).
document.getElementById("recording-link").href =
  `/api/recordings/${encodeURIComponent(claims.lesson_id || "")}/playback?token=${encodeURIComponent(token)}`;
window.classroom = client;
let floor = { queue: [], granted: [], spotlight: null, muted: [] };
let speaking = null;
let screenTrack = null;

$("title").textContent = `${claims.lesson_title || "课堂 Lesson"} — ${claims.name || ""}`;
function notice(text) { const n = $("notice"); n.textContent = text; n.classList.toggle("show", !!text); }
if (!token) notice("缺少加入令牌 No join token in the link.");
// On an insecure origin (http:// on a school-network address) there is no camera or microphone:
// the page says why at the top and still joins (the lesson's state, the hands, the grid).
const insecure = explainInsecureOrigin("lead");

client.addEventListener("state", (e) => {
  $("state").textContent = { joined: "已连接 connected", reconnecting: "重连中 reconnecting", connecting: "连接中 connecting" }[e.detail] || e.detail;
  $("state").className = `badge ${e.detail === "joined" ? "ok" : e.detail === "reconnecting" ? "warn" : ""}`;
  $("screen").disabled = e.detail !== "joined" || insecure;
});
client.addEventListener("error", (e) => {
  const m = e.detail;
  if (m.code && (m.code.startsWith("token") || m.code === "lead_present")) notice(`无法加入 Cannot join: ${m.message}`);
  else console.warn("classroom error", m);
});

client.addEventListener("joined", async (e) => {
  notice("");
  if (e.detail.floor) showFloor(e.detail.floor);
  if (insecure) { renderGrid(); return; }
  try {
    const stream = window.localStream || await navigator.mediaDevices.getUserMedia({
      video: { width: 1280, height: 720, frameRate: 30 }, audio: true,
    });
    window.localStream = stream;
    $("self").srcObject = stream;
    if (!client.publishing) {
      const sources = new Map(stream.getTracks().map((t) => [t, "teacher"]));
      await client.publish(stream, sources);
    }
  } catch (err) {
    notice(`无法打开摄像头/麦克风 Camera/mic unavailable: ${err.message}`);
  }
  renderGrid();
  offerStudentsDevices().catch(() => {});
});

client.addEventListener("published", () => {
  $("live").textContent = "● 直播中 LIVE";
  $("live").className = "badge live";
});
client.addEventListener("audience", (e) => {
  $("viewers").textContent = `${e.detail.viewers} 个课堂在看 classrooms watching`;
});

$("screen").addEventListener("click", async () => {
  if (screenTrack) {
    await client.removeSource(screenTrack);
    screenTrack.stop();
    screenTrack = null;
    $("screen").textContent = "🖥 共享课件 Share screen";
    return;
  }
  try {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
    screenTrack = display.getVideoTracks()[0];
    screenTrack.onended = () => { if (screenTrack) $("screen").click(); };
    await client.addSource(screenTrack, "screen");
    $("screen").textContent = "⏹ 停止共享 Stop sharing";
  } catch (err) {
    notice(`无法共享屏幕 Cannot share screen: ${err.message}`);
  }
});

// A second camera / microphone in the lead classroom (pointing at its own students) is offered
// as the "students" source when the room has one.
let studentsTracks = [];
async function offerStudentsDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const cams = devices.filter((d) => d.kind === "videoinput");
  $("students").classList.toggle("hidden", cams.length < 2);
}
navigator.mediaDevices?.addEventListener?.("devicechange", offerStudentsDevices);
$("students").addEventListener("click", async () => {
  if (studentsTracks.length) {
    for (const t of studentsTracks) { await client.removeSource(t); t.stop(); }
    studentsTracks = [];
    $("students").textContent = "🎥 学生区 Students camera + mic";
    return;
  }
  const devices = await navigator.mediaDevices.enumerateDevices();
  const teacherCam = window.localStream?.getVideoTracks()[0]?.getSettings().deviceId;
  const teacherMic = window.localStream?.getAudioTracks()[0]?.getSettings().deviceId;
  const cam = devices.find((d) => d.kind === "videoinput" && d.deviceId !== teacherCam);
  const mic = devices.find((d) => d.kind === "audioinput" && d.deviceId !== teacherMic);
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: cam ? { deviceId: { exact: cam.deviceId } } : false,
      audio: mic ? { deviceId: { exact: mic.deviceId } } : false,
    });
    studentsTracks = stream.getTracks();
    for (const t of studentsTracks) await client.addSource(t, "students");
    $("students").textContent = "⏹ 关闭学生区 Stop students camera";
  } catch (err) {
    notice(`无法打开学生区设备 Students devices unavailable: ${err.message}`);
  }
});

const participants = () => (client.joined?.participants || []).filter((p) => p.role === "remote");
const nameOf = (cid) => (client.joined?.participants || []).find((p) => p.classroom_id === cid)?.name || cid;

function act(type, classroom_id) {
  client.request({ type, classroom_id }).catch((err) => notice(`${err.code || ""} ${err.message}`));
}

function renderGrid() {
  const grid = $("grid");
  const list = client.trackList();
  const keep = new Set();
  for (const p of participants()) {
    const cid = p.classroom_id;
    keep.add(cid);
    let tile = grid.querySelector(`[data-classroom="${cid}"]`);
    if (!tile) {
      tile = el("div", { class: "tile", "data-classroom": cid },
        el("span", { class: "label" }, el("span", { class: "net", "data-quality": "unknown", title: "网络 Network: …" }), p.name),
        el("div", { class: "video" }),
        el("div", { class: "actions" },
          el("button", { "data-act": "grant", onclick: () => act(floor.granted.includes(cid) ? "revoke_floor" : "grant_floor", cid) }, "连麦 Give floor"),
          el("button", { class: "secondary", "data-act": "mute", onclick: () => act(floor.muted.includes(cid) ? "unmute" : "mute", cid) }, "静音 Mute"),
          el("button", { class: "secondary", "data-act": "spot", onclick: () => act("spotlight", cid) }, "聚焦 Spotlight")));
      grid.append(tile);
    }
    const video = list.find((t) => t.kind === "video" && t.classroom_id === cid);
    if (video) mediaFor(tile.querySelector(".video"), "v", video.track, "video");
    const has = floor.granted.includes(cid);
    tile.classList.toggle("floor", has);
    tile.classList.toggle("speaking", speaking === cid);
    tile.querySelector('[data-act="grant"]').textContent = has ? "下麦 Revoke floor" : "连麦 Give floor";
    tile.querySelector('[data-act="mute"]').textContent = floor.muted.includes(cid) ? "取消静音 Unmute" : "静音 Mute";
    showLink(tile.querySelector(".net"), links[cid]);
  }
  for (const tile of [...grid.children]) if (!keep.has(tile.dataset.classroom)) tile.remove();
  const audio = $("audio");
  const mids = new Set();
  for (const t of list.filter((t) => t.kind === "audio")) { mediaFor(audio, t.mid, t.track, "audio"); mids.add(t.mid); }
  for (const node of [...audio.children]) if (!mids.has(node.dataset.key)) node.remove();
}

function showFloor(f) {
  floor = f;
  const q = $("queue");
  q.replaceChildren(...f.queue.map((cid) => el("li", {}, `${nameOf(cid)} `,
    el("button", { onclick: () => act("grant_floor", cid) }, "连麦 Give floor"))));
  renderGrid();
}

client.addEventListener("floor", (e) => showFloor(e.detail));
// Each classroom's link as the server sees it (a "links" message every 2 s): a coloured dot on
// its tile, the figures in its tooltip.
let links = {};
client.addEventListener("links", (e) => {
  links = e.detail.classrooms || {};
  for (const tile of $("grid").children) showLink(tile.querySelector(".net"), links[tile.dataset.classroom]);
});
client.addEventListener("tracks", renderGrid);
client.addEventListener("speaker", (e) => { speaking = e.detail.active; renderGrid(); });
client.addEventListener("participant_joined", (e) => {
  const list = client.joined.participants;
  if (!list.find((p) => p.participant_id === e.detail.participant.participant_id)) list.push(e.detail.participant);
  renderGrid();
});
client.addEventListener("participant_left", (e) => {
  client.joined.participants = client.joined.participants.filter((p) => p.participant_id !== e.detail.participant.participant_id);
  renderGrid();
});
$("spot-off").addEventListener("click", () => client.request({ type: "spotlight", classroom_id: null }).catch(() => {}));

client.connect();

function showLink(dot, link) {
  if (!dot) return;
  dot.dataset.quality = link ? link.quality : "unknown";
  dot.title = link ? linkText(link) : "网络 Network: …";
}
