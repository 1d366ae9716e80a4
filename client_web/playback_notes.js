// Observation notes on the playback page (docs/observation.md): the lesson's notes on the
// timeline beside the floor events (click seeks), filters by observer and rubric dimension, a
// note added at the playback position, CSV export, the report's observation section. Only for a
// page opened with a token that may read them (?token=…: the lesson's observers, its teacher, or
// the bureau's administrators' links); the manifest a playback link serves never holds notes.
import { t as say } from "./i18n.js";

export function setupNotes({ token, lessonId, seek, now, duration, fmt, timeline, status }) {
  const $ = (id) => document.getElementById(id);
  const api = `/api/lessons/${encodeURIComponent(lessonId)}/notes`;
  const auth = { Authorization: `Bearer ${token}` };
  const state = { notes: [], rubric: [], mayAdd: false, author: "", dimension: "" };
  const make = (tag, attrs = {}, text = "") => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text) node.textContent = text;
    return node;
  };

  function visible() {
    return state.notes.filter((n) => (!state.author || n.author === state.author)
      && (!state.dimension || (n.dimension || "") === state.dimension));
  }

  function options(select, values, allLabel, current) {
    select.replaceChildren(make("option", { value: "" }, allLabel), ...values.map((v) => make("option", { value: v }, v)));
    select.value = values.includes(current) ? current : "";
  }

  function render() {
    const authors = [...new Set(state.notes.map((n) => n.author))].sort();
    const dims = [...new Set([...state.rubric, ...state.notes.map((n) => n.dimension).filter(Boolean)])];
    options($("note-filter-author"), authors, say("pbn.all_observers"), state.author);
    options($("note-filter-dimension"), dims, say("pbn.all_dimensions"), state.dimension);
    state.author = $("note-filter-author").value;
    state.dimension = $("note-filter-dimension").value;
    for (const m of [...timeline.querySelectorAll(".note-marker")]) m.remove();
    const shown = visible();
    const items = shown.map((n) => {
      const label = `${n.author}${n.dimension ? ` · ${n.dimension}` : ""}${n.score ? ` · ${n.score}/5` : ""}`;
      const marker = make("button", { type: "button", class: "marker note-marker", "data-t-ms": String(n.t_ms),
                                      "data-note-id": n.id, title: `${fmt(n.t_ms)} ${label}: ${n.text}` });
      marker.style.left = `${(n.t_ms / Math.max(1, duration())) * 100}%`;
      marker.addEventListener("click", (e) => { e.stopPropagation(); seek(n.t_ms); });
      timeline.append(marker);
      const button = make("button", { type: "button", class: "note", "data-t-ms": String(n.t_ms), "data-note-id": n.id });
      button.append(make("span", { class: "t" }, fmt(n.t_ms)), make("b", {}, label),
        make("span", { class: "text" }, n.text));
      button.addEventListener("click", () => seek(n.t_ms));
      const li = make("li");
      li.append(button);
      return li;
    });
    $("note-items").replaceChildren(...items);
    $("note-count").textContent = say("pbn.count", { shown: shown.length, total: state.notes.length });
  }

  async function load() {
    const resp = await fetch(api, { headers: auth, credentials: "same-origin" });
    if (!resp.ok) return false;
    const body = await resp.json();
    state.notes = (body.notes || []).slice().sort((a, b) => a.t_ms - b.t_ms);
    state.rubric = body.rubric || [];
    state.mayAdd = !!body.may_add;
    $("note-add").hidden = !state.mayAdd;
    const dim = $("note-add-dimension");
    dim.replaceChildren(make("option", { value: "" }, say("notes.dimension.none")),
      ...state.rubric.map((d) => make("option", { value: d }, d)));
    const score = $("note-add-score");
    score.replaceChildren(make("option", { value: "" }, say("notes.score.none")),
      ...[1, 2, 3, 4, 5].map((n) => make("option", { value: String(n) }, String(n))));
    const link = $("note-observation");
    link.hidden = !body.observation_url;
    if (body.observation_url) link.href = body.observation_url;
    render();
    return true;
  }

  async function exportCsv() {
    const resp = await fetch(`${api}?format=csv`, { headers: auth, credentials: "same-origin" });
    if (!resp.ok) { status(say("pbn.failed", { code: resp.status })); return; }
    const blob = await resp.blob();
    const a = make("a", { href: URL.createObjectURL(blob), download: `notes-${lessonId}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
  }

  async function addNote(e) {
    e.preventDefault();
    const text = $("note-add-text").value.trim();
    if (!text) return;
    const body = { text, t_ms: Math.round(now()) };
    if ($("note-add-dimension").value) body.dimension = $("note-add-dimension").value;
    if ($("note-add-score").value) body.score = Number($("note-add-score").value);
    const resp = await fetch(api, { method: "POST", headers: { ...auth, "Content-Type": "application/json" },
                                    body: JSON.stringify(body), credentials: "same-origin" });
    if (!resp.ok) {
      let code = resp.status;
      try { code = (await resp.json()).error?.code || code; } catch (err) { /* not JSON */ }
      $("note-add-status").textContent = say("pbn.failed", { code });
      return;
    }
    const saved = (await resp.json()).note;
    state.notes.push(saved);
    state.notes.sort((a, b) => a.t_ms - b.t_ms);
    $("note-add-text").value = "";
    $("note-add-status").textContent = say("notes.saved", { t: fmt(saved.t_ms) });
    render();
  }

  $("note-filter-author").addEventListener("change", (e) => { state.author = e.target.value; render(); });
  $("note-filter-dimension").addEventListener("change", (e) => { state.dimension = e.target.value; render(); });
  $("note-export").addEventListener("click", exportCsv);
  $("note-add").addEventListener("submit", addNote);
  $("note-add-text").placeholder = say("pbn.add.placeholder");
  const ready = load().then((ok) => { $("notes").hidden = !ok; return ok; }).catch(() => false);
  return { ready, get notes() { return state.notes.slice(); }, visible, reload: load };
}
