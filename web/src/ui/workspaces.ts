// The workspace switcher at the top of the sidebar: a <select> of my
// workspaces (ListMyWorkspaces), "New workspace" (a dialog: name and address)
// and, for owners and admins of the current one, "Invite people" (a dialog
// with a copyable link `<origin>/join/<token>` from CreateInviteLink).
// Dialogs are modal <dialog>s: Escape closes them and focus returns to the
// button that opened them.

import { describeError } from "../api.ts";
import type { Chat } from "../chat.ts";
import { fill, h } from "./dom.ts";

/** The proto's slug rule as an HTML pattern (anchored by the browser; compiled with the `v` flag, where a "-" in a class must be escaped). */
const SLUG = "[a-z0-9][a-z0-9\\-]{1,39}";

/** "Design Team!" -> "design-team" (the slug rule: lowercase letters, digits and dashes, 2 to 40). */
export function slugFrom(name: string): string {
  return name
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
}

export class WorkspaceSwitcher {
  readonly el: HTMLElement;
  private readonly select: HTMLSelectElement;
  private readonly inviteButton: HTMLButtonElement;
  private readonly createDialog: HTMLDialogElement;
  private readonly inviteDialog: HTMLDialogElement;
  private readonly inviteLink: HTMLInputElement;
  private readonly inviteStatus: HTMLElement;
  private readonly inviteHeading: HTMLElement;
  private readonly name: HTMLInputElement;
  private readonly slug: HTMLInputElement;
  private readonly createError: HTMLElement;
  private slugEdited = false;
  private readonly chat: Chat;

  constructor(chat: Chat, dialogParent: HTMLElement) {
    this.chat = chat;
    this.select = h("select", {
      id: "workspace-select",
      "data-testid": "workspace-select",
      onchange: () => void this.chat.switchWorkspace(this.select.value),
    });
    this.inviteButton = h(
      "button",
      { type: "button", "data-testid": "invite-button", hidden: true, onclick: () => void this.openInvite() },
      "Invite people",
    );
    this.el = h(
      "div",
      { class: "side-form workspace-bar", "data-testid": "workspace-switcher" },
      h("label", { for: "workspace-select" }, "Workspace"),
      this.select,
      h(
        "div",
        { class: "row" },
        h("button", { type: "button", "data-testid": "new-workspace-button", onclick: () => this.openCreate() }, "New workspace"),
        this.inviteButton,
      ),
    );

    // --- New workspace
    this.name = h("input", {
      id: "workspace-name",
      name: "name",
      type: "text",
      autocomplete: "off",
      required: true,
      maxlength: 80,
      oninput: () => {
        if (!this.slugEdited) this.slug.value = slugFrom(this.name.value);
      },
    });
    this.slug = h("input", {
      id: "workspace-slug",
      name: "slug",
      type: "text",
      autocomplete: "off",
      required: true,
      pattern: SLUG,
      maxlength: 40,
      "aria-describedby": "workspace-slug-hint",
      oninput: () => (this.slugEdited = this.slug.value !== ""),
    });
    this.createError = h("p", { class: "form-error", role: "alert" });
    this.createDialog = h(
      "dialog",
      { class: "settings", "aria-labelledby": "workspace-create-heading", "data-testid": "workspace-dialog" },
      h(
        "form",
        { class: "side-form", onsubmit: (e) => void this.onCreate(e) },
        h("h2", { id: "workspace-create-heading" }, "New workspace"),
        h("label", { for: "workspace-name" }, "Workspace name"),
        this.name,
        h("label", { for: "workspace-slug" }, "Short name"),
        this.slug,
        h("p", { class: "hint", id: "workspace-slug-hint" }, "Lowercase letters, digits and dashes; 2 to 40 characters; unique on this server."),
        this.createError,
        h(
          "div",
          { class: "dialog-actions gap" },
          h("button", { type: "button", onclick: () => this.createDialog.close() }, "Cancel"),
          h("button", { type: "submit", class: "primary" }, "Create workspace"),
        ),
      ),
    );

    // --- Invite people
    this.inviteHeading = h("h2", { id: "invite-heading" }, "Invite people");
    this.inviteLink = h("input", {
      id: "invite-link",
      type: "text",
      readonly: true,
      "aria-describedby": "invite-hint",
      "data-testid": "invite-link",
    });
    this.inviteStatus = h("p", { class: "hint", role: "status", "data-testid": "invite-status" });
    this.inviteDialog = h(
      "dialog",
      { class: "settings", "aria-labelledby": "invite-heading", "data-testid": "invite-dialog" },
      h(
        "form",
        { method: "dialog", class: "side-form" },
        this.inviteHeading,
        h("label", { for: "invite-link" }, "Invitation link"),
        h("div", { class: "row" }, this.inviteLink, h("button", { type: "button", onclick: () => void this.copyLink() }, "Copy link")),
        h("p", { class: "hint", id: "invite-hint" }, "Anyone with this link can join as a member during the next 7 days. Each link is new."),
        this.inviteStatus,
        h("div", { class: "dialog-actions" }, h("button", { type: "submit", class: "primary" }, "Close")),
      ),
    );
    dialogParent.append(this.createDialog, this.inviteDialog);
  }

  render(): void {
    const ws = this.chat.workspaces;
    this.el.hidden = ws.length === 0 && !this.chat.workspaceId;
    fill(
      this.select,
      ws.map((w) => {
        const unread = w.id === this.chat.workspaceId ? 0 : this.chat.unreadIn(w.id);
        return h("option", { value: w.id, selected: w.id === this.chat.workspaceId }, unread ? `${w.name} (${unread} unread)` : w.name);
      }),
    );
    this.select.value = this.chat.workspaceId;
    const role = this.chat.currentWorkspace?.role;
    this.inviteButton.hidden = role !== "owner" && role !== "admin";
  }

  private openCreate(): void {
    this.name.value = "";
    this.slug.value = "";
    this.slugEdited = false;
    this.createError.textContent = "";
    this.createDialog.showModal();
    this.name.focus();
  }

  private async onCreate(e: Event): Promise<void> {
    e.preventDefault();
    this.createError.textContent = "";
    try {
      await this.chat.createWorkspace(this.name.value, this.slug.value);
      this.createDialog.close();
      this.select.focus();
    } catch (err) {
      const d = describeError(err);
      this.createError.textContent =
        d.reason === "WORKSPACE_SLUG_TAKEN" ? "That short name is taken. Pick another." : [d.message, ...d.fields.values()].join(" ");
    }
  }

  private async openInvite(): Promise<void> {
    const w = this.chat.currentWorkspace;
    if (!w) return;
    this.inviteHeading.textContent = `Invite people to ${w.name}`;
    this.inviteLink.value = "";
    this.inviteStatus.textContent = "Creating a link…";
    this.inviteDialog.showModal();
    try {
      const { token } = await this.chat.createInviteLink();
      this.inviteLink.value = `${location.origin}/join/${token}`;
      this.inviteStatus.textContent = "";
      this.inviteLink.focus();
      this.inviteLink.select();
    } catch (err) {
      this.inviteStatus.textContent = describeError(err).message;
    }
  }

  private async copyLink(): Promise<void> {
    if (!this.inviteLink.value) return;
    this.inviteLink.select();
    try {
      await navigator.clipboard.writeText(this.inviteLink.value);
      this.inviteStatus.textContent = "Link copied.";
    } catch {
      this.inviteStatus.textContent = "Press Ctrl+C (⌘C) to copy the selected link.";
    }
  }
}
