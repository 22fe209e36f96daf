// Conversation domain logic: who may do what (see docs/CONVERSATIONS.md for
// the role table), limits, pagination, and events after commit. Plain class;
// stores and the event sink come in through the constructor.

import type { Logger } from "pino";
import type { DomainEvent, EventSink, LoggedEvent } from "../events/events.ts";
import { AppError, alreadyExists, failedPrecondition, invalidArgument, notFound, permissionDenied, unauthenticated } from "../shared/errors.ts";
import type { LastMessagePreviews, WorkspaceAccess, WorkspaceRoleName } from "./ports.ts";
import {
  decodeActivityToken,
  decodeChannelToken,
  decodeMemberToken,
  encodeActivityToken,
  encodeChannelToken,
  encodeMemberToken,
} from "./page-token.ts";
import { ChannelNameTaken, UnknownUsers, type ConversationStore, type LockedConversation } from "./store.ts";
import {
  peerOf,
  ROLE_RANK,
  type Actor,
  type ConversationLimits,
  type ConversationRecord,
  type ConversationView,
  type MemberRecord,
  type MemberRole,
  type Visibility,
} from "./types.ts";
import * as v from "./validate.ts";

// Maximum page sizes (200 and 500) are the proto's rules (conversation.proto).
export const LIST_DEFAULT_PAGE = 50;
export const MEMBERS_DEFAULT_PAGE = 100;

export interface ConversationDeps {
  store: ConversationStore;
  events: EventSink;
  previews: LastMessagePreviews;
  /** Which workspace a call acts in, and the caller's role there (src/workspaces). */
  workspaces: WorkspaceAccess;
  limits: ConversationLimits;
  logger?: Logger;
  now?: () => Date;
}

export interface CreateInput {
  type: "group" | "channel" | "direct" | "unspecified";
  title: string;
  description: string;
  memberIds: string[];
  visibility: Visibility | "unspecified";
  /** Unset: the caller's default workspace. */
  workspaceId?: string;
}

export interface UpdateInput {
  conversationId: string;
  title?: string;
  description?: string;
  /** Unset: unchanged. */
  visibility?: Visibility;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

const conversationNotFound = (): AppError => notFound("CONVERSATION_NOT_FOUND", "conversation not found");

function isPublicChannel(c: ConversationRecord): boolean {
  return c.type === "channel" && c.visibility === "public";
}

/**
 * May the caller see the conversation without being a member of it: a public
 * channel of a workspace they belong to, as more than a guest (guests see
 * only conversations they were added to). `role` reads the caller's role in
 * the conversation's workspace (null: not a member of it).
 */
async function browsable(c: ConversationRecord, role: () => Promise<WorkspaceRoleName | null>): Promise<boolean> {
  if (!isPublicChannel(c)) return false;
  const r = await role();
  return r !== null && r !== "guest";
}

/**
 * The caller's membership, or the error a non-member gets: NOT_FOUND for
 * anything they may not browse (exactly like a nonexistent id, so existence
 * never leaks, also across workspaces), PERMISSION_DENIED for a public channel
 * of their workspace (its existence is public there anyway).
 */
async function requireMember(
  c: ConversationRecord,
  member: MemberRecord | null,
  role: () => Promise<WorkspaceRoleName | null>,
): Promise<MemberRecord> {
  if (member) return member;
  if (await browsable(c, role)) throw permissionDenied("JOIN_REQUIRED", "join the channel first");
  throw conversationNotFound();
}

function requireRole(member: MemberRecord, min: MemberRole, what: string): void {
  if (ROLE_RANK[member.role] < ROLE_RANK[min])
    throw permissionDenied("ROLE_INSUFFICIENT", `only ${min === "owner" ? "owners" : "owners and admins"} may ${what}`);
}

function notDirect(c: ConversationRecord, what: string): void {
  if (c.type === "direct") throw failedPrecondition("DIRECT_CONVERSATION_IMMUTABLE", `a direct conversation cannot ${what}`);
}

function maxMembers(c: ConversationRecord, limits: ConversationLimits): number {
  return c.type === "channel" ? limits.channelMaxMembers : limits.groupMaxMembers;
}

export class Conversations {
  private readonly store: ConversationStore;
  private readonly events: EventSink;
  private readonly previews: LastMessagePreviews;
  private readonly workspaces: WorkspaceAccess;
  private readonly limits: ConversationLimits;
  private readonly logger: Logger | undefined;
  private readonly now: () => Date;

