// The signed-in screen: a sidebar (start a DM or a group, the conversation
// list) and the open conversation (history, typing, composer). It renders the
// Chat's state, batching changes into one pass per frame, and keeps one DOM
// element per message (keyed), so a pending send turns into the stored
// message in place and screen readers hear each new message once.

import type { Api } from "../api.ts";
import { describeError } from "../api.ts";
import type { Chat, ChangeScope, ConversationView } from "../chat.ts";
import type { LinkState } from "../stream.ts";
import type { MessageData, TimelineItem } from "../../../client/src/web.ts";
import { h, fill } from "./dom.ts";
import { settingsDialog } from "./settings-dialog.ts";
import { WorkspaceSwitcher } from "./workspaces.ts";
import { mentionAutocomplete } from "./mentions.ts";

/** The reaction picker: common reactions, in rows of six. */
const REACTIONS = ["👍", "❤️", "😂", "🎉", "👀", "🙏", "👎", "😮", "😢", "🔥", "✅", "🚀"];
const LINK_TEXT: Record<LinkState, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  stopped: "Disconnected",
  unavailable: "Live updates unavailable",
};
const NEAR_BOTTOM_PX = 48;
const LOAD_OLDER_PX = 150;

interface Rendered {
  el: HTMLElement;
  sig: string;
}

export interface ChatViewOptions {
  onLogout(): void;
  /** The user opened a conversation (the router records it). */
  onNavigate(conversationId: string | null): void;
}

export class ChatView {
  private readonly chat: Chat;
  private readonly opts: ChatViewOptions;
  private readonly dirty = new Set<ChangeScope>();
  private frame = 0;
  private readonly unsubscribe: () => void;

  private readonly linkEl: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly convList: HTMLUListElement;
  private readonly dmResults: HTMLElement;
  private readonly main: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly subtitleEl: HTMLElement;
  private readonly list: HTMLElement;
  private readonly historyEl: HTMLElement;
  private readonly typingEl: HTMLElement;
  private readonly composer: HTMLTextAreaElement;
  private readonly composerForm: HTMLFormElement;
  private readonly jumpButton: HTMLButtonElement;
  private readonly emptyEl: HTMLElement;
  private readonly layoutEl: HTMLElement;
  private readonly notifButton: HTMLButtonElement;
  private readonly membersDialog: HTMLDialogElement;
  private readonly membersList: HTMLElement;
  private readonly membersAdd: HTMLElement;
  private readonly membersButton: HTMLButtonElement;
  private readonly notifBadge: HTMLElement;
  private readonly notifDialog: HTMLDialogElement;
  private readonly notifList: HTMLElement;
  private readonly searchResults: HTMLElement;
  private readonly channelResults: HTMLElement;
  private channelQuery = 0;
  /** The message a search jumped to (highlighted until the next jump or conversation). */
  private hitId: string | null = null;
  private readonly threadEl: HTMLElement;
  private readonly threadList: HTMLElement;
  private readonly threadComposer: HTMLTextAreaElement;

  private readonly appEl: HTMLElement;
  private readonly workspaces: WorkspaceSwitcher;
  private readonly rendered = new Map<string, Rendered>();
  /** The open thread's replies, keyed like `rendered` (same tools, same state fields). */
  private readonly threadRendered = new Map<string, Rendered>();
  private renderedThread: string | null = null;
  private renderedConversation: string | null = null;
  private pickerFor: string | null = null;
  /** The message being edited in place (its key), and the one asking "delete?". */
  private editing: string | null = null;
  /** The edit box's text, kept across re-renders of its message (a receipt or a reaction arriving meanwhile). */
  private editDraft = "";
  private confirmingDelete: string | null = null;
  /** Phone layout: the message whose tools are shown (tapped). */
  private selected: string | null = null;
  private stickToBottom = true;
  private readonly drafts = new Map<string, string>();
  /** Escape closes what is open, innermost first: the delete question, the reaction picker; focus goes back where it came from. */
  private readonly onKeydown = (e: KeyboardEvent) => {
    if (e.key !== "Escape" || e.defaultPrevented) return;
    if (document.querySelector("dialog[open]")) return; // the dialog closes itself
    const key = this.confirmingDelete ?? this.pickerFor;
    if (!key) {
      if (this.chat.openThread && !this.editing) {
        e.preventDefault();
        this.closeThread();
      }
      return;
    }
    const focusKey = this.confirmingDelete ? "delete" : "react-add";
    this.confirmingDelete = null;
    this.pickerFor = null;
    e.preventDefault();
    this.renderNow();
    this.focusInMessage(key, focusKey);
  };

