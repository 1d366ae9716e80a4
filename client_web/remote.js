// Remote classroom (听讲/互动课堂) page: plays the lead full-screen with sound, shows the
// spotlighted classroom beside it (below it on a phone), publishes its own camera + mic (the
// server forwards the mic only while this classroom holds the floor), raises its hand, and
// rejoins by itself. Controls: full screen, the lesson's volume, this classroom's own mic.
import { ClassroomClient, tokenFromUrl, claimsOf, mediaFor, explainInsecureOrigin } from "./classroom.js";
import { t, errorText, applyI18n, langToggle, i18nEvents, linkText } from "./i18n.js";
import { icon, applyIcons } from "./icons.js";
import { playMedia } from "./autoplay.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
window.classroom = client;
window.firstFrameMs = null;
let floor = { queue: [], granted: [], spotlight: null, muted: [] };
let handUp = false;
let ended = null;
let micOff = false;
let recorded = false;
let volume = 1;
try { const v = parseFloat(localStorage.getItem("classroom.volume")); if (v >= 0 && v <= 1) volume = v; } catch (e) { /* no storage */ }

applyI18n();
applyIcons();
$("lang-slot").replaceWith(langToggle());
$("recording-link").href =
  `/api/recordings/${encodeURIComponent(claims.lesson_id || "")}/playback?token=${encodeURIComponent(token)}`;
$("volume").value = String(Math.round(volume * 100));

function title() {
  const lesson = client.joined?.lesson_title || claims.lesson_title || t("lesson.default");
  $("title").textContent = `${lesson} — ${claims.name || t("remote.title")}`;
  document.title = `${t("remote.title")} · ${lesson}`;
}
title();
// A button's text label beside its icon (the key is kept for a language switch).
function setLabel(button, key) {
  const txt = button.querySelector(".txt");
  txt.dataset.i18n = key;
  txt.textContent = t(key);
}
function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.classList.toggle("show", !!text);
}
let toastTimer = null;
function toast(text) {
  $("toast").textContent = text;
  $("toast").classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => $("toast").classList.remove("show"), 6000);
}
if (!token) notice(t("no_token"));
// On an insecure origin there is no camera or microphone: watch only, and say why at the top.
const insecure = claims.role === "remote" && explainInsecureOrigin("remote");

function showState() {
  const s = ended ? "ended" : client.state;
  $("state").textContent = t(`state.${s}`);
  $("state").title = t(`state.${s}`);
  $("state").className = `badge ${s === "joined" ? "ok" : s === "reconnecting" ? "warn" : ""}`;
  $("hand").disabled = s !== "joined" || claims.role !== "remote" || insecure;
  showMic();
}
client.addEventListener("state", showState);

client.addEventListener("error", (e) => {
  const m = e.detail;
  if (m.code && (m.code.startsWith("token") || m.code === "lesson_unavailable")) notice(t("cannot_join", { reason: errorText(m) }));
  else if (m.code === "replaced") notice(t("replaced"));
  else console.warn("classroom error", m);
});

// Back after a drop (the lesson's node died and another one took it over): our own camera is
// published again once the lead's picture plays (or after 5 s), so the new node negotiates the
// lead's video first, and our offer does not queue in front of it.
client.republishAfter = () => Promise.race([
  new Promise((resolve) => $("main").addEventListener("loadeddata", resolve, { once: true })),
  new Promise((resolve) => setTimeout(resolve, 5000)),
]);

client.addEventListener("joined", async (e) => {
  notice("");
  title();
  recorded = recorded || !!e.detail.recording;
  $("recording-link").classList.toggle("hidden", !recorded);
  const me = claims.classroom_id;
  const asked = claims.role === "remote" && (handUp || !!floor?.granted?.includes(me));
  if (e.detail.floor) showFloor(e.detail.floor);
  // Back after a drop with the hand up (or the floor): if the lesson's floor no longer has it — the
  // lesson moved to another node when its node died, and the floor started empty there — raise it again.
  const now = e.detail.floor;
  if (asked && now && !now.queue.includes(me) && !now.granted.includes(me)) {
    client.request({ type: "raise_hand" }).catch(() => {});
  }
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
    applyMic();
    const sources = new Map(stream.getTracks().map((tr) => [tr, "students"]));
    if (!client.publishing) await client.publish(stream, sources);
  } catch (err) {
    console.warn("no local camera/mic: watching only", err);
  }
  showMic();
});
client.addEventListener("recording", (e) => {
  recorded = recorded || !!e.detail.active;
  $("recording-link").classList.toggle("hidden", !recorded);
});

client.addEventListener("tracks", (e) => render(e.detail));

function render(list) {
  const fromLead = list.filter((tr) => tr.source === "teacher" || tr.source === "screen")
    .filter((tr) => tr.classroom_id === leadClassroom(list));
  const screen = fromLead.find((tr) => tr.kind === "video" && tr.source === "screen");
  const teacher = fromLead.find((tr) => tr.kind === "video" && tr.source === "teacher");
  const main = screen || teacher;
  attach($("main"), main);
  const pip = $("pip");
  if (screen && teacher) {
    pip.classList.remove("hidden");
    mediaFor(pip, "pip", teacher.track, "video");
  } else pip.classList.add("hidden");
  const spot = list.find((tr) => tr.kind === "video" && tr.classroom_id !== leadClassroom(list) &&
    (tr.classroom_id === floor.spotlight || floor.granted.includes(tr.classroom_id)));
  $("spotlight-tile").classList.toggle("hidden", !spot);
  if (spot) { attach($("spotlight"), spot); $("spotlight-label").textContent = t("spot.label", { name: nameOf(spot.classroom_id) }); }
  const audio = $("audio");
  const keep = new Set();
  for (const tr of list.filter((x) => x.kind === "audio")) {
    const node = mediaFor(audio, tr.mid, tr.track, "audio");
    node.volume = volume;
    keep.add(tr.mid);
  }
  for (const node of [...audio.children]) if (!keep.has(node.dataset.key)) node.remove();
}

