// Lesson playback: plays every recorded track of a lesson in sync on one virtual clock.
// URL: /playback.html?manifest=<signed manifest URL>[&token=<join token>][&autoplay=0][&t=<seconds>]
// With a token that may read them (the lesson's observers, its teacher, the bureau's links), the
// observation notes are shown on the timeline too (playback_notes.js, docs/observation.md).
// The manifest (format classroom-recording/1, docs/recording-format.md) gives each track's
// file and its place on the lesson timeline (start_ms/end_ms); media elements are kept within
// a few hundred milliseconds of the virtual clock by seeking when they drift.
// Labels come from the one dictionary (i18n.js): zh-CN by default, en with ?lang=en or the toggle.
import { t as say, applyI18n, langToggle, has } from "./i18n.js";
import { setupNotes } from "./playback_notes.js";
import { playMedia } from "./autoplay.js";
import { api, el } from "./bureau_api.js";
import { explain } from "./bureau_messages.js";

(function () {
  const eventLabel = (type) => (has(`ev.${type}`) ? say(`ev.${type}`) : type);
  const sourceLabel = (source) => (has(`pb.${source}`) ? say(`pb.${source}`) : source);
  applyI18n();
  // The toggle reloads: every label of a built timeline is in the chosen language at once.
  const toggle = langToggle();
  toggle.addEventListener("click", () => location.reload());
  document.querySelector("header").append(toggle);
  const DRIFT_PLAYING = 0.3; // s: re-seek a playing element beyond this drift
  const DRIFT_PAUSED = 0.05;

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let resolveReady, rejectReady;
  const ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});

  const clock = { playing: false, base: 0, perf0: 0, rate: 1, duration: 0 };
  const slots = []; // {el, tile, tracks:[{url,start,end,...}], current}
  let manifest = null;
  let names = {};
  let eventButtons = [];
  let notes = null; // the observation notes (playback_notes.js), with a token that may read them

  function now() {
    if (!clock.playing) return clock.base;
    const t = clock.base + (performance.now() - clock.perf0) * clock.rate;
    return Math.min(t, clock.duration);
  }

  function fmt(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function status(text) { $("status").textContent = text || ""; }

  function syncSlot(slot, t, force) {
    const el = slot.el;
    const active = slot.tracks.find((tr) => t >= tr.start && t < tr.end) || null;
    if (slot.tile) slot.tile.classList.toggle("inactive", !active);
    if (!active) {
      if (!el.paused) el.pause();
      return;
    }
    if (slot.current !== active) {
      slot.current = active;
      el.src = active.url;
      force = true;
    }
    const local = (t - active.origin) / 1000;
    if (el.playbackRate !== clock.rate) el.playbackRate = clock.rate;
    if (clock.playing) {
      // sound the browser refuses before a click (Firefox by default, Safari): autoplay.js shows
      // the "click to start audio" button; the 250 ms sync pauses again what the clock does not play
      if (el.paused) {
        if (el.tagName === "AUDIO") playMedia(el);
        else el.play().catch(() => {});
      }
      if (!el.seeking && (force || Math.abs(el.currentTime - local) > DRIFT_PLAYING)) {
        el.currentTime = local;
      }
    } else {
      if (!el.paused) el.pause();
      if (force || (!el.seeking && Math.abs(el.currentTime - local) > DRIFT_PAUSED)) {
        el.currentTime = local;
      }
    }
  }

  function syncAll(force) {
    const t = now();
    for (const slot of slots) syncSlot(slot, t, force);
    if (clock.playing && t >= clock.duration) pause();
  }

  function spotlightAt(t) {
    let current = null;
    for (const ev of manifest.events) {
      if (ev.t_ms > t) break;
      if (ev.type === "spotlight") current = ev.classroom_id || null;
    }
    return current;
  }

  function updateUi() {
    if (!manifest) return;
    const t = now();
    $("time").textContent = `${fmt(t)} / ${fmt(clock.duration)}`;
    if (document.activeElement !== $("seek")) {
      $("seek").value = String(Math.round((t / Math.max(1, clock.duration)) * 1000));
    }
    $("cursor").style.left = `${(t / Math.max(1, clock.duration)) * 100}%`;
    const spot = spotlightAt(t);
    for (const slot of slots) {
      if (slot.tile && slot.classroom) {
        slot.tile.classList.toggle("spotlight", spot !== null && slot.classroom === spot);
      }
    }
    let currentIndex = -1;
    manifest.events.forEach((ev, i) => { if (ev.t_ms <= t) currentIndex = i; });
    eventButtons.forEach((b, i) => b.classList.toggle("current", i === currentIndex));
    requestAnimationFrame(updateUi);
  }

  function play() {
    if (clock.playing) return;
    if (clock.base >= clock.duration) clock.base = 0;
    clock.perf0 = performance.now();
    clock.playing = true;
    $("play").textContent = say("pb.pause");
    syncAll(true);
  }

  function pause() {
    clock.base = now();
    clock.playing = false;
    $("play").textContent = say("pb.play");
    syncAll(false);
  }

  function seek(ms) {
    clock.base = Math.max(0, Math.min(clock.duration, ms));
    clock.perf0 = performance.now();
    syncAll(true);
  }

  function setRate(rate) {
    clock.base = now();
    clock.perf0 = performance.now();
    clock.rate = rate;
    syncAll(false);
  }

  function tile(label, classroom) {
    const div = document.createElement("div");
    div.className = "tile inactive";
    if (classroom) div.dataset.classroom = classroom;
    const video = document.createElement("video");
    video.muted = true;
    video.playsInline = true;
    video.preload = "auto";
    const span = document.createElement("span");
    span.className = "label";
    span.textContent = label;
    const off = document.createElement("div");
    off.className = "off";
    off.textContent = say("pb.no_picture");
    div.append(video, span, off);
    return { div, video };
  }

  // One entry per file to play. A finished track is one file; an unfinished one (the recorder
  // was killed and the recording not repaired) is played segment by segment. Segment files keep
  // the track's timestamps, so the element time is always (t - track start) / 1000.
  function trackInfos(track, base) {
    const common = { id: track.id, origin: track.start_ms, classroom: track.classroom_id,
                     source: track.source, kind: track.kind };
    if (track.complete === false && Array.isArray(track.segments) && track.segments.length) {
      return track.segments.map((seg) => ({ ...common, url: new URL(seg.file, base).href,
                                            start: seg.start_ms, end: seg.end_ms }));
    }
    return [{ ...common, url: new URL(track.file, base).href,
              start: track.start_ms, end: track.end_ms }];
  }

  function build(m, base) {
    manifest = m;
    m.events = (m.events || []).slice().sort((a, b) => a.t_ms - b.t_ms);
    names = {};
    const roles = {};
    for (const c of m.classrooms || []) { names[c.id] = c.name || c.id; roles[c.id] = c.role; }
    $("title").textContent = m.title || m.lesson_id;
    if (m.report_url) {
      const a = document.createElement("a");
      a.href = m.report_url;
      a.target = "_blank";
      a.rel = "noopener";
      a.id = "report-link";
      a.textContent = say("pb.report");
      $("meta").after(a);
    }
    document.title = `${m.title || m.lesson_id} · ${say("pb.title")}`;
    $("meta").textContent = `${new Date(m.started_at).toLocaleString()} · ${fmt(m.duration_ms)}`;
    let end = m.duration_ms || 0;
    for (const t of m.tracks) end = Math.max(end, t.end_ms);
    clock.duration = end;

    const groups = new Map(); // "classroom|source|kind" -> tracks
    for (const t of m.tracks) {
      const key = `${t.classroom_id}|${t.source}|${t.kind}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(...trackInfos(t, base));
    }
    const isLead = (id) => roles[id] === "lead";
    for (const [key, tracks] of groups) {
      const [classroom, source, kind] = key.split("|");
      tracks.sort((a, b) => a.start - b.start);
      if (kind === "audio") {
        const el = document.createElement("audio");
        el.preload = "auto";
        el.dataset.track = tracks[0].id;
        $("audio").append(el);
        slots.push({ el, tile: null, tracks, current: null, classroom });
        continue;
      }
      let el, div;
      if (isLead(classroom) && source === "teacher") {
        el = $("main-video"); div = $("main-tile");
        $("main-label").textContent = `${names[classroom]} · ${say("pb.teacher")}`;
        div.dataset.classroom = classroom;
      } else if (isLead(classroom) && source === "screen") {
        el = $("screen-video"); div = $("screen-tile");
      } else {
        const made = tile(`${names[classroom] || classroom} · ${sourceLabel(source)}`, classroom);
        $("small").append(made.div);
        el = made.video; div = made.div;
      }
      el.dataset.track = tracks[0].id;
      slots.push({ el, tile: div, tracks, current: null, classroom });
    }

    // No courseware in this recording: say so (desktop) or leave the space to the teacher (phone).
    if (!slots.some((slot) => slot.tile === $("screen-tile"))) $("screen-tile").classList.add("inactive", "none");
    const timeline = $("timeline");
    const list = $("events");
    eventButtons = m.events.map((ev, i) => {
      const who = ev.classroom_id ? (names[ev.classroom_id] || ev.classroom_id) : "—";
      const label = `${eventLabel(ev.type)} · ${who}`;
      const marker = document.createElement("button");
      marker.type = "button";
      marker.className = `marker ev-${ev.type}`;
      marker.style.left = `${(ev.t_ms / Math.max(1, clock.duration)) * 100}%`;
      marker.title = `${fmt(ev.t_ms)} ${label}`;
      marker.dataset.tMs = String(ev.t_ms);
      marker.addEventListener("click", (e) => { e.stopPropagation(); seek(ev.t_ms); });
      timeline.append(marker);
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "event";
      button.dataset.index = String(i);
      button.dataset.tMs = String(ev.t_ms);
      button.dataset.type = ev.type;
      const time = document.createElement("span");
      time.className = "t";
      time.textContent = fmt(ev.t_ms);
      button.append(time, document.createTextNode(label));
      button.addEventListener("click", () => seek(ev.t_ms));
      li.append(button);
      list.append(li);
      return button;
    });
    timeline.addEventListener("click", (e) => {
      const rect = timeline.getBoundingClientRect();
      seek(((e.clientX - rect.left) / rect.width) * clock.duration);
    });
    $("play").addEventListener("click", () => (clock.playing ? pause() : play()));
    $("seek").addEventListener("input", (e) => seek((e.target.value / 1000) * clock.duration));
    $("speed").addEventListener("change", (e) => setRate(parseFloat(e.target.value)));
    setInterval(() => syncAll(false), 250);
    requestAnimationFrame(updateUi);
  }

  // A recording that cannot be played (no manifest=, an HTTP error, a damaged or unknown
  // manifest): one message in the page's language in place of the player.
  function unavailable(text, err) {
    status("");
    $("load-error-text").textContent = text;
    $("load-error").hidden = false;
    document.querySelector("main").style.display = "none";
    rejectReady(err);
  }

  // No manifest= at all (an old "Recording playback" link, a typed address): say where playback
  // links come from, link back, and let a bureau administrator list the recordings they may
  // see (GET /api/recordings with their API key, kept in this page's memory only).
  function chooseRecording() {
    status("");
    document.querySelector("main").style.display = "none";
    $("choose").hidden = false;
    $("choose-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      $("choose-error").textContent = "";
      $("choose-list").replaceChildren();
      $("choose-count").hidden = true;
      let recordings;
      try {
        ({ recordings } = await api("GET", "/api/recordings", undefined, $("choose-key").value.trim()));
      } catch (err) {
        $("choose-error").textContent = explain(err);
        return;
      }
      $("choose-count").textContent = recordings.length ? say("pb.choose.count", { n: recordings.length }) : say("pb.choose.empty");
      $("choose-count").hidden = false;
      for (const r of recordings) {
        const minutes = Math.round((r.duration_ms || 0) / 60000);
        const what = `${r.subject ? `${r.subject} · ` : ""}${r.title || r.lesson_id}`;
        $("choose-list").append(el("li", { "data-lesson": r.schedule_lesson_id || r.lesson_id },
          el("a", { class: "playback-link", href: r.playback_url, text: `${r.date} ${String(r.started_at).slice(11, 16)} UTC · ${what}` }),
          el("span", { class: "muted", text: say("pb.choose.minutes", { n: minutes }) }),
          ...(r.report_url ? [el("a", { class: "report-link", href: r.report_url, text: say("pb.choose.report") })] : [])));
      }
    });
  }

  // Enough of the manifest for build(); a damaged one would otherwise break the page half-drawn.
  function wellFormed(m) {
    const num = (v) => typeof v === "number" && Number.isFinite(v);
    return m && typeof m === "object" && Array.isArray(m.tracks) && Array.isArray(m.events ?? [])
      && m.tracks.every((tr) => tr && typeof tr === "object" && typeof tr.classroom_id === "string"
        && typeof tr.kind === "string" && num(tr.start_ms) && num(tr.end_ms)
        && (typeof tr.file === "string" || Array.isArray(tr.segments)))
      && (m.events ?? []).every((ev) => ev && typeof ev === "object" && num(ev.t_ms));
  }

  async function load() {
    const url = params.get("manifest");
    if (!url) { chooseRecording(); rejectReady(new Error("no manifest")); return; }
    const base = new URL(url, location.href);
    let m;
    try {
      const resp = await fetch(base.href, { credentials: "same-origin" });
      if (!resp.ok) {
        // the teacher's words for the HTTP status, never the server's English message
        let code = null;
        try { const body = await resp.json(); code = typeof body.error === "string" ? body.error : body.error?.code; } catch (e) { /* not JSON */ }
        // (the server answers a manifest.json it cannot read with 500 "bad_manifest")
        if (code === "bad_manifest") throw new Error(say("pb.bad_manifest"));
        throw new Error(has(`err.http.${resp.status}`) ? say(`err.http.${resp.status}`)
          : (code && has(`err.${code}`) ? say(`err.${code}`) : say("err.fallback", { code: resp.status })));
      }
      try { m = await resp.json(); } catch (e) { throw new Error(say("pb.bad_manifest")); }
      if (m?.format !== "classroom-recording/1") {
        throw new Error(m && typeof m === "object" && m.format ? say("pb.bad_format", { format: m.format }) : say("pb.bad_manifest"));
      }
      if (!wellFormed(m)) throw new Error(say("pb.bad_manifest"));
    } catch (err) {
      unavailable(say("pb.load_failed", { reason: err instanceof TypeError ? say("err.not_connected") : err.message }), err);
      return;
    }
    m.events = m.events ?? [];
    try {
      build(m, base);
    } catch (err) {
      console.error(err);
      unavailable(say("pb.load_failed", { reason: say("pb.bad_manifest") }), err);
      return;
    }
    if (params.get("token")) {
      notes = setupNotes({ token: params.get("token"), lessonId: m.lesson_id, seek, now, fmt,
                           duration: () => clock.duration, timeline: $("timeline"), status });
    }
    const start = parseFloat(params.get("t") || "0") * 1000;
    seek(start);
    if (params.get("autoplay") !== "0") play();
    resolveReady(m);
  }

  window.playback = {
    ready, seek, play, pause, setRate,
    time: () => now(),
    get manifest() { return manifest; },
    get playing() { return clock.playing; },
    get notes() { return notes; },
    // lesson time (ms) each media element shows now, for tests and debugging
    elementTimes: () => slots.map((s) => ({
      track: s.current ? s.current.id : null, kind: s.el.tagName.toLowerCase(),
      t_ms: s.current ? s.current.origin + s.el.currentTime * 1000 : null,
      paused: s.el.paused, readyState: s.el.readyState,
    })),
  };
  load();
})();
