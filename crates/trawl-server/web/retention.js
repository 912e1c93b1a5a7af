// Retention: how long the organisation keeps its devices' packets (GET; admins PUT/DELETE).

import * as api from "./api.js";
import { h, clear, bytes, action, msgBox, message, errorText } from "./dom.js";

export function render(view, ctx) {
  const out = h("div", { "data-test": "retention" }, h("p", { class: "muted" }, "Loading…"));
  clear(view, h("h1", {}, "Retention"), out);
  const admin = ctx.can("admin");
  const box = msgBox("retention-message");
  const age = h("input", { class: "num", type: "number", min: "1", step: "1", placeholder: "no limit", "data-test": "retention-age", disabled: !admin });
  const ageUnit = h("select", { "data-test": "retention-age-unit", disabled: !admin }, [["86400", "days"], ["3600", "hours"], ["1", "seconds"]].map(([v, l]) => h("option", { value: v }, l)));
  const size = h("input", { class: "num", type: "number", min: "1", step: "any", placeholder: "no limit", "data-test": "retention-size", disabled: !admin });
  const sizeUnit = h("select", { "data-test": "retention-size-unit", disabled: !admin }, [["1000000000", "GB"], ["1000000", "MB"], ["1", "bytes"]].map(([v, l]) => h("option", { value: v }, l)));

  const describe = (p) => `${p.max_age_secs ? duration(p.max_age_secs) : "no age limit"} · ${p.max_bytes ? bytes(p.max_bytes) : "no size limit"}`;
  const fill = (p) => {
    const [a, au] = split(p.max_age_secs, [86400, 3600, 1]);
    age.value = a;
    ageUnit.value = au;
    const [s, su] = split(p.max_bytes, [1e9, 1e6, 1]);
    size.value = s;
    sizeUnit.value = su;
  };
  const draw = (r) => {
    fill(r);
    clear(
      out,
      h("div", { class: "panel" },
        h("dl", { class: "summary" },
          h("dt", {}, "In force"), h("dd", { "data-test": "retention-in-force" }, describe(r)),
          h("dt", {}, "Set by"), h("dd", { "data-test": "retention-source" }, r.source === "organisation" ? "this organisation" : "the server's default"),
          h("dt", {}, "Server default"), h("dd", {}, describe(r.server_default || {})),
          h("dt", {}, "Checked every"), h("dd", {}, duration(r.check_interval_secs))),
        h("p", { class: "hint" }, "Whole segments of the devices' streams are deleted, oldest first. Captures are kept until deleted."),
        h("div", { class: "row" },
          h("label", {}, "Delete packets older than", h("span", { class: "row" }, age, ageUnit)),
          h("label", {}, "Keep at most", h("span", { class: "row" }, size, sizeUnit)),
          admin ? h("button", { class: "primary", "data-test": "retention-save", onclick: action(save, box) }, "Save") : null,
          admin ? h("button", { "data-test": "retention-default", onclick: action(reset, box) }, "Use the server's default") : null),
        admin ? null : h("p", { class: "hint", "data-test": "retention-readonly" }, "Only admins change retention."),
        box),
    );
  };
  async function save() {
    const secs = age.value === "" ? null : Math.round(Number(age.value) * Number(ageUnit.value));
    const max = size.value === "" ? null : Math.round(Number(size.value) * Number(sizeUnit.value));
    draw(await api.put("/api/v1/retention", { max_age_secs: secs, max_bytes: max }));
    message(box, "ok", "Saved.");
  }
  async function reset() {
    draw(await api.del("/api/v1/retention"));
    message(box, "ok", "Back to the server's default.");
  }
  api.get("/api/v1/retention").then(draw).catch((e) => clear(out, h("div", { class: "msg error", "data-test": "retention-error" }, errorText(e))));
}

function split(v, units) {
  if (v === null || v === undefined) return ["", String(units[0])];
  for (const u of units) if (v % u === 0) return [String(v / u), String(u)];
  return [String(v), "1"];
}

function duration(s) {
  if (!s) return "—";
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}
