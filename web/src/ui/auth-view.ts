// Sign up / log in. Field violations from the server (INVALID_ARGUMENT) are
// shown next to the field they name.

import type { User } from "../../../gen/chat/v1/auth_pb.js";
import { Code } from "@connectrpc/connect";
import { describeError, type Api } from "../api.ts";
import { deviceId } from "../settings.ts";
import { h, fill } from "./dom.ts";

type Mode = "signup" | "login";

interface Field {
  name: string; // the proto field it maps to
  label: string;
  type: string;
  autocomplete: string;
  modes: Mode[];
  hint?: string;
}

const FIELDS: Field[] = [
  { name: "email", label: "Email", type: "email", autocomplete: "email", modes: ["signup"] },
  { name: "username", label: "Username", type: "text", autocomplete: "username", modes: ["signup"], hint: "3–32 of a–z, 0–9, _ and ." },
  { name: "display_name", label: "Display name", type: "text", autocomplete: "name", modes: ["signup"] },
  { name: "login", label: "Email or username", type: "text", autocomplete: "username", modes: ["login"] },
  {
    name: "password",
    label: "Password",
    type: "password",
    autocomplete: "current-password",
    modes: ["signup", "login"],
    hint: "At least 8 characters",
  },
];

export function renderAuth(root: HTMLElement, opts: { api: Api; notice?: string; onSignedIn(user: User): void }): void {
  let mode: Mode = "signup";
  let busy = false;
  const status = h("p", { class: "form-error", role: "alert", "data-testid": "auth-error" });
  if (opts.notice) status.textContent = opts.notice;
  const inputs = new Map<string, HTMLInputElement>();
  const fieldErrors = new Map<string, HTMLElement>();
  const fieldsBox = h("div", { class: "fields" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "auth-submit" });
  const heading = h("h2", { id: "auth-heading" });
  const switchButton = h("button", {
    type: "button",
    class: "link",
    "data-testid": "auth-switch",
    onclick: () => setMode(mode === "signup" ? "login" : "signup"),
  });

  const form = h(
    "form",
    { class: "auth-form", "aria-labelledby": "auth-heading", novalidate: true, onsubmit: (e) => void onSubmit(e) },
    heading,
    fieldsBox,
    status,
    submit,
    h("p", { class: "switch" }, switchButton),
  );

  function setMode(next: Mode): void {
    mode = next;
    heading.textContent = mode === "signup" ? "Create an account" : "Log in";
    submit.textContent = mode === "signup" ? "Create account" : "Log in";
    switchButton.textContent = mode === "signup" ? "I already have an account" : "Create a new account";
    inputs.clear();
    fieldErrors.clear();
    fill(
      fieldsBox,
      FIELDS.filter((f) => f.modes.includes(mode)).map((f) => {
        const id = `auth-${f.name}`;
        const err = h("p", { class: "field-error", id: `${id}-error` });
        const input = h("input", {
          id,
          name: f.name,
          type: f.type,
          autocomplete: f.name === "password" && mode === "signup" ? "new-password" : f.autocomplete,
          required: true,
          "aria-describedby": `${id}-error${f.hint ? ` ${id}-hint` : ""}`,
        });
        inputs.set(f.name, input);
        fieldErrors.set(f.name, err);
        return h(
          "div",
          { class: "field" },
          h("label", { for: id }, f.label),
          input,
          f.hint ? h("p", { class: "hint", id: `${id}-hint` }, f.hint) : null,
          err,
        );
      }),
    );
    if (!opts.notice) status.textContent = "";
    inputs.values().next().value?.focus();
  }

  async function onSubmit(e: Event): Promise<void> {
    e.preventDefault();
    if (busy) return;
    for (const [name, err] of fieldErrors) {
      err.textContent = "";
      inputs.get(name)?.removeAttribute("aria-invalid");
    }
    status.textContent = "";
    const v = (name: string) => inputs.get(name)?.value ?? "";
    const missing = [...inputs.entries()].find(([name]) => name !== "display_name" && !v(name).trim());
    if (missing) {
      showFieldError(missing[0], "Required");
      return;
    }
    busy = true;
    submit.disabled = true;
    submit.setAttribute("aria-busy", "true");
    try {
      const user =
        mode === "signup"
          ? await opts.api.register({
              email: v("email").trim(),
              username: v("username").trim(),
              displayName: v("display_name").trim(),
              password: v("password"),
              deviceId: deviceId(),
            })
          : await opts.api.login({ login: v("login").trim(), password: v("password"), deviceId: deviceId() });
      opts.onSignedIn(user);
    } catch (err) {
      const view = describeError(err);
      let first: string | null = null;
      for (const [field, desc] of view.fields) {
        if (inputs.has(field)) {
          showFieldError(field, desc);
          first ??= field;
        }
      }
      status.textContent =
        view.code === Code.Unauthenticated ? "Wrong login or password." : first ? "Please correct the highlighted field." : view.message;
      if (first) inputs.get(first)?.focus();
    } finally {
      busy = false;
      submit.disabled = false;
      submit.removeAttribute("aria-busy");
    }
  }

  function showFieldError(field: string, text: string): void {
    const input = inputs.get(field);
    const err = fieldErrors.get(field);
    if (!input || !err) return;
    err.textContent = text;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }

  fill(root, h("main", { class: "auth", id: "main" }, h("h1", { class: "brand" }, "Chat"), form));
  setMode("signup");
}
