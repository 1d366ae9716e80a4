// Lead classroom (主讲课堂) page: publishes the teacher camera + mic (and the courseware screen
// on demand), shows that the lesson is live, how long it has run and how many classrooms watch,
// the hand-raise queue, the expected classrooms that are absent, and a grid of the remote
// classrooms (hand / mute / floor shown on each tile) with grant / revoke / mute / spotlight;
// keyboard shortcuts for the floor (the "?" help); "end lesson" for everybody.
import { ClassroomClient, tokenFromUrl, claimsOf, el, mediaFor, explainInsecureOrigin } from "./classroom.js";
import { t, errorText, applyI18n, langToggle, i18nEvents, linkText, clock } from "./i18n.js";
import { icon, applyIcons } from "./icons.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
window.classroom = client;
let floor = { queue: [], granted: [], spotlight: null, muted: [] };
let speaking = null;
let screenTrack = null;
let live = false;
let ended = null;          // the lesson_ended message once the lesson is over
let timerBase = null;      // performance.now() at which the lesson started (server's clock)
let recorded = false;      // a recorder was in the lesson: the recording link is worth showing

applyI18n();
applyIcons();
$("lang-slot").replaceWith(langToggle());
$("recording-link").href =
  `/api/recordings/${encodeURIComponent(claims.lesson_id || "")}/playback?token=${encodeURIComponent(token)}`;

function title() {
  const lesson = client.joined?.lesson_title || claims.lesson_title || t("lesson.default");
  $("title").textContent = `${lesson} — ${claims.name || t("lead.title")}`;
  document.title = `${t("lead.title")} · ${lesson}`;
}
title();

// A button's text label beside its icon (the label's dictionary key is kept for a language switch).
function setLabel(button, key) {
  const txt = button.querySelector(".txt");
  txt.dataset.i18n = key;
  txt.textContent = t(key);
  button.dataset.i18nTitle = key; // the label is hidden on a phone: the tooltip keeps it
  button.title = t(key);
}
function notice(text) { const n = $("notice"); n.textContent = text; n.classList.toggle("show", !!text); }
let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), 6000);
}
if (!token) notice(t("no_token"));
// On an insecure origin (http:// on a school-network address) there is no camera or microphone:
// the page says why at the top and still joins (the lesson's state, the hands, the grid).
const insecure = explainInsecureOrigin("lead");

function showState() {
  const s = ended ? "ended" : client.state;
  $("state").textContent = t(`state.${s}`) || s;
  $("state").title = $("state").textContent; // a dot on a phone: the tooltip keeps the word
  $("state").className = `badge ${s === "joined" ? "ok" : s === "reconnecting" ? "warn" : ""}`;
  $("screen").disabled = s !== "joined" || insecure;
  $("end").disabled = s !== "joined";
}
client.addEventListener("state", showState);
client.addEventListener("error", (e) => {
  const m = e.detail;
  if (m.code && (m.code.startsWith("token") || m.code === "lead_present" || m.code === "lesson_unavailable")) {
    notice(t("cannot_join", { reason: errorText(m) }));
  } else if (m.code === "replaced") notice(t("replaced"));
  else console.warn("classroom error", m);
});

client.addEventListener("joined", async (e) => {
  notice("");
  title();
  const j = e.detail;
  if (typeof j.elapsed_ms === "number") timerBase = performance.now() - j.elapsed_ms;
  showRecording(!!j.recording);
  if (j.floor) showFloor(j.floor);
  if (insecure) { renderGrid(); return; }
  try {
    const stream = window.localStream || await navigator.mediaDevices.getUserMedia({
      video: { width: 1280, height: 720, frameRate: 30 }, audio: true,
    });
    window.localStream = stream;
    $("self").srcObject = stream;
    if (!client.publishing) {
      const sources = new Map(stream.getTracks().map((tr) => [tr, "teacher"]));
      await client.publish(stream, sources);
    }
  } catch (err) {
    notice(t("camera_unavailable", { reason: err.message }));
  }
  renderGrid();
  offerStudentsDevices().catch(() => {});
});

client.addEventListener("published", () => { live = true; showLive(); });
function showLive() {
  $("live").textContent = t(live && !ended ? "live.on" : "live.off");
  $("live").className = `badge ${live && !ended ? "live" : ""}`;
}
let viewers = 0;
// The sentence, and the bare number with an eye icon that a phone shows instead (style.css).
function showViewers() {
  const text = t("viewers", { n: viewers });
  $("viewers").querySelector(".txt").textContent = text;
  $("viewers").title = text;
  $("viewers").dataset.n = String(viewers);
}
showViewers();
client.addEventListener("audience", (e) => { viewers = e.detail.viewers; showViewers(); });

function showRecording(active) {
  recorded = recorded || active;
  $("rec").classList.toggle("hidden", !active || !!ended);
  $("recording-link").classList.toggle("hidden", !recorded);
}
client.addEventListener("recording", (e) => showRecording(!!e.detail.active));

