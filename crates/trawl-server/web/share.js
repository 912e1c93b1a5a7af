// The page of a share link (/s/TOKEN): works without an account. It shows what the link
// gives (GET /api/v1/shared/TOKEN) and links the download; nothing else is reachable with it.

import { h, clear, bytes, count, time } from "./dom.js";

async function main() {
  const view = document.getElementById("view");
  const token = decodeURIComponent(location.pathname.replace(/^\/s\//, "").replace(/\/$/, ""));
  const base = `/api/v1/shared/${encodeURIComponent(token)}`;
  let r;
  try {
    r = await fetch(base, { credentials: "omit", headers: { Accept: "application/json" } });
  } catch (e) {
    clear(view, h("div", { class: "msg error", "data-test": "share-error" }, `The server could not be reached (${e.message}).`));
    return;
  }
  if (!r.ok) {
    const text = r.status === 410 ? "This share link has expired." : r.status === 404 ? "This share link is not valid, or it was revoked." : `The server answered ${r.status}.`;
    clear(view, h("h1", {}, "Shared capture"), h("div", { class: "msg error", "data-test": "share-error", "data-status": String(r.status) }, text));
    return;
  }
  const s = await r.json();
  const c = s.capture;
  document.title = `${c.name} — trawl`;
  clear(
    view,
    h("h1", { "data-test": "shared-name" }, c.name),
    h(
      "div",
      { class: "panel" },
      h("dl", { class: "summary", "data-test": "shared-summary" },
        h("dt", {}, "Packets"), h("dd", { "data-test": "shared-packets", "data-value": String(c.packets) }, count(c.packets)),
        h("dt", {}, "Bytes"), h("dd", {}, bytes(c.bytes)),
        h("dt", {}, "First packet"), h("dd", {}, time(c.first)),
        h("dt", {}, "Last packet"), h("dd", {}, time(c.last)),
        h("dt", {}, "Devices"), h("dd", {}, (c.devices || []).map((d) => (typeof d === "string" ? d : d.name)).join(", ") || "—"),
        s.filter ? [h("dt", {}, "Only packets matching"), h("dd", {}, h("code", { "data-test": "shared-filter" }, s.filter))] : null,
        h("dt", {}, "Link expires"), h("dd", { "data-test": "shared-expires" }, time(s.expires))),
      h("p", {}, h("a", { href: `${base}/pcapng`, download: `${c.name}.pcapng`, class: "primary", "data-test": "shared-download" }, "Download pcapng")),
      h("p", { class: "hint" }, "Open the file with Wireshark or tshark. This link is read-only and may be revoked at any time."),
    ),
  );
}

main();
