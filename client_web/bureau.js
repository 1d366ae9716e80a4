// Bureau schedule page (教育局排课): log in with an administrator API key (kept in
// sessionStorage), see the week's timetable, create / edit / cancel lessons with conflict errors
// shown inline, and follow today's lessons live with their join links.
// Times shown are the bureau's local times exactly as the API returns them.
// District set-up lives in bureau_setup.js, join links of any lesson in bureau_links.js,
// error texts (naming the field) in bureau_messages.js. Every string the page shows comes from
// i18n.js ("bu.*"; zh-CN by default, en with ?lang=en or the EN / 中文 toggle in the header).

import { ApiError, api, el, setKey } from "./bureau_api.js";
import { openLinks, initLinks } from "./bureau_links.js";
import { explain, fieldLabel } from "./bureau_messages.js";
import { applyI18n, i18nEvents, langToggle, t } from "./i18n.js";
import { initSetup, renderSetup, showSetup } from "./bureau_setup.js";
import { initAnalytics, showAnalytics } from "./bureau_analytics.js";
import { initRecordings } from "./bureau_recordings.js";

export { ApiError, api };

const KEY_STORAGE = "classroom.bureau.apiKey";
const HOUR_PX = 48;
// The timetable shows 07:00-19:00, stretched to fit any earlier or later lesson of the week.
const DAY_FIRST_HOUR = 7;
const DAY_LAST_HOUR = 19;
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORAGE) || "",
  me: null,
  schools: new Map(),
  classrooms: [],
  teachers: [],
  today: null,
  weekOf: null,
  editing: null, // the lesson being edited, or null for a new one
  editingDate: null, // the occurrence date that was clicked
  links: new Map(), // occurrence_id -> links response
  pollTimer: null,
};
window.bureau = state; // for tests and debugging

// ---- small helpers --------------------------------------------------------------------------
const hhmm = (iso) => iso.slice(11, 16);
const dayOf = (iso) => iso.slice(0, 10);
function addDays(day, n) {
  const [y, m, d] = day.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + n));
  return t.toISOString().slice(0, 10);
}
function minutes(iso) { return Number(iso.slice(11, 13)) * 60 + Number(iso.slice(14, 16)); }
const roomName = (id) => state.classrooms.find((c) => c.id === id)?.name || id;
const teacherName = (id) => state.teachers.find((x) => x.id === id)?.name || id;
const weekday = (i) => t(`bu.wd.${i}`);
const STATUSES = new Set(["scheduled", "live", "ended", "cancelled"]);
const statusText = (s) => (STATUSES.has(s) ? t(`bu.status.${s}`) : s);

// ---- login ----------------------------------------------------------------------------------
async function login(key) {
  $("login-error").textContent = "";
  try {
    const me = await api("GET", "/api/me", undefined, key);
    state.key = key;
    setKey(key);
    state.me = me;
    sessionStorage.setItem(KEY_STORAGE, key);
  } catch (err) {
    sessionStorage.removeItem(KEY_STORAGE);
    $("login-error").textContent = err.status === 401 ? t("bu.login.invalid") : explain(err);
    return false;
  }
  $("login-view").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("logout").classList.remove("hidden");
  $("bureau-name").textContent = `— ${state.me.bureau.name}`;
  await loadDirectory();
  if (state.schools.size === 0) showView("setup-view"); // a fresh install starts with its district
  await refreshAll();
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(() => refreshToday().catch(console.warn), 5000);
  return true;
}

function logout() {
  sessionStorage.removeItem(KEY_STORAGE);
  clearInterval(state.pollTimer);
  state.key = "";
  location.reload();
}

async function loadDirectory() {
  const [schools, rooms, teachers] = await Promise.all([
    api("GET", "/api/schools"), api("GET", "/api/classrooms"), api("GET", "/api/teachers"),
  ]);
  state.schools = new Map(schools.schools.map((s) => [s.id, s.name]));
  state.classrooms = rooms.classrooms;
  state.teachers = teachers.teachers;
  $("schedule-hint").classList.toggle("hidden", state.classrooms.some((c) => c.lead_capable !== false));
  renderSetup(state);
}

async function refreshAll() {
  await refreshToday();
  await refreshWeek();
}

