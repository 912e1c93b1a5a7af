// One capture (#/captures/ID): summary, per-second chart (its report's JSON), flows, the HTML
// report, download, tags, notes, per-packet annotations, and share links.

import * as api from "./api.js";
import { h, clear, table, bytes, count, time, action, msgBox, message, errorText, copyButton } from "./dom.js";
import { lineChart, seriesOfReport } from "./chart.js";

const FLOWS_SHOWN = 100;
const FLOWS_READ = 20000;

export function render(view, ctx, params) {
  const id = Number(params.id);
  const base = `/api/v1/captures/${id}`;
  const head = h("div", {}, h("h1", {}, `Capture #${id}`), h("p", { class: "muted" }, "Loading…"));
  clear(view, head);
  let gone = false;

  api
    .get(base)
    .then((c) => {
      if (gone) return;
      const summary = h(
        "dl",
        { class: "summary", "data-test": "capture-summary" },
        h("dt", {}, "Kind"), h("dd", {}, c.kind),
        h("dt", {}, "Packets"), h("dd", { "data-test": "capture-packets", "data-value": String(c.packets) }, count(c.packets)),
        h("dt", {}, "Bytes"), h("dd", {}, `${bytes(c.bytes)} captured · ${bytes(c.wire_bytes)} on the wire · ${bytes(c.stored_bytes)} stored`),
        h("dt", {}, "First packet"), h("dd", {}, time(c.first)),
        h("dt", {}, "Last packet"), h("dd", {}, time(c.last)),
        h("dt", {}, "Devices"), h("dd", {}, (c.devices || []).map((d) => d.name).join(", ") || "—"),
        h("dt", {}, "Interfaces"), h("dd", {}, (c.interfaces || []).map((i) => i.name || `#${i.id}`).join(", ") || "—"),
        h("dt", {}, "Created"), h("dd", {}, time(c.created)),
        c.window ? [h("dt", {}, "Window"), h("dd", {}, `${time(c.window.from)} → ${time(c.window.to)}`, c.window.filter ? [" · ", h("code", {}, c.window.filter)] : "")] : null,
        h("dt", {}, "Source"), h("dd", {}, c.source || "—"),
      );
      const actions = h(
        "div",
        { class: "row" },
        h("a", { href: `${base}/pcapng`, download: `${c.name}.pcapng`, "data-test": "capture-download" }, "Download pcapng"),
        h("a", { href: `${base}/report?format=html`, target: "_blank", rel: "noopener", "data-test": "capture-report" }, "Traffic report (HTML)"),
        ctx.can("admin")
          ? h("button", {
              class: "danger",
              "data-test": "capture-delete",
              onclick: action(async () => {
                if (!confirm(`Delete capture #${id} (${c.name}) and its packets?`)) return;
                await api.del(base);
                ctx.navigate("#/captures");
              }),
            }, "Delete")
          : null,
      );
      clear(
        view,
        h("h1", { "data-test": "capture-name" }, c.name),
        h("div", { class: "grid2" },
          h("div", { class: "panel" }, summary, h("p", {}), actions),
          h("div", {}, tagsPanel(ctx, base, c), notesPanel(ctx, base, c))),
        h("h2", {}, "Bytes per second"),
        chartPanel(base),
        h("div", { class: "grid2" }, sharePanel(ctx, base), annotationsPanel(ctx, base)),
        h("h2", {}, "Flows"),
        flowsPanel(base),
      );
    })
    .catch((e) => clear(view, h("h1", {}, `Capture #${id}`), h("div", { class: "msg error", "data-test": "capture-error" }, errorText(e))));
  return () => (gone = true);
}

function tagsPanel(ctx, base, c) {
  const chips = h("div", { "data-test": "tags" });
  const box = msgBox("tags-error");
  const draw = (tags) =>
    clear(
      chips,
      tags.length ? null : h("span", { class: "muted" }, "No tags."),
      tags.map((t) =>
        h("span", { class: "chip", "data-test": `tag-${t}` }, t,
          ctx.can("operator")
            ? h("button", { title: `remove ${t}`, "data-test": `tag-remove-${t}`, onclick: action(async () => draw((await api.del(`${base}/tags/${api.enc(t)}`)).tags), box) }, "×")
            : null),
      ),
    );
  draw(c.tags || []);
  const input = h("input", { placeholder: "new tag", size: 16, "data-test": "tag-input" });
  const add = h("button", {
    "data-test": "tag-add",
    onclick: action(async () => {
      const tags = input.value.split(/[\s,]+/).filter(Boolean);
      if (!tags.length) throw new Error("Type a tag first.");
      draw((await api.post(`${base}/tags`, { tags })).tags);
      input.value = "";
    }, box),
  }, "Add tag");
  input.addEventListener("keydown", (e) => e.key === "Enter" && add.click());
  return h("div", { class: "panel" }, h("b", {}, "Tags"), chips, ctx.can("operator") ? h("div", { class: "row" }, input, add) : null, box);
}

