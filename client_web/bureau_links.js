// Join links of any occurrence of any lesson (not only today's): a dialog with one row per
// classroom (copy button) and a printable sheet with a QR code per link for classroom PCs.
// Links are signed by the server and valid from 15 minutes before the start to 30 minutes
// after the end; a link copied next week's Monday works when that lesson opens.

import { api, copyText, el } from "./bureau_api.js";
import { explain } from "./bureau_messages.js";
import { i18nEvents, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ROLES = new Set(["lead", "remote", "observer"]);
const roleText = (r) => (ROLES.has(r) ? t(`bu.link.role.${r}`) : r);
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
  render();
}

// The dialog and the printable sheet of the current lesson, in the page's language.
function render() {
  if (!current) return;
  const { lesson, links } = current;
  const when = occurrenceDay(lesson, links);
  $("links-title").textContent = t("bu.links.title", { title: lesson.title, day: when });
  $("links-window").textContent =
    t("bu.links.valid", { day: links.not_before.slice(0, 10), from: hhmm(links.not_before), to: hhmm(links.expires) });
  $("links-table").replaceChildren(...links.links.map((l) => el("tr", { "data-role": l.role, "data-classroom": l.classroom_id },
    el("td", { text: roleText(l.role) }),
    el("td", { text: l.classroom_name }),
    el("td", {}, el("input", { class: "link-url", readonly: true, value: l.url, "aria-label": `${l.classroom_name} URL` })),
    el("td", {}, el("button", {
      type: "button", class: "copy-link", "data-classroom": l.classroom_id,
      text: t("bu.copy"),
      onclick: async (e) => {
        const ok = await copyText(l.url);
        e.target.textContent = t(ok ? "bu.copied" : "bu.copy_manual");
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
      t("bu.sheet.opens") }));
  const cards = links.links.filter((l) => l.role !== "observer").map((l) => el("article", { class: "sheet-item" },
    el("h2", { text: `${roleText(l.role)} · ${l.classroom_name}` }),
    l.qr_svg ? el("img", { src: l.qr_svg, alt: `QR ${l.classroom_name}`, class: "qr" }) : null,
    el("p", { class: "sheet-url", text: l.url })));
  $("print-sheet").replaceChildren(head, ...cards);
}

export function initLinks() {
  $("links-close").addEventListener("click", () => $("links-dialog").close());
  $("links-print").addEventListener("click", () => { if (current) window.print(); });
  i18nEvents.addEventListener("langchange", () => { if ($("links-dialog").open) render(); });
}