// ---- today ----------------------------------------------------------------------------------
async function linksFor(occ) {
  if (!state.links.has(occ.occurrence_id)) {
    const q = occ.recurring ? `?date=${occ.date}` : "";
    state.links.set(occ.occurrence_id, await api("GET", `/api/lessons/${occ.lesson_id}/links${q}`));
  }
  return state.links.get(occ.occurrence_id);
}

async function refreshToday() {
  const today = await api("GET", "/api/schedule/today");
  state.today = today.date;
  if (!state.weekOf) state.weekOf = today.date;
  $("today-date").textContent = today.date;
  const list = $("today");
  const items = [];
  for (const occ of today.occurrences) {
    let links = null;
    let recordings = [];
    if (occ.status === "scheduled" || occ.status === "live") {
      try { links = await linksFor(occ); } catch (err) { console.warn(err); }
    } else if (occ.status === "ended") {
      try {
        const all = (await api("GET", `/api/lessons/${occ.lesson_id}/recordings`)).recordings;
        recordings = all.filter((r) => r.lesson_id === occ.occurrence_id);
      } catch (err) { console.warn(err); }
    }
    const item = todayItem(occ, links);
    for (const r of recordings) {
      item.append(el("div", { class: "rooms recordings" },
        el("a", { href: r.playback_url, target: "_blank", rel: "noopener", text: t("bu.rec.playback") }),
        r.report_url ? el("a", { href: r.report_url, target: "_blank", rel: "noopener",
          text: t("bu.rec.report") }) : el("span", { class: "muted", text: t("bu.rec.analysing") })));
    }
    items.push(item);
  }
  list.replaceChildren(...items);
  $("today-empty").classList.toggle("hidden", today.occurrences.length > 0);
}

// What the links dialog needs of a lesson, from one of its occurrences.
function occurrenceLesson(occ) {
  return {
    id: occ.lesson_id, title: occ.title, subject: occ.subject, start: occ.start, end: occ.end,
    recurrence: occ.recurring ? {} : null,
  };
}

function todayItem(occ, links) {
  const connected = new Set(occ.connected || []);
  const rooms = [occ.lead_classroom_id, ...occ.remote_classroom_ids];
  const byRoom = new Map((links?.links || []).map((l) => [l.classroom_id, l]));
  const roomNodes = rooms.map((id, i) => {
    const link = byRoom.get(id);
    return el("span", { class: `room ${connected.has(id) ? "on" : "off"}`, "data-classroom": id },
      `${i === 0 ? t("bu.lead_prefix") : ""}${roomName(id)}`,
      link ? el("a", {
        class: "join-link", href: link.url, target: "_blank", rel: "noopener",
        "data-role": link.role, "data-classroom": id, text: t("bu.join_link"),
      }) : null);
  });
  const observer = links?.links.find((l) => l.role === "observer");
  if (observer) {
    roomNodes.push(el("span", { class: "room" }, el("a", {
      class: "join-link", href: observer.url, target: "_blank", rel: "noopener",
      "data-role": "observer", text: t("bu.observer_link"),
    })));
  }
  return el("li", { "data-occurrence": occ.occurrence_id, "data-status": occ.status },
    el("div", { class: "head" },
      el("strong", { text: `${hhmm(occ.start)}–${hhmm(occ.end)}` }),
      el("span", { text: `${occ.subject} · ${occ.title}` }),
      el("span", { class: `badge ${occ.status}`, text: statusText(occ.status) }),
      occ.status === "live"
        ? el("span", { class: "muted", text: t("bu.connected", { n: connected.size, total: rooms.length }) })
        : null,
      links ? el("button", {
        type: "button", class: "secondary small today-links", text: t("bu.copy_links"),
        onclick: () => openLinks(occurrenceLesson(occ), occ.date),
      }) : null),
    el("div", { class: "rooms" }, ...roomNodes));
}

