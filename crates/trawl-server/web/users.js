// Users (admins: list, add, change role, disable, delete) and API tokens (everyone: their
// own; admins: every token of the organisation).

import * as api from "./api.js";
import { h, clear, table, time, action, msgBox, message, errorText, copyButton } from "./dom.js";

const ROLES = ["viewer", "operator", "admin"];

export function render(view, ctx) {
  clear(view, h("h1", {}, "Users and API tokens"));
  if (ctx.can("admin")) view.append(usersPanel(ctx));
  view.append(tokensPanel(ctx));
}

function usersPanel(ctx) {
  const list = h("div", { "data-test": "users" }, h("p", { class: "muted" }, "Loading…"));
  const box = msgBox("users-error");
  const load = async () => {
    const { users } = await api.get("/api/v1/users");
    clear(
      list,
      table(
        [
          { title: "User", cell: (u) => h("b", {}, u.name) },
          {
            title: "Role",
            cell: (u) => {
              const s = h("select", { "data-test": `user-role-${u.name}` }, ROLES.map((r) => h("option", { value: r }, r)));
              s.value = u.role;
              s.addEventListener("change", action(async () => {
                try {
                  await api.patch(`/api/v1/users/${u.id}`, { role: s.value });
                  message(box, "ok", `${u.name} is now ${s.value}.`);
                } finally {
                  await load();
                }
              }, box));
              return s;
            },
          },
          { title: "Status", cell: (u) => (u.disabled ? h("span", { class: "hint bad" }, "disabled") : "active") },
          { title: "Created", cell: (u) => time(u.created) },
          {
            title: "",
            cell: (u) =>
              h("span", { class: "row" },
                h("button", { "data-test": `user-toggle-${u.name}`, onclick: action(async () => { await api.patch(`/api/v1/users/${u.id}`, { disabled: !u.disabled }); await load(); }, box) }, u.disabled ? "Enable" : "Disable"),
                h("button", { "data-test": `user-password-${u.name}`, onclick: action(async () => {
                  const password = prompt(`New password for ${u.name} (8 characters or more):`);
                  if (!password) return;
                  await api.patch(`/api/v1/users/${u.id}`, { password });
                  message(box, "ok", `${u.name}'s password is changed.`);
                }, box) }, "Set password"),
                u.name === ctx.me.user ? null : h("button", { class: "danger", "data-test": `user-delete-${u.name}`, onclick: action(async () => {
                  if (!confirm(`Delete the user ${u.name}?`)) return;
                  await api.del(`/api/v1/users/${u.id}`);
                  await load();
                }, box) }, "Delete")),
          },
        ],
        users,
        { test: "users-table", rowTest: (u) => `user-${u.name}` },
      ),
    );
  };
  const name = h("input", { size: 16, placeholder: "name", "data-test": "user-new-name" });
  const role = h("select", { "data-test": "user-new-role" }, ROLES.map((r) => h("option", { value: r }, r)));
  const password = h("input", { type: "password", size: 16, placeholder: "8+ characters", "data-test": "user-new-password", autocomplete: "new-password" });
  const add = h("button", {
    class: "primary",
    "data-test": "user-add",
    onclick: action(async () => {
      await api.post("/api/v1/users", { name: name.value.trim(), role: role.value, password: password.value });
      message(box, "ok", `${name.value.trim()} added.`);
      name.value = password.value = "";
      await load();
    }, box),
  }, "Add user");
  load().catch((e) => clear(list, h("div", { class: "msg error" }, errorText(e))));
  return h("div", { class: "panel" }, h("h2", {}, "Users"), list,
    h("div", { class: "row" }, h("label", {}, "Name", name), h("label", {}, "Role", role), h("label", {}, "Password", password), add), box);
}

function tokensPanel(ctx) {
  const list = h("div", { "data-test": "tokens" }, h("p", { class: "muted" }, "Loading…"));
  const box = msgBox("tokens-error");
  const made = h("div", { "data-test": "token-made", hidden: true });
  const load = async () => {
    const { tokens } = await api.get("/api/v1/tokens");
    clear(
      list,
      table(
        [
          { title: "Name", cell: (t) => t.name },
          { title: "Role", cell: (t) => t.role },
          { title: "User", cell: (t) => t.user || "—" },
          { title: "Created", cell: (t) => time(t.created) },
          { title: "Last used", cell: (t) => time(t.last_used) },
          { title: "", cell: (t) => h("button", { class: "danger", "data-test": `token-delete-${t.id}`, onclick: action(async () => { await api.del(`/api/v1/tokens/${t.id}`); await load(); }, box) }, "Delete") },
        ],
        tokens,
        { test: "tokens-table", empty: "No API tokens.", rowTest: (t) => `token-${t.id}` },
      ),
    );
  };
  const name = h("input", { size: 18, placeholder: "e.g. grafana", "data-test": "token-new-name" });
  const role = h("select", { "data-test": "token-new-role" }, ROLES.filter((r) => ctx.can(r)).map((r) => h("option", { value: r }, r)));
  const add = h("button", {
    class: "primary",
    "data-test": "token-add",
    onclick: action(async () => {
      const t = await api.post("/api/v1/tokens", { name: name.value.trim(), role: role.value });
      const code = h("code", { "data-test": "token-value" }, t.token);
      clear(made, h("p", { class: "hint" }, "The token is shown once: keep it now."), h("div", { class: "command" }, code, copyButton("token-copy", () => t.token, code)));
      made.hidden = false;
      name.value = "";
      await load();
    }, box),
  }, "Make a token");
  load().catch((e) => clear(list, h("div", { class: "msg error" }, errorText(e))));
  return h("div", { class: "panel" }, h("h2", {}, ctx.can("admin") ? "API tokens of the organisation" : "Your API tokens"), list,
    h("div", { class: "row" }, h("label", {}, "Name", name), h("label", {}, "Role", role), add), made, box);
}
