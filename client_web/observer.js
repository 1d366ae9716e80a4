// Observer (巡课) page for bureau inspectors: the lead classroom big, every remote classroom in a
// grid, what the classrooms hear. It publishes nothing and the classrooms do not see it.
import { ClassroomClient, tokenFromUrl, claimsOf, el, mediaFor } from "./classroom.js";

const token = tokenFromUrl();
const claims = claimsOf(token) || {};
const $ = (id) => document.getElementById(id);
const client = new ClassroomClient(token);
window.classroom = client;
window.firstFrameMs = null;
$("title").textContent = `巡课 Observer — ${claims.lesson_title || ""}`;

function notice(text) { const n = $("notice"); n.textContent = text; n.classList.toggle("show", !!text); }
client.addEventListener("state", (e) => {
  $("state").textContent = { joined: "已连接 connected", reconnecting: "重连中 reconnecting" }[e.detail] || e.detail;
});
client.addEventListener("error", (e) => {
  if (e.detail.code && e.detail.code.startsWith("token")) notice(`无法加入 Cannot join: ${e.detail.message}`);
});
$("main").addEventListener("loadeddata", () => { if (window.firstFrameMs === null) window.firstFrameMs = performance.now(); });

function render(list) {
  const lead = (client.joined?.participants || []).find((p) => p.role === "lead");
  const leadId = lead ? lead.classroom_id : null;
  const fromLead = list.filter((t) => t.classroom_id === leadId && t.kind === "video");
  const main = fromLead.find((t) => t.source === "screen") || fromLead.find((t) => t.source === "teacher");
  const video = $("main");
  if (main && (!video.srcObject || video.srcObject.getTracks()[0] !== main.track)) {
    video.srcObject = new MediaStream([main.track]);
    video.play().catch(() => {});
  }
  const grid = $("grid");
  const keep = new Set();
  for (const t of list.filter((t) => t.kind === "video" && t.classroom_id !== leadId)) {
    keep.add(t.classroom_id);
    let tile = grid.querySelector(`[data-classroom="${t.classroom_id}"]`);
    if (!tile) {
      const name = (client.joined?.participants || []).find((p) => p.classroom_id === t.classroom_id)?.name;
      tile = el("div", { class: "tile", "data-classroom": t.classroom_id },
        el("span", { class: "label" }, name || t.classroom_id), el("div", { class: "video" }));
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
client.connect();
