// Devices: status, last seen, rates (from the change between two polls), drops; admins enrol
// and revoke devices.

import * as api from "./api.js";
import { h, clear, table, bytes, count, rate, time, ago, action, msgBox, message, copyButton } from "./dom.js";

const POLL_MS = 5000;

export function render(view, ctx) {
  const listBox = h("div", { "data-test": "devices" });
  const updated = h("span", { class: "hint", "data-test": "devices-updated" });
  const enrolPanel = ctx.can("admin") ? enrolment() : null;
  clear(
    view,
    h("div", { class: "row" }, h("h1", {}, "Devices"), h("span", { class: "spacer" }), updated),
    enrolPanel,
    listBox,
  );

  let previous = new Map(); // device id → {t, packets, bytes}
  let timer = null;
  let stopped = false;

  async function refresh() {
    try {
      const answer = await api.get("/api/v1/devices");
      if (stopped) return;
      const now = performance.now();
      const rows = answer.devices.map((d) => {
        const before = previous.get(d.id);
        const dt = before ? (now - before.t) / 1000 : 0;
        return {
          ...d,
          pps: before && dt > 0 ? (d.packets - before.packets) / dt : null,
          bps: before && dt > 0 ? (d.bytes - before.bytes) / dt : null,
        };
      });
      previous = new Map(answer.devices.map((d) => [d.id, { t: now, packets: d.packets, bytes: d.bytes }]));
      draw(rows, answer.totals);
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!stopped) clear(listBox, h("div", { class: "msg error", "data-test": "devices-error" }, e.message));
    } finally {
      if (!stopped) timer = setTimeout(refresh, POLL_MS);
    }
  }

  function draw(rows, totals) {
    const columns = [
      { title: "Device", cell: (d) => h("span", {}, h("b", {}, d.name), " ", h("span", { class: "muted" }, `#${d.id}`)) },
      { title: "Host", cell: (d) => d.hostname || "—" },
      { title: "Status", cell: status },
      { title: "Last seen", cell: (d) => h("span", { title: time(d.last_seen) }, ago(d.last_seen)) },
      { title: "Packets", class: "n", cell: (d) => count(d.packets) },
      { title: "Bytes", class: "n", cell: (d) => bytes(d.bytes) },
      { title: "Rate", class: "n", cell: (d) => (d.pps === null ? "—" : `${rate(d.pps)} · ${rate(d.bps, "B")}`) },
      {
        title: "Drops (kernel/if/spool)",
        class: "n",
        cell: (d) => {
          const total = d.drops.kernel + d.drops.interface + d.drops.spool;
          return h("span", { class: total ? "hint bad" : "" }, `${count(d.drops.kernel)} / ${count(d.drops.interface)} / ${count(d.drops.spool)}`);
        },
      },
      { title: "Streams", cell: (d) => d.streams.filter((s) => !s.name.startsWith("job-")).map((s) => s.name).filter((v, i, a) => a.indexOf(v) === i).join(", ") || "—" },
    ];
    if (ctx.can("admin")) {
      columns.push({
        title: "",
        cell: (d) =>
          d.revoked
            ? ""
            : h(
                "button",
                {
                  class: "danger",
                  "data-test": `revoke-${d.name}`,
                  onclick: action(async () => {
                    if (!confirm(`Revoke ${d.name}? Its agent will stop and cannot send again.`)) return;
                    await api.post(`/api/v1/devices/${api.enc(d.id)}/revoke`);
                    await refreshNow();
                  }),
                },
                "Revoke",
              ),
      });
    }
    clear(
      listBox,
      table(columns, rows, { test: "devices-table", empty: "No devices yet.", rowTest: (d) => `device-${d.name}` }),
      h(
        "p",
        { class: "hint", "data-test": "devices-totals" },
        `${totals.devices} devices, ${totals.connected} connected · ${count(totals.packets)} packets, ${bytes(totals.bytes)} stored · drops ${count(totals.drops.kernel + totals.drops.interface + totals.drops.spool)}`,
      ),
    );
  }

  async function refreshNow() {
    clearTimeout(timer);
    await refresh();
  }

  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function status(d) {
  if (d.revoked) return h("span", { class: "status", "data-test": "status" }, h("i", { class: "dot bad" }), "revoked");
  if (d.polling) return h("span", { class: "status", "data-test": "status" }, h("i", { class: "dot ok" }), "online · takes jobs");
  if (d.connected) return h("span", { class: "status", "data-test": "status" }, h("i", { class: "dot ok" }), "online");
  return h("span", { class: "status", "data-test": "status" }, h("i", { class: "dot" }), "offline");
}

// The admin's panel: make a one-time enrolment token and show the agent's command line.
function enrolment() {
  const name = h("input", { placeholder: "gw-17", "data-test": "enroll-name", size: 16 });
  const iface = h("input", { placeholder: "eth0", value: "eth0", "data-test": "enroll-interface", size: 10 });
  const box = msgBox("enroll-error");
  const out = h("div", { "data-test": "enroll-result", hidden: true });
  const make = h(
    "button",
    {
      class: "primary",
      "data-test": "enroll-create",
      onclick: action(async () => {
        const { token } = await api.post("/api/v1/enrollment-tokens");
        const parts = ["trawl agent", `--server ${location.origin}`];
        if (location.protocol === "https:") parts.push("--fingerprint SHA256_PRINTED_BY_TRAWL_SERVER");
        parts.push(`--enroll ${token}`);
        if (name.value.trim()) parts.push(`--name ${shellWord(name.value.trim())}`);
        if (iface.value.trim()) parts.push(`-i ${shellWord(iface.value.trim())}`);
        const command = parts.join(" ");
        const code = h("code", { "data-test": "enroll-command" }, command);
        clear(
          out,
          h("p", { class: "hint" }, "Run this on the device (as root, or with CAP_NET_RAW). The token works once."),
          h("div", { class: "command" }, code, copyButton("enroll-copy", () => command, code)),
          h("p", { class: "hint" }, "Token: ", h("code", { "data-test": "enroll-token" }, token),
            location.protocol === "https:" ? " · replace the fingerprint with the one `trawl server` printed, or use --ca DATA/tls/cert.pem." : ""),
        );
        out.hidden = false;
      }, box),
    },
    "Make an enrolment token",
  );
  message(box, "error", "");
  return h(
    "div",
    { class: "panel", "data-test": "enroll-panel" },
    h("div", { class: "row" }, h("b", {}, "Enrol a device"), h("label", {}, "Name", name), h("label", {}, "Interface", iface), make),
    box,
    out,
  );
}

function shellWord(s) {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