function notesPanel(ctx, base, c) {
  const notes = h("textarea", { "data-test": "notes", readonly: !ctx.can("operator") }, "");
  notes.value = c.notes || "";
  const box = msgBox("notes-message");
  const save = h("button", {
    "data-test": "notes-save",
    onclick: action(async () => {
      const r = await api.put(`${base}/notes`, { notes: notes.value });
      notes.value = r.notes || "";
      message(box, "ok", "Notes saved.");
    }, box),
  }, "Save notes");
  return h("div", { class: "panel" }, h("b", {}, "Notes"), notes, ctx.can("operator") ? save : null, box);
}

function chartPanel(base) {
  const panel = h("div", { class: "panel", "data-test": "capture-chart" }, h("p", { class: "muted" }, "Loading the report…"));
  // One period per day keeps a long capture's seconds in few periods.
  api
    .get(`${base}/report?format=json&period=86400&top=5`)
    .then((periods) => clear(panel, lineChart(seriesOfReport(periods), { test: "chart-svg" })))
    .catch((e) => clear(panel, h("div", { class: "msg error" }, errorText(e))));
  return panel;
}

function flowsPanel(base) {
  const panel = h("div", { "data-test": "flows" }, h("p", { class: "muted" }, "Loading flows…"));
  (async () => {
    const r = await api.request("GET", `${base}/flows`);
    // JSON lines, streamed: read at most FLOWS_READ records, keep the biggest.
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    const flows = [];
    let rest = "";
    let truncated = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const all = (rest + decoder.decode(value, { stream: true })).split("\n");
      rest = all.pop();
      for (const line of all) if (line) flows.push(JSON.parse(line));
      if (flows.length >= FLOWS_READ) {
        truncated = true;
        reader.cancel();
        break;
      }
    }
    if (!truncated && rest.trim()) flows.push(JSON.parse(rest));
    flows.sort((a, b) => b.bytes - a.bytes);
    const end = (addr, port) => (port ? `${addr}:${port}` : addr);
    clear(
      panel,
      h("p", { class: "hint" }, `${count(flows.length)}${truncated ? "+" : ""} flows; the ${Math.min(FLOWS_SHOWN, flows.length)} with the most bytes:`),
      table(
        [
          { title: "Protocol", cell: (f) => f.protocol_name || String(f.protocol) },
          { title: "From", cell: (f) => h("span", { class: "mono" }, end(f.src, f.src_port)) },
          { title: "To", cell: (f) => h("span", { class: "mono" }, end(f.dst, f.dst_port)) },
          { title: "Interface", cell: (f) => f.interface },
          { title: "Packets →/←", class: "n", cell: (f) => `${count(f.fwd_packets)} / ${count(f.rev_packets)}` },
          { title: "Bytes", class: "n", cell: (f) => bytes(f.bytes) },
          { title: "Retrans.", class: "n", cell: (f) => count(f.fwd_retransmissions + f.rev_retransmissions) },
          { title: "Start", cell: (f) => time(f.start) },
        ],
        flows.slice(0, FLOWS_SHOWN),
        { test: "flows-table", empty: "No IP flows." },
      ),
    );
  })().catch((e) => clear(panel, h("div", { class: "msg error" }, errorText(e))));
  return panel;
}

