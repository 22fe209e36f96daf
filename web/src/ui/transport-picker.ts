import { TRANSPORTS, type Api, type TransportKind } from "../api.ts";
import { saveTransport } from "../settings.ts";
import { h } from "./dom.ts";

/** The protocol setting: Connect or gRPC-Web. Switching reconnects open streams. */
export function transportPicker(api: Api, id: string): HTMLElement {
  const select = h(
    "select",
    {
      id,
      "data-testid": "transport-select",
      onchange: () => {
        const kind = select.value as TransportKind;
        saveTransport(kind);
        api.setTransport(kind);
      },
    },
    TRANSPORTS.map((t) => h("option", { value: t.kind, selected: t.kind === api.transport }, t.label)),
  );
  return h("span", { class: "transport" }, h("label", { for: id }, "Protocol"), select);
}
