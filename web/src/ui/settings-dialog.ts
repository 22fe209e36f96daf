// The settings panel: a modal <dialog> (Escape closes it, focus stays inside
// and returns to the button that opened it). Today it holds the protocol:
// Connect or gRPC-Web. `?transport=` in the URL still picks it for a link.

import { TRANSPORTS, type Api, type TransportKind } from "../api.ts";
import { saveTransport } from "../settings.ts";
import { h } from "./dom.ts";

const DESCRIPTIONS: Record<TransportKind, string> = {
  connect: "JSON over HTTP. The default.",
  "grpc-web": "Binary protobuf frames. Smaller messages.",
};

/** Builds the dialog (appended to `parent`) and returns a function that opens it. */
export function settingsDialog(parent: HTMLElement, api: Api): () => void {
  const radios = TRANSPORTS.map((t) => {
    const id = `setting-transport-${t.kind}`;
    const input = h("input", {
      type: "radio",
      name: "transport",
      id,
      value: t.kind,
      "aria-describedby": `${id}-hint`,
      onchange: () => {
        if (!input.checked) return;
        saveTransport(t.kind);
        api.setTransport(t.kind);
      },
    });
    return {
      input,
      el: h("div", { class: "radio" }, input, h("label", { for: id }, t.label), h("p", { class: "hint", id: `${id}-hint` }, DESCRIPTIONS[t.kind])),
    };
  });
  const dialog = h(
    "dialog",
    { class: "settings", "aria-labelledby": "settings-heading", "data-testid": "settings-dialog" },
    h(
      "form",
      { method: "dialog" },
      h("h2", { id: "settings-heading" }, "Settings"),
      h(
        "fieldset",
        null,
        h("legend", null, "Protocol"),
        h("p", { class: "hint" }, "How this tab talks to the server. Open conversations reconnect at once."),
        radios.map((r) => r.el),
      ),
      h("div", { class: "dialog-actions" }, h("button", { type: "submit", class: "primary" }, "Done")),
    ),
  );
  parent.append(dialog);
  return () => {
    for (const r of radios) r.input.checked = r.input.value === api.transport;
    dialog.showModal();
    radios.find((r) => r.input.checked)?.input.focus();
  };
}
