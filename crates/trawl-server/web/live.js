// A capture job live (#/live/ID) and the list of jobs (#/jobs).
//
// The live view reads GET /api/v1/jobs/{id}/watch?format=text as a stream (fetch +
// ReadableStream): one line per packet, merged across devices by the server. Lines are queued
// as they arrive and drawn in one batch per animation frame; only the newest `scrollback`
// lines are kept in the page (older DOM nodes are removed, and a frame that receives more than
// the scrollback draws only its newest), so memory stays bounded however fast the job is.
// While paused, lines are counted but not drawn.

import * as api from "./api.js";
import { h, clear, table, bytes, count, time, action, msgBox, message, errorText } from "./dom.js";

export const DEFAULT_SCROLLBACK = 5000;
const COLOURS = 8;
const JOB_POLL_MS = 2000;

export function render(view, ctx, params) {
  if (!params.job) return renderJobs(view);
  return renderLive(view, ctx, Number(params.job), params);
}

function renderJobs(view) {
  const box = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  clear(view, h("h1", {}, "Capture jobs"), box);
  api
    .get("/api/v1/jobs?limit=200")
    .then(({ jobs }) =>
      clear(
        box,
        table(
          [
            { title: "Job", cell: (j) => h("a", { href: `#/live/${j.id}`, "data-test": `job-link-${j.id}` }, `#${j.id} ${j.name || ""}`) },
            { title: "State", cell: (j) => j.state },
            { title: "Filter", cell: (j) => h("code", {}, j.expression || "(every packet)") },
            { title: "Devices", cell: (j) => j.devices.map((d) => d.name).join(", ") },
            { title: "Created", cell: (j) => time(j.created) },
            { title: "Packets", class: "n", cell: (j) => count(j.totals?.stored_packets) },
            { title: "Bytes", class: "n", cell: (j) => bytes(j.totals?.stored_bytes) },
          ],
          jobs,
          { test: "jobs-table", empty: "No capture jobs yet." },
        ),
      ),
    )
    .catch((e) => clear(box, h("div", { class: "msg error", "data-test": "jobs-error" }, errorText(e))));
}

