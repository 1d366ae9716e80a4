// Sound that the browser will not start by itself. A browser may refuse play() on a media
// element with sound until the user has interacted with the page: Firefox does so by default
// (media.autoplay.default = blocked), Safari on iPad and Mac too, Chromium for a page a user has
// not engaged with. A classroom PC opens its lesson link with nobody at the keyboard, so the page
// must say so: a large "click to start audio" button appears as soon as one play() is refused and
// disappears when a click has started every refused element. window.audioBlocked tells tests.

import { t, i18nEvents } from "./i18n.js";
import { icon } from "./icons.js";

const refused = new Set();
let button = null;
window.audioBlocked = false;

// Start `node` playing; a refusal for want of a user gesture shows the button.
export function playMedia(node) {
  let started;
  try { started = node.play(); } catch (err) { return; }
  if (!started || typeof started.then !== "function") return;
  started.then(() => { refused.delete(node); update(); }, (err) => {
    if (err && err.name === "NotAllowedError") { refused.add(node); update(); }
  });
}

function label() {
  if (!button) return;
  button.querySelector(".txt").textContent = t("audio.unlock");
  button.title = t("audio.unlock.title");
}

function update() {
  for (const node of [...refused]) if (!node.isConnected) refused.delete(node);
  window.audioBlocked = refused.size > 0;
  if (!refused.size) { if (button) button.classList.add("hidden"); return; }
  if (!button) {
    button = document.createElement("button");
    button.type = "button";
    button.id = "audio-unlock";
    button.className = "audio-unlock";
    const txt = document.createElement("span");
    txt.className = "txt";
    button.append(icon("volume"), txt);
    button.addEventListener("click", () => { for (const node of [...refused]) playMedia(node); });
    i18nEvents.addEventListener("langchange", label);
    document.body.append(button);
    label();
  }
  button.classList.remove("hidden");
}