  constructor(deps: ConversationDeps) {
    this.store = deps.store;
    this.events = deps.events;
    this.previews = deps.previews;
    this.workspaces = deps.workspaces;
    this.limits = deps.limits;
    this.logger = deps.logger;
    this.now = deps.now ?? (() => new Date());
  }

  async create(actor: Actor, input: CreateInput): Promise<ConversationView> {
    // The proto's rules admit only GROUP and CHANNEL, and no public group.
    if (input.type !== "group" && input.type !== "channel") throw new Error(`unvalidated conversation type ${input.type}`);
    const type = input.type;
    const isChannel = type === "channel";
    const ws = await this.workspaces.resolve(actor.userId, input.workspaceId);
    if (isChannel && ws.role === "guest") throw permissionDenied("ROLE_INSUFFICIENT", "guests of a workspace may not create channels");
    const title = isChannel
      ? v.channelName("title", input.title, this.limits.titleMaxChars)
      : v.groupTitle("title", input.title, this.limits.titleMaxChars);
    const description = v.description("description", input.description, this.limits.descriptionMaxChars);
    const visibility: Visibility = isChannel ? (input.visibility === "private" ? "private" : "public") : "private";
    const others = v.uuidList("member_ids", input.memberIds, this.limits.addMembersMaxBatch).filter((id) => id !== actor.userId);
    const max = isChannel ? this.limits.channelMaxMembers : this.limits.groupMaxMembers;
    if (others.length + 1 > max)
      throw failedPrecondition("MEMBER_LIMIT_REACHED", `a ${input.type} has at most ${max} members`, { limit: String(max) });

    let conversation: ConversationRecord;
    const out: LoggedEvent[] = [];
    try {
      // The member_joined events commit with the conversation (a new id: nothing to order against).
      conversation = await this.events.track(
        [],
        () =>
          this.store.createConversation(
            { type, title, description, visibility, ownerId: actor.userId, workspaceId: ws.workspaceId },
            [{ userId: actor.userId, role: "owner" }, ...others.map((userId) => ({ userId, role: "member" as const }))],
            {
              actorId: actor.userId,
              action: "conversation.created",
              clientAddress: actor.clientAddress,
              metadata: { type: input.type, memberIds: others },
            },
            out,
          ),
        () => out,
      );
    } catch (err) {
      if (err instanceof ChannelNameTaken) throw alreadyExists("CHANNEL_NAME_TAKEN", `a channel named "${title}" already exists`);
      throw this.unknownUsers(err, "member_ids");
    }
    return this.viewFor(actor, conversation);
  }

  async getOrCreateDirect(actor: Actor, rawUserId: string, workspaceId?: string): Promise<{ view: ConversationView; created: boolean }> {
    const peer = v.uuid(rawUserId);
    const ws = await this.workspaces.resolve(actor.userId, workspaceId);
    let res: { conversation: ConversationRecord; created: boolean };
    const out: LoggedEvent[] = [];
    try {
      res = await this.events.track(
        [],
        () =>
          this.store.getOrCreateDirect(
            actor.userId,
            peer,
            { actorId: actor.userId, action: "conversation.direct.created", clientAddress: actor.clientAddress, metadata: { peerUserId: peer } },
            out,
            ws.workspaceId,
          ),
        () => out,
      );
    } catch (err) {
      throw this.unknownUsers(err, "user_id");
    }
    return { view: await this.viewFor(actor, res.conversation), created: res.created };
  }

  async get(actor: Actor, rawId: string): Promise<ConversationView> {
    const id = v.uuid(rawId);
    const [conversation, member] = await Promise.all([this.store.getConversation(id), this.store.getMemberRecord(id, actor.userId)]);
    // Members see their conversation; anyone may look at a public channel (joined=false).
    if (!conversation || (!member && !(await browsable(conversation, () => this.store.workspaceRole(conversation.workspaceId, actor.userId)))))
      throw conversationNotFound();
    return this.view(actor, conversation, member, true);
  }