// The lesson timer: from the room's start by the server's clock.
setInterval(() => {
  if (timerBase !== null && !ended) $("timer").textContent = clock(performance.now() - timerBase);
}, 500);

$("screen").addEventListener("click", async () => {
  if (screenTrack) {
    await client.removeSource(screenTrack);
    screenTrack.stop();
    screenTrack = null;
    setLabel($("screen"), "screen.share");
    return;
  }
  try {
    const display = await navigator.mediaDevices.getDisplayMedia({ video: true });
    screenTrack = display.getVideoTracks()[0];
    screenTrack.onended = () => { if (screenTrack) $("screen").click(); };
    await client.addSource(screenTrack, "screen");
    setLabel($("screen"), "screen.stop");
  } catch (err) {
    toast(t("screen.error", { reason: err.message }));
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
    for (const tr of studentsTracks) { await client.removeSource(tr); tr.stop(); }
    studentsTracks = [];
    setLabel($("students"), "students.on");
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
    for (const tr of studentsTracks) await client.addSource(tr, "students");
    setLabel($("students"), "students.off");
  } catch (err) {
    toast(t("students.error", { reason: err.message }));
  }
});

const participants = () => (client.joined?.participants || []).filter((p) => p.role === "remote");
const nameOf = (cid) => (client.joined?.participants || []).find((p) => p.classroom_id === cid)?.name
  || (client.joined?.expected || []).find((c) => c.classroom_id === cid)?.name || cid;

// One floor request; a refusal is shown in the teacher's words (errorText), never the server's.
// The server answers a floor request with a "floor" event to all, or an error with its id; a
// request still waiting when the connection drops is not the teacher's concern (no code).
function act(type, classroom_id) {
  if (ended) return Promise.resolve();
  if (client.state !== "joined") { toast(t("err.not_connected")); return Promise.resolve(); }
  return client.request({ type, classroom_id }).catch((err) => { if (err.code && !ended) toast(errorText(err, type)); });
}
window.leadAct = act;
const toggleFloor = (cid) => act(floor.granted.includes(cid) ? "revoke_floor" : "grant_floor", cid);
const toggleMute = (cid) => act(floor.muted.includes(cid) ? "unmute" : "mute", cid);
// Spotlight is a toggle: on the spotlighted classroom (e.g. the one given the floor, which the
// spotlight follows) it clears the spotlight instead of asking for what is already so.
const toggleSpot = (cid) => act("spotlight", floor.spotlight === cid ? null : cid);

function renderGrid() {
  const grid = $("grid");
  const list = client.trackList();
  const keep = new Set();
  participants().forEach((p, index) => {
    const cid = p.classroom_id;
    keep.add(cid);
    let tile = grid.querySelector(`[data-classroom="${CSS.escape(cid)}"]`);
    if (!tile) {
      tile = el("div", { class: "tile", "data-classroom": cid },
        el("span", { class: "label" },
          el("span", { class: "key" }, ""),
          el("span", { class: "net", "data-quality": "unknown" }),
          el("span", { class: "icon hand", role: "img" }, icon("hand")),
          el("span", { class: "icon mic-off", role: "img" }, icon("mic-off")),
          el("span", { class: "icon on-floor", role: "img" }, icon("mic")),
          el("span", { class: "name", title: p.name }, p.name)),
        el("div", { class: "video" }),
        el("div", { class: "actions" },
          el("button", { "data-act": "grant", onclick: () => toggleFloor(cid) }),
          el("button", { class: "secondary", "data-act": "mute", onclick: () => toggleMute(cid) }),
          el("button", { class: "secondary", "data-act": "spot", onclick: () => toggleSpot(cid) })));
      grid.append(tile);
    }
    const video = list.find((tr) => tr.kind === "video" && tr.classroom_id === cid);
    if (video) mediaFor(tile.querySelector(".video"), "v", video.track, "video");
    const has = floor.granted.includes(cid);
    const muted = floor.muted.includes(cid);
    const hand = floor.queue.includes(cid);
    const spot = floor.spotlight === cid;
    tile.classList.toggle("floor", has);
    tile.classList.toggle("speaking", speaking === cid);
    tile.classList.toggle("muted", muted);
    tile.classList.toggle("hand", hand);
    tile.classList.toggle("spotlit", spot);
    tile.querySelector(".key").textContent = index < 9 ? String(index + 1) : "";
    for (const [cls, key, on] of [["hand", "tile.hand", hand], ["mic-off", "tile.muted", muted], ["on-floor", "tile.floor", has]]) {
      const icon = tile.querySelector(`.icon.${cls}`);
      icon.classList.toggle("hidden", !on);
      icon.title = t(key);
      icon.setAttribute("aria-label", t(key));
    }
    const grant = tile.querySelector('[data-act="grant"]');
    grant.textContent = t(has ? "revoke" : "grant");
    grant.className = has ? "warn" : "";
    if (index < 9) grant.setAttribute("aria-keyshortcuts", String(index + 1));
    const mute = tile.querySelector('[data-act="mute"]');
    mute.textContent = t(muted ? "unmute" : "mute");
    mute.setAttribute("aria-pressed", String(muted));
    const spotButton = tile.querySelector('[data-act="spot"]');
    spotButton.textContent = t(spot ? "spot.on" : "spot");
    spotButton.title = t(spot ? "spot.on.title" : "spot.title");
    spotButton.setAttribute("aria-pressed", String(spot));
    spotButton.className = spot ? "on" : "secondary";
    for (const b of tile.querySelectorAll("button")) b.disabled = !!ended;
    showLink(tile.querySelector(".net"), links[cid]);
  });
  // keep the grid in the participants' order (the shortcut digits follow it)
  participants().forEach((p) => { const tile = grid.querySelector(`[data-classroom="${CSS.escape(p.classroom_id)}"]`); if (tile) grid.append(tile); });
  for (const tile of [...grid.children]) if (!keep.has(tile.dataset.classroom)) tile.remove();
  const audio = $("audio");
  const mids = new Set();
  for (const tr of list.filter((x) => x.kind === "audio")) { mediaFor(audio, tr.mid, tr.track, "audio"); mids.add(tr.mid); }
  for (const node of [...audio.children]) if (!mids.has(node.dataset.key)) node.remove();
  renderAbsent();
}