function leadClassroom(list) {
  const lead = (client.joined?.participants || []).find((p) => p.role === "lead");
  if (lead) return lead.classroom_id;
  const tr = list.find((x) => x.source === "teacher" || x.source === "screen");
  return tr ? tr.classroom_id : null;
}

function nameOf(classroomId) {
  const p = (client.joined?.participants || []).find((x) => x.classroom_id === classroomId);
  return p ? p.name : classroomId;
}

function attach(video, tr) {
  if (!tr) { video.srcObject = null; return; }
  if (!video.srcObject || video.srcObject.getTracks()[0] !== tr.track) {
    video.srcObject = new MediaStream([tr.track]);
    playMedia(video);
  }
}

$("main").addEventListener("loadeddata", () => {
  window.classroomTimeline.push(["main_loadeddata", Math.round(performance.now())]); // every (re)start of the picture
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
  $("floor-banner").classList.toggle("show", hasFloor && !ended);
  $("muted-badge").classList.toggle("hidden", !f.muted.includes(me) || !!ended);
  setLabel($("hand"), handUp ? "hand.lower" : "hand.raise");
  $("hand").classList.toggle("secondary", handUp);
  $("self-tile").classList.toggle("floor", hasFloor);
  render(client.trackList());
}
client.addEventListener("floor", (e) => showFloor(e.detail));

$("hand").addEventListener("click", () => {
  const type = handUp ? "lower_hand" : "raise_hand";
  // a request still waiting when the connection drops (no code) is not worth a message
  client.request({ type }).catch((err) => { if (err.code && !ended) toast(errorText(err, type)); });
});

// This classroom's own microphone: off sends silence (the track stays, so turning it back on
// needs no renegotiation).
function applyMic() {
  for (const tr of window.localStream?.getAudioTracks() || []) tr.enabled = !micOff;
}
function showMic() {
  const button = $("mic");
  const hasMic = !!window.localStream?.getAudioTracks().length;
  button.disabled = !hasMic || !!ended;
  setLabel(button, micOff ? "mic.off" : "mic.on");
  button.querySelector(".ico-slot").replaceChildren(icon(micOff ? "mic-off" : "mic"));
  button.setAttribute("aria-label", t(micOff ? "mic.off" : "mic.on"));
  button.className = micOff ? "warn" : "secondary";
  button.setAttribute("aria-pressed", String(micOff));
}
showMic();
$("mic").addEventListener("click", () => { micOff = !micOff; applyMic(); showMic(); });

// The lesson's volume (every audio element: the lead and the classroom holding the floor).
$("volume").addEventListener("input", (e) => {
  volume = Number(e.target.value) / 100;
  for (const node of $("audio").querySelectorAll("audio")) node.volume = volume;
  try { localStorage.setItem("classroom.volume", String(volume)); } catch (err) { /* no storage */ }
});

// Full screen: the picture (and the teacher's inset) on the whole classroom screen.
function showFullscreen() {
  setLabel($("fullscreen"), document.fullscreenElement ? "fullscreen.exit" : "fullscreen");
  $("fullscreen").setAttribute("aria-label", t(document.fullscreenElement ? "fullscreen.exit" : "fullscreen"));
}
showFullscreen();
$("fullscreen").addEventListener("click", async () => {
  try {
    if (document.fullscreenElement) await document.exitFullscreen();
    else await $("stage").requestFullscreen();
  } catch (err) {
    console.warn("fullscreen refused", err);
  }
  showFullscreen();  // at once: the fullscreenchange event may come a frame later
});
document.addEventListener("fullscreenchange", showFullscreen);
$("fs-exit").addEventListener("click", () => document.exitFullscreen().catch(() => {}));
$("stage").addEventListener("dblclick", () => $("fullscreen").click());

client.addEventListener("lesson_ended", (e) => {
  ended = e.detail;
  notice(ended.name ? t("lesson_ended.by", { name: ended.name }) : t("lesson_ended"));
  for (const tr of window.localStream?.getTracks() || []) tr.stop();
  lastLink = null;
  $("net").dataset.quality = "unknown";
  showState();
  showFloor(floor);
});

i18nEvents.addEventListener("langchange", () => {
  title(); showState(); showFloor(floor); showFullscreen(); showNet();
  if (ended) notice(ended.name ? t("lesson_ended.by", { name: ended.name }) : t("lesson_ended"));
});

client.connect();

// This classroom's own link quality (a "link" message every 2 s from the server).
let lastLink = null;
function showNet() {
  const net = $("net");
  if (!lastLink) { net.title = t("net.title"); return; }
  net.dataset.quality = lastLink.quality;
  net.textContent = { good: t("net.good"), fair: t("net.fair"), poor: t("net.poor") }[lastLink.quality] || "";
  net.title = linkText(lastLink);
}
showNet();
client.addEventListener("link", (e) => { lastLink = e.detail; showNet(); });
