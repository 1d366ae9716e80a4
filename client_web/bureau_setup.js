// District set-up (学区设置) on the bureau page: schools, classrooms (lead-capable or remote),
// teachers, administrators and devices (their keys are shown once), and the CSV import of a
// district's schools and classrooms with a dry-run preview before anything is created.
// Strings: i18n.js ("bu.*"); the page draws this again when the language changes.

import { api, copyText, el } from "./bureau_api.js";
import { explain } from "./bureau_messages.js";
import { i18nEvents, lang, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ROLES = ["lead", "remote"];
const KINDS = ["browser", "hardware"];
const roleText = (r) => t(`bu.role.${r}`);
const kindText = (k) => t(`bu.kind.${k}`);

const setup = { dir: null, onChange: async () => {}, csvFile: null, lastImport: null };

function fail(box, err) {
  $(box).textContent = err?.code ? explain(err) : String(err?.message || err);
}

async function act(box, fn) {
  $(box).textContent = "";
  try {
    await fn();
  } catch (err) {
    fail(box, err);
    return false;
  }
  await setup.onChange();
  return true;
}

function options(list, label) {
  return list.map((x) => el("option", { value: x.id, text: label(x) }));
}

function nameCell(value, onSave, box) {
  const input = el("input", { value, maxlength: "200", class: "name-edit", "aria-label": t("bu.name") });
  const save = el("button", {
    type: "button", class: "secondary small", text: t("bu.save"),
    onclick: () => act(box, () => onSave(input.value)),
  });
  return el("td", { class: "name-cell" }, input, save);
}

function deleteButton(box, what, fn) {
  return el("button", {
    type: "button", class: "danger small", text: t("bu.delete"),
    onclick: () => { if (confirm(t("bu.delete.confirm", { what }))) act(box, fn); },
  });
}

// ---- rendering ------------------------------------------------------------------------------
export function renderSetup(dir) {
  setup.dir = dir;
  const schools = [...dir.schools.entries()].map(([id, name]) => ({ id, name }));
  const schoolName = (id) => dir.schools.get(id) || id;
  for (const id of ["classroom-school", "teacher-school"]) {
    const sel = $(id);
    const keep = sel.value;
    sel.replaceChildren(...options(schools, (s) => s.name));
    if (keep && dir.schools.has(keep)) sel.value = keep;
  }
  const deviceSel = $("device-classroom");
  const keepRoom = deviceSel.value;
  deviceSel.replaceChildren(...options(dir.classrooms, (c) => `${c.name} · ${schoolName(c.school_id)}`));
  if (keepRoom) deviceSel.value = keepRoom;
  $("setup-empty").classList.toggle("hidden", schools.length > 0);

  $("schools-table").replaceChildren(...schools.map((s) => el("tr", { "data-school": s.id },
    nameCell(s.name, (name) => api("PATCH", `/api/schools/${s.id}`, { name }), "schools-error"),
    el("td", { text: t("bu.school_counts", {
      rooms: dir.classrooms.filter((c) => c.school_id === s.id).length,
      teachers: dir.teachers.filter((x) => x.school_id === s.id).length,
    }) }),
    el("td", {}, deleteButton("schools-error", s.name, () => api("DELETE", `/api/schools/${s.id}`))))));

  $("classrooms-table").replaceChildren(...dir.classrooms.map((c) => {
    const role = el("select", { class: "role-edit", "aria-label": t("bu.role") },
      ...ROLES.map((v) => el("option", { value: v, text: roleText(v) })));
    role.value = c.lead_capable === false ? "remote" : "lead";
    const kind = el("select", { class: "kind-edit", "aria-label": t("bu.field.kind") },
      ...KINDS.map((v) => el("option", { value: v, text: kindText(v) })));
    kind.value = c.kind;
    const change = (body) => act("classrooms-error", () => api("PATCH", `/api/classrooms/${c.id}`, body));
    role.addEventListener("change", () => change({ lead_capable: role.value === "lead" }));
    kind.addEventListener("change", () => change({ kind: kind.value }));
    return el("tr", { "data-classroom": c.id, "data-role": role.value },
      el("td", { text: schoolName(c.school_id) }),
      nameCell(c.name, (name) => api("PATCH", `/api/classrooms/${c.id}`, { name }), "classrooms-error"),
      el("td", {}, role), el("td", {}, kind),
      el("td", {}, deleteButton("classrooms-error", c.name, () => api("DELETE", `/api/classrooms/${c.id}`))));
  }));

  $("teachers-table").replaceChildren(...dir.teachers.map((x) => el("tr", { "data-teacher": x.id },
    el("td", { text: schoolName(x.school_id) }),
    nameCell(x.name, (name) => api("PATCH", `/api/teachers/${x.id}`, { name }), "teachers-error"),
    el("td", {}, deleteButton("teachers-error", x.name, () => api("DELETE", `/api/teachers/${x.id}`))))));
}

async function renderCredentials() {
  const [admins, devices] = await Promise.all([api("GET", "/api/admins"), api("GET", "/api/devices")]);
  const roomName = (id) => setup.dir?.classrooms.find((c) => c.id === id)?.name || id;
  $("admins-table").replaceChildren(...admins.admins.map((a) => el("tr", { "data-admin": a.id },
    el("td", { text: a.name + (a.me ? t("bu.me") : "") }),
    el("td", { text: a.created_at.slice(0, 10) }),
    el("td", { text: t(a.revoked ? "bu.revoked" : "bu.active") }),
    el("td", {}, a.revoked || a.me ? null : el("button", {
      type: "button", class: "danger small", text: t("bu.revoke"),
      onclick: () => { if (confirm(t("bu.revoke.confirm", { name: a.name }))) act("admins-error", () => api("DELETE", `/api/admins/${a.id}`)); },
    })))));
  $("devices-table").replaceChildren(...devices.devices.map((d) => el("tr", { "data-device": d.id },
    el("td", { text: d.name }), el("td", { text: roomName(d.classroom_id) }),
    el("td", { text: t(d.revoked ? "bu.revoked" : "bu.active") }),
    el("td", { class: "device-seen", text: deviceSeen(d) }),
    el("td", {}, d.revoked ? null : el("button", {
      type: "button", class: "danger small", text: t("bu.revoke"),
      onclick: () => { if (confirm(t("bu.revoke.confirm", { name: d.name }))) act("devices-error", () => api("DELETE", `/api/devices/${d.id}`)); },
    })))));
}

// A device's latest health report (POST /api/device/health, sent by `classroom agent`).
function deviceSeen(d) {
  if (!d.last_seen) return t("bu.seen.never");
  const when = new Date(d.last_seen).toLocaleString(lang());
  if (!d.online) return t("bu.seen.offline", { when });
  const h = d.health || {};
  const state = t(h.state === "in_lesson" ? "bu.seen.in_lesson" : "bu.seen.online");
  const link = h.rtt_ms == null ? "" : ` · RTT ${Math.round(h.rtt_ms)} ms · ${t("bu.seen.loss")} ${Math.round((h.loss || 0) * 100)}%`;
  const cpu = h.cpu_percent == null ? "" : ` · CPU ${Math.round(h.cpu_percent)}%`;
  return `${state} · ${when} · v${h.version || "?"} · ${t("bu.seen.recv")} ${h.frames_received_video ?? 0} · ${t("bu.seen.sent")} ${h.frames_sent_video ?? 0}${link}${cpu}`;
}

function showSecret(box, label, secret) {
  $(box).replaceChildren(
    el("p", { text: t("bu.secret.once", { label }) }),
    el("code", { class: "secret", text: secret }),
    el("button", { type: "button", class: "secondary small", text: t("bu.copy"), onclick: () => copyText(secret) }));
  $(box).classList.remove("hidden");
}

// ---- CSV import -----------------------------------------------------------------------------
function renderImport(result) {
  setup.lastImport = result;
  const rows = new Map();
  for (const r of result.rows) rows.set(r.row, { ...r, problems: [] });
  for (const e of result.errors) {
    if (!rows.has(e.row)) rows.set(e.row, { row: e.row, ...(e.values || {}), problems: [] });
    rows.get(e.row).problems.push(e);
  }
  const sorted = [...rows.values()].sort((a, b) => a.row - b.row);
  const ok = result.rows.length;
  const bad = result.bad_rows?.length ?? 0;
  const summary = result.dry_run
    ? t("bu.csv.dry_run", { ok, bad }) +
      (result.new_schools.length ? t("bu.csv.new_schools", { names: result.new_schools.join(lang() === "en" ? ", " : "、") }) : "")
    : t("bu.csv.imported", { rooms: result.created.classrooms.length, schools: result.created.schools.length, bad });
  $("csv-summary").textContent = summary;
  if (result.ignored_columns?.length) {
    $("csv-summary").textContent += t("bu.csv.ignored", { cols: result.ignored_columns.join(", ") });
  }
  $("csv-preview").replaceChildren(
    el("tr", {}, ...["bu.csv.row", "bu.field.school_id", "bu.field.classroom_id", "bu.role", "bu.csv.status"]
      .map((k) => el("th", { text: t(k) }))),
    ...sorted.map((r) => el("tr", { class: r.problems.length ? "bad" : "ok", "data-row": String(r.row) },
      el("td", { text: String(r.row) }),
      el("td", { text: r.school ?? "" }), el("td", { text: r.classroom ?? "" }),
      el("td", { text: r.problems.length ? (r.role ?? "") : roleText(r.lead_capable ? "lead" : "remote") }),
      el("td", {}, ...(r.problems.length
        ? r.problems.map((p) => el("div", { class: "problem", "data-field": p.field,
          text: `${p.field}: ${lang() === "en" ? p.message : p.message_zh || p.message}` }))
        : [el("span", { text: t(result.dry_run ? "bu.csv.ok" : "bu.csv.done") })])))));
  $("csv-import").disabled = !result.dry_run || ok === 0;
}

async function csvCheck(dryRun) {
  $("csv-error").textContent = "";
  const file = $("csv-file").files[0];
  if (!file) { $("csv-error").textContent = t("bu.csv.choose"); return; }
  try {
    const result = await api("POST", `/api/import/classrooms?dry_run=${dryRun ? 1 : 0}`, file);
    renderImport(result);
    if (!dryRun) await setup.onChange();
  } catch (err) {
    $("csv-import").disabled = true;
    $("csv-error").textContent = err.details?.message_zh
      ? (lang() === "en" ? err.message : err.details.message_zh) : explain(err);
  }
}

// ---- wiring ---------------------------------------------------------------------------------
export function initSetup(onChange) {
  setup.onChange = async () => { await onChange(); await renderCredentials().catch(console.warn); };
  // After an add, the name fields are cleared at once (before the lists are reloaded: the next
  // entry may be typed meanwhile); the school / role / kind choices stay for the next one.
  const submit = (formId, box, fn) => $(formId).addEventListener("submit", async (e) => {
    e.preventDefault();
    await act(box, async () => {
      await fn();
      for (const input of $(formId).querySelectorAll("input")) input.value = "";
    });
  });
  submit("school-form", "schools-error", () => api("POST", "/api/schools", { name: $("school-name").value }));
  submit("classroom-form", "classrooms-error", () => api("POST", "/api/classrooms", {
    school_id: $("classroom-school").value, name: $("classroom-name").value,
    lead_capable: $("classroom-role").value === "lead", kind: $("classroom-kind").value,
  }));
  submit("teacher-form", "teachers-error", () => api("POST", "/api/teachers", {
    school_id: $("teacher-school").value, name: $("teacher-name").value,
  }));
  $("admin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("admins-error").textContent = "";
    try {
      const a = await api("POST", "/api/admins", { name: $("admin-name").value });
      showSecret("admin-secret", t("bu.secret.admin", { name: a.name }), a.api_key);
      $("admin-form").reset();
      await renderCredentials();
    } catch (err) { fail("admins-error", err); }
  });
  $("device-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("devices-error").textContent = "";
    try {
      const d = await api("POST", "/api/devices", { classroom_id: $("device-classroom").value, name: $("device-name").value });
      showSecret("device-secret", t("bu.secret.device", { name: d.name }), d.credential);
      $("device-form").reset();
      await renderCredentials();
    } catch (err) { fail("devices-error", err); }
  });
  $("csv-file").addEventListener("change", () => {
    $("csv-import").disabled = true;
    $("csv-preview").replaceChildren();
    $("csv-summary").textContent = "";
    setup.lastImport = null;
  });
  i18nEvents.addEventListener("langchange", () => { if (setup.lastImport) renderImport(setup.lastImport); });
  $("csv-check").addEventListener("click", () => csvCheck(true));
  $("csv-import").addEventListener("click", () => csvCheck(false));
}

export async function showSetup() {
  await renderCredentials().catch(console.warn);
}