function renderLive(view, ctx, jobId, params) {
  const scrollback = Math.max(100, Number(params.scrollback || localStorage.getItem("trawl.scrollback") || DEFAULT_SCROLLBACK));
  const state = {
    received: 0, // packet lines that arrived
    shown: 0, // packet lines drawn
    paused: 0, // arrived while paused (not drawn)
    overflow: 0, // arrived faster than a frame could keep (only the newest `scrollback` drawn)
    domLines: 0,
    pending: [], // [text, colour class] waiting for the next frame
    isPaused: false,
    ended: false,
    frame: 0,
    abort: null,
    stopped: false,
  };
  const deviceClass = new Map(); // device name → "dcN"

  const title = h("h1", { "data-test": "live-title" }, `Job #${jobId}`);
  const statusLine = h("span", { class: "hint", "data-test": "live-status" }, "connecting…");
  const legend = h("div", { class: "legend", "data-test": "live-legend" });
  const lines = h("div", { class: "lines", "data-test": "live-lines", tabindex: "0" });
  const counter = (test, label) => {
    const b = h("b", { "data-test": test, "data-value": "0" }, "0");
    return [b, h("span", {}, h("span", { class: "muted" }, label), " ", b)];
  };
  const [received, receivedBox] = counter("live-received", "received");
  const [shown, shownBox] = counter("live-shown", "shown");
  const [domCount, domBox] = counter("live-dom", "in view");
  const [skipped, skippedBox] = counter("live-skipped", "not shown");
  const box = msgBox("live-error");
  const parts = h("div", { "data-test": "live-parts" });

  const pause = h("button", { "data-test": "live-pause" }, "Pause");
  pause.addEventListener("click", () => {
    state.isPaused = !state.isPaused;
    pause.textContent = state.isPaused ? "Resume" : "Pause";
    pause.dataset.paused = String(state.isPaused);
    if (state.isPaused) state.pending = [];
    updateCounters();
  });
  const stop = h(
    "button",
    {
      class: "danger",
      "data-test": "live-stop",
      hidden: !ctx.can("operator"),
      onclick: action(async () => {
        const job = await api.post(`/api/v1/jobs/${jobId}/stop`);
        drawJob(job);
      }, box),
    },
    "Stop",
  );
  const download = h("a", { href: `/api/v1/jobs/${jobId}/pcapng`, download: `trawl-job-${jobId}.pcapng`, "data-test": "live-download" }, "Download pcapng");
  const saved = h("span", { "data-test": "live-saved" });
  const save = h(
    "button",
    {
      "data-test": "live-save",
      hidden: !ctx.can("operator"),
      onclick: action(async () => {
        // The job's packets, merged as the download gives them, kept as a capture (tags,
        // notes, annotations and share links belong to captures).
        const r = await api.request("GET", `/api/v1/jobs/${jobId}/pcapng`);
        const blob = await r.blob();
        const name = `job ${jobId}${job && job.name ? ` ${job.name}` : ""}`;
        const capture = await api.post(`/api/v1/captures${api.query({ name, tag: `job-${jobId}` })}`, blob, { contentType: "application/x-pcapng" });
        clear(saved, "saved as ", h("a", { href: `#/captures/${capture.id}`, "data-test": "live-saved-link" }, `capture #${capture.id}`), ` (${count(capture.packets)} packets)`);
      }, box),
    },
    "Save as capture",
  );
  const limitInput = h("input", { class: "num", type: "number", min: "100", step: "100", value: String(scrollback), "data-test": "live-scrollback" });
  limitInput.addEventListener("change", () => {
    localStorage.setItem("trawl.scrollback", String(Math.max(100, Number(limitInput.value) || DEFAULT_SCROLLBACK)));
  });

  clear(
    view,
    h("div", { class: "row" }, title, h("span", { class: "spacer" }), statusLine),
    h("div", { class: "live-bar" }, pause, stop, download, save, saved, h("span", { class: "spacer" }), legend),
    h("div", { class: "live-bar counters" }, receivedBox, shownBox, domBox, skippedBox,
      h("label", { class: "inline" }, h("span", { class: "muted" }, "scrollback"), limitInput)),
    box,
    lines,
    h("h2", {}, "Devices"),
    parts,
  );

  let stick = true; // follow the newest line unless the user scrolled up
  lines.addEventListener("scroll", () => {
    stick = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 30;
  });

  function colourOf(device) {
    let c = deviceClass.get(device);
    if (!c) {
      c = `dc${deviceClass.size % COLOURS}`;
      deviceClass.set(device, c);
      drawLegend();
    }
    return c;
  }
  function drawLegend() {
    clear(
      legend,
      [...deviceClass].map(([name, c]) =>
        h("span", { class: `dev ${c}`, "data-test": `legend-${name}` }, h("i", { class: "swatch" }), name),
      ),
    );
  }

  let lastClass = "dc0";
  function take(line) {
    if (!line) return;
    if (line.startsWith("# ")) {
      state.ended = true;
      queue(line, "note");
      statusLine.textContent = `ended: ${line.slice(2)}`;
      statusLine.dataset.state = "ended";
      return;
    }
    let cls = lastClass;
    if (line[0] !== " " && line[0] !== "\t") {
      state.received++;
      // SECONDS.MICROS DEVICE/INTERFACE SUMMARY
      const a = line.indexOf(" ");
      const b = line.indexOf("/", a + 1);
      if (a > 0 && b > a) cls = colourOf(line.slice(a + 1, b));
      lastClass = cls;
      if (state.isPaused) {
        state.paused++;
        return;
      }
    } else if (state.isPaused) {
      return; // a hex dump line of a packet not shown
    }
    queue(line, cls);
  }
  function queue(text, cls) {
    state.pending.push(text, cls);
    // Bounded even if frames stop (a hidden tab): keep only what a frame could show.
    if (state.pending.length > 4 * scrollback) {
      const drop = state.pending.length - 2 * scrollback;
      state.overflow += countPackets(state.pending, 0, drop);
      state.pending = state.pending.slice(drop);
    }
    if (!state.frame) state.frame = requestAnimationFrame(flush);
  }

  function flush() {
    state.frame = 0;
    let items = state.pending;
    state.pending = [];
    if (items.length > 2 * scrollback) {
      const drop = items.length - 2 * scrollback;
      state.overflow += countPackets(items, 0, drop);
      items = items.slice(drop);
    }
    const fragment = document.createDocumentFragment();
    let n = 0;
    for (let i = 0; i < items.length; i += 2) {
      const div = document.createElement("div");
      div.className = `l ${items[i + 1]}`;
      div.textContent = items[i];
      fragment.append(div);
      n++;
      if (items[i + 1] !== "note" && items[i][0] !== " " && items[i][0] !== "\t") state.shown++;
    }
    if (n >= scrollback) {
      lines.replaceChildren(fragment);
      state.domLines = n;
    } else {
      lines.append(fragment);
      state.domLines += n;
    }
    while (state.domLines > scrollback) {
      lines.firstChild.remove();
      state.domLines--;
    }
    if (stick) lines.scrollTop = lines.scrollHeight;
    updateCounters();
  }

  function updateCounters() {
    const set = (el, v) => {
      el.dataset.value = String(v);
      el.textContent = count(v);
    };
    set(received, state.received);
    set(shown, state.shown);
    set(domCount, state.domLines);
    set(skipped, state.paused + state.overflow);
  }

  async function watch() {
    state.abort = new AbortController();
    statusLine.textContent = "live";
    statusLine.dataset.state = "live";
    try {
      const r = await api.request("GET", `/api/v1/jobs/${jobId}/watch?format=text`, undefined, { signal: state.abort.signal });
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let rest = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const text = rest + decoder.decode(value, { stream: true });
        const all = text.split("\n");
        rest = all.pop();
        for (const line of all) take(line);
        // Counters move with the stream even while paused (no frame is drawn then).
        if (state.isPaused && !state.frame) state.frame = requestAnimationFrame(flush);
      }
      take(rest + decoder.decode());
      if (!state.ended) {
        statusLine.textContent = "the stream ended";
        statusLine.dataset.state = "ended";
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      statusLine.textContent = "disconnected";
      statusLine.dataset.state = "error";
      message(box, "error", `The live view stopped: ${errorText(e)}`);
    }
  }

  // The job's own record: each device's part and totals, while it runs.
  let job = null;
  let jobTimer = null;
  function drawJob(j) {
    job = j;
    title.textContent = `Job #${j.id}${j.name ? ` — ${j.name}` : ""}`;
    for (const d of j.devices) colourOf(d.name); // colours in the job's device order
    stop.disabled = j.state !== "running";
    const offline = JSON.parse(sessionStorage.getItem(`trawl.job.${jobId}.offline`) || "[]");
    clear(
      parts,
      h("p", { class: "hint" }, `filter `, h("code", {}, j.expression || "(every packet)"), ` · state `, h("b", { "data-test": "job-state" }, j.state),
        j.duration_secs ? ` · duration ${j.duration_secs} s` : "", j.max_packets ? ` · max ${j.max_packets} packets` : "", j.max_bytes ? ` · max ${bytes(j.max_bytes)}` : ""),
      offline.length ? h("p", { class: "msg error" }, `Offline when the job started: ${offline.join(", ")}`) : null,
      table(
        [
          { title: "Device", cell: (d) => h("span", { class: deviceClass.get(d.name) }, "■ ", h("b", {}, d.name)) },
          { title: "Interface", cell: (d) => d.interface || "—" },
          { title: "State", cell: (d) => `${d.state}${d.reason ? ` (${d.reason})` : ""}` },
          { title: "Filter runs", cell: (d) => d.filter_mode || "—" },
          { title: "Stored packets", class: "n", cell: (d) => count(d.stored?.packets) },
          { title: "Stored bytes", class: "n", cell: (d) => bytes(d.stored?.bytes) },
          { title: "Drops", class: "n", cell: (d) => (d.stored ? count(d.stored.drops.kernel + d.stored.drops.interface + d.stored.drops.spool) : "—") },
        ],
        j.devices,
        { test: "live-parts-table", rowTest: (d) => `part-${d.name}` },
      ),
    );
  }
  async function pollJob() {
    try {
      const j = await api.get(`/api/v1/jobs/${jobId}`);
      if (state.stopped) return;
      drawJob(j);
      if (j.state === "finished") return;
    } catch (e) {
      if (state.stopped) return;
      message(box, "error", errorText(e));
      if (e.status === 404) return;
    }
    jobTimer = setTimeout(pollJob, JOB_POLL_MS);
  }

  pollJob().then(() => watch());
  return () => {
    state.stopped = true;
    clearTimeout(jobTimer);
    if (state.abort) state.abort.abort();
    if (state.frame) cancelAnimationFrame(state.frame);
  };
}

function countPackets(items, from, to) {
  let n = 0;
  for (let i = from; i < to; i += 2) if (items[i + 1] !== "note" && items[i][0] !== " ") n++;
  return n;
}
