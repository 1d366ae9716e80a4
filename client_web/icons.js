// Small line icons (inline SVG, drawn with the text colour) for the classroom pages: they look
// the same on every classroom PC, with or without an emoji font. An element with
// data-icon="NAME" gets that icon (applyIcons); icon(NAME) makes one.
const PATHS = {
  hand: "M7 12V6a1.5 1.5 0 0 1 3 0v5M10 11V4a1.5 1.5 0 0 1 3 0v7M13 11V5a1.5 1.5 0 0 1 3 0v7M16 12V8a1.5 1.5 0 0 1 3 0v6a7 7 0 0 1-7 7h-.5a6.5 6.5 0 0 1-5.3-2.8L3.4 14.3a1.5 1.5 0 0 1 2.4-1.8L7 14",
  mic: "M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M9 21h6",
  "mic-off": "M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3zM5.5 11a6.5 6.5 0 0 0 13 0M12 17.5V21M9 21h6M3 3l18 18",
  volume: "M4 9h4l5-4v14l-5-4H4zM16.5 9a4 4 0 0 1 0 6M19 6.5a8 8 0 0 1 0 11",
  fullscreen: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5",
  screen: "M3 4h18v12H3zM8 20h8M12 16v4",
  camera: "M3 7h12v10H3zM15 10.5l6-3.5v10l-6-3.5",
  keyboard: "M2 6h20v12H2zM6 10h1M10 10h1M14 10h1M18 10h1M7 14h10",
  stop: "M6 6h12v12H6z",
  eye: "M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z",
};
const NS = "http://www.w3.org/2000/svg";

export function icon(name) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `ico ico-${name}`);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", PATHS[name] || "");
  svg.append(path);
  return svg;
}

export function applyIcons(root = document) {
  for (const node of root.querySelectorAll("[data-icon]")) node.replaceChildren(icon(node.dataset.icon));
}