// ---- week timetable -------------------------------------------------------------------------
async function refreshWeek() {
  const week = await api("GET", `/api/schedule/week?date=${state.weekOf}`);
  $("week-range").textContent = `${week.week_start} – ${week.week_end}`;
  const grid = $("week");
  let FIRST_HOUR = DAY_FIRST_HOUR;
  let LAST_HOUR = DAY_LAST_HOUR;
  for (const o of week.occurrences) {
    FIRST_HOUR = Math.min(FIRST_HOUR, Math.floor(minutes(o.start) / 60));
    const endHour = dayOf(o.end) === dayOf(o.start) ? Math.ceil(minutes(o.end) / 60) : 24;
    LAST_HOUR = Math.max(LAST_HOUR, endHour);
  }
  const height = (LAST_HOUR - FIRST_HOUR) * HOUR_PX;
  const nodes = [el("div")];
  const days = [...Array(7).keys()].map((i) => addDays(week.week_start, i));
  days.forEach((d, i) => nodes.push(el("div", {
    class: `dayhead${d === state.today ? " today" : ""}`, text: `${weekday(i)} ${d.slice(5)}`,
  })));
  const hours = el("div", { class: "hours", style: `height:${height}px` });
  for (let h = FIRST_HOUR; h < LAST_HOUR; h++) {
    hours.append(el("span", { class: "hour", style: `top:${(h - FIRST_HOUR) * HOUR_PX}px`, text: `${h}:00` }));
  }
  nodes.push(hours);
  for (const d of days) {
    const col = el("div", { class: "col", "data-day": d, style: `height:${height}px` });
    for (const occ of week.occurrences.filter((o) => dayOf(o.start) === d)) {
      const top = Math.max(0, (minutes(occ.start) - FIRST_HOUR * 60) * HOUR_PX / 60);
      let end = minutes(occ.end);
      if (dayOf(occ.end) !== d) end = 24 * 60;
      const h = Math.max(18, (end - minutes(occ.start)) * HOUR_PX / 60);
      col.append(el("div", {
        class: `lesson ${occ.status}`, style: `top:${top}px;height:${h}px`,
        "data-lesson": occ.lesson_id, "data-occurrence": occ.occurrence_id,
        title: `${occ.title}\n${roomName(occ.lead_classroom_id)} → ${occ.remote_classroom_ids.map(roomName).join(", ")}`,
        onclick: () => openEditor(occ.lesson_id, occ.date),
      },
      el("div", { class: "t", text: `${hhmm(occ.start)} ${occ.title}` }),
      el("div", { text: `${occ.subject} · ${roomName(occ.lead_classroom_id)}` })));
    }
    nodes.push(col);
  }
  grid.replaceChildren(...nodes);
}

// ---- create / edit --------------------------------------------------------------------------
// The lead list offers only lead-capable classrooms (and a lesson's current lead, kept when it
// was made remote-only later); the remote list never offers the chosen lead.
function fillSelects(keepLead) {
  const lead = $("f-lead");
  const leads = state.classrooms.filter((c) => c.lead_capable !== false || c.id === keepLead);
  lead.replaceChildren(el("option", { value: "", text: leads.length ? t("bu.choose") : t("bu.no_lead") }),
    ...leads.map((c) => el("option", {
      value: c.id, text: `${c.name} (${state.schools.get(c.school_id) || ""})`,
    })));
  $("f-teacher").replaceChildren(el("option", { value: "", text: "—" }),
    ...state.teachers.map((x) => el("option", { value: x.id, text: `${x.name} (${state.schools.get(x.school_id) || ""})` })));
  $("f-remotes").replaceChildren(...state.classrooms.map((c) => el("label", { "data-classroom": c.id },
    el("input", { type: "checkbox", value: c.id, name: "remote" }),
    `${c.name} · ${state.schools.get(c.school_id) || ""}${c.kind === "hardware" ? t("bu.hardware") : ""}`)));
}

// fillSelects() again (after a language change), keeping what was chosen.
function fillSelectsKeeping() {
  const lead = $("f-lead").value, teacher = $("f-teacher").value;
  const checked = new Set([...document.querySelectorAll("#f-remotes input:checked")].map((b) => b.value));
  fillSelects(state.editing?.lead_classroom_id);
  $("f-lead").value = lead;
  $("f-teacher").value = teacher;
  for (const box of document.querySelectorAll("#f-remotes input")) box.checked = checked.has(box.value);
}

function syncRemotes() {
  const leadId = $("f-lead").value;
  for (const label of document.querySelectorAll("#f-remotes label")) {
    const isLead = label.dataset.classroom === leadId;
    label.classList.toggle("hidden", isLead);
    const box = label.querySelector("input");
    box.disabled = isLead;
    if (isLead) box.checked = false;
  }
}

function clearErrors() {
  $("form-error").textContent = "";
  document.querySelectorAll("#lesson-form .invalid").forEach((n) => n.classList.remove("invalid"));
}

// The bureau's date today, in the bureau's time zone (not the browser's), for a form opened
// before the first /api/schedule/today answer arrived.
function bureauToday() {
  const zone = state.me?.bureau?.timezone || "Asia/Shanghai";
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date());
}