  /**
   * The caller's conversations by activity (last_message_at DESC, id DESC),
   * keyset-paginated. Guarantee for one scan (first page to empty token): no
   * conversation appears twice, and every conversation whose activity,
   * membership and archived flag do not change during the scan appears
   * exactly once, in order. One that gets new activity mid-scan moves above
   * the cursor and may be missed by this scan (the client sees it on its next
   * first-page refresh or through the stream).
   */
  async list(
    actor: Actor,
    opts: { pageSize: number; pageToken: string; includeArchived: boolean; workspaceId?: string },
  ): Promise<Page<ConversationView>> {
    const limit = v.pageSize(opts.pageSize, LIST_DEFAULT_PAGE);
    const after = decodeActivityToken(opts.pageToken);
    const ws = await this.workspaces.resolve(actor.userId, opts.workspaceId);
    const rows = await this.store.listForUser(actor.userId, {
      limit: limit + 1,
      after,
      includeArchived: opts.includeArchived,
      workspaceId: ws.workspaceId,
    });
    const page = rows.slice(0, limit);
    const previews = page.length ? await this.previews.previews(page.map((r) => r.conversation.id)) : new Map();
    return {
      items: page.map((r) => this.compose(actor, r.conversation, r.member, previews.get(r.conversation.id) ?? null)),
      nextPageToken: rows.length > limit ? encodeActivityToken(page[page.length - 1].cursor) : "",
    };
  }

