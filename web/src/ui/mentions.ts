// @-mention autocomplete for a textarea: typing "@" and a few letters lists the
// conversation's members (a listbox tied to the textarea with aria-controls and
// aria-activedescendant); Up/Down move, Enter or Tab picks, Escape closes.

import type { UserView } from "../chat.ts";
import { h, fill } from "./dom.ts";

const MAX = 8;

/** Wires the autocomplete to `input`; returns the listbox element to place next to it. */
export function mentionAutocomplete(input: HTMLTextAreaElement, id: string, members: () => UserView[]): HTMLElement {
  const list = h("ul", { id, class: "mentions", role: "listbox", "aria-label": "People to mention", "data-testid": "mention-list", hidden: true });
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", id);
  let found: UserView[] = [];
  let active = 0;
  let start = -1;

  const close = () => {
    found = [];
    start = -1;
    list.hidden = true;
    fill(list);
    input.removeAttribute("aria-activedescendant");
  };

  const render = () => {
    fill(
      list,
      found.map((u, i) =>
        h(
          "li",
          {
            id: `${id}-${i}`,
            role: "option",
            "aria-selected": String(i === active),
            "data-username": u.username,
            onmousedown: (e) => e.preventDefault(), // keep focus in the textarea
            onclick: () => pick(i),
          },
          h("span", { class: "mention-name" }, u.displayName),
          h("span", { class: "mention-handle" }, ` @${u.username}`),
        ),
      ),
    );
    list.hidden = found.length === 0;
    if (found.length) input.setAttribute("aria-activedescendant", `${id}-${active}`);
    else input.removeAttribute("aria-activedescendant");
  };

  const update = () => {
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    const m = /(^|[^\w@])@([\w.]*)$/.exec(before);
    if (!m) return close();
    const q = m[2]!.toLowerCase();
    start = before.length - m[2]!.length - 1;
    found = members()
      .filter((u) => u.username.toLowerCase().startsWith(q) || u.displayName.toLowerCase().startsWith(q))
      .sort((a, b) => a.username.localeCompare(b.username))
      .slice(0, MAX);
    active = Math.min(active, Math.max(0, found.length - 1));
    render();
  };

  const pick = (i: number) => {
    const u = found[i];
    if (!u || start < 0) return close();
    const caret = input.selectionStart ?? input.value.length;
    const text = `@${u.username} `;
    input.value = input.value.slice(0, start) + text + input.value.slice(caret);
    const at = start + text.length;
    input.setSelectionRange(at, at);
    close();
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.focus();
  };

  input.addEventListener("input", update);
  input.addEventListener("click", update);
  input.addEventListener("blur", close);
  // Capture: runs before the textarea's own Enter (send) and Escape handlers.
  input.addEventListener(
    "keydown",
    (e) => {
      if (list.hidden || !found.length) return;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        active = (active + (e.key === "ArrowDown" ? 1 : found.length - 1)) % found.length;
        render();
      } else if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
        pick(active);
      } else if (e.key === "Escape") {
        close();
      } else return;
      e.preventDefault();
      e.stopImmediatePropagation();
    },
    { capture: true },
  );
  return list;
}
