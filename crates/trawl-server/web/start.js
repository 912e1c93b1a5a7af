// Start a capture job: devices (checkboxes), a filter checked by the server's compiler as it is
// typed, limits → POST /api/v1/jobs, then the live view.

import * as api from "./api.js";
import { h, clear, action, msgBox, message, debounce, errorText } from "./dom.js";

export function render(view, ctx) {
  clear(view, h("h1", {}, "Start a capture"));
  if (!ctx.can("operator")) {
    view.append(h("p", { class: "msg error", "data-test": "start-forbidden" }, "Starting captures needs the operator role."));
    return;
  }
  const list = h("div", { "data-test": "start-devices" }, h("p", { class: "muted" }, "Loading devices…"));
  const filter = h("input", { class: "wide mono", placeholder: "e.g. icmp or tcp port 443 (empty: every packet)", "data-test": "filter", autocomplete: "off", spellcheck: "false" });
  const verdict = h("div", { class: "hint", "data-test": "filter-status" }, "Every packet.");
  const duration = h("input", { class: "num", type: "number", min: "0", step: "any", placeholder: "seconds", "data-test": "limit-duration", value: "60" });
  const packets = h("input", { class: "num", type: "number", min: "1", step: "1", placeholder: "no limit", "data-test": "limit-packets" });
  const bytesLimit = h("input", { class: "num", type: "number", min: "1", step: "1", placeholder: "no limit", "data-test": "limit-bytes" });
  const iface = h("input", { size: 10, placeholder: "default", "data-test": "job-interface" });
  const name = h("input", { size: 24, placeholder: "optional", "data-test": "job-name" });
  const box = msgBox("start-error");
  const startButton = h("button", { class: "primary", "data-test": "start-job" }, "Start capture");

  let devices = [];
  let filterOk = true;
  let checkSeq = 0;

  const selected = () => devices.filter((d) => list.querySelector(`input[data-id="${CSS.escape(d.id)}"]`)?.checked);

  // Compiles for each link type of the chosen devices (Ethernet when none is known).
  async function check() {
    const seq = ++checkSeq;
    const expression = filter.value.trim();
    if (!expression) {
      filterOk = true;
      setVerdict("", "Every packet.");
      return;
    }
    const types = [...new Set(selected().flatMap((d) => d.link_types))];
    if (!types.length) types.push(1);
    setVerdict("", "Checking…");
    try {
      let instructions = 0;
      for (const link_type of types) {
        const r = await api.post("/api/v1/compile", { expression, link_type });
        instructions = Math.max(instructions, r.instructions);
      }
      if (seq !== checkSeq) return;
      filterOk = true;
      setVerdict("good", `✓ valid (${instructions} BPF instructions)`);
    } catch (e) {
      if (seq !== checkSeq) return;
      filterOk = e.kind !== "bad_filter" && e.kind !== "bad_link_type";
      setVerdict("bad", e.kind === "bad_filter" ? `✗ ${e.detail}` : errorText(e));
    }
  }
  function setVerdict(kind, text) {
    verdict.className = `hint ${kind}`;
    verdict.textContent = text;
    filter.classList.toggle("bad", kind === "bad");
    filter.classList.toggle("good", kind === "good");
    verdict.dataset.state = kind || "pending";
  }
  const checkSoon = debounce(check, 300);
  filter.addEventListener("input", () => {
    checkSeq++;
    setVerdict("", "…");
    checkSoon();
  });

  startButton.addEventListener(
    "click",
    action(async () => {
      const chosen = selected();
      if (!chosen.length) throw new Error("Choose at least one device.");
      if (!filterOk) throw new Error("The filter does not compile: fix it first.");
      const body = { devices: chosen.map((d) => d.id), expression: filter.value.trim() };
      const num = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
      if (num(duration) !== undefined && num(duration) > 0) body.duration = num(duration);
      if (num(packets) !== undefined) body.max_packets = num(packets);
      if (num(bytesLimit) !== undefined) body.max_bytes = num(bytesLimit);
      if (iface.value.trim()) body.interface = iface.value.trim();
      if (name.value.trim()) body.name = name.value.trim();
      const job = await api.post("/api/v1/jobs", body);
      sessionStorage.setItem(`trawl.job.${job.id}.offline`, JSON.stringify(job.offline || []));
      ctx.navigate(`#/live/${job.id}`);
    }, box),
  );

  view.append(
    h("div", { class: "panel" }, h("h2", {}, "Devices"), list),
    h(
      "div",
      { class: "panel" },
      h("h2", {}, "Filter"),
      h("div", { class: "row" }, filter),
      verdict,
      h("h2", {}, "Limits"),
      h("div", { class: "row" },
        h("label", {}, "Duration (s)", duration),
        h("label", {}, "Max packets per device", packets),
        h("label", {}, "Max bytes per device", bytesLimit),
        h("label", {}, "Interface", iface),
        h("label", {}, "Name", name)),
      h("p", { class: "hint" }, "The first limit reached ends each device's part. Leave all empty to capture until stopped."),
      h("div", { class: "row" }, startButton),
      box,
    ),
  );

  api
    .get("/api/v1/devices")
    .then((answer) => {
      devices = answer.devices.filter((d) => !d.revoked);
      if (!devices.length) {
        clear(list, h("p", { class: "muted" }, "No devices: enrol one on the Devices page."));
        return;
      }
      clear(
        list,
        devices.map((d) =>
          h(
            "label",
            { class: "inline" },
            h("input", { type: "checkbox", "data-id": d.id, "data-test": `device-check-${d.name}`, onchange: () => filter.value.trim() && check() }),
            h("b", {}, d.name),
            h("span", { class: d.polling ? "hint good" : "hint" }, d.polling ? "ready for jobs" : "not polling (offline for jobs)"),
          ),
        ).map((l) => h("div", {}, l)),
      );
    })
    .catch((e) => message(box, "error", errorText(e)));
}