  constructor(root: HTMLElement, chat: Chat, api: Api, opts: ChatViewOptions) {
    this.chat = chat;
    this.opts = opts;

    this.notifBadge = h("span", { class: "badge", "aria-hidden": "true", "data-testid": "notifications-badge", hidden: true });
    this.notifButton = h(
      "button",
      {
        type: "button",
        class: "icon-button",
        "aria-label": "Notifications",
        "data-testid": "notifications-button",
        onclick: () => this.openNotifications(),
      },
      h("span", { class: "icon", "aria-hidden": "true" }, "🔔"),
      h("span", { class: "label-text", "aria-hidden": "true" }, "Notifications"),
      // A space, so the visible text reads "Notifications 1", the start of the name "Notifications 1 unseen".
      " ",
      this.notifBadge,
    );
    this.membersList = h("ul", { class: "notif-list member-list", "data-testid": "member-list" });
    this.membersAdd = h("div", { class: "members-add" });
    this.membersDialog = h(
      "dialog",
      { class: "settings members", "aria-labelledby": "members-heading", "data-testid": "members-dialog" },
      h("h2", { id: "members-heading" }, "People"),
      this.membersAdd,
      this.membersList,
      h("form", { method: "dialog", class: "dialog-actions" }, h("button", { type: "submit", class: "primary" }, "Close")),
    );
    this.membersButton = h(
      "button",
      { type: "button", class: "link", "data-testid": "members-button", hidden: true, onclick: () => this.openMembers() },
      "People",
    );
    this.notifList = h("ul", { class: "notif-list", "data-testid": "notification-list" });
    this.notifDialog = h(
      "dialog",
      { class: "settings notifications", "aria-labelledby": "notif-heading", "data-testid": "notifications-dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "notif-heading" }, "Notifications"),
        h("p", { class: "hint" }, "What arrived while none of your devices was online."),
        this.notifList,
        h("div", { class: "dialog-actions" }, h("button", { type: "submit", class: "primary" }, "Close")),
      ),
    );
    this.linkEl = h("span", { class: "link-state", role: "status", "data-testid": "connection-status" });
    this.errorEl = h("div", { class: "banner", role: "alert", "data-testid": "error-banner", hidden: true });
    const header = h(
      "header",
      { class: "topbar" },
      h("h1", { class: "brand" }, "Chat"),
      this.linkEl,
      h("span", { class: "spacer" }),
      h("span", { class: "me", "data-testid": "me" }, `${chat.me.displayName} (@${chat.me.username})`),
      this.notifButton,
      h(
        "button",
        { type: "button", class: "icon-button", "aria-label": "Settings", "data-testid": "settings-button", onclick: () => openSettings() },
        h("span", { class: "icon", "aria-hidden": "true" }, "⚙"),
        h("span", { class: "label-text", "aria-hidden": "true" }, "Settings"),
      ),
      h("button", { type: "button", onclick: () => opts.onLogout() }, "Log out"),
    );

    // --- sidebar
    const dmInput = h("input", { id: "dm-username", name: "username", type: "search", autocomplete: "off", placeholder: "username", required: true });
    this.dmResults = h("ul", { class: "results", "aria-label": "People found", "data-testid": "dm-results" });
    const dmForm = h(
      "form",
      { class: "side-form", "data-testid": "new-dm-form", onsubmit: (e) => void this.onFindPeople(e, dmInput) },
      h("label", { for: "dm-username" }, "Message someone"),
      h("div", { class: "row" }, dmInput, h("button", { type: "submit" }, "Find")),
    );
    const groupTitle = h("input", { id: "group-title", name: "title", type: "text", autocomplete: "off" });
    const groupMembers = h("input", {
      id: "group-members",
      name: "members",
      type: "text",
      autocomplete: "off",
      placeholder: "alice, bob",
      "aria-describedby": "group-members-hint",
    });
    const groupForm = h(
      "form",
      { class: "side-form", "data-testid": "new-group-form", onsubmit: (e) => void this.onCreateGroup(e, groupTitle, groupMembers) },
      h("label", { for: "group-title" }, "Group name"),
      groupTitle,
      h("label", { for: "group-members" }, "Members"),
      groupMembers,
      h("p", { class: "hint", id: "group-members-hint" }, "Usernames, separated by commas"),
      h("button", { type: "submit" }, "Create group"),
    );
    const channelInput = h("input", { id: "channel-query", name: "channel", type: "search", autocomplete: "off", placeholder: "name starts with…" });
    this.channelResults = h("ul", { class: "results channel-results", "aria-label": "Public channels", "data-testid": "channel-results" });
    const channelForm = h(
      "form",
      { class: "side-form", "data-testid": "channel-form", onsubmit: (e) => void this.onBrowseChannels(e, channelInput) },
      h("label", { for: "channel-query" }, "Channel name"),
      h("div", { class: "row" }, channelInput, h("button", { type: "submit" }, "Show")),
    );
    const channels = h(
      "details",
      {
        class: "new-group",
        "data-testid": "browse-channels",
        ontoggle: (e) => {
          if ((e.currentTarget as HTMLDetailsElement).open) channelForm.requestSubmit();
        },
      },
      h("summary", null, "Browse channels"),
      channelForm,
      this.channelResults,
    );
    const searchInput = h("input", {
      id: "search-input",
      name: "q",
      type: "search",
      autocomplete: "off",
      placeholder: "words to find",
      required: true,
    });
    this.searchResults = h("ul", { class: "results", "aria-label": "Search results", "data-testid": "search-results" });
    const searchForm = h(
      "form",
      { class: "side-form", role: "search", "data-testid": "search-form", onsubmit: (e) => void this.onSearch(e, searchInput) },
      h("label", { for: "search-input" }, "Search messages"),
      h("div", { class: "row" }, searchInput, h("button", { type: "submit" }, "Search")),
    );
    this.convList = h("ul", { class: "conv-list", "data-testid": "conversation-list", "aria-labelledby": "conv-heading" });
    const dialogs = h("div", { class: "dialogs" });
    this.workspaces = new WorkspaceSwitcher(chat, dialogs);
    const sidebar = h(
      "nav",
      { class: "sidebar", "aria-label": "Conversations" },
      this.workspaces.el,
      dmForm,
      this.dmResults,
      h("details", { class: "new-group" }, h("summary", null, "New group"), groupForm),
      channels,
      searchForm,
      this.searchResults,
      h("h2", { id: "conv-heading", class: "side-heading" }, "Conversations"),
      this.convList,
    );

    // --- conversation
    this.titleEl = h("h2", { id: "conversation-title", "data-testid": "conversation-title" });
    this.subtitleEl = h("span", { class: "subtitle", "data-testid": "conversation-subtitle" });
    this.historyEl = h("div", { class: "history", "data-testid": "history-state" });
    this.list = h("div", {
      class: "messages",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-labelledby": "conversation-title",
      "data-testid": "message-list",
      tabindex: 0,
    });
    this.list.append(this.historyEl);
    this.list.addEventListener("scroll", () => this.onScroll());
    this.jumpButton = h("button", { type: "button", class: "jump", hidden: true, onclick: () => this.scrollToBottom(true) }, "Jump to newest ↓");
    this.typingEl = h("div", { class: "typing", "aria-live": "polite", "data-testid": "typing-indicator" });
    this.composer = h("textarea", { id: "composer", name: "content", rows: 1, placeholder: "Write a message", "data-testid": "composer" });
    this.composer.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.composerForm.requestSubmit();
      } else if (e.key === "ArrowUp" && !this.composer.value && this.chat.openId) {
        // Up in an empty composer edits your last message.
        const last = this.chat.lastEditable(this.chat.openId);
        if (last) {
          e.preventDefault();
          this.startEdit(last.key);
        }
      }
    });
    this.composer.addEventListener("input", () => {
      this.autosize();
      if (this.chat.openId) this.chat.typed(this.chat.openId, this.composer.value);
    });
    this.composer.addEventListener("blur", () => {
      if (this.chat.openId) this.chat.stopTyping(this.chat.openId);
    });
    this.composerForm = h(
      "form",
      { class: "composer", "data-testid": "composer-form", onsubmit: (e) => this.onSend(e) },
      h("label", { for: "composer", class: "visually-hidden" }, "Message"),
      mentionAutocomplete(this.composer, "composer-mentions", () => this.mentionable()),
      this.composer,
      h("button", { type: "submit", class: "primary", "data-testid": "send-button" }, "Send"),
    );
    // --- thread side panel
    this.threadList = h("div", {
      class: "thread-messages",
      role: "log",
      "aria-live": "polite",
      "aria-relevant": "additions",
      "aria-labelledby": "thread-title",
      "data-testid": "thread-list",
      tabindex: 0,
    });
    this.threadComposer = h("textarea", { id: "thread-composer", name: "reply", rows: 1, placeholder: "Reply…", "data-testid": "thread-composer" });
    const threadForm = h(
      "form",
      {
        class: "composer",
        onsubmit: (e) => {
          e.preventDefault();
          const t = this.chat.openThread;
          if (!t || !this.threadComposer.value.trim()) return;
          this.chat.sendReply(t.conversationId, t.parentId, this.threadComposer.value);
          this.threadComposer.value = "";
          this.threadComposer.focus();
        },
      },
      h("label", { for: "thread-composer", class: "visually-hidden" }, "Reply"),
      mentionAutocomplete(this.threadComposer, "thread-mentions", () => this.mentionable()),
      this.threadComposer,
      h("button", { type: "submit", class: "primary" }, "Send reply"),
    );
    this.threadComposer.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        threadForm.requestSubmit();
      } else if (e.key === "ArrowUp" && !this.threadComposer.value && this.chat.openThread) {
        // Up in an empty reply box edits your last reply, as in the composer.
        const t = this.chat.openThread;
        const last = this.chat.lastEditableReply(t.conversationId, t.parentId);
        if (last) {
          e.preventDefault();
          this.startEdit(last.key);
        }
      }
    });
    this.threadEl = h(
      "aside",
      { class: "thread", "aria-labelledby": "thread-title", "data-testid": "thread-panel", hidden: true },
      h(
        "header",
        { class: "conv-header" },
        h(
          "button",
          { type: "button", class: "close-thread", "aria-label": "Close thread", "data-testid": "close-thread", onclick: () => this.closeThread() },
          h("span", { "aria-hidden": "true" }, "✕"),
        ),
        h("h2", { id: "thread-title" }, "Thread"),
      ),
      this.threadList,
      threadForm,
    );

    this.emptyEl = h("div", { class: "empty", "data-testid": "empty-state" }, h("p", null, "Pick a conversation, or find someone to message."));
    this.main = h(
      "main",
      { class: "conversation", id: "main", "aria-labelledby": "conversation-title", "data-testid": "conversation-view" },
      h(
        "header",
        { class: "conv-header" },
        h(
          "button",
          { type: "button", class: "back", "aria-label": "Back to conversations", "data-testid": "back-button", onclick: () => this.back() },
          h("span", { "aria-hidden": "true" }, "←"),
        ),
        h("div", { class: "conv-heading" }, this.titleEl, this.subtitleEl),
        this.membersButton,
      ),
      this.list,
      this.jumpButton,
      this.typingEl,
      this.composerForm,
    );

    document.addEventListener("keydown", this.onKeydown);

    this.appEl = h(
      "div",
      { class: "app", "data-pane": "list" },
      header,
      this.errorEl,
      (this.layoutEl = h("div", { class: "layout" }, sidebar, this.emptyEl, this.main, this.threadEl)),
    );
    fill(root, this.appEl);
    const openSettings = settingsDialog(this.appEl, api);
    this.appEl.append(this.notifDialog, this.membersDialog, ...dialogs.children);
    this.unsubscribe = chat.onChange((scope) => this.schedule(scope));
    for (const s of ["sidebar", "messages", "typing", "status", "header", "thread", "notifications", "members", "workspaces"] as const)
      this.dirty.add(s);
    this.flush();
    (this.chat.openId ? this.composer : dmInput).focus();
  }

  destroy(): void {
    this.unsubscribe();
    document.removeEventListener("keydown", this.onKeydown);
    cancelAnimationFrame(this.frame);
  }

  /** Opens a conversation and moves focus to its composer. */
  async open(id: string): Promise<void> {
    const previous = this.chat.openId;
    if (previous && previous !== id) {
      // Each conversation keeps its unsent draft.
      this.drafts.set(previous, this.composer.value);
      this.chat.stopTyping(previous);
      this.composer.value = this.drafts.get(id) ?? "";
      this.autosize();
    }
    this.stickToBottom = true;
    this.opts.onNavigate(id);
    await this.chat.openConversation(id);
    if (this.chat.openId === id) this.composer.focus();
  }

  // ---- rendering -------------------------------------------------------------

  private schedule(scope: ChangeScope): void {
    this.dirty.add(scope);
    if (this.frame) return;
    // rAF while visible; a timer too, so a hidden tab still catches up.
    const run = () => this.flush();
    this.frame = requestAnimationFrame(run);
    setTimeout(() => this.frame && run(), 100);
  }

  private flush(): void {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const d = new Set(this.dirty);
    this.dirty.clear();
    if (d.has("status")) this.renderStatus();
    if (d.has("sidebar")) this.renderSidebar();
    if (d.has("header")) this.renderHeader();
    if (d.has("messages") || d.has("header")) this.renderMessages();
    if (d.has("typing") || d.has("header")) this.renderTyping();
    if (d.has("thread") || d.has("header")) this.renderThread();
    if (d.has("notifications") || d.has("sidebar")) this.renderNotifications();
    if (d.has("members") || d.has("header")) this.renderMembers();
    if (d.has("workspaces") || d.has("sidebar")) this.workspaces.render();
  }

  private renderStatus(): void {
    this.linkEl.textContent = LINK_TEXT[this.chat.link];
    this.linkEl.dataset.state = this.chat.link;
    const err = this.chat.lastError;
    this.errorEl.hidden = !err;
    if (err) {
      fill(
        this.errorEl,
        h("span", null, err),
        h("button", { type: "button", class: "link", onclick: () => ((this.chat.lastError = null), this.renderStatus()) }, "Dismiss"),
      );
    }
  }

  private renderSidebar(): void {
    const items = this.chat.sortedConversations().map((c) => this.conversationItem(c));
    const focusedId = (document.activeElement as HTMLElement | null)?.dataset?.conversationId;
    fill(this.convList, items.length ? items : h("li", { class: "muted" }, "No conversations yet."));
    if (focusedId) this.convList.querySelector<HTMLElement>(`[data-conversation-id="${CSS.escape(focusedId)}"]`)?.focus();
  }

  private conversationItem(c: ConversationView): HTMLElement {
    const title = this.chat.conversationTitle(c);
    const preview = c.preview ? `${c.previewSenderId === this.chat.me.id ? "You: " : ""}${c.preview}` : "No messages yet";
    const current = c.id === this.chat.openId;
    return h(
      "li",
      null,
      h(
        "button",
        {
          type: "button",
          class: `conv${current ? " current" : ""}${c.unread ? " unread" : ""}`,
          "aria-current": current ? "true" : null,
          "data-testid": "conversation-item",
          "data-conversation-id": c.id,
          onclick: () => void this.open(c.id),
        },
        c.type === "direct"
          ? this.presenceDot(c.peerUserId)
          : h("span", { class: "dot dot-group", "aria-hidden": "true" }, c.type === "channel" ? "#" : ""),
        h(
          "span",
          { class: "conv-text" },
          h("span", { class: "conv-title", "data-testid": "conversation-name" }, title),
          h("span", { class: "conv-preview" }, preview),
        ),
        c.unread ? h("span", { class: "badge", "data-testid": "unread-badge", "aria-label": `${c.unread} unread` }, String(c.unread)) : null,
      ),
    );
  }

  private presenceDot(userId: string): HTMLElement {
    const p = this.chat.presenceOf(userId);
    const label = p === "unknown" ? "presence unknown" : p === "dnd" ? "do not disturb" : p;
    return h("span", {
      class: `dot dot-${p}`,
      role: "img",
      "aria-label": label,
      title: label,
      "data-testid": "presence",
      "data-presence": p,
      "data-user-id": userId,
    });
  }

  private renderHeader(): void {
    const conv = this.chat.openId ? this.chat.conversations.get(this.chat.openId) : undefined;
    this.main.hidden = !this.chat.openId;
    this.emptyEl.hidden = Boolean(this.chat.openId);
    // Phone layout (CSS, ≤ 480 px): one pane at a time.
    this.appEl.dataset.pane = this.chat.openThread ? "thread" : this.chat.openId ? "conversation" : "list";
    if (!conv) {
      this.titleEl.textContent = this.chat.openId ? "Loading…" : "";
      fill(this.subtitleEl);
      return;
    }
    const title = this.chat.conversationTitle(conv);
    this.titleEl.textContent = title;
    document.title = `${title} · Chat`;
    this.composer.placeholder = `Message ${title}`;
    if (conv.type === "direct") {
      const p = this.chat.presenceOf(conv.peerUserId);
      const seen = p === "offline" ? this.chat.lastSeen.get(conv.peerUserId) : undefined;
      fill(
        this.subtitleEl,
        this.presenceDot(conv.peerUserId),
        h("span", { "data-testid": "presence-text" }, p === "unknown" ? "" : p === "dnd" ? "do not disturb" : p),
        seen ? h("span", { "data-testid": "last-seen" }, `· last seen ${lastSeenText(seen)}`) : null,
      );
    } else {
      fill(this.subtitleEl, `${conv.memberCount} members`);
    }
  }

  private renderMessages(): void {
    const id = this.chat.openId;
    if (id !== this.renderedConversation) {
      for (const r of this.rendered.values()) r.el.remove();
      this.rendered.clear();
      this.renderedConversation = id;
      this.pickerFor = null;
      this.editing = null;
      this.confirmingDelete = null;
      this.selected = null;
      if (this.hitId && !this.chat.timeline(id ?? "").byMessageId(this.hitId)) this.hitId = null;
      this.stickToBottom = true;
    }
    if (!id) return;
    const tl = this.chat.timeline(id);
    // Thread replies live in their thread panel; the conversation shows top-level messages.
    const items = tl.items().filter((m) => !m.parentMessageId);
    const seen = this.chat.seenMarker(id);
    const conv = this.chat.conversations.get(id);

    const before = { height: this.list.scrollHeight, top: this.list.scrollTop };
    const firstKeyBefore = this.firstRenderedKey();

    this.historyEl.textContent = this.chat.loading
      ? "Loading messages…"
      : this.chat.loadingOlder
        ? "Loading older messages…"
        : tl.loadedLatest && !tl.hasMoreBefore
          ? items.length
            ? "This is the beginning of the conversation."
            : "No messages yet. Say hello!"
          : "";
    this.historyEl.dataset.state = this.chat.loadingOlder || this.chat.loading ? "loading" : tl.hasMoreBefore ? "more" : "start";
    this.list.setAttribute("aria-busy", this.chat.loading || this.chat.loadingOlder ? "true" : "false");

    // Keyed: reuse, update and reorder; remove what went away.
    const keep = new Set<string>();
    let prev: Element = this.historyEl;
    let prevItem: TimelineItem | null = null;
    for (const item of items) {
      keep.add(item.key);
      const showSender = !prevItem || prevItem.senderId !== item.senderId || timeGap(prevItem, item) > 5 * 60_000;
      const seenLabel = seen && seen.seq === item.seq ? this.seenText(seen.readers, conv?.type === "direct") : "";
      const ui = `${this.hitId === item.id}|${this.chat.openThread?.parentId === item.id}|${this.pickerFor === item.key}|${this.editing === item.key}|${this.confirmingDelete === item.key}|${this.selected === item.key}`;
      const sig = `${item.rev}|${item.state}|${showSender}|${seenLabel}|${ui}|${this.chat.userName(item.senderId)}|${this.chat.reactorsRev}`;
      let r = this.rendered.get(item.key);
      if (!r) {
        const key = item.key;
        r = {
          el: h("article", {
            class: "msg",
            "data-testid": "message",
            "data-key": key,
            // Phone layout: a tap on a message shows its tools.
            onclick: (e) => {
              if ((e.target as HTMLElement).closest("button, textarea, a")) return;
              this.selected = this.selected === key ? null : key;
              this.schedule("messages");
            },
          }),
          sig: "",
        };
        this.rendered.set(item.key, r);
      }
      if (r.sig !== sig) {
        this.renderMessage(r.el, item, showSender, seenLabel);
        r.sig = sig;
      }
      if (prev.nextElementSibling !== r.el) prev.after(r.el);
      prev = r.el;
      prevItem = item;
    }
    for (const [key, r] of this.rendered) {
      if (!keep.has(key)) {
        r.el.remove();
        this.rendered.delete(key);
      }
    }

    // Older messages went in above: keep what the reader was looking at in place.
    const firstKeyAfter = this.firstRenderedKey();
    if (firstKeyBefore && firstKeyAfter !== firstKeyBefore && !this.stickToBottom) {
      this.list.scrollTop = before.top + (this.list.scrollHeight - before.height);
    } else if (this.stickToBottom) {
      this.scrollToBottom(false);
    }
    this.jumpButton.hidden = this.stickToBottom;
    // A short history does not scroll, so no scroll event would ask for more.
    if (!this.chat.loadingOlder && tl.loadedLatest && tl.hasMoreBefore && this.list.scrollHeight <= this.list.clientHeight + LOAD_OLDER_PX) {
      void this.chat.loadOlder(id);
    }
  }

  private renderMessage(el: HTMLElement, m: TimelineItem, showSender: boolean, seenLabel: string): void {
    const mine = m.senderId === this.chat.me.id;
    const active = document.activeElement as HTMLElement | null;
    const hadFocus = active && el.contains(active) ? active.dataset.focusKey : undefined;
    // A re-render while someone edits (a receipt, a reaction, a late echo) must not move their
    // caret or drop their selection: typing over a selected draft would otherwise append to it.
    const hadSelection =
      hadFocus && active instanceof HTMLTextAreaElement
        ? { start: active.selectionStart, end: active.selectionEnd, direction: active.selectionDirection }
        : null;
    const editing = this.editing === m.key && m.state === "sent" && !m.deleted;
    const mentioned = this.chat.mentionsMe(m) && !m.deleted;
    el.className = `msg${mine ? " mine" : ""}${showSender ? " first" : ""} ${m.state}${this.selected === m.key ? " selected" : ""}${mentioned ? " mentioned" : ""}`;
    el.dataset.mentioned = String(mentioned);
    el.classList.toggle("hit", this.hitId === m.id);
    el.dataset.hit = String(this.hitId === m.id);
    if (this.hitId === m.id) el.tabIndex = -1;
    else el.removeAttribute("tabindex");
    el.dataset.state = m.state;
    el.dataset.seq = String(m.seq);
    el.dataset.mine = String(mine);
    el.dataset.deleted = String(m.deleted);
    if (m.id) el.dataset.messageId = m.id;
    const time = m.createdAt
      ? h(
          "time",
          { datetime: m.createdAt.toISOString(), title: m.createdAt.toLocaleString() },
          m.createdAt.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
        )
      : null;
    const status = m.state === "pending" ? h("span", { class: "msg-status", "data-testid": "message-status" }, "Sending…") : null;
    const conversationId = m.conversationId;
    const live = m.state === "sent" && !m.deleted;

    const chips = live
      ? m.reactions.map((r) =>
          h(
            "button",
            {
              type: "button",
              class: `chip${r.reacted ? " reacted" : ""}`,
              "aria-pressed": String(r.reacted),
              "aria-label": `${r.emoji} ${r.count}${r.reacted ? ", remove your reaction" : ", add yours"}`,
              title: this.reactorsText(m.id, r.emoji, r.count, r.reacted),
              "data-testid": "reaction",
              "data-emoji": r.emoji,
              "data-count": r.count,
              "data-focus-key": `chip:${r.emoji}`,
              onclick: () => void this.chat.toggleReaction(conversationId, m.id, r.emoji),
              // Who reacted (ListReactions) for the tooltip, when someone looks.
              onmouseenter: () => void this.chat.loadReactors(m.id),
              onfocus: () => void this.chat.loadReactors(m.id),
            },
            h("span", { "aria-hidden": "true" }, r.emoji),
            h("span", { class: "count", "aria-hidden": "true" }, String(r.count)),
          ),
        )
      : [];
    const tool = (focusKey: string, label: string, glyph: string, onclick: () => void, extra: Record<string, string> = {}) =>
      h(
        "button",
        { type: "button", class: `tool tool-${focusKey}`, "aria-label": label, title: label, "data-focus-key": focusKey, onclick, ...extra },
        h("span", { "aria-hidden": "true" }, glyph),
      );
    const tools =
      live && !editing
        ? h(
            "div",
            { class: "msg-tools", role: "group", "aria-label": "Message actions" },
            tool(
              "react-add",
              "Add reaction",
              "☺+",
              () => {
                this.pickerFor = this.pickerFor === m.key ? null : m.key;
                if (this.pickerFor && m.reactions.length) void this.chat.loadReactors(m.id);
                this.renderNow();
                if (this.pickerFor) this.focusInMessage(m.key, `pick:${REACTIONS[0]}`);
              },
              { "aria-expanded": String(this.pickerFor === m.key) },
            ),
            m.parentMessageId ? null : tool("reply", "Reply in thread", "↩", () => void this.openThread(m)),
            mine ? tool("edit", "Edit message", "✎", () => this.startEdit(m.key)) : null,
            mine
              ? tool("delete", "Delete message", "🗑", () => {
                  this.confirmingDelete = m.key;
                  this.renderNow();
                  this.focusInMessage(m.key, "confirm-delete");
                })
              : null,
          )
        : null;
    const picker =
      live && this.pickerFor === m.key
        ? h(
            "div",
            { class: "picker", role: "group", "aria-label": "Pick a reaction", "data-testid": "reaction-picker" },
            REACTIONS.map((emoji) => {
              const r = m.reactions.find((x) => x.emoji === emoji);
              return h(
                "button",
                {
                  type: "button",
                  "aria-label": `React with ${emoji}${r ? ` (${r.count})` : ""}`,
                  "aria-pressed": String(Boolean(r?.reacted)),
                  "data-focus-key": `pick:${emoji}`,
                  onclick: () => {
                    this.pickerFor = null;
                    void this.chat.toggleReaction(conversationId, m.id, emoji);
                    this.renderNow();
                    this.focusInMessage(m.key, "react-add");
                  },
                },
                emoji,
              );
            }),
            m.reactions.length
              ? h(
                  "ul",
                  { class: "reactors", "aria-label": "Who reacted", "data-testid": "reactors" },
                  m.reactions.map((r) =>
                    h(
                      "li",
                      { "data-emoji": r.emoji },
                      h("span", { "aria-hidden": "true" }, r.emoji),
                      ` ${this.reactorsText(m.id, r.emoji, r.count, r.reacted, false)}`,
                    ),
                  ),
                )
              : null,
          )
        : null;
    const confirm =
      live && this.confirmingDelete === m.key
        ? h(
            "div",
            { class: "confirm", role: "group", "aria-label": "Delete this message?", "data-testid": "confirm-delete" },
            h("span", null, "Delete this message for everyone?"),
            h(
              "button",
              {
                type: "button",
                class: "danger",
                "data-focus-key": "confirm-delete",
                onclick: () => {
                  this.confirmingDelete = null;
                  this.chat.deleteMessage(conversationId, m.id).catch((err) => this.showError(err));
                  this.composerOf(m).focus();
                },
              },
              "Delete",
            ),
            h(
              "button",
              {
                type: "button",
                "data-focus-key": "cancel-delete",
                onclick: () => {
                  this.confirmingDelete = null;
                  this.renderNow();
                  this.focusInMessage(m.key, "delete");
                },
              },
              "Cancel",
            ),
          )
        : null;

    fill(
      el,
      showSender || status
        ? h(
            "div",
            { class: "msg-meta" },
            showSender ? h("span", { class: "sender" }, mine ? "You" : this.chat.userName(m.senderId)) : null,
            showSender ? time : null,
            status,
          )
        : null,
      mentioned ? h("span", { class: "mention-tag", "data-testid": "mention-tag" }, "Mentioned you") : null,
      editing
        ? this.editForm(m)
        : h(
            "p",
            { class: `content${m.deleted ? " deleted" : ""}`, "data-testid": "message-content" },
            m.deleted ? "This message was deleted." : m.content,
          ),
      m.editedAt && !m.deleted && !editing ? h("span", { class: "edited", "data-testid": "edited" }, "(edited)") : null,
      m.state === "failed"
        ? h(
            "div",
            { class: "failed", role: "alert" },
            h("span", null, `Not sent: ${m.error ?? "error"}`),
            h("button", { type: "button", class: "link", onclick: () => this.chat.retry(conversationId, m.clientMessageId) }, "Retry"),
            h("button", { type: "button", class: "link", onclick: () => this.chat.discard(conversationId, m.clientMessageId) }, "Discard"),
          )
        : null,
      m.replyCount > 0 && !m.parentMessageId
        ? h(
            "button",
            {
              type: "button",
              class: "link replies",
              "data-testid": "reply-count",
              "data-count": m.replyCount,
              "data-focus-key": "replies",
              "aria-expanded": String(this.chat.openThread?.parentId === m.id),
              onclick: () => void this.openThread(m),
            },
            m.replyCount === 1 ? "1 reply" : `${m.replyCount} replies`,
          )
        : null,
      chips.length || tools ? h("div", { class: "reactions" }, chips, tools) : null,
      picker,
      confirm,
      seenLabel ? h("p", { class: "seen", "data-testid": "seen-receipt" }, seenLabel) : null,
    );
    if (hadFocus) {
      const again = el.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(hadFocus)}"]`);
      again?.focus();
      if (again instanceof HTMLTextAreaElement) {
        const end = again.value.length;
        if (hadSelection) again.setSelectionRange(Math.min(hadSelection.start, end), Math.min(hadSelection.end, end), hadSelection.direction);
        else again.setSelectionRange(end, end);
      }
    }
  }

  /** Where focus goes back after editing or deleting: the reply box for a thread reply. */
  private composerOf(m: TimelineItem): HTMLTextAreaElement {
    return m.parentMessageId ? this.threadComposer : this.composer;
  }

  /** In-place editing: Enter saves, Shift+Enter makes a new line, Escape cancels; focus returns to the composer. */
  private editForm(m: TimelineItem): HTMLElement {
    const id = `edit-${m.id}`;
    const input = h("textarea", { id, class: "edit-input", rows: 2, "data-focus-key": "edit-input", "data-testid": "edit-input" });
    input.value = this.editDraft;
    input.addEventListener("input", () => (this.editDraft = input.value));
    const done = () => {
      this.editing = null;
      this.renderNow();
      this.composerOf(m).focus();
    };
    const save = async () => {
      const text = input.value;
      if (!text.trim()) return input.focus();
      try {
        await this.chat.editMessage(m.conversationId, m.id, text);
        done();
      } catch (err) {
        this.showError(err);
        input.focus();
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        void save();
      } else if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        done();
      }
    });
    return h(
      "form",
      {
        class: "edit-form",
        "data-testid": "edit-form",
        onsubmit: (e) => {
          e.preventDefault();
          void save();
        },
      },
      h("label", { for: id, class: "visually-hidden" }, "Edit message"),
      input,
      h(
        "div",
        { class: "edit-actions" },
        h("span", { class: "hint" }, "Enter to save, Escape to cancel"),
        h("button", { type: "button", onclick: done }, "Cancel"),
        h("button", { type: "submit", class: "primary" }, "Save"),
      ),
    );
  }

  private startEdit(key: string): void {
    this.editing = key;
    const t = this.chat.openThread;
    const inThread = this.threadRendered.has(key) && t !== null;
    const items = inThread
      ? this.chat.threadTimeline(t.conversationId, t.parentId).items()
      : this.rendered.has(key) && this.chat.openId
        ? this.chat.timeline(this.chat.openId).items()
        : [];
    this.editDraft = items.find((m) => m.key === key)?.content ?? "";
    this.pickerFor = null;
    this.confirmingDelete = null;
    this.renderNow();
    const input = (this.rendered.get(key) ?? this.threadRendered.get(key))?.el.querySelector<HTMLTextAreaElement>(".edit-input");
    if (!input) return;
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    input.scrollIntoView({ block: "nearest" });
  }

  /** Renders pending changes now (so focus can move into what was just drawn). */
  private renderNow(): void {
    this.dirty.add("messages");
    this.dirty.add("thread");
    this.flush();
  }

  private focusInMessage(key: string, focusKey: string): void {
    (this.rendered.get(key) ?? this.threadRendered.get(key))?.el.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  /** "👍 You, Bob and 2 more": who reacted as far as loaded (Chat.loadReactors), the rest counted. */
  private reactorsText(messageId: string, emoji: string, count: number, reacted: boolean, withEmoji = true): string {
    const ids = this.chat.reactorsOf(messageId, emoji);
    const known = ids.filter((id) => id !== this.chat.me.id).map((id) => this.chat.userName(id));
    if (reacted || ids.includes(this.chat.me.id)) known.unshift("You");
    const others = count - known.length;
    const names = others > 0 ? [...known, `${others} ${known.length ? "more" : others === 1 ? "person" : "people"}`] : known;
    return `${withEmoji ? `${emoji} ` : ""}${names.join(", ")}`;
  }

  /** An invitation link was opened (/join/<token>): join, show that workspace; a clear message if the invitation cannot be used. */
  async joinInvite(token: string): Promise<void> {
    try {
      await this.chat.joinWithInvite(token);
      this.renderNow();
    } catch (err) {
      this.chat.lastError = (err as Error).message;
      this.schedule("status");
    }
  }

  private showError(err: unknown): void {
    this.chat.lastError = describeError(err).message;
    this.schedule("status");
  }

  private renderNotifications(): void {
    const unseen = this.chat.unseenNotifications;
    this.notifBadge.hidden = unseen === 0;
    this.notifBadge.textContent = String(unseen);
    // The visible text ("Notifications" and the count) starts the accessible name (WCAG 2.5.3, label in name).
    this.notifButton.setAttribute("aria-label", unseen ? `Notifications ${unseen} unseen` : "Notifications");
    const what = { mention: "mentioned you", direct: "messaged you", thread: "replied in a thread" } as const;
    fill(
      this.notifList,
      this.chat.notifications.length
        ? this.chat.notifications.map((n) => {
            const conv = this.chat.conversations.get(n.conversationId);
            const who = n.senderIds.map((id) => this.chat.userName(id)).join(", ") || "Someone";
            const where = conv && conv.type !== "direct" ? ` in ${this.chat.conversationTitle(conv)}` : "";
            return h(
              "li",
              null,
              h(
                "button",
                {
                  type: "button",
                  class: `notif${n.seen ? "" : " unseen"}`,
                  "data-testid": "notification",
                  "data-type": n.type,
                  "data-seen": String(n.seen),
                  onclick: () => {
                    this.notifDialog.close();
                    void this.open(n.conversationId);
                  },
                },
                n.seen ? null : h("span", { class: "visually-hidden" }, "New: "),
                h("span", { class: "notif-what" }, `${who} ${what[n.type]}${where}${n.count > 1 ? ` (${n.count} messages)` : ""}`),
                h("span", { class: "notif-preview" }, n.preview),
                n.createdAt ? h("time", { datetime: n.createdAt.toISOString() }, n.createdAt.toLocaleString()) : null,
              ),
            );
          })
        : h("li", { class: "muted" }, "Nothing yet."),
    );
  }

  private openMembers(): void {
    this.renderMembers();
    this.membersDialog.showModal();
  }

  /** The members dialog: everyone with their role; owners and admins change roles, remove and add people. */
  private renderMembers(): void {
    const id = this.chat.openId;
    const conv = id ? this.chat.conversations.get(id) : undefined;
    this.membersButton.hidden = !conv || conv.type === "direct";
    if (!id || !conv || conv.type === "direct") {
      if (this.membersDialog.open) this.membersDialog.close();
      return;
    }
    const focusKey = (document.activeElement as HTMLElement | null)?.dataset?.focusKey;
    const grantable = this.chat.grantableRoles(id);
    fill(
      this.membersList,
      this.chat.membersWithRoles(id).map(({ user, role }) => {
        const name = user.id === this.chat.me.id ? `${user.displayName} (you)` : user.displayName;
        const manage = this.chat.canManage(id, user.id);
        const selectId = `role-${user.id}`;
        return h(
          "li",
          { class: "member", "data-testid": "member", "data-user-id": user.id, "data-role": role },
          h("span", { class: "channel-text" }, h("span", { class: "conv-title" }, name), h("span", { class: "conv-preview" }, `@${user.username}`)),
          manage
            ? h(
                "span",
                { class: "member-actions" },
                h("label", { for: selectId, class: "visually-hidden" }, `Role of ${user.displayName}`),
                h(
                  "select",
                  {
                    id: selectId,
                    "data-focus-key": `role:${user.id}`,
                    onchange: (e) => {
                      const next = (e.currentTarget as HTMLSelectElement).value as "member" | "admin" | "owner";
                      this.chat.setRole(id, user.id, next).catch((err) => this.showError(err));
                    },
                  },
                  [...new Set([...grantable, role])].map((r) => h("option", { value: r, selected: r === role }, r[0]!.toUpperCase() + r.slice(1))),
                ),
                h(
                  "button",
                  {
                    type: "button",
                    "aria-label": `Remove ${user.displayName}`,
                    "data-focus-key": `remove:${user.id}`,
                    onclick: () => this.chat.removeMember(id, user.id).catch((err) => this.showError(err)),
                  },
                  "Remove",
                ),
              )
            : h("span", { class: "role" }, role[0]!.toUpperCase() + role.slice(1)),
        );
      }),
    );
    const canAdd = conv.role === "owner" || conv.role === "admin" || conv.type === "channel";
    if (canAdd && !this.membersAdd.firstChild) {
      const input = h("input", { id: "add-members", name: "add", type: "text", autocomplete: "off", placeholder: "alice, bob" });
      const error = h("p", { class: "form-error", role: "alert" });
      this.membersAdd.append(
        h(
          "form",
          {
            class: "side-form",
            onsubmit: async (e) => {
              e.preventDefault();
              error.textContent = "";
              try {
                const ids: string[] = [];
                for (const name of input.value
                  .split(/[\s,]+/)
                  .map((x) => x.trim().replace(/^@/, "").toLowerCase())
                  .filter(Boolean)) {
                  const found = (await this.chat.searchUsers(name)).find((u) => u.username.toLowerCase() === name);
                  if (!found) throw new Error(`No user named @${name}.`);
                  ids.push(found.id);
                }
                if (!ids.length || !this.chat.openId) return input.focus();
                await this.chat.addMembers(this.chat.openId, ids);
                input.value = "";
              } catch (err) {
                error.textContent = err instanceof Error && !("code" in err) ? err.message : describeError(err).message;
              }
            },
          },
          h("label", { for: "add-members" }, "Add people (usernames)"),
          h("div", { class: "row" }, input, h("button", { type: "submit" }, "Add")),
          error,
        ),
      );
    } else if (!canAdd) fill(this.membersAdd);
    if (focusKey) this.membersList.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }

  /** Shows the list (fresh from the server) and marks everything in it seen. */
  private openNotifications(): void {
    this.renderNotifications();
    this.notifDialog.showModal();
    void this.chat.refreshNotifications().then(() => this.chat.markNotificationsSeen().catch((err) => this.showError(err)));
  }

  /** Everyone in the open conversation but me. */
  private mentionable() {
    const id = this.chat.openId;
    return id ? this.chat.membersOf(id).filter((u) => u.id !== this.chat.me.id) : [];
  }

  private threadOpenedFrom: { key: string; focusKey: string } | null = null;

  private async openThread(m: TimelineItem): Promise<void> {
    const active = document.activeElement as HTMLElement | null;
    this.threadOpenedFrom = { key: m.key, focusKey: active?.dataset.focusKey ?? "reply" };
    this.selected = null;
    const opening = this.chat.openThreadOf(m.conversationId, m.id);
    this.flush();
    this.threadComposer.focus();
    await opening;
  }

  /** Closes the thread panel; focus goes back to what opened it. */
  private closeThread(): void {
    const from = this.threadOpenedFrom;
    this.chat.closeThread();
    this.flush();
    if (from && this.rendered.has(from.key)) {
      this.focusInMessage(from.key, from.focusKey);
      if (!this.rendered.get(from.key)!.el.contains(document.activeElement)) this.focusInMessage(from.key, "replies");
    }
    if (!this.main.contains(document.activeElement)) this.composer.focus();
  }

  private renderThread(): void {
    const t = this.chat.openThread;
    this.threadEl.hidden = !t;
    this.layoutEl.classList.toggle("with-thread", Boolean(t));
    this.appEl.dataset.pane = t ? "thread" : this.chat.openId ? "conversation" : "list";
    if (this.renderedThread !== (t?.parentId ?? null)) {
      this.renderedThread = t?.parentId ?? null;
      this.threadRendered.clear();
      fill(this.threadList);
    }
    if (!t) return;
    const parent = this.chat.timeline(t.conversationId).byMessageId(t.parentId);
    const replies = this.chat.threadTimeline(t.conversationId, t.parentId).items();
    const stick = this.threadList.scrollHeight - this.threadList.scrollTop - this.threadList.clientHeight < NEAR_BOTTOM_PX;

    // The parent and the count, drawn anew; the replies below them keyed, with the timeline's tools.
    for (const el of this.threadList.querySelectorAll(":scope > [data-thread-head]")) el.remove();
    const parentEl = parent ? this.threadParent(parent) : null;
    const stateEl = h(
      "p",
      { class: "history", "data-testid": "thread-state", "data-thread-head": "" },
      this.chat.threadLoading
        ? "Loading replies…"
        : replies.length
          ? replies.length === 1
            ? "1 reply"
            : `${replies.length} replies`
          : "No replies yet.",
    );
    this.threadList.prepend(...(parentEl ? [parentEl, stateEl] : [stateEl]));

    const keep = new Set<string>();
    let prev: Element = stateEl;
    for (const item of replies) {
      keep.add(item.key);
      const ui = `${this.pickerFor === item.key}|${this.editing === item.key}|${this.confirmingDelete === item.key}|${this.selected === item.key}`;
      const sig = `${item.rev}|${item.state}|${ui}|${this.chat.userName(item.senderId)}|${this.chat.reactorsRev}`;
      let r = this.threadRendered.get(item.key);
      if (!r) {
        const key = item.key;
        r = {
          el: h("article", {
            class: "msg",
            "data-testid": "thread-reply",
            "data-key": key,
            onclick: (e) => {
              if ((e.target as HTMLElement).closest("button, textarea, a")) return;
              this.selected = this.selected === key ? null : key;
              this.schedule("thread");
            },
          }),
          sig: "",
        };
        this.threadRendered.set(item.key, r);
      }
      if (r.sig !== sig) {
        this.renderMessage(r.el, item, true, "");
        r.sig = sig;
      }
      if (prev.nextElementSibling !== r.el) prev.after(r.el);
      prev = r.el;
    }
    for (const [key, r] of this.threadRendered) {
      if (!keep.has(key)) {
        r.el.remove();
        this.threadRendered.delete(key);
      }
    }
    this.threadList.setAttribute("aria-busy", String(this.chat.threadLoading));
    if (stick) this.threadList.scrollTop = this.threadList.scrollHeight;
  }

  /** The thread's parent at the top of the panel (its tools are in the conversation). */
  private threadParent(m: TimelineItem): HTMLElement {
    const mine = m.senderId === this.chat.me.id;
    return h(
      "article",
      {
        class: `msg first${mine ? " mine" : ""} parent ${m.state}`,
        "data-testid": "thread-parent",
        "data-thread-head": "",
        "data-state": m.state,
        "data-deleted": String(m.deleted),
      },
      h(
        "div",
        { class: "msg-meta" },
        h("span", { class: "sender" }, mine ? "You" : this.chat.userName(m.senderId)),
        m.createdAt
          ? h("time", { datetime: m.createdAt.toISOString() }, m.createdAt.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }))
          : null,
      ),
      h(
        "p",
        { class: `content${m.deleted ? " deleted" : ""}`, "data-testid": "message-content" },
        m.deleted ? "This message was deleted." : m.content,
      ),
      m.editedAt && !m.deleted ? h("span", { class: "edited" }, "(edited)") : null,
    );
  }

  /** Phone layout: from the conversation back to the list (focus on the conversation left). */
  private back(): void {
    const left = this.chat.openId;
    this.chat.closeConversation();
    this.opts.onNavigate(null);
    this.flush();
    if (left) this.convList.querySelector<HTMLElement>(`[data-conversation-id="${CSS.escape(left)}"]`)?.focus();
  }

  private seenText(readers: string[], direct: boolean): string {
    if (direct) return "Seen";
    const names = readers.map((id) => this.chat.userName(id));
    return names.length > 3 ? `Seen by ${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : `Seen by ${names.join(", ")}`;
  }

  private renderTyping(): void {
    const id = this.chat.openId;
    const who = id ? this.chat.typingIn(id).map((u) => this.chat.userName(u)) : [];
    this.typingEl.textContent =
      who.length === 0
        ? ""
        : who.length === 1
          ? `${who[0]} is typing…`
          : who.length === 2
            ? `${who[0]} and ${who[1]} are typing…`
            : "Several people are typing…";
  }

  private firstRenderedKey(): string | undefined {
    return (this.historyEl.nextElementSibling as HTMLElement | null)?.dataset.key;
  }

  private onScroll(): void {
    const fromBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight;
    this.stickToBottom = fromBottom < NEAR_BOTTOM_PX;
    this.jumpButton.hidden = this.stickToBottom;
    const id = this.chat.openId;
    if (id && this.list.scrollTop < LOAD_OLDER_PX) void this.chat.loadOlder(id);
  }

  private scrollToBottom(focus: boolean): void {
    this.list.scrollTop = this.list.scrollHeight;
    this.stickToBottom = true;
    this.jumpButton.hidden = true;
    if (focus) this.composer.focus();
  }

  private autosize(): void {
    this.composer.style.height = "auto";
    this.composer.style.height = `${Math.min(this.composer.scrollHeight, 160)}px`;
  }

  // ---- actions -------------------------------------------------------------------

  private onSend(e: Event): void {
    e.preventDefault();
    const id = this.chat.openId;
    const text = this.composer.value;
    if (!id || !text.trim()) return;
    this.chat.send(id, text);
    this.composer.value = "";
    this.autosize();
    this.stickToBottom = true;
    this.composer.focus();
  }

  private async onBrowseChannels(e: Event, input: HTMLInputElement): Promise<void> {
    e.preventDefault();
    fill(this.channelResults, h("li", { class: "muted", role: "status" }, "Loading channels…"));
    const ticket = ++this.channelQuery; // only the latest answer is shown
    try {
      const found = await this.chat.listChannels(input.value);
      if (ticket !== this.channelQuery) return;
      fill(
        this.channelResults,
        found.length
          ? found.map((c) =>
              h(
                "li",
                { class: "channel", "data-testid": "channel", "data-channel": c.name },
                h(
                  "span",
                  { class: "channel-text" },
                  h("span", { class: "conv-title" }, `#${c.name}`),
                  h(
                    "span",
                    { class: "conv-preview" },
                    `${c.memberCount} ${c.memberCount === 1 ? "member" : "members"}${c.description ? ` · ${c.description}` : ""}`,
                  ),
                ),
                h(
                  "button",
                  {
                    type: "button",
                    "aria-label": `${c.joined ? "Open" : "Join"} #${c.name}`,
                    onclick: async (ev) => {
                      const b = ev.currentTarget as HTMLButtonElement;
                      b.disabled = true;
                      try {
                        await this.open(c.joined ? c.id : await this.chat.joinChannel(c.id));
                      } catch (err) {
                        this.showError(err);
                      } finally {
                        b.disabled = false;
                      }
                    },
                  },
                  c.joined ? "Open" : "Join",
                ),
              ),
            )
          : h(
              "li",
              { class: "muted", role: "status" },
              input.value.trim() ? `No public channel starts with “${input.value.trim()}”.` : "No public channels yet.",
            ),
      );
    } catch (err) {
      fill(this.channelResults, h("li", { class: "form-error", role: "alert" }, describeError(err).message));
    }
  }

  private async onSearch(e: Event, input: HTMLInputElement): Promise<void> {
    e.preventDefault();
    const q = input.value.trim();
    if (!q) return input.focus();
    fill(this.searchResults, h("li", { class: "muted", role: "status" }, "Searching…"));
    try {
      const hits = await this.chat.searchMessages(q);
      fill(
        this.searchResults,
        hits.length
          ? hits.map((m) => {
              const conv = this.chat.conversations.get(m.conversationId);
              return h(
                "li",
                null,
                h(
                  "button",
                  { type: "button", class: "result hit-result", "data-testid": "search-hit", onclick: () => void this.jumpTo(m) },
                  h(
                    "span",
                    { class: "hit-where" },
                    `${conv ? this.chat.conversationTitle(conv) : "…"} · ${m.senderId === this.chat.me.id ? "You" : this.chat.userName(m.senderId)}`,
                  ),
                  h("span", { class: "hit-text" }, m.content),
                ),
              );
            })
          : h("li", { class: "muted", role: "status" }, `No messages found for “${q}”.`),
      );
    } catch (err) {
      fill(this.searchResults, h("li", { class: "form-error", role: "alert" }, describeError(err).message));
    }
  }

  /** Opens the hit's conversation (older pages loaded as needed), scrolls to it, highlights and focuses it. */
  private async jumpTo(hit: MessageData): Promise<void> {
    this.hitId = hit.parentMessageId || hit.id;
    this.opts.onNavigate(hit.conversationId);
    if (this.chat.openId && this.chat.openId !== hit.conversationId) this.drafts.set(this.chat.openId, this.composer.value);
    const ok = await this.chat.jumpTo(hit);
    if (!ok) return;
    this.hitId = hit.parentMessageId || hit.id; // (opening another conversation cleared it)
    this.stickToBottom = false;
    this.renderNow();
    const el = this.rendered.get(this.chat.timeline(hit.conversationId).byMessageId(this.hitId)?.key ?? "")?.el;
    if (!el) return;
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
  }

  private async onFindPeople(e: Event, input: HTMLInputElement): Promise<void> {
    e.preventDefault();
    const q = input.value.trim().replace(/^@/, "");
    if (!q) return input.focus();
    fill(this.dmResults, h("li", { class: "muted" }, "Searching…"));
    try {
      const found = await this.chat.searchUsers(q);
      const exact = found.find((u) => u.username.toLowerCase() === q.toLowerCase());
      if (exact) {
        fill(this.dmResults);
        input.value = "";
        await this.open(await this.chat.startDirect(exact.id));
        return;
      }
      fill(
        this.dmResults,
        found.length
          ? found.map((u) =>
              h(
                "li",
                null,
                h(
                  "button",
                  {
                    type: "button",
                    class: "result",
                    onclick: async () => {
                      fill(this.dmResults);
                      input.value = "";
                      await this.open(await this.chat.startDirect(u.id));
                    },
                  },
                  `${u.displayName} (@${u.username})`,
                ),
              ),
            )
          : h("li", { class: "muted", role: "status" }, `Nobody found for “${q}”.`),
      );
      this.dmResults.querySelector<HTMLElement>("button")?.focus();
    } catch (err) {
      fill(this.dmResults, h("li", { class: "form-error", role: "alert" }, describeError(err).message));
    }
  }

  private async onCreateGroup(e: Event, title: HTMLInputElement, members: HTMLInputElement): Promise<void> {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    form.querySelector(".form-error")?.remove();
    const names = members.value
      .split(/[\s,]+/)
      .map((s) => s.trim().replace(/^@/, "").toLowerCase())
      .filter(Boolean);
    try {
      const ids: string[] = [];
      for (const name of names) {
        const found = (await this.chat.searchUsers(name)).find((u) => u.username.toLowerCase() === name);
        if (!found) throw new Error(`No user named @${name}.`);
        ids.push(found.id);
      }
      const id = await this.chat.createGroup(title.value, ids);
      title.value = "";
      members.value = "";
      (form.closest("details") as HTMLDetailsElement | null)?.removeAttribute("open");
      await this.open(id);
    } catch (err) {
      const message = err instanceof Error && !("code" in err) ? err.message : describeError(err).message;
      form.append(h("p", { class: "form-error", role: "alert" }, message));
    }
  }
}

/** "just now", "5 min ago", "today at 14:05", "on 3 Dec at 09:12". */
export function lastSeenText(at: Date, now = new Date()): string {
  const min = Math.floor((now.getTime() - at.getTime()) / 60_000);
  if (min < 1) return "just now";
  if (min < 60) return `${min} min ago`;
  const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (at.toDateString() === now.toDateString()) return `today at ${time}`;
  return `on ${at.toLocaleDateString([], { day: "numeric", month: "short" })} at ${time}`;
}

function timeGap(a: TimelineItem, b: TimelineItem): number {
  return (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0);
}
