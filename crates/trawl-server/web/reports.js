// Reports: devices and a window → GET /api/v1/report (JSON drawn as charts and tables; the
// server's HTML page one click away).

import * as api from "./api.js";
import { h, clear, table, bytes, count, action, msgBox, localToRfc3339, rfc3339ToLocal } from "./dom.js";
import { lineChart, seriesOfReport } from "./chart.js";

export function render(view) {
  const devices = h("div", { class: "row", "data-test": "report-devices" }, h("span", { class: "muted" }, "Loading devices…"));
  const now = new Date();
  const from = h("input", { type: "datetime-local", "data-test": "report-from", value: rfc3339ToLocal(new Date(now - 3600e3).toISOString()) });
  const to = h("input", { type: "datetime-local", "data-test": "report-to", value: rfc3339ToLocal(new Date(now.getTime() + 60e3).toISOString()) });
  const period = h("select", { "data-test": "report-period" }, [["60", "1 min"], ["900", "15 min"], ["3600", "1 h"], ["86400", "1 day"]].map(([v, l]) => h("option", { value: v }, l)));
  period.value = "900";
  const filter = h("input", { size: 20, placeholder: "optional filter", "data-test": "report-filter" });
  const box = msgBox("report-error");
  const out = h("div", { "data-test": "report-output" });
  const htmlLink = h("a", { target: "_blank", rel: "noopener", "data-test": "report-html", hidden: true }, "Open as HTML report");

  const params = () => {
    const chosen = [...devices.querySelectorAll("input:checked")].map((i) => i.dataset.id);
    if (!chosen.length) throw new Error("Choose at least one device.");
    const f = localToRfc3339(from.value);
    const t = localToRfc3339(to.value);
    if (!f || !t) throw new Error("Give the window's start and end.");
    return { device: chosen, from: f, to: t, period: period.value, filter: filter.value.trim() };
  };
  const show = h("button", {
    class: "primary",
    "data-test": "report-show",
    onclick: action(async () => {
      const p = params();
      clear(out, h("p", { class: "muted" }, "Reading the window…"));
      const periods = await api.get(`/api/v1/report${api.query({ ...p, format: "json" })}`);
      htmlLink.href = `/api/v1/report${api.query({ ...p, format: "html" })}`;
      htmlLink.hidden = false;
      draw(periods);
    }, box),
  }, "Show report");

  function draw(periods) {
    if (!periods.length) {
      clear(out, h("p", { class: "muted", "data-test": "report-empty" }, "No packets in this window."));
      return;
    }
    const lines = new Map();
    for (const p of periods) {
      for (const l of p.lines) {
        const x = lines.get(l.name) || { name: l.name, packets: 0, bytes: 0, syns: 0, retrans: 0, busiest: 0 };
        x.packets += l.packets;
        x.bytes += l.bytes;
        x.syns += l.tcp_syns;
        x.retrans += l.tcp_retransmissions;
        x.busiest = Math.max(x.busiest, ...(l.busiest || []).map((b) => b.bytes), 0);
        lines.set(l.name, x);
      }
    }
    const last = periods[periods.length - 1];
    const sources = last.lines.flatMap((l) => l.top_sources.map((s) => ({ ...s, line: l.name })));
    sources.sort((a, b) => b.bytes - a.bytes);
    clear(
      out,
      h("h2", {}, "Bytes per second"),
      h("div", { class: "panel" }, lineChart(seriesOfReport(periods), { test: "report-chart" })),
      h("h2", {}, "Lines"),
      table(
        [
          { title: "Line", cell: (l) => l.name },
          { title: "Packets", class: "n", cell: (l) => count(l.packets) },
          { title: "Bytes", class: "n", cell: (l) => bytes(l.bytes) },
          { title: "Busiest second", class: "n", cell: (l) => `${bytes(l.busiest)}/s` },
          { title: "TCP SYNs", class: "n", cell: (l) => count(l.syns) },
          { title: "Retransmissions", class: "n", cell: (l) => count(l.retrans) },
        ],
        [...lines.values()],
        { test: "report-lines" },
      ),
      h("h2", {}, `Top sources (${last.start_utc} – ${last.end_utc})`),
      table(
        [
          { title: "Line", cell: (s) => s.line },
          { title: "Protocol", cell: (s) => s.protocol },
          { title: "Source", cell: (s) => h("span", { class: "mono" }, s.port ? `${s.address}:${s.port}` : s.address) },
          { title: "Packets", class: "n", cell: (s) => count(s.packets) },
          { title: "Bytes", class: "n", cell: (s) => bytes(s.bytes) },
          { title: "Share", class: "n", cell: (s) => `${s.share.toFixed(1)} %` },
        ],
        sources.slice(0, 20),
        { test: "report-sources" },
      ),
    );
  }

  clear(
    view,
    h("h1", {}, "Reports"),
    h("div", { class: "panel" },
      h("b", {}, "Devices"), devices,
      h("div", { class: "row" }, h("label", {}, "From", from), h("label", {}, "To", to), h("label", {}, "Period", period), h("label", {}, "Filter", filter), show, htmlLink),
      box),
    out,
  );
  api
    .get("/api/v1/devices")
    .then(({ devices: list }) =>
      clear(devices, list.length ? list.map((d) => h("label", { class: "inline" }, h("input", { type: "checkbox", "data-id": d.id, "data-test": `report-device-${d.name}` }), d.name)) : h("span", { class: "muted" }, "No devices.")),
    )
    .catch((e) => clear(devices, h("span", { class: "msg error" }, e.message)));
}