function annotationsPanel(ctx, base) {
  const list = h("div", { "data-test": "annotations" }, h("p", { class: "muted" }, "Loading…"));
  const box = msgBox("annotations-error");
  const load = async () => {
    const { annotations } = await api.get(`${base}/annotations`);
    clear(
      list,
      table(
        [
          { title: "Packet", class: "n", cell: (a) => String(a.packet) },
          { title: "Comment", cell: (a) => a.comment },
          { title: "By", cell: (a) => a.author || "—" },
          { title: "When", cell: (a) => time(a.time) },
          {
            title: "",
            cell: (a) =>
              ctx.can("operator")
                ? h("button", { class: "danger", "data-test": `annotation-delete-${a.packet}`, onclick: action(async () => { await api.del(`${base}/annotations/${a.packet}`); await load(); }, box) }, "Delete")
                : "",
          },
        ],
        annotations,
        { test: "annotations-table", empty: "No annotations.", rowTest: (a) => `annotation-${a.packet}` },
      ),
    );
  };
  load().catch((e) => clear(list, h("div", { class: "msg error" }, errorText(e))));
  const packet = h("input", { type: "number", min: "1", class: "num", placeholder: "packet #", "data-test": "annotation-packet" });
  const comment = h("input", { size: 30, placeholder: "comment", "data-test": "annotation-comment" });
  const add = h("button", {
    "data-test": "annotation-add",
    onclick: action(async () => {
      const n = Number(packet.value);
      if (!Number.isInteger(n) || n < 1) throw new Error("The packet number is 1 or more (as Wireshark numbers them).");
      await api.put(`${base}/annotations/${n}`, { comment: comment.value });
      comment.value = "";
      await load();
    }, box),
  }, "Annotate");
  return h(
    "div",
    { class: "panel" },
    h("b", {}, "Packet annotations"),
    h("p", { class: "hint" }, "Kept in the download as each packet's pcapng comment."),
    list,
    ctx.can("operator") ? h("div", { class: "row" }, packet, comment, add) : null,
    box,
  );
}

function sharePanel(ctx, base) {
  if (!ctx.can("operator")) {
    return h("div", { class: "panel" }, h("b", {}, "Share"), h("p", { class: "muted" }, "Share links are made by operators."));
  }
  const expires = h("select", { "data-test": "share-expires" }, ["1h", "1d", "7d", "30d", "90d"].map((e) => h("option", { value: e }, e)));
  expires.value = "7d";
  const filter = h("input", { size: 24, placeholder: "optional filter, e.g. icmp", "data-test": "share-filter" });
  const box = msgBox("share-error");
  const made = h("div", { "data-test": "share-made", hidden: true });
  const list = h("div", { "data-test": "shares" });
  const absolute = (url) => new URL(url, location.origin).href;
  const load = async () => {
    const { shares } = await api.get(`${base}/shares`);
    clear(
      list,
      table(
        [
          { title: "Link", cell: (s) => (s.revoked ? h("s", { class: "muted" }, s.url) : h("a", { href: absolute(s.url), target: "_blank", rel: "noopener noreferrer" }, s.url.length > 34 ? `${s.url.slice(0, 34)}…` : s.url)) },
          { title: "Expires", cell: (s) => time(s.expires) },
          { title: "Filter", cell: (s) => (s.filter ? h("code", {}, s.filter) : "—") },
          { title: "By", cell: (s) => s.created_by || "—" },
          {
            title: "",
            cell: (s) =>
              s.revoked
                ? h("span", { class: "muted", "data-test": `share-revoked-${s.id}` }, "revoked")
                : h("span", { class: "row" },
                    copyButton(`share-copy-${s.id}`, () => absolute(s.url)),
                    h("button", { class: "danger", "data-test": `share-revoke-${s.id}`, onclick: action(async () => { await api.del(`/api/v1/shares/${s.id}`); await load(); }, box) }, "Revoke")),
          },
        ],
        shares,
        { test: "shares-table", empty: "No share links yet.", rowTest: (s) => `share-${s.id}` },
      ),
    );
  };
  load().catch((e) => clear(list, h("div", { class: "msg error" }, errorText(e))));
  const create = h("button", {
    class: "primary",
    "data-test": "share-create",
    onclick: action(async () => {
      const body = { expires_in: expires.value };
      if (filter.value.trim()) body.filter = filter.value.trim();
      const s = await api.post(`${base}/shares`, body);
      const url = absolute(s.url);
      const code = h("code", { "data-test": "share-url" }, url);
      clear(made, h("p", { class: "hint" }, `Anyone with this link can see and download the capture${s.filter ? ` (only ${s.filter})` : ""} until ${time(s.expires)}:`),
        h("div", { class: "command" }, code, copyButton("share-url-copy", () => url, code)));
      made.hidden = false;
      await load();
    }, box),
  }, "Make a share link");
  return h("div", { class: "panel" }, h("b", {}, "Share"), h("div", { class: "row" }, h("label", {}, "Expires in", expires), h("label", {}, "Filter", filter), create), box, made, list);
}
