// Observation notes on the observer page (听评课, docs/observation.md): a text box, the rubric's
// dimensions, a 1–5 score, a "moment" button that anchors the note where it was pressed, and the
// live list of the lesson's notes (this observer's and the other observers'; classrooms never see
// them). Protocol: `note` → `note_saved` (its media time), others' notes arrive as `note`.
import { el } from "./classroom.js";
import { t, errorText, i18nEvents } from "./i18n.js";

export function fmtMs(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function setupNotes(client, token) {
  const $ = (id) => document.getElementById(id);
  const list = $("note-list");
  const seen = new Map(); // note id -> note
  let clockBase = null; // performance.now() at the lesson clock's 0 (joined.elapsed_ms)
  let moment = null; // ms on the lesson clock, when "moment" was pressed
  let rubric = [];

  const lessonMs = () => (clockBase === null ? 0 : Math.round(performance.now() - clockBase));

  function showMoment() {
    $("note-moment").textContent = moment === null ? t("notes.moment") : t("notes.moment.marked", { t: fmtMs(moment) });
    $("note-moment").classList.toggle("on", moment !== null);
  }

  function fillRubric() {
    const select = $("note-dimension");
    const keep = select.value;
    select.replaceChildren(el("option", { value: "" }, t("notes.dimension.none")),
      ...rubric.map((d) => el("option", { value: d }, d)));
    select.value = rubric.includes(keep) ? keep : "";
    const score = $("note-score");
    const kept = score.value;
    score.replaceChildren(el("option", { value: "" }, t("notes.score.none")),
      ...[1, 2, 3, 4, 5].map((n) => el("option", { value: String(n) }, String(n))));
    score.value = kept;
  }

  function render() {
    const notes = [...seen.values()].sort((a, b) => a.t_ms - b.t_ms || a.id.localeCompare(b.id));
    list.replaceChildren(...notes.map((n) => el("li", { class: "note", "data-note-id": n.id, "data-t-ms": String(n.t_ms) },
      el("span", { class: "t" }, fmtMs(n.t_ms)),
      el("b", {}, n.author),
      n.dimension ? el("span", { class: "dim" }, n.dimension) : "",
      n.score ? el("span", { class: "score" }, `${n.score}/5`) : "",
      n.moment ? el("span", { class: "moment", title: t("notes.moment.title") }, "★") : "",
      el("span", { class: "text" }, n.text))));
    $("note-empty").hidden = notes.length > 0;
  }

  function add(note) {
    if (!note || typeof note.id !== "string") return;
    seen.set(note.id, note);
    render();
  }

  async function loadEarlier(lessonId) {
    // notes written before this page joined (or while it was reconnecting)
    try {
      const resp = await fetch(`/api/lessons/${encodeURIComponent(lessonId)}/notes`,
        { headers: { Authorization: `Bearer ${token}` } });
      if (!resp.ok) return;
      const body = await resp.json();
      for (const n of body.notes || []) seen.set(n.id, n);
      render();
    } catch (e) { /* offline: the live list still fills */ }
  }

  client.addEventListener("joined", (e) => {
    const j = e.detail;
    if (typeof j.elapsed_ms === "number") clockBase = performance.now() - j.elapsed_ms;
    rubric = Array.isArray(j.rubric) ? j.rubric : [];
    fillRubric();
    loadEarlier(j.lesson_id);
  });
  client.addEventListener("note", (e) => add(e.detail.note));

  $("note-moment").addEventListener("click", () => {
    moment = moment === null ? lessonMs() : null;
    showMoment();
  });

  $("note-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("note-text").value.trim();
    if (!text) { $("note-status").textContent = t("notes.empty_text"); return; }
    const msg = { type: "note", text };
    if ($("note-dimension").value) msg.dimension = $("note-dimension").value;
    if ($("note-score").value) msg.score = Number($("note-score").value);
    if (moment !== null) msg.moment = moment;
    $("note-send").disabled = true;
    try {
      const saved = await client.request(msg);
      add(saved.note);
      $("note-text").value = "";
      moment = null;
      showMoment();
      $("note-status").textContent = t("notes.saved", { t: fmtMs(saved.t_ms) });
    } catch (err) {
      $("note-status").textContent = t("notes.failed", { reason: errorText(err, "note") });
    } finally {
      $("note-send").disabled = false;
    }
  });

  i18nEvents.addEventListener("langchange", () => { fillRubric(); showMoment(); render(); });
  fillRubric();
  showMoment();
  render();
  return { lessonMs, notes: () => [...seen.values()] };
}
