// The bureau pages' API client: one fetch wrapper (Bearer key, JSON in and out, errors as
// ApiError with the server's code, field and extra details) and a tiny DOM helper.

const session = { key: "" };

export function setKey(key) { session.key = key; }
export function currentKey() { return session.key; }

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || "http_error";
    this.field = body?.error?.field || null;
    this.details = body?.error || {};
  }
}

// body: undefined (none), a Blob/File/string sent as text/csv, or anything else sent as JSON.
export async function api(method, path, body, key = session.key) {
  const headers = { Authorization: `Bearer ${key}` };
  let payload;
  if (body instanceof Blob || typeof body === "string") {
    headers["Content-Type"] = "text/csv";
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

// Copy text to the clipboard: the async Clipboard API where the page is a secure context,
// else a selected textarea and execCommand (plain http on a school LAN).
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* fall back */ }
  }
  const area = el("textarea", { readonly: true, style: "position:fixed;left:-9999px" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  area.remove();
  return ok;
}