async function openEditor(lessonId, day) {
  await loadDirectory();
  const l = lessonId ? await api("GET", `/api/lessons/${lessonId}`) : null;
  fillSelects(l?.lead_classroom_id);
  clearErrors();
  state.editing = null;
  state.editingDate = day || null;
  const form = $("lesson-form");
  form.reset();
  if (l) {
    state.editing = l;
    $("form-title").textContent = t("bu.form.edit", { id: l.id });
    $("f-subject").value = l.subject;
    $("f-title").value = l.title;
    $("f-lead").value = l.lead_classroom_id;
    $("f-teacher").value = l.lead_teacher_id || "";
    $("f-date").value = dayOf(l.start);
    $("f-start").value = hhmm(l.start);
    $("f-end").value = hhmm(l.end);
    $("f-until").value = l.recurrence?.until || "";
    $("f-exceptions").value = (l.recurrence?.exceptions || []).join(", ");
    $("f-recording").checked = l.recording;
    for (const box of document.querySelectorAll("#f-remotes input")) {
      box.checked = l.remote_classroom_ids.includes(box.value);
    }
  } else {
    $("form-title").textContent = t("bu.form.new");
    $("f-date").value = day || state.today || bureauToday();
    $("f-start").value = "09:00";
    $("f-end").value = "09:45";
  }
  const cancellable = state.editing && !state.editing.cancelled;
  $("f-cancel-lesson").classList.toggle("hidden", !cancellable);
  $("f-cancel-occurrence").classList.toggle("hidden",
    !(cancellable && state.editing.recurrence && state.editingDate));
  $("f-save").disabled = !!state.editing?.cancelled;
  $("f-links").classList.toggle("hidden", !cancellable);
  syncRemotes();
  $("lesson-dialog").showModal();
}

export function formBody() {
  const date = $("f-date").value;
  const until = $("f-until").value;
  const exceptions = $("f-exceptions").value.split(/[,\s]+/).filter(Boolean);
  return {
    subject: $("f-subject").value,
    title: $("f-title").value,
    lead_classroom_id: $("f-lead").value,
    lead_teacher_id: $("f-teacher").value || null,
    remote_classroom_ids: [...document.querySelectorAll("#f-remotes input:checked")].map((b) => b.value),
    start: `${date}T${$("f-start").value}:00`,
    end: `${date}T${$("f-end").value}:00`,
    recurrence: until ? { until, exceptions } : null,
    recording: $("f-recording").checked,
  };
}

// The form control of each API field, for marking it.
const FIELD_NODES = {
  subject: "f-subject", title: "f-title", lead_classroom_id: "f-lead", lead_teacher_id: "f-teacher",
  remote_classroom_ids: "f-remotes", start: "f-start", end: "f-end", "recurrence.until": "f-until",
  "recurrence.exceptions": "f-exceptions", recording: "f-recording",
};

function showError(err) {
  const box = $("form-error");
  const lines = [explain(err)];
  const mark = (node) => node && node.classList.add("invalid");
  if (err.code === "conflict") {
    lines.length = 0;
    lines.push(t("bu.conflict"));
    for (const c of err.details.conflicts || []) {
      const what = c.resources.map((r) => (r.type === "teacher"
        ? t("bu.conflict.teacher", { name: teacherName(r.id) }) : t("bu.conflict.classroom", { name: roomName(r.id) }))).join(", ");
      lines.push(`• ${what} — 《${c.title}》 ${dayOf(c.start)} ${hhmm(c.start)}–${hhmm(c.end)} (${c.lesson_id})`);
      for (const r of c.resources) {
        if (r.type === "teacher") mark($("f-teacher"));
        else if (r.id === $("f-lead").value) mark($("f-lead"));
        else mark(document.querySelector(`#f-remotes label[data-classroom="${r.id}"]`));
      }
    }
  } else if (err.field && FIELD_NODES[err.field]) {
    mark($(FIELD_NODES[err.field]));
    if (err.field === "start" || err.field === "end") mark($("f-date"));
  } else if (err.code === "invalid_time") {
    [$("f-date"), $("f-start"), $("f-end")].forEach(mark);
  } else if (err.code === "no_remote_classroom") {
    mark($("f-remotes"));
  }
  box.textContent = lines.join("\n");
}