// The lesson's expected remote classrooms (joined.expected) that are not connected now.
function renderAbsent() {
  const expected = client.joined?.expected || [];
  const here = new Set(participants().map((p) => p.classroom_id));
  const absent = expected.filter((c) => !here.has(c.classroom_id));
  $("absent").replaceChildren(...absent.map((c) => el("li", { "data-classroom": c.classroom_id }, c.name || c.classroom_id)));
  $("absent-count").textContent = expected.length ? `${absent.length} / ${expected.length}` : "";
  $("absent-none").classList.toggle("hidden", absent.length > 0 || !expected.length);
}

function showFloor(f) {
  floor = f;
  const q = $("queue");
  q.replaceChildren(...f.queue.map((cid) => el("li", {}, icon("hand"), el("span", { class: "name" }, ` ${nameOf(cid)} `),
    el("button", { class: "small", onclick: () => act("grant_floor", cid) }, t("grant")))));
  for (const b of q.querySelectorAll("button")) b.disabled = !!ended;
  $("queue-empty").classList.toggle("hidden", f.queue.length > 0);
  $("spot-off").disabled = !f.spotlight || !!ended;
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
$("spot-off").addEventListener("click", () => { if (floor.spotlight) act("spotlight", null); });

// End the lesson for everybody (after a confirmation).
$("end").addEventListener("click", () => $("end-dialog").showModal());
$("end-dialog").addEventListener("close", () => {
  if ($("end-dialog").returnValue !== "end") return;
  client.request({ type: "end_lesson" }).catch((err) => { if (!ended) toast(errorText(err, "end_lesson")); });
});
client.addEventListener("lesson_ended", (e) => {
  ended = e.detail;
  notice(t("lesson_ended"));
  showState();
  showLive();
  showRecording(false);
  showFloor(floor);
  for (const s of client.publishing?.stream.getTracks() || []) s.stop();
});

// Keyboard shortcuts (documented in the "?" help): G grant the first raised hand, R revoke,
// 1–9 grant/revoke that tile's classroom, S spotlight toggle on the floor holder, ? help.
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target;
  if (target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  if (document.querySelector("dialog[open]") && e.key !== "?") return; // a dialog has the keys (Esc closes it)
  const key = e.key.toLowerCase();
  if (e.key === "?") {
    const help = $("help");
    help.open ? help.close() : help.showModal();
  } else if (key === "g") {
    if (floor.queue.length) act("grant_floor", floor.queue[0]);
  } else if (key === "r") {
    for (const cid of floor.granted) act("revoke_floor", cid);
  } else if (key === "s") {
    const holder = floor.granted[floor.granted.length - 1];
    if (floor.spotlight) act("spotlight", null);
    else if (holder) act("spotlight", holder);
  } else if (/^[1-9]$/.test(e.key)) {
    const p = participants()[Number(e.key) - 1];
    if (p) toggleFloor(p.classroom_id);
  } else return;
  e.preventDefault();
});
$("help-button").addEventListener("click", () => $("help").showModal());

i18nEvents.addEventListener("langchange", () => {
  title(); showState(); showLive(); showViewers(); showFloor(floor);
});

client.connect();

function showLink(dot, link) {
  if (!dot) return;
  dot.dataset.quality = link ? link.quality : "unknown";
  dot.title = link ? linkText(link) : `${t("net.title")}: …`;
}
