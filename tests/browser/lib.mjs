// Shared by the browser tests: the environment run.sh prepares, Chromium, processes, waiting.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

export const env = {
  url: need("TRAWL_URL"), // http://127.0.0.1:PORT
  bin: need("TRAWL_BIN"),
  data: need("TRAWL_DATA"),
  work: need("TRAWL_WORK"), // a temporary directory for agents' state and downloads
  adminToken: need("TRAWL_ADMIN_TOKEN"), // the organisation's admin token (test setup only)
  auth: process.env.TRAWL_AUTH === "1", // users and sessions are in this build
  user: process.env.TRAWL_USER || "admin",
  password: process.env.TRAWL_PASSWORD || "",
  corpus: process.env.TRAWL_CORPUS || "",
  shots: need("TRAWL_SCREENSHOTS"),
  net: JSON.parse(need("TRAWL_NET")), // the namespaces and interfaces run.sh made
};

function need(name) {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set: run tests/browser/run.sh`);
  return v;
}

export function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

// Every process a test starts; all of them are stopped at the end, and their ids are written
// where run.sh looks too (it stops what a crashed test left).
const children = new Set();
export function start(cmd, args, { name, logFile } = {}) {
  const out = fs.openSync(logFile || path.join(env.work, `${name || path.basename(cmd)}-${Date.now()}.log`), "a");
  const child = spawn(cmd, args, { stdio: ["ignore", out, out] });
  children.add(child);
  fs.appendFileSync(path.join(env.work, "pids"), `${child.pid}\n`);
  child.exitPromise = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  child.exitPromise.then(() => children.delete(child));
  return child;
}

export async function stop(child, ms = 12000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), ms);
  await child.exitPromise;
  clearTimeout(t);
}

export async function stopAll() {
  await Promise.all([...children].map((c) => stop(c)));
}

// Polls `f` until it returns a truthy value; fails with `what` after `ms`.
export async function until(what, f, ms = 20000, every = 100) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  log(`ok: ${what}`);
}

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--enable-precise-memory-info",
];

// Headless Debian Chromium with a fresh profile (launchPersistentContext: the user data
// directory is ours, made new for each browser).
export async function browser(name, contextOptions = {}) {
  const profile = fs.mkdtempSync(path.join(env.work, `chromium-${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    baseURL: env.url,
    ...contextOptions,
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/status of 40[0-9]|status of 410/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  opened.push({ name, page, problems });
  return { context, page, problems };
}

// Every browser opened, for what a failure shows of them.
const opened = [];

// On a failure: each open page's address, script problems and a screenshot (FAILED-NAME.png).
export async function failureReport() {
  for (const { name, page, problems } of opened) {
    if (page.isClosed()) continue;
    console.error(`browser ${name}: at ${page.url()}${problems.length ? `; ${problems.join("; ")}` : "; no script errors"}`);
    try {
      const file = path.join(env.shots, `FAILED-${name}.png`);
      await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
      console.error(`browser ${name}: screenshot ${file}`);
    } catch (e) {
      console.error(`browser ${name}: no screenshot (${e.message})`);
    }
  }
}

// A logged-in browser: with users and sessions, through the login page; before they exist in
// this build, the organisation's admin token on every request and /api/v1/me answered here.
export async function loggedIn(name) {
  if (env.auth) {
    const b = await browser(name);
    await login(b.page, env.user, env.password);
    return b;
  }
  const b = await browser(name, { extraHTTPHeaders: { Authorization: `Bearer ${env.adminToken}` } });
  await b.context.route("**/api/v1/me", (route) =>
    route.fulfill({ json: { user: null, org: "default", role: "admin", via: "token" } }),
  );
  await b.page.goto("/");
  await b.page.locator("[data-test=me-role]").waitFor();
  return b;
}

export async function login(page, user, password) {
  await page.goto("/");
  await page.locator("[data-test=login-page]").waitFor();
  await page.fill("[data-test=login-user]", user);
  await page.fill("[data-test=login-password]", password);
  await page.click("[data-test=login-submit]");
  await page.locator("[data-test=me-role]").waitFor();
}

let shot = 0;
let shotPrefix = "";
export function screenshotPrefix(prefix) {
  shotPrefix = prefix;
}
export async function screenshot(page, name) {
  shot++;
  const file = path.join(env.shots, `${shotPrefix}${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

// The REST API with the admin token, for setup and for the reference figures.
export async function apiJson(method, p, body) {
  const r = await fetch(env.url + p, {
    method,
    headers: { Authorization: `Bearer ${env.adminToken}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function download(p, file) {
  const r = await fetch(env.url + p, { headers: { Authorization: `Bearer ${env.adminToken}` } });
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
  fs.writeFileSync(file, Buffer.from(await r.arrayBuffer()));
  return file;
}

// Packets in a capture file, as tshark counts them.
export function tsharkCount(file, filter) {
  const args = ["-n", "-r", file, "-T", "fields", "-e", "frame.number"];
  if (filter) args.push("-Y", filter);
  const out = execFileSync("tshark", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return out.split("\n").filter(Boolean).length;
}

export function inNetns(ns, cmd, args, opts) {
  return start("ip", ["netns", "exec", ns, cmd, ...args], opts);
}

// An agent that takes jobs, capturing on `iface` (enrolled already, state in `state`).
export function agent(state, iface, name) {
  return start(env.bin, ["agent", "--state", state, "-i", iface, "--status-every", "0"], { name: `agent-${name}` });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
