// Drives one headless Firefox for loadtest/firefox.py, with npm's puppeteer-core over WebDriver BiDi.
//
//   node driver.mjs '<launch JSON>'      launch = {argv: [...], log: "/path/firefox.log", timeout_ms}
//
// It starts Firefox itself from `argv` (loadtest.firefox.firefox_argv: a profile whose user.js
// the Python side wrote — only the fake-media and permission prefs — and
// --remote-debugging-port=0), waits for "WebDriver BiDi listening on ws://…" on Firefox's stderr
// and connects puppeteer-core to it. Not puppeteer.launch(): that writes ~70 automation prefs of
// its own into the profile (focusmanager.testmode, fission.webContentIsolationStrategy, …), and
// the tests promise Firefox's default settings.
//
// Protocol: JSON lines. stdout: {"ready": true, "version": "153.8.0esr"} once connected, then one
// reply per command, {"id": N, "result": …} or {"id": N, "error": "…"}, and console events
// {"event": "console", "level": "error"|"warn", "text": "…"}. stdin: {"id": N, "op": …, …}:
//   newPage {}                      → "p1" (a page id)
//   goto {page, url}                → null, once the page's load event fired
//   evaluate {page, expression}     → the expression's value (loadtest.firefox.evaluate_expression
//                                     makes it a JSON string, so nothing is lost on the way)
//   click {page, x, y}              → null: a real mouse click (a user activation)
//   screenshot {page, path}         → null: a PNG of the viewport written to path
//   viewport {page, width, height}  → null
//   closePage {page}                → null
//   close {}                        → null, then Firefox is closed and this process exits
// stdin closing is a close too. Nothing else is written to stdout.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';

const BIDI_LISTENING = /WebDriver BiDi listening on (ws:\/\/\S+)/;
const COMMAND_TIMEOUT_MS = 60_000;

const launch = JSON.parse(process.argv[2] || '{}');
const pages = new Map();
let nextPage = 0;
let browser = null;
let firefox = null;
let closing = null;
let connected;  // settles once the browser is connected (or failed to be)
const ready = new Promise((resolve) => { connected = resolve; });

function send(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function startFirefox() {
  const log = fs.openSync(launch.log, 'a');
  const [executable, ...args] = launch.argv;
  firefox = spawn(executable, args, { stdio: ['ignore', log, 'pipe'], env: process.env });
  fs.closeSync(log);
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`Firefox's BiDi server did not start in ${launch.timeout_ms} ms`)),
      launch.timeout_ms || 30_000);
    firefox.stderr.on('data', (chunk) => {
      fs.appendFileSync(launch.log, chunk);
      if (buffered === null) return;
      buffered += chunk.toString();
      const m = BIDI_LISTENING.exec(buffered);
      if (m) {
        buffered = null;
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    firefox.on('error', (err) => { clearTimeout(timer); reject(err); });
    firefox.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Firefox exited (${code ?? signal}) before its BiDi server listened`));
    });
  });
}

function page(id) {
  const p = pages.get(id);
  if (!p) throw new Error(`no page ${id}`);
  return p;
}

// page.evaluate() sends every script with BiDi's `userActivation: true`: the first evaluate would
// give the page a (sticky) user activation, and Firefox would then allow autoplay with sound —
// what the tests check is refused until a real click. So scripts go through puppeteer-core's own
// BiDi realm of the page's main frame with `userActivation: false`: the one place this driver
// uses puppeteer-core internals (tests/integration/loadtest/test_firefox_driver.py checks it).
async function evaluateWithoutActivation(p, expression) {
  const realm = p.mainFrame()?.browsingContext?.defaultRealm;
  if (!realm || typeof realm.evaluate !== 'function') {
    throw new Error('puppeteer-core internals changed: no mainFrame().browsingContext.defaultRealm.evaluate');
  }
  const reply = await realm.evaluate(expression, true, { resultOwnership: 'none', userActivation: false });
  if (reply.type === 'exception') {
    throw new Error(reply.exceptionDetails?.text || 'the script threw');
  }
  const result = reply.result || {};
  return result.type === 'string' ? result.value : { unexpected: result };
}

function onConsole(message) {
  const level = message.type();
  if (level === 'error' || level === 'warn' || level === 'warning') {
    send({ event: 'console', level: level === 'warning' ? 'warn' : level, text: message.text() });
  }
}

const ops = {
  async newPage() {
    const p = await browser.newPage();
    p.setDefaultTimeout(COMMAND_TIMEOUT_MS);
    p.setDefaultNavigationTimeout(COMMAND_TIMEOUT_MS);
    p.on('console', onConsole);
    p.on('pageerror', (err) => send({ event: 'console', level: 'error', text: String(err && err.message || err) }));
    const id = `p${++nextPage}`;
    pages.set(id, p);
    return id;
  },
  async goto({ page: id, url }) {
    await page(id).goto(url, { waitUntil: 'load' });
    return null;
  },
  async evaluate({ page: id, expression }) {
    return await evaluateWithoutActivation(page(id), expression);
  },
  async click({ page: id, x, y }) {
    await page(id).mouse.click(x, y);
    return null;
  },
  async screenshot({ page: id, path }) {
    await page(id).screenshot({ path, type: 'png' });
    return null;
  },
  async viewport({ page: id, width, height }) {
    await page(id).setViewport({ width, height });
    return null;
  },
  async closePage({ page: id }) {
    const p = page(id);
    pages.delete(id);
    await p.close();
    return null;
  },
  async close() {
    shutdown();
    return null;
  },
};

function exited(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

function shutdown(code = 0) {
  if (closing) return closing;
  closing = (async () => {
    if (browser) {
      try {
        await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5000))]);
      } catch { /* Firefox already gone */ }
    }
    if (firefox && !(await exited(firefox, 5000))) {
      firefox.kill('SIGTERM');
      if (!(await exited(firefox, 5000))) {
        firefox.kill('SIGKILL');
        await exited(firefox, 5000);
      }
    }
    process.exitCode = code;
    setTimeout(() => process.exit(code), 200);  // after the last reply is flushed
  })();
  return closing;
}

async function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    send({ error: `not JSON: ${line.slice(0, 200)}` });
    return;
  }
  const op = ops[request.op];
  if (!op) {
    send({ id: request.id, error: `unknown op ${request.op}` });
    return;
  }
  try {
    await ready;
    if (!browser && request.op !== 'close') throw new Error('Firefox is not connected');
    const result = await op(request);
    send({ id: request.id, result: result === undefined ? null : result });
  } catch (err) {
    send({ id: request.id, error: String(err && err.message || err) });
  }
}

async function main() {
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => { if (line.trim()) handle(line); });
  input.on('close', () => shutdown());
  try {
    const endpoint = await startFirefox();
    browser = await puppeteer.connect({
      browserWSEndpoint: `${endpoint}/session`,
      protocol: 'webDriverBiDi',
      defaultViewport: null,  // Firefox's own window size, as a user's
    });
    const version = await browser.version();  // "firefox/153.8.0esr"
    send({ ready: true, version: version.replace(/^[^/]*\//, '') });
    browser.on('disconnected', () => shutdown(closing ? 0 : 1));
  } catch (err) {
    send({ ready: false, error: String(err && err.message || err) });
    shutdown(1);
  } finally {
    connected();
  }
}

main();
