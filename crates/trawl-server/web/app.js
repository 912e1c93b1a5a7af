// The application: who is logged in, the top bar, and hash routes to pages (#/devices…).
// Each page module exports render(view, ctx, params) and may return a function that stops
// what it started (timers, streams) when the page is left.

import * as api from "./api.js";
import { h, clear, flash } from "./dom.js";
import { renderLogin } from "./login.js";
import * as devices from "./devices.js";
import * as start from "./start.js";
import * as live from "./live.js";
import * as captures from "./captures.js";
import * as capture from "./capture.js";
import * as reports from "./reports.js";
import * as retention from "./retention.js";
import * as users from "./users.js";

const ROLES = ["viewer", "operator", "admin"];

// Pattern → page; `nav` pages appear in the top bar (for roles at or above `role`).
const ROUTES = [
  { path: /^\/devices$/, page: devices, nav: "Devices", href: "#/devices" },
  { path: /^\/start$/, page: start, nav: "Start capture", href: "#/start", role: "operator" },
  { path: /^\/jobs$/, page: live, nav: "Jobs", href: "#/jobs" },
  { path: /^\/live\/(\d+)$/, page: live, keys: ["job"] },
  { path: /^\/captures$/, page: captures, nav: "Captures", href: "#/captures" },
  { path: /^\/captures\/(\d+)$/, page: capture, keys: ["id"] },
  { path: /^\/reports$/, page: reports, nav: "Reports", href: "#/reports" },
  { path: /^\/retention$/, page: retention, nav: "Retention", href: "#/retention" },
  { path: /^\/users$/, page: users, nav: "Users & tokens", href: "#/users" },
];

const ctx = {
  me: null,
  // True when the user's role is at least `role`.
  can(role) {
    return ctx.me && ROLES.indexOf(ctx.me.role) >= ROLES.indexOf(role);
  },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

let leave = null;

async function boot() {
  api.setUnauthorizedHandler(() => {
    if (ctx.me) {
      ctx.me = null;
      showLogin("Your session has ended: log in again.");
    }
  });
  try {
    ctx.me = await api.get("/api/v1/me", { quiet401: true });
  } catch (e) {
    if (e.status === 401) return showLogin();
    clear(document.getElementById("view"), h("div", { class: "msg error", "data-test": "boot-error" }, e.message));
    return;
  }
  startApp();
}

function showLogin(note) {
  stopPage();
  document.getElementById("topbar").hidden = true;
  flash(null);
  renderLogin(document.getElementById("view"), note, (me) => {
    ctx.me = me;
    startApp();
  });
}

function startApp() {
  drawTopbar();
  window.onhashchange = route;
  if (!location.hash || location.hash === "#/" || location.hash === "#/login") {
    location.hash = "#/devices";
    return;
  }
  route();
}

function drawTopbar() {
  const bar = document.getElementById("topbar");
  const links = ROUTES.filter((r) => r.nav && (!r.role || ctx.can(r.role))).map((r) =>
    h("a", { href: r.href, "data-test": `nav-${r.href.slice(2)}` }, r.nav),
  );
  const who = ctx.me.user || "API token";
  clear(
    bar,
    h("span", { class: "brand" }, "trawl"),
    h("nav", {}, links),
    h(
      "span",
      { class: "who" },
      h("span", { "data-test": "me-user" }, who),
      h("span", { class: "muted" }, ctx.me.org),
      h("span", { class: "role", "data-test": "me-role" }, ctx.me.role),
      h("button", { "data-test": "logout", onclick: logout }, "Log out"),
    ),
  );
  bar.hidden = false;
}

async function logout() {
  try {
    await api.post("/api/v1/logout");
  } catch (e) {
    if (e.status !== 401) {
      flash(e);
      return;
    }
  }
  ctx.me = null;
  location.hash = "#/login";
  showLogin("You are logged out.");
}

function stopPage() {
  if (leave) {
    try {
      leave();
    } catch {
      /* a page's cleanup must not stop the next page */
    }
    leave = null;
  }
}

function route() {
  if (!ctx.me) return;
  const hash = location.hash.replace(/^#/, "") || "/devices";
  const [path, qs] = hash.split("?");
  const params = Object.fromEntries(new URLSearchParams(qs || ""));
  stopPage();
  flash(null);
  for (const a of document.querySelectorAll("#topbar nav a")) {
    a.classList.toggle("active", hash.startsWith(a.getAttribute("href").slice(1)));
  }
  const view = document.getElementById("view");
  for (const r of ROUTES) {
    const m = path.match(r.path);
    if (!m) continue;
    (r.keys || []).forEach((k, i) => (params[k] = m[i + 1]));
    clear(view);
    const cleanup = r.page.render(view, ctx, params);
    leave = typeof cleanup === "function" ? cleanup : null;
    return;
  }
  clear(view, h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, hash), "."));
}

boot();
