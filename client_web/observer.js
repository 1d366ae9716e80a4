// Observer (巡课) page for bureau inspectors: the lead classroom big, every remote classroom in a
// grid, what the classrooms hear. It publishes nothing and the classrooms do not see it.
import { ClassroomClient, tokenFromUrl, claimsOf, el, mediaFor } from "./classroom.js";
import { t, errorText, applyI18n, langToggle, i18nEvents } from "./i18n.js";
import { setupNotes } from "./observer_notes.js";
import { playMedia } from "./autoplay.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
window.classroom = client;
window.firstFrameMs = null;
let ended = null;
let recorded = false; // a recorder was in the lesson: its playback (with the notes) is worth a link
applyI18n();
$("lang-slot").replaceWith(langToggle());
$("recording-link").href =
  `/api/recordings/${encodeURIComponent(claims.lesson_id || "")}/playback?token=${encodeURIComponent(token)}`;
const showRecording = (active) => { recorded = recorded || !!active; $("recording-link").classList.toggle("hidden", !recorded); };
client.addEventListener("joined", (e) => showRecording(e.detail.recording));
client.addEventListener("recording", (e) => showRecording(e.detail.active));
function title() {
  $("title").textContent = `${t("observer.title")} — ${client.joined?.lesson_title || claims.lesson_title || ""}`;
  document.title = `${t("observer.title")} · ${claims.lesson_title || ""}`;
}
title();

function notice(text) { const n = $("notice"); n.textContent = text; n.classList.toggle("show", !!text); }
function showState() {
  const s = ended ? "ended" : client.state;
  $("state").textContent = t(`state.${s}`);
  $("state").className = `badge ${s === "joined" ? "ok" : s === "reconnecting" ? "warn" : ""}`;
}
client.addEventListener("state", showState);
client.addEventListener("joined", title);
client.addEventListener("error", (e) => {
  const code = e.detail.code;
  if (code && (code.startsWith("token") || code === "lesson_unavailable")) notice(t("cannot_join", { reason: errorText(e.detail) }));
});
client.addEventListener("lesson_ended", (e) => {
  ended = e.detail;
  notice(ended.name ? t("lesson_ended.by", { name: ended.name }) : t("lesson_ended"));
  showState();
});
i18nEvents.addEventListener("langchange", () => { title(); showState(); });
$("main").addEventListener("loadeddata", () => { if (window.firstFrameMs === null) window.firstFrameMs = performance.now(); });

function render(list) {
  const lead = (client.joined?.participants || []).find((p) => p.role === "lead");
  const leadId = lead ? lead.classroom_id : null;
  const fromLead = list.filter((t) => t.classroom_id === leadId && t.kind === "video");
  const main = fromLead.find((t) => t.source === "screen") || fromLead.find((t) => t.source === "teacher");
  const video = $("main");
  if (main && (!video.srcObject || video.srcObject.getTracks()[0] !== main.track)) {
    video.srcObject = new MediaStream([main.track]);
    playMedia(video);
  }
  const grid = $("grid");
  const keep = new Set();
  for (const t of list.filter((t) => t.kind === "video" && t.classroom_id !== leadId)) {
    keep.add(t.classroom_id);
    let tile = grid.querySelector(`[data-classroom="${t.classroom_id}"]`);
    if (!tile) {
      const name = (client.joined?.participants || []).find((p) => p.classroom_id === t.classroom_id)?.name;
      tile = el("div", { class: "tile", "data-classroom": t.classroom_id },
        el("span", { class: "label", title: name || t.classroom_id }, name || t.classroom_id), el("div", { class: "video" }));
      grid.append(tile);
    }
    mediaFor(tile.querySelector(".video"), "v", t.track, "video");
  }
  for (const tile of [...grid.children]) if (!keep.has(tile.dataset.classroom)) tile.remove();
  const audio = $("audio");
  const mids = new Set();
  for (const t of list.filter((t) => t.kind === "audio")) { mediaFor(audio, t.mid, t.track, "audio"); mids.add(t.mid); }
  for (const node of [...audio.children]) if (!mids.has(node.dataset.key)) node.remove();
}
client.addEventListener("tracks", (e) => render(e.detail));
client.addEventListener("participant_joined", (e) => { client.joined.participants.push(e.detail.participant); render(client.trackList()); });
window.notes = setupNotes(client, token);
const placeholder = () => { $("note-text").placeholder = t("notes.text.placeholder"); };
placeholder();
i18nEvents.addEventListener("langchange", placeholder);
client.connect();
