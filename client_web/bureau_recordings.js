// Bureau page: recordings (录像) — every recording the bureau may see (its lessons', one line per
// week of a weekly lesson, and the demo lesson's), each with playback and analysis-report links
// and when retention deletes it; and the bureau's recording default for new lessons, with the
// server's retention and free-disk guard. The section is added to the schedule view; it loads
// once the administrator is logged in (#app shown) and on "refresh". bureau.html#recordings
// (the index page's "Recording playback" link) scrolls to it.

import { api, el } from "./bureau_api.js";

const $ = (id) => document.getElementById(id);

function duration(ms) {
  const s = Math.round(ms / 1000);
  const m = Math.floor(s / 60);
  return m ? `${m} 分 min ${s % 60} 秒 s` : `${s} 秒 s`;
}

function gib(bytes) {
  return bytes === null || bytes === undefined ? "?" : `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function card() {
  return el("section", { class: "card", id: "recordings-card" },
    el("div", { class: "toolbar" },
      el("h2", { text: "录像 Recordings" }),
      el("button", { id: "recordings-refresh", class: "secondary", type: "button", text: "刷新 Refresh",
        onclick: () => refreshRecordings().catch(console.warn) })),
    el("p", { class: "rooms" },
      el("label", { class: "inline" },
        el("input", { id: "rec-default", type: "checkbox", onchange: (e) => setDefault(e.target) }),
        " 新课程默认录制 Record new lessons by default"),
      el("span", { id: "rec-policy", class: "muted" })),
    el("p", { id: "rec-guard", class: "form-error hidden", role: "alert" }),
    el("p", { class: "rooms" },
      el("label", { class: "inline" }, "课程 Lesson ",
        el("select", { id: "recordings-lesson", onchange: () => render() },
          el("option", { value: "", text: "全部 All lessons" })))),
    el("ul", { id: "recordings", class: "today" }),
    el("p", { id: "recordings-empty", class: "muted hidden",
      text: "还没有录像 No recordings yet: a recorded lesson appears here when it has begun." }));
}

function row(r) {
  const what = r.schedule_lesson_id ? `${r.subject ? `${r.subject} · ` : ""}${r.title}` : `${r.title} (${r.lesson_id})`;
  const state = r.recording_now ? "录制中 recording" : r.complete ? "完整 complete" : "未完成 incomplete";
  return el("li", { "data-recording": r.recording_id, "data-lesson": r.schedule_lesson_id || r.lesson_id },
    el("div", { class: "head" },
      el("strong", { text: `${r.date} ${r.started_at.slice(11, 16)} UTC` }),
      el("span", { text: what }),
      el("span", { class: `badge ${r.recording_now ? "live" : "ended"}`, text: state }),
      el("span", { class: "muted", text: `${duration(r.duration_ms)} · ${r.tracks} 轨 tracks` })),
    el("div", { class: "rooms recordings" },
      el("a", { class: "playback-link", href: r.playback_url, target: "_blank", rel: "noopener",
        text: "录像回放 Recording playback" }),
      r.report_url
        ? el("a", { class: "report-link", href: r.report_url, target: "_blank", rel: "noopener",
          text: "课堂分析报告 Lesson analysis report" })
        : el("span", { class: "muted", text: "分析报告未生成 no analysis report yet" }),
      el("span", { class: "muted", text: r.expires_at
        ? `保留至 kept until ${r.expires_at.slice(0, 10)}` : "永久保留 kept" })));
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
  select.replaceChildren(el("option", { value: "", text: "全部 All lessons" }),
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
  const kept = s.retention_days > 0 ? `录像保留 ${s.retention_days} 天 kept ${s.retention_days} days` : "录像永久保留 kept forever";
  $("rec-policy").textContent = ` · ${s.enabled ? kept : "服务器已关闭录制 recording is off on this server"}`;
  const guard = s.disk_guard;
  const warn = $("rec-guard");
  if (guard && guard.tripped) {
    warn.textContent = `录像磁盘空间不足，录制已暂停 The recordings disk is low on space: recording is paused `
      + `(${gib(guard.free_bytes)} free, needs ${gib(guard.min_free_bytes)}).`;
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
}