  async update(actor: Actor, input: UpdateInput): Promise<ConversationView> {
    const id = v.uuid(input.conversationId);
    // Stateless checks first; the ones that depend on the conversation's type run under the lock.
    if (input.description !== undefined) v.description("description", input.description, this.limits.descriptionMaxChars);
    const out = await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const me = await requireMember(c, await locked.member(actor.userId), () => locked.workspaceRole(actor.userId));
      notDirect(c, "be renamed");
      if (input.visibility !== undefined && c.type !== "channel")
        throw invalidArgument("visibility", "only channels have a visibility", "VISIBILITY_NOT_APPLICABLE");
      // Asking for any change needs the role, even when the value happens to be the same.
      requireRole(me, "admin", "change the title or description");
      if (input.visibility !== undefined) requireRole(me, "owner", "change the visibility");
      const patch: { title?: string; description?: string; visibility?: Visibility } = {};
      if (input.title !== undefined) {
        patch.title =
          c.type === "channel"
            ? v.channelName("title", input.title, this.limits.titleMaxChars)
            : v.groupTitle("title", input.title, this.limits.titleMaxChars);
      }
      if (input.description !== undefined) patch.description = v.description("description", input.description, this.limits.descriptionMaxChars);
      if (input.visibility !== undefined && input.visibility !== c.visibility) patch.visibility = input.visibility;
      const changed =
        (patch.title !== undefined && patch.title !== c.title) ||
        (patch.description !== undefined && patch.description !== c.description) ||
        patch.visibility !== undefined;
      if (!changed) return { me, changed: false };
      try {
        await locked.update(patch);
      } catch (err) {
        if (err instanceof ChannelNameTaken) throw alreadyExists("CHANNEL_NAME_TAKEN", `a channel named "${patch.title}" already exists`);
        throw err;
      }
      await locked.audit({
        actorId: actor.userId,
        action: "conversation.updated",
        clientAddress: actor.clientAddress,
        metadata: { before: { title: c.title, visibility: c.visibility }, after: patch },
      });
      locked.emit([{ type: "conversation_updated", conversationId: id }]);
      return { me, changed: true };
    });
    return this.viewFor(actor, out.conversation, out.result.me);
  }

  async addMembers(actor: Actor, input: { conversationId: string; userIds: string[] }): Promise<{ view: ConversationView; added: string[] }> {
    const id = v.uuid(input.conversationId);
    const userIds = v.uuidList("user_ids", input.userIds, this.limits.addMembersMaxBatch);
    const out = await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const me = await requireMember(c, await locked.member(actor.userId), () => locked.workspaceRole(actor.userId));
      notDirect(c, "get new members (start a group instead)");
      // In a public channel anyone may join anyway, so any member may add others.
      if (!isPublicChannel(c)) requireRole(me, "admin", "add members");
      const existing = await locked.existingMembers(userIds);
      const fresh = userIds.filter((u) => !existing.has(u));
      if (fresh.length === 0) return { me, added: [] as string[] };
      const unknown = await locked.unknownUsers(fresh);
      if (unknown.length > 0)
        throw new AppError("USER_UNKNOWN", `user_ids: unknown user ${unknown[0]}`, {
          violations: [{ field: "user_ids", description: `unknown user ${unknown[0]}` }],
          metadata: { user_id: unknown[0] },
        });
      const max = maxMembers(c, this.limits);
      if (c.memberCount + fresh.length > max)
        throw failedPrecondition("MEMBER_LIMIT_REACHED", `a ${c.type} has at most ${max} members`, { limit: String(max) });
      const added = await locked.addMembers(fresh, "member");
      await locked.audit({
        actorId: actor.userId,
        action: "conversation.members.added",
        clientAddress: actor.clientAddress,
        metadata: { userIds: added },
      });
      if (added.length) {
        locked.emit([
          ...added.map((userId): DomainEvent => ({ type: "member_joined", conversationId: id, userId, role: "member" })),
          { type: "conversation_updated", conversationId: id },
        ]);
      }
      return { me, added };
    }).catch((err) => {
      throw this.unknownUsers(err, "user_ids");
    });
    const { me, added } = out.result;
    return { view: await this.viewFor(actor, out.conversation, me), added };
  }

  async removeMember(actor: Actor, input: { conversationId: string; userId: string }): Promise<void> {
    const id = v.uuid(input.conversationId);
    const target = v.uuid(input.userId);
    if (target === actor.userId) return this.leaveById(actor, id);
    await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const me = await requireMember(c, await locked.member(actor.userId), () => locked.workspaceRole(actor.userId));
      notDirect(c, "lose members");
      requireRole(me, "admin", "remove members");
      const them = await locked.member(target);
      if (!them) return false; // already gone: removing is idempotent
      if (ROLE_RANK[them.role] > ROLE_RANK[me.role]) throw permissionDenied("ROLE_INSUFFICIENT", "admins cannot remove owners");
      await locked.removeMember(target);
      if (them.role === "owner") await locked.refreshOwner();
      await locked.audit({
        actorId: actor.userId,
        action: "conversation.member.removed",
        clientAddress: actor.clientAddress,
        metadata: { userId: target, role: them.role },
      });
      locked.emit([
        { type: "member_left", conversationId: id, userId: target, removed: true },
        { type: "conversation_updated", conversationId: id },
      ]);
      return true;
    });
  }

  async join(actor: Actor, rawId: string): Promise<ConversationView> {
    const id = v.uuid(rawId);
    const out = await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const existing = await locked.member(actor.userId);
      if (existing) return { me: existing, joined: false }; // idempotent
      // Groups are invite-only and private channels unlisted: same answer as a nonexistent id.
      if (!(await browsable(c, () => locked.workspaceRole(actor.userId)))) throw conversationNotFound();
      if (c.memberCount + 1 > this.limits.channelMaxMembers)
        throw failedPrecondition("MEMBER_LIMIT_REACHED", `a channel has at most ${this.limits.channelMaxMembers} members`, {
          limit: String(this.limits.channelMaxMembers),
        });
      // A channel whose owners all left gets its next member as owner, so it is never unmanageable.
      const role: MemberRole = c.ownerId === null ? "owner" : "member";
      await locked.addMembers([actor.userId], role);
      if (role === "owner") await locked.refreshOwner();
      await locked.audit({ actorId: actor.userId, action: "conversation.member.joined", clientAddress: actor.clientAddress, metadata: { role } });
      const me = (await locked.member(actor.userId))!;
      locked.emit([
        { type: "member_joined", conversationId: id, userId: actor.userId, role: me.role },
        { type: "conversation_updated", conversationId: id },
      ]);
      return { me, joined: true };
    }).catch((err) => {
      // Only the caller is inserted here: a token outliving its account.
      throw err instanceof UnknownUsers ? unauthenticated("ACCOUNT_GONE", "account no longer exists") : err;
    });
    return this.viewFor(actor, out.conversation, out.result.me);
  }

  leave(actor: Actor, rawId: string): Promise<void> {
    return this.leaveById(actor, v.uuid(rawId));
  }

  private async leaveById(actor: Actor, id: string): Promise<void> {
    await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const me = await locked.member(actor.userId);
      if (!me) {
        if (await browsable(c, () => locked.workspaceRole(actor.userId))) return false; // not a member: nothing to do
        throw conversationNotFound();
      }
      notDirect(c, "be left (archive it instead)");
      if (me.role === "owner" && c.memberCount > 1 && (await locked.countOwners()) === 1) {
        throw failedPrecondition("LAST_OWNER", "the last owner must make another member owner (SetMemberRole) before leaving");
      }
      await locked.removeMember(actor.userId);
      if (me.role === "owner") await locked.refreshOwner();
      await locked.audit({
        actorId: actor.userId,
        action: "conversation.member.left",
        clientAddress: actor.clientAddress,
        metadata: { role: me.role },
      });
      locked.emit([
        { type: "member_left", conversationId: id, userId: actor.userId, removed: false },
        { type: "conversation_updated", conversationId: id },
      ]);
      return true;
    });
  }

  /**
   * After `userId` left or was removed from a workspace: their memberships of
   * its groups and channels go too (member_left with removed=true, audited
   * as by `actor`), one conversation at a time. Until then they are already
   * inert (a membership counts only while in the workspace). DMs stay, inert
   * the same way, so a return to the workspace finds them. Returns how many
   * memberships were removed. `strict`: a failed removal throws (a join clears
   * what a failed removal after a leave left behind, and must not go on);
   * otherwise it is logged and the membership stays inert until the next join.
   */
  async dropWorkspaceMember(actor: Actor, workspaceId: string, userId: string, opts: { strict?: boolean } = {}): Promise<number> {
    let dropped = 0;
    for (const id of await this.store.groupsAndChannelsOf(userId, workspaceId)) {
      const out = await this.events
        .track(
          [id],
          () =>
            this.store.mutate(id, async (locked) => {
              // Their membership is already hidden (not in the workspace): remove the row directly.
              if (!(await locked.removeMember(userId))) return false;
              await locked.refreshOwner();
              await locked.audit({
                actorId: actor.userId,
                action: "conversation.member.removed",
                clientAddress: actor.clientAddress,
                metadata: { userId, reason: "workspace", workspaceId },
              });
              locked.emit([
                { type: "member_left", conversationId: id, userId, removed: true },
                { type: "conversation_updated", conversationId: id },
              ]);
              return true;
            }),
          (r) => r?.events ?? [],
        )
        .catch((err) => {
          if (opts.strict) throw err;
          this.logger?.error(
            { err, conversationId: id, userId, workspaceId },
            "removing a former workspace member from a conversation failed; it stays inert until they join again",
          );
          return null;
        });
      if (out?.result) dropped++;
    }
    return dropped;
  }

  async listMembers(actor: Actor, input: { conversationId: string; pageSize: number; pageToken: string }): Promise<Page<MemberRecord>> {
    const id = v.uuid(input.conversationId);
    const limit = v.pageSize(input.pageSize, MEMBERS_DEFAULT_PAGE);
    const after = decodeMemberToken(input.pageToken);
    await this.requireMembership(actor, id);
    const rows = await this.store.listMembers(id, { limit: limit + 1, afterUserId: after });
    const items = rows.slice(0, limit);
    return { items, nextPageToken: rows.length > limit ? encodeMemberToken(items[items.length - 1].userId) : "" };
  }

  async setMemberRole(actor: Actor, input: { conversationId: string; userId: string; role: MemberRole | "unspecified" }): Promise<MemberRecord> {
    const id = v.uuid(input.conversationId);
    const target = v.uuid(input.userId);
    // The proto's rules admit no MEMBER_ROLE_UNSPECIFIED.
    if (input.role === "unspecified") throw new Error("unvalidated member role");
    const role = input.role;
    const out = await this.mutate(id, async (locked) => {
      const c = locked.conversation;
      const me = await requireMember(c, await locked.member(actor.userId), () => locked.workspaceRole(actor.userId));
      notDirect(c, "have roles");
      requireRole(me, "admin", "change roles");
      const them = await locked.member(target);
      if (!them) throw notFound("MEMBER_NOT_FOUND", "member not found");
      if (them.role === role) return { member: them, from: role };
      // You may act on members at or below your rank and grant at most your own rank.
      if (ROLE_RANK[them.role] > ROLE_RANK[me.role]) throw permissionDenied("ROLE_INSUFFICIENT", "admins cannot change an owner's role");
      if (ROLE_RANK[role] > ROLE_RANK[me.role]) throw permissionDenied("ROLE_INSUFFICIENT", "only owners may make owners");
      if (them.role === "owner" && (await locked.countOwners()) === 1) {
        throw failedPrecondition("LAST_OWNER", "the last owner must make another member owner first");
      }
      const member = (await locked.setRole(target, role))!;
      await locked.refreshOwner();
      await locked.audit({
        actorId: actor.userId,
        action: "conversation.role.changed",
        clientAddress: actor.clientAddress,
        metadata: { userId: target, from: them.role, to: role },
      });
      locked.emit([{ type: "conversation_updated", conversationId: id }]);
      return { member, from: them.role };
    });
    return out.result.member;
  }

  async updateMemberSettings(actor: Actor, input: { conversationId: string; mutedUntil?: Date; archived?: boolean }): Promise<ConversationView> {
    const id = v.uuid(input.conversationId);
    let mutedUntil: Date | null | undefined;
    if (input.mutedUntil !== undefined) {
      // A time in the past (e.g. the epoch) unmutes.
      mutedUntil = input.mutedUntil.getTime() > this.now().getTime() ? input.mutedUntil : null;
    }
    const member = await this.store.updateMemberSettings(id, actor.userId, { mutedUntil, archived: input.archived });
    const conversation = await this.store.getConversation(id);
    if (!conversation) throw conversationNotFound();
    return this.viewFor(
      actor,
      conversation,
      await requireMember(conversation, member, () => this.store.workspaceRole(conversation.workspaceId, actor.userId)),
    );
  }

  async listPublicChannels(
    actor: Actor,
    input: { pageSize: number; pageToken: string; query: string; workspaceId?: string },
  ): Promise<Page<ConversationView>> {
    const limit = v.pageSize(input.pageSize, LIST_DEFAULT_PAGE);
    const prefix = v.channelPrefix("query", input.query, this.limits.titleMaxChars);
    const after = decodeChannelToken(input.pageToken);
    const ws = await this.workspaces.resolve(actor.userId, input.workspaceId);
    // Guests browse nothing: they see only the conversations they were added to.
    if (ws.role === "guest") return { items: [], nextPageToken: "" };
    const rows = await this.store.listPublicChannels(actor.userId, { limit: limit + 1, afterNameKey: after, prefix, workspaceId: ws.workspaceId });
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => this.compose(actor, r.conversation, r.member, null)),
      nextPageToken: rows.length > limit ? encodeChannelToken(page[page.length - 1].conversation.title.toLowerCase()) : "",
    };
  }

  // --- helpers ---

  /** A change under the conversation's lock; what it emits commits with it and is announced after. */
  private async mutate<T>(id: string, fn: (locked: LockedConversation) => Promise<T>): Promise<{ result: T; conversation: ConversationRecord }> {
    const out = await this.events.track(
      [id],
      () => this.store.mutate(id, fn),
      (r) => r?.events ?? [],
    );
    if (!out) throw conversationNotFound();
    return out;
  }

  private async requireMembership(actor: Actor, id: string): Promise<MemberRecord> {
    const member = await this.store.getMemberRecord(id, actor.userId);
    if (member) return member;
    const conversation = await this.store.getConversation(id);
    if (!conversation) throw conversationNotFound();
    return requireMember(conversation, null, () => this.store.workspaceRole(conversation.workspaceId, actor.userId));
  }

  private unknownUsers(err: unknown, field: string): unknown {
    if (err instanceof UnknownUsers)
      return new AppError("USER_UNKNOWN", `${field}: unknown user`, {
        violations: [{ field, description: err.userIds.length ? `unknown user ${err.userIds[0]}` : "unknown user" }],
        metadata: err.userIds.length ? { user_id: err.userIds[0] } : {},
      });
    return err;
  }

  /** The view of a conversation the caller just changed or created (membership read fresh when not given). */
  private async viewFor(actor: Actor, conversation: ConversationRecord, member?: MemberRecord | null): Promise<ConversationView> {
    const m = member === undefined ? await this.store.getMemberRecord(conversation.id, actor.userId) : member;
    return this.view(actor, conversation, m, true);
  }

  private async view(actor: Actor, conversation: ConversationRecord, member: MemberRecord | null, withPreview: boolean): Promise<ConversationView> {
    const preview = withPreview && member ? ((await this.previews.previews([conversation.id])).get(conversation.id) ?? null) : null;
    return this.compose(actor, conversation, member, preview);
  }

  private compose(actor: Actor, c: ConversationRecord, member: MemberRecord | null, lastMessage: ConversationView["lastMessage"]): ConversationView {
    const now = this.now().getTime();
    const m = member && { ...member, mutedUntil: member.mutedUntil && member.mutedUntil.getTime() > now ? member.mutedUntil : null };
    return {
      conversation: c,
      member: m,
      peerUserId: c.directKey ? peerOf(c.directKey, actor.userId) : null,
      // Posting advances the sender's own last_read_seq, so this counts only others' messages.
      unreadCount: m ? Math.max(0, c.lastSeq - m.lastReadSeq) : 0,
      lastMessage,
    };
  }
}
