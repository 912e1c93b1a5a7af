// The login page: organisation, user, password → POST /api/v1/login (sets the session cookie).

import * as api from "./api.js";
import { h, clear, message, msgBox, errorText } from "./dom.js";

export function renderLogin(view, note, done) {
  const org = h("input", { name: "org", value: localStorage.getItem("trawl.org") || "default", "data-test": "login-org", autocomplete: "organization" });
  const user = h("input", { name: "user", "data-test": "login-user", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", "data-test": "login-password", autocomplete: "current-password", required: true });
  const box = msgBox("login-error");
  const submit = h("button", { class: "primary", type: "submit", "data-test": "login-submit" }, "Log in");
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        submit.disabled = true;
        message(box, "error", "");
        try {
          const body = { org: org.value.trim() || "default", user: user.value.trim(), password: password.value };
          const me = await api.post("/api/v1/login", body, { quiet401: true });
          localStorage.setItem("trawl.org", body.org);
          done({ via: "session", ...me });
        } catch (err) {
          message(box, "error", err.status === 401 ? "Wrong organisation, user or password." : errorText(err));
          password.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("label", {}, "Organisation", org),
    h("label", {}, "User", user),
    h("label", {}, "Password", password),
    submit,
    box,
  );
  clear(
    view,
    h(
      "div",
      { class: "login panel", "data-test": "login-page" },
      h("h1", {}, "trawl"),
      note ? h("div", { class: "msg ok", "data-test": "login-note" }, note) : null,
      form,
    ),
  );
  user.focus();
}
