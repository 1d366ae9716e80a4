// Bureau page: the term dashboard (教研看板) for research staff — across the bureau's analysed
// lessons in a date range (filters: school, teacher, subject, dates): per teacher, per school and
// per remote classroom the lessons held, the S-T mode distribution, Rt/Ch over time, teacher talk
// share; the fairness view (how often each remote classroom had the floor, how long it was heard;
// the rarely heard ones first and marked); observation scores per rubric dimension. Charts are the
// server's PNGs (/api/analytics/charts/…), tables come from /api/analytics/summary, CSV from
// /api/analytics/export.csv. Strings: i18n.js ("dash.*").

import { ApiError, api, currentKey, el } from "./bureau_api.js";
import { i18nEvents, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const CHARTS = ["rt_ch", "modes", "fairness", "scores"];
const MODES = ["practice", "lecture", "dialogue", "mixed"];
const CSV_VIEWS = ["lessons", "remote_classrooms", "teachers", "schools"];
const state = { summary: null, loaded: false, urls: [] };

const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)} %`);
const num = (v, d = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
const minutes = (s) => (s / 60).toFixed(1);
const signed = (v) => (v === null || v === undefined ? "–" : `${v > 0 ? "+" : ""}${v.toFixed(2)}`);

function filters() {
  const q = new URLSearchParams();
  for (const [id, name] of [["dash-from", "from"], ["dash-to", "to"], ["dash-school", "school_id"],
    ["dash-teacher", "teacher_id"], ["dash-subject", "subject"]]) {
    const v = $(id).value;
    if (v) q.set(name, v);
  }
  return q;
}

function view() {
  const label = (key, input) => el("label", {}, el("span", { "data-i18n": key, text: t(key) }), " ", input);
  return [
    el("section", { class: "card", id: "dash-filters" },
      el("div", { class: "toolbar" },
        el("h2", { "data-i18n": "dash.title", text: t("dash.title") }),
        el("span", { class: "muted", "data-i18n": "dash.intro", text: t("dash.intro") })),
      el("form", { class: "add-row", id: "dash-form", onsubmit: (e) => { e.preventDefault(); load(); } },
        label("dash.from", el("input", { id: "dash-from", type: "date" })),
        label("dash.to", el("input", { id: "dash-to", type: "date" })),
        label("dash.school", el("select", { id: "dash-school" })),
        label("dash.teacher", el("select", { id: "dash-teacher" })),
        label("dash.subject", el("select", { id: "dash-subject" })),
        el("button", { id: "dash-apply", type: "submit", "data-i18n": "dash.apply", text: t("dash.apply") })),
      el("p", { class: "dash-csv-row" },
        el("span", { class: "muted", "data-i18n": "dash.csv", text: t("dash.csv") }),
        ...CSV_VIEWS.map((v) => el("button", { class: "secondary small", type: "button", id: `dash-csv-${v}`,
          "data-i18n": `dash.csv.${v}`, text: t(`dash.csv.${v}`), onclick: () => download(v) }))),
      el("p", { id: "dash-error", class: "error", role: "alert" })),
    el("section", { class: "card", id: "dash-totals" }),
    el("section", { class: "card dash-charts", id: "dash-charts" },
      ...CHARTS.map((c) => el("figure", { class: `dash-chart dash-chart-${c}` },
        el("img", { id: `dash-chart-${c}`, alt: t(`dash.chart.${c}`), "data-i18n-title": `dash.chart.${c}` })))),
    el("section", { class: "card", id: "dash-fairness" }),
    el("section", { class: "card", id: "dash-teachers" }),
    el("section", { class: "card", id: "dash-schools" }),
    el("section", { class: "card", id: "dash-scores" }),
  ];
}

function table(id, titleKey, head, rows, empty) {
  const box = $(id);
  box.replaceChildren(el("h2", { text: t(titleKey) }));
  if (!rows.length) { box.append(el("p", { class: "muted", text: t(empty || "dash.none") })); return; }
  box.append(el("div", { class: "dash-scroll" }, el("table", { class: "list dash-table" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h ? t(h) : "" })))),
    el("tbody", {}, ...rows))));
}

function modeText(modes) {
  return MODES.filter((m) => modes[m]).map((m) => `${t(`dash.mode.${m}`)} ${modes[m]}`).join(" · ") || "–";
}

function render() {
  const s = state.summary;
  if (!s) return;
  $("dash-totals").replaceChildren(
    el("h2", { text: t("dash.totals") }),
    el("div", { class: "dash-tiles" },
      ...[["dash.lessons", String(s.lessons)], ["dash.mean_rt", num(s.mean_rt)], ["dash.mean_ch", num(s.mean_ch)],
        ["dash.teacher_share", pct(s.teacher_share)], ["dash.modes", modeText(s.modes)]]
        .map(([k, v]) => el("div", { class: "dash-tile" }, el("span", { class: "muted", text: t(k) }),
          el("strong", { text: v })))));

  table("dash-fairness", "dash.fairness", ["dash.classroom", "dash.school", "dash.lessons", "dash.with_floor",
    "dash.floor_share", "dash.heard_min", "dash.hands", ""],
  s.remote_classrooms.map((r) => el("tr", { class: r.rarely_heard ? "dash-rare" : "", "data-classroom": r.classroom_id },
    el("td", { text: r.name }), el("td", { text: r.school_name }), el("td", { text: String(r.lessons) }),
    el("td", { text: String(r.lessons_with_floor) }), el("td", { text: pct(r.floor_share) }),
    el("td", { text: minutes(r.heard_s) }), el("td", { text: `${r.hand_raises} / ${r.unanswered_hands}` }),
    el("td", {}, r.rarely_heard ? el("span", { class: "badge live", text: t("dash.rarely_heard") }) : ""))));

  table("dash-teachers", "dash.teachers", ["dash.teacher", "dash.school", "dash.lessons", "dash.modes",
    "dash.mean_rt", "dash.mean_ch", "dash.rt_trend", "dash.teacher_share"],
  s.teachers.map((x) => el("tr", { "data-teacher": x.teacher_id || "" },
    el("td", { text: x.name || t("dash.no_teacher") }), el("td", { text: x.school_name }),
    el("td", { text: String(x.lessons) }), el("td", { text: modeText(x.modes) }),
    el("td", { text: num(x.mean_rt) }), el("td", { text: num(x.mean_ch) }),
    el("td", { text: signed(x.rt_trend_30d) }), el("td", { text: pct(x.teacher_share) }))));

  table("dash-schools", "dash.schools", ["dash.school", "dash.lessons_led", "dash.modes", "dash.mean_rt",
    "dash.teacher_share", "dash.remote_lessons", "dash.floor_share"],
  s.schools.map((x) => el("tr", {},
    el("td", { text: x.name }), el("td", { text: String(x.lessons) }), el("td", { text: modeText(x.modes) }),
    el("td", { text: num(x.mean_rt) }), el("td", { text: pct(x.teacher_share) }),
    el("td", { text: String(x.remote_lessons) }), el("td", { text: pct(x.remote_floor_share) }))));

  table("dash-scores", "dash.scores", ["dash.dimension", "dash.count", "dash.mean", "dash.spread"],
    s.scores.map((d) => el("tr", {}, el("td", { text: d.dimension }), el("td", { text: String(d.count) }),
      el("td", { text: num(d.mean, 1) }), el("td", { text: num(d.spread, 1) }))), "dash.no_scores");
}

async function fetchBlob(path) {
  const res = await fetch(path, { headers: { Authorization: `Bearer ${currentKey()}` } });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    throw new ApiError(res.status, body);
  }
  return res.blob();
}

async function loadCharts(q) {
  for (const url of state.urls) URL.revokeObjectURL(url);
  state.urls = [];
  await Promise.all(CHARTS.map(async (c) => {
    const img = $(`dash-chart-${c}`);
    const blob = await fetchBlob(`/api/analytics/charts/${c}?${q}`);
    const url = URL.createObjectURL(blob);
    state.urls.push(url);
    await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = url; });
  }));
}

function showError(err) {
  $("dash-error").textContent = err instanceof ApiError ? `${t("dash.failed")} ${err.message}` : String(err);
}

async function load() {
  $("dash-error").textContent = "";
  const q = filters();
  try {
    state.summary = await api("GET", `/api/analytics/summary?${q}`);
    render();
    await loadCharts(q);
    document.body.dataset.dashboard = "ready";
  } catch (err) {
    showError(err);
  }
}

async function download(which) {
  const q = filters();
  q.set("view", which);
  try {
    const blob = await fetchBlob(`/api/analytics/export.csv?${q}`);
    const a = el("a", { href: URL.createObjectURL(blob), download: `analytics-${which}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    showError(err);
  }
}

async function fillFilters() {
  const [schools, teachers, lessons] = await Promise.all([
    api("GET", "/api/schools"), api("GET", "/api/teachers"), api("GET", "/api/lessons")]);
  const options = (id, items) => {
    const select = $(id);
    const keep = select.value;
    select.replaceChildren(el("option", { value: "", text: t("dash.all") }),
      ...items.map(([v, text]) => el("option", { value: v, text })));
    select.value = keep;
  };
  options("dash-school", schools.schools.map((x) => [x.id, x.name]));
  options("dash-teacher", teachers.teachers.map((x) => [x.id, x.name]));
  const subjects = [...new Set(lessons.lessons.map((l) => l.subject))].sort();
  options("dash-subject", subjects.map((x) => [x, x]));
}

// Shown when its tab is opened: fill the filters and load the dashboard (again on each opening).
export async function showAnalytics() {
  try {
    await fillFilters();
  } catch (err) {
    showError(err);
    return;
  }
  await load();
}

export function initAnalytics() {
  const root = $("analytics-view");
  root.replaceChildren(...view());
  i18nEvents.addEventListener("langchange", () => {
    for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    render();
  });
}
