// Captures: search (text, tag, device, time, kind) and pages of PAGE_SIZE, newest first,
// walked with the `before` cursor and the answer's `next` — never the whole list. The search
// and the cursor live in the URL (#/captures?q=…&before=…), so Back returns to a page.

import * as api from "./api.js";
import { h, clear, table, bytes, count, time, action, msgBox, errorText, localToRfc3339, rfc3339ToLocal } from "./dom.js";

export const PAGE_SIZE = 50;

export function render(view, ctx, params) {
  const q = h("input", { placeholder: "name or notes", value: params.q || "", "data-test": "search-q", size: 22 });
  const tag = h("input", { placeholder: "tag", value: params.tag || "", "data-test": "search-tag", size: 14 });
  const device = h("select", { "data-test": "search-device" }, h("option", { value: "" }, "any device"));
  const from = h("input", { type: "datetime-local", value: params.from ? rfc3339ToLocal(params.from) : "", "data-test": "search-from" });
  const to = h("input", { type: "datetime-local", value: params.to ? rfc3339ToLocal(params.to) : "", "data-test": "search-to" });
  const kind = h("select", { "data-test": "search-kind" }, ["", "upload", "window", "job"].map((k) => h("option", { value: k }, k || "any kind")));
  kind.value = params.kind || "";
  const list = h("div", { "data-test": "captures" }, h("p", { class: "muted" }, "Loading…"));
  const pager = h("div", { class: "row" });
  const timing = h("span", { class: "hint", "data-test": "captures-timing" });

  const search = (extra) => {
    const p = {
      q: q.value.trim(),
      tag: tag.value.trim(),
      device: device.value,
      from: localToRfc3339(from.value),
      to: localToRfc3339(to.value),
      kind: kind.value,
      ...extra,
    };
    const qs = new URLSearchParams(Object.entries(p).filter(([, v]) => v));
    ctx.navigate(`#/captures${qs.toString() ? `?${qs}` : ""}`);
  };
  const form = h(
    "form",
    {
      class: "row panel",
      onsubmit: (e) => {
        e.preventDefault();
        search({});
      },
    },
    h("label", {}, "Text", q),
    h("label", {}, "Tag", tag),
    h("label", {}, "Device", device),
    h("label", {}, "From", from),
    h("label", {}, "To", to),
    h("label", {}, "Kind", kind),
    h("button", { class: "primary", type: "submit", "data-test": "search-submit" }, "Search"),
    h("button", { type: "button", "data-test": "search-clear", onclick: () => ctx.navigate("#/captures") }, "Clear"),
  );

  clear(view, h("div", { class: "row" }, h("h1", {}, "Captures"), h("span", { class: "spacer" }), timing), form, ctx.can("operator") ? uploader(ctx) : null, list, pager);

  api
    .get("/api/v1/devices")
    .then(({ devices }) => {
      for (const d of devices) device.append(h("option", { value: d.id }, d.name));
      device.value = params.device || "";
    })
    .catch(() => {});

  const started = performance.now();
  const query = {
    limit: PAGE_SIZE,
    q: params.q,
    tag: params.tag,
    device: params.device,
    from: params.from,
    to: params.to,
    kind: params.kind,
    before: params.before,
  };
  api
    .get(`/api/v1/captures${api.query(query)}`)
    .then((answer) => {
      const ms = performance.now() - started;
      timing.textContent = `${answer.captures.length} shown · ${Math.round(ms)} ms`;
      timing.dataset.ms = String(ms);
      // Which search the rows answer (tests and scripts wait for their own, not a previous page's).
      list.dataset.shown = api.query(query);
      clear(
        list,
        table(
          [
            { title: "#", class: "n", cell: (c) => String(c.id) },
            { title: "Name", cell: (c) => h("a", { href: `#/captures/${c.id}`, "data-test": `capture-link-${c.id}` }, c.name) },
            { title: "Kind", cell: (c) => c.kind },
            { title: "Devices", cell: (c) => (c.devices || []).map((d) => d.name).join(", ") || "—" },
            { title: "First packet", cell: (c) => time(c.first) },
            { title: "Packets", class: "n", cell: (c) => count(c.packets) },
            { title: "Bytes", class: "n", cell: (c) => bytes(c.bytes) },
            { title: "Tags", cell: (c) => (c.tags || []).map((t) => h("span", { class: "chip" }, t)) },
          ],
          answer.captures,
          { test: "captures-table", empty: "No captures match.", rowTest: (c) => `capture-${c.id}` },
        ),
      );
      // Paging: a stack of the cursors that led here, so "Newer" goes back one page.
      const trail = params.trail ? params.trail.split(",").filter(Boolean) : [];
      const newer = h("button", {
        "data-test": "page-newer",
        disabled: !params.before,
        onclick: () => {
          const prev = trail.slice(0, -1);
          const before = trail[trail.length - 1];
          search({ before: before === "top" ? "" : before, trail: prev.join(",") });
        },
      }, "← Newer");
      const older = h("button", {
        "data-test": "page-older",
        disabled: answer.next === null || answer.next === undefined,
        onclick: () => search({ before: answer.next, trail: [...trail, params.before || "top"].join(",") }),
      }, "Older →");
      clear(pager, newer, h("span", { class: "hint", "data-test": "page-number" }, `page ${trail.length + 1}`), older);
    })
    .catch((e) => clear(list, h("div", { class: "msg error", "data-test": "captures-error" }, errorText(e))));
}

// An operator's upload: a capture file sent as it is (PUT /api/v1/captures?name=…).
function uploader(ctx) {
  const file = h("input", { type: "file", "data-test": "upload-file", accept: ".pcap,.pcapng,.cap,.gz,.zst,.snoop" });
  const tags = h("input", { placeholder: "tags, comma separated", "data-test": "upload-tags", size: 20 });
  const box = msgBox("upload-error");
  const go = h(
    "button",
    {
      "data-test": "upload-submit",
      onclick: action(async () => {
        const f = file.files[0];
        if (!f) throw new Error("Choose a capture file first.");
        const capture = await api.post(`/api/v1/captures${api.query({ name: f.name, tags: tags.value.replace(/\s+/g, "") })}`, f, {
          contentType: "application/octet-stream",
        });
        ctx.navigate(`#/captures/${capture.id}`);
      }, box),
    },
    "Upload",
  );
  return h("details", { class: "panel" }, h("summary", {}, "Upload a capture file"), h("div", { class: "row" }, file, tags, go), box);
}