// Checks the page can make before asking the server, worded like the server's answers.
function localCheck() {
  const missing = (field) => ({ code: "invalid_field", field, details: { field, reason: "required" } });
  if (!$("f-subject").value.trim()) return missing("subject");
  if (!$("f-title").value.trim()) return missing("title");
  if (!$("f-lead").value) return { code: "invalid_field", field: "lead_classroom_id", details: { reason: "id" } };
  if (!document.querySelector("#f-remotes input:checked")) {
    return { code: "no_remote_classroom", field: "remote_classroom_ids", details: {} };
  }
  if (!$("f-date").value || !$("f-start").value || !$("f-end").value) {
    const field = !$("f-start").value ? "start" : "end";
    return { code: "invalid_time", field, details: { field, reason: "required" } };
  }
  return null;
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  try {
    const body = formBody();
    const problem = localCheck();
    if (problem) {
      showError(problem);
      if (!$("f-date").value) $("form-error").textContent += `\n${t("bu.field_error", { field: fieldLabel("date"), text: t("bu.choose_date") })}`;
      return;
    }
    if (state.editing) await api("PUT", `/api/lessons/${state.editing.id}`, body);
    else await api("POST", "/api/lessons", body);
  } catch (err) {
    if (err instanceof ApiError) { showError(err); return; }
    throw err;
  }
  $("lesson-dialog").close();
  state.links.clear();
  state.weekOf = $("f-date").value || state.weekOf;
  await refreshAll();
}

async function cancelLesson(oneWeek) {
  clearErrors();
  const l = state.editing;
  const what = oneWeek ? t("bu.cancel.one", { date: state.editingDate }) : t("bu.cancel.all");
  if (!confirm(t("bu.cancel.confirm", { title: l.title, what }))) return;
  try {
    await api("POST", `/api/lessons/${l.id}/cancel`, oneWeek ? { date: state.editingDate } : {});
  } catch (err) {
    if (err instanceof ApiError) { showError(err); return; }
    throw err;
  }
  $("lesson-dialog").close();
  state.links.clear();
  await refreshAll();
}

// ---- wiring ---------------------------------------------------------------------------------
function showView(id) {
  for (const tab of document.querySelectorAll(".tabs .tab")) {
    tab.classList.toggle("active", tab.dataset.view === id);
    $(tab.dataset.view).classList.toggle("hidden", tab.dataset.view !== id);
  }
  if (id === "setup-view") showSetup().catch(console.warn);
  if (id === "analytics-view") showAnalytics().catch(console.warn);
}

function moveWeek(days) {
  state.weekOf = days === 0 ? state.today : addDays(state.weekOf, days);
  refreshWeek().catch(console.warn);
}

// Static labels (data-i18n in bureau.html) and the page title; the rest is drawn again.
function labels() {
  applyI18n();
  document.title = t("bu.page_title");
  if (state.editing === null && $("lesson-dialog").open) $("form-title").textContent = t("bu.form.new");
  else if (state.editing) $("form-title").textContent = t("bu.form.edit", { id: state.editing.id });
}

function init() {
  labels();
  $("lang-slot").replaceWith(langToggle());
  i18nEvents.addEventListener("langchange", () => {
    labels();
    if (!state.me) return;
    renderSetup(state);
    showSetup().catch(console.warn);
    if ($("lesson-dialog").open) { fillSelectsKeeping(); syncRemotes(); }
    refreshAll().catch(console.warn);
  });
  $("login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("api-key").value.trim()); });
  $("logout").addEventListener("click", logout);
  $("prev-week").addEventListener("click", () => moveWeek(-7));
  $("next-week").addEventListener("click", () => moveWeek(7));
  $("this-week").addEventListener("click", () => moveWeek(0));
  $("new-lesson").addEventListener("click", () => openEditor(null, null));
  $("lesson-form").addEventListener("submit", save);
  $("f-close").addEventListener("click", () => $("lesson-dialog").close());
  $("f-cancel-lesson").addEventListener("click", () => cancelLesson(false));
  $("f-cancel-occurrence").addEventListener("click", () => cancelLesson(true));
  $("f-lead").addEventListener("change", syncRemotes);
  $("f-links").addEventListener("click", () => openLinks(state.editing, state.editingDate));
  for (const tab of document.querySelectorAll(".tabs .tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  initLinks();
  initRecordings();
  initAnalytics();
  initSetup(async () => { await loadDirectory(); await refreshWeek().catch(console.warn); });
  if (state.key) login(state.key);
}

init();
