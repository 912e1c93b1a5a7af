// The REST API, as the pages call it: the session cookie (same origin), the CSRF header the
// server asks of cookie-authenticated writes, and errors as thrown ApiError values that carry
// the server's {"error", "detail"}.

export class ApiError extends Error {
  constructor(status, kind, detail) {
    super(detail ? `${kind}: ${detail}` : kind);
    this.status = status;
    this.kind = kind;
    this.detail = detail;
  }
}

// Called with the error when an answer says the session is gone (401), so the app can show
// the login page again.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

function headers(extra) {
  return { "X-Requested-With": "trawl", ...extra };
}

// Sends a request; `body` is JSON unless it is a Blob/File/string (sent as it is).
export async function request(method, path, body, { contentType, signal, quiet401 } = {}) {
  const init = { method, credentials: "same-origin", headers: headers(), signal };
  if (body !== undefined && body !== null) {
    if (body instanceof Blob || typeof body === "string") {
      init.body = body;
      init.headers["Content-Type"] = contentType || "application/octet-stream";
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network", `the server could not be reached (${e.message})`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  return response;
}

export async function errorOf(response) {
  let kind = `HTTP ${response.status}`;
  let detail = response.statusText;
  try {
    const text = await response.text();
    try {
      const j = JSON.parse(text);
      if (j && j.error) {
        kind = j.error;
        detail = j.detail || "";
      }
    } catch {
      if (text) detail = text.slice(0, 300);
    }
  } catch {
    /* the body could not be read: keep the status */
  }
  return new ApiError(response.status, kind, detail);
}

export async function json(method, path, body, opts) {
  const r = await request(method, path, body, opts);
  if (r.status === 204) return null;
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, opts) => json("GET", path, undefined, opts);
export const post = (path, body, opts) => json("POST", path, body, opts);
export const put = (path, body, opts) => json("PUT", path, body, opts);
export const patch = (path, body, opts) => json("PATCH", path, body, opts);
export const del = (path, opts) => json("DELETE", path, undefined, opts);

// A query string from an object; arrays repeat the key, empty values are left out.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const x of Array.isArray(v) ? v : [v]) {
      if (x !== undefined && x !== null && x !== "") q.append(k, String(x));
    }
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;
