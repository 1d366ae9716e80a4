// Join links of any occurrence of any lesson (not only today's): a dialog with one row per
// classroom (copy button) and a printable sheet with a QR code per link for classroom PCs.
// Links are signed by the server and valid from 15 minutes before the start to 30 minutes
// after the end; a link copied next week's Monday works when that lesson opens.

import { api, copyText, el } from "./bureau_api.js";
import { explain } from "./bureau_messages.js";

const $ = (id) => document.getElementById(id);
const ROLE = { lead: "主讲 Lead", remote: "接收 Remote", observer: "观摩 Observer" };
const hhmm = (iso) => iso.slice(11, 16);

let current = null; // { lesson, links }

export async function openLinks(lesson, day) {
  const q = new URLSearchParams({ qr: "1" });
  if (lesson.recurrence && day) q.set("date", day);
  $("links-error").textContent = "";
  $("links-table").replaceChildren();
  $("links-dialog").showModal();
  let links;
  try {
    links = await api("GET", `/api/lessons/${lesson.id}/links?${q}`);
  } catch (err) {
    $("links-error").textContent = explain(err);
    return;
  }
  current = { lesson, links };
  const when = occurrenceDay(lesson, links);
  $("links-title").textContent = `加入链接 Join links — 《${lesson.title}》 ${when}`;
  $("links-window").textContent =
    `有效时间 Valid ${links.not_before.slice(0, 10)} ${hhmm(links.not_before)} – ${hhmm(links.expires)}`;
  $("links-table").replaceChildren(...links.links.map((l) => el("tr", { "data-role": l.role, "data-classroom": l.classroom_id },
    el("td", { text: ROLE[l.role] || l.role }),
    el("td", { text: l.classroom_name }),
    el("td", {}, el("input", { class: "link-url", readonly: true, value: l.url, "aria-label": `${l.classroom_name} URL` })),
    el("td", {}, el("button", {
      type: "button", class: "copy-link", "data-classroom": l.classroom_id,
      text: "复制 Copy",
      onclick: async (e) => {
        const ok = await copyText(l.url);
        e.target.textContent = ok ? "已复制 Copied ✓" : "请手动复制 Select and copy";
        if (!ok) e.target.closest("tr").querySelector("input").select();
      },
    })))));
  renderSheet(lesson, links);
}

// The occurrence's bureau-local date: in its id for a weekly lesson, else the lesson's start.
function occurrenceDay(lesson, links) {
  return links.occurrence_id.includes("@") ? links.occurrence_id.split("@")[1] : lesson.start.slice(0, 10);
}

function renderSheet(lesson, links) {
  const head = el("header", {},
    el("h1", { text: `${lesson.subject} · ${lesson.title}` }),
    el("p", { text: `${occurrenceDay(lesson, links)} ${hhmm(lesson.start)}–${hhmm(lesson.end)} · ` +
      "开课前 15 分钟可进入 opens 15 minutes before the start" }));
  const cards = links.links.filter((l) => l.role !== "observer").map((l) => el("article", { class: "sheet-item" },
    el("h2", { text: `${ROLE[l.role]} · ${l.classroom_name}` }),
    l.qr_svg ? el("img", { src: l.qr_svg, alt: `QR ${l.classroom_name}`, class: "qr" }) : null,
    el("p", { class: "sheet-url", text: l.url })));
  $("print-sheet").replaceChildren(head, ...cards);
}

export function initLinks() {
  $("links-close").addEventListener("click", () => $("links-dialog").close());
  $("links-print").addEventListener("click", () => { if (current) window.print(); });
}
