// Small helpers for building pages: elements, tables, messages, formatting.

// h("button", {class: "primary", "data-test": "x", onclick: f}, "Label", child…)
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "value") e.value = v;
    else if (k === "checked") e.checked = !!v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

export function clear(e, ...children) {
  e.replaceChildren();
  append(e, children);
  return e;
}

// The page-wide error message ([data-test=error]).
export function flash(error) {
  const box = document.getElementById("flash");
  if (!box) return;
  if (!error) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const text = error.kind && error.detail !== undefined ? error.message : String(error.message || error);
  clear(
    box,
    h("span", { "data-test": "error-text" }, text),
    h("button", { class: "close", "data-test": "error-close", onclick: () => flash(null) }, "×"),
  );
  box.hidden = false;
}

// A message inside a page: a box whose text says what went wrong (or right).
export function message(box, kind, text) {
  if (!text) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.className = `msg ${kind}`;
  box.textContent = text;
  box.hidden = false;
}

export function errorText(e) {
  return e && e.kind ? e.message : String((e && e.message) || e);
}

// Runs an action for a button: disables it while it runs; an error goes to `box` if given,
// else to the page-wide message.
export function action(fn, box) {
  return async (event) => {
    const button = event && event.currentTarget;
    if (button) button.disabled = true;
    if (box) message(box, "error", "");
    try {
      await fn(event);
    } catch (e) {
      if (e.name === "AbortError") return;
      if (box) message(box, "error", errorText(e));
      else flash(e);
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  };
}

export function msgBox(test) {
  return h("div", { class: "msg", "data-test": test, role: "alert", hidden: true });
}

// A table: columns [{title, class, cell(row) → node|string}], rows.
export function table(columns, rows, { test, empty = "Nothing here.", rowTest } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.title)));
  const body = h("tbody");
  for (const r of rows) {
    body.append(
      h(
        "tr",
        { "data-test": rowTest ? rowTest(r) : undefined },
        columns.map((c) => h("td", { class: c.class }, c.cell(r))),
      ),
    );
  }
  if (!rows.length) body.append(h("tr", {}, h("td", { class: "empty", colspan: columns.length }, empty)));
  return h("div", { class: "table-wrap" }, h("table", { "data-test": test }, h("thead", {}, head), body));
}

const units = ["B", "kB", "MB", "GB", "TB", "PB"];
export function bytes(n) {
  if (n === null || n === undefined) return "—";
  let i = 0;
  let x = Number(n);
  while (x >= 1000 && i < units.length - 1) {
    x /= 1000;
    i++;
  }
  return i === 0 ? `${x} B` : `${x.toFixed(x < 10 ? 2 : x < 100 ? 1 : 0)} ${units[i]}`;
}

export function count(n) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString("en-US");
}

export function rate(n, unit) {
  if (n === null || n === undefined || !isFinite(n)) return "—";
  if (unit === "B") return `${bytes(Math.round(n))}/s`;
  return `${n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US")}/s`;
}

// "2024-03-01 12:00:05Z" from RFC 3339 (UTC, seconds); "—" for none.
export function time(rfc3339) {
  if (!rfc3339) return "—";
  return rfc3339.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function ago(rfc3339) {
  if (!rfc3339) return "never";
  const s = (Date.now() - Date.parse(rfc3339)) / 1000;
  if (s < 0) return "just now";
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// A <input type=datetime-local> value (local time) as RFC 3339 UTC, or "" for none.
export function localToRfc3339(value) {
  if (!value) return "";
  const t = new Date(value);
  return isNaN(t) ? "" : t.toISOString();
}

export function rfc3339ToLocal(rfc) {
  const t = new Date(rfc);
  if (isNaN(t)) return "";
  const p = (n) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}`;
}

// Copies text; falls back to selecting it where the clipboard is not available (http).
export async function copy(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (source) {
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      return document.execCommand && document.execCommand("copy");
    }
    return false;
  }
}

export function copyButton(test, textOf, source) {
  const b = h("button", { "data-test": test, type: "button" }, "Copy");
  b.addEventListener("click", async () => {
    const ok = await copy(textOf(), source);
    b.textContent = ok ? "Copied" : "Select and copy";
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
  return b;
}

// Runs `fn` at most once per `ms` after the last call.
export function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
