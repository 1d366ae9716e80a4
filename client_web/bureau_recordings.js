// Bureau page: recordings (录像) — every recording the bureau may see (its lessons', one line per
// week of a weekly lesson, and the demo lesson's), each with playback and analysis-report links
// and when retention deletes it; and the bureau's recording default for new lessons, with the
// server's retention and free-disk guard. The section is added to the schedule view; it loads
// once the administrator is logged in (#app shown) and on "refresh". bureau.html#recordings
// (the index page's "Recording playback" link) scrolls to it. Strings: i18n.js ("bu.recs.*").

import { api, el } from "./bureau_api.js";
import { i18nEvents, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

function duration(ms) {
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  return m ? t("bu.recs.min", { m, s: s % 60 }) : t("bu.recs.sec", { s });
}

function gib(bytes) {
  return bytes === null || bytes === undefined ? "?" : `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function card() {
  return el("section", { class: "card", id: "recordings-card" },
    el("div", { class: "toolbar" },
      el("h2", { "data-i18n": "bu.recs", text: t("bu.recs") }),
      el("button", { id: "recordings-refresh", class: "secondary", type: "button", "data-i18n": "bu.refresh", text: t("bu.refresh"),
        onclick: () => refreshRecordings().catch(console.warn) })),
    el("p", { class: "rooms" },
      el("label", { class: "inline" },
        el("input", { id: "rec-default", type: "checkbox", onchange: (e) => setDefault(e.target) }),
        " ", el("span", { "data-i18n": "bu.recs.default", text: t("bu.recs.default") })),
      el("span", { id: "rec-policy", class: "muted" })),
    el("p", { id: "rec-guard", class: "form-error hidden", role: "alert" }),
    el("p", { class: "rooms" },
      el("label", { class: "inline" }, el("span", { "data-i18n": "bu.recs.lesson", text: t("bu.recs.lesson") }), " ",
        el("select", { id: "recordings-lesson", onchange: () => render() },
          el("option", { value: "", text: t("bu.recs.all") })))),
    el("ul", { id: "recordings", class: "today" }),
    el("p", { id: "recordings-empty", class: "muted hidden",
      "data-i18n": "bu.recs.empty", text: t("bu.recs.empty") }));
}

function row(r) {
  const what = r.schedule_lesson_id ? `${r.subject ? `${r.subject} · ` : ""}${r.title}` : `${r.title} (${r.lesson_id})`;
  const state = t(r.recording_now ? "bu.recs.now" : r.complete ? "bu.recs.complete" : "bu.recs.incomplete");
  return el("li", { "data-recording": r.recording_id, "data-lesson": r.schedule_lesson_id || r.lesson_id },
    el("div", { class: "head" },
      el("strong", { text: `${r.date} ${r.started_at.slice(11, 16)} UTC` }),
      el("span", { text: what }),
      el("span", { class: `badge ${r.recording_now ? "live" : "ended"}`, text: state }),
      el("span", { class: "muted", text: `${duration(r.duration_ms)} · ${t("bu.recs.tracks", { n: r.tracks })}` })),
    el("div", { class: "rooms recordings" },
      el("a", { class: "playback-link", href: r.playback_url, target: "_blank", rel: "noopener",
        text: t("bu.rec.playback") }),
      r.report_url
        ? el("a", { class: "report-link", href: r.report_url, target: "_blank", rel: "noopener",
          text: t("bu.rec.report") })
        : el("span", { class: "muted", text: t("bu.recs.no_report") }),
      el("span", { class: "muted", text: r.expires_at
        ? t("bu.recs.kept_until", { date: r.expires_at.slice(0, 10) }) : t("bu.recs.kept") })));
}

let settings = null;
let all = [];
const lessonKey = (r) => r.schedule_lesson_id || r.lesson_id;

// One line per recording (per occurrence), newest first; the select narrows it to one lesson
// (every week of a weekly lesson).
function render() {
  const select = $("recordings-lesson");
  const chosen = select.value;
  const lessons = new Map();
  for (const r of all) if (!lessons.has(lessonKey(r))) lessons.set(lessonKey(r), r.title);
  select.replaceChildren(el("option", { value: "", text: t("bu.recs.all") }),
    ...[...lessons].map(([id, title]) => el("option", { value: id, text: `${title} (${id})` })));
  select.value = lessons.has(chosen) ? chosen : "";
  const shown = all.filter((r) => !select.value || lessonKey(r) === select.value);
  $("recordings").replaceChildren(...shown.map(row));
  $("recordings-empty").classList.toggle("hidden", shown.length > 0);
}

// Show one lesson's recordings (e.g. from the lesson editor or a link).
export function showLessonRecordings(lessonId) {
  $("recordings-lesson").value = lessonId;
  render();
  $("recordings-card").scrollIntoView();
}

function showSettings(s) {
  settings = s;
  const box = $("rec-default");
  box.checked = s.recording_default;
  // the lesson form's "Record this lesson" starts from the bureau's default (form.reset())
  const lessonBox = $("f-recording");
  if (lessonBox) lessonBox.defaultChecked = s.recording_default;
  const kept = s.retention_days > 0 ? t("bu.recs.retention", { days: s.retention_days }) : t("bu.recs.forever");
  $("rec-policy").textContent = ` · ${s.enabled ? kept : t("bu.recs.off")}`;
  const guard = s.disk_guard;
  const warn = $("rec-guard");
  if (guard && guard.tripped) {
    warn.textContent = t("bu.recs.guard", { free: gib(guard.free_bytes), need: gib(guard.min_free_bytes) });
    warn.classList.remove("hidden");
  } else {
    warn.classList.add("hidden");
  }
}

async function setDefault(box) {
  try {
    showSettings(await api("PUT", "/api/settings/recording", { recording_default: box.checked }));
  } catch (err) {
    console.warn(err);
    box.checked = settings ? settings.recording_default : !box.checked;
  }
}

export async function refreshRecordings() {
  const [s, list] = await Promise.all([api("GET", "/api/settings/recording"), api("GET", "/api/recordings")]);
  showSettings(s);
  all = list.recordings;
  render();
  window.bureauRecordings = all; // for tests and debugging
}

export function initRecordings() {
  const view = $("schedule-view") || $("app");
  if (!view || $("recordings-card")) return;
  view.append(card());
  const app = $("app");
  let loaded = false;
  const load = () => {
    if (loaded || app.classList.contains("hidden")) return;
    loaded = true;
    refreshRecordings().then(() => {
      if (location.hash === "#recordings") $("recordings-card").scrollIntoView();
    }).catch((err) => { loaded = false; console.warn(err); });
  };
  new MutationObserver(load).observe(app, { attributes: true, attributeFilter: ["class"] });
  load();
  setInterval(() => { if (loaded) refreshRecordings().catch(console.warn); }, 30000);
  i18nEvents.addEventListener("langchange", () => { if (settings) showSettings(settings); render(); });
}
