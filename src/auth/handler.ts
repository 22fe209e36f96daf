// chat.v1.AuthService over Connect: protobuf in, domain call, protobuf out.

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  AuthService as AuthServiceDesc,
  SessionSchema,
  TokenPairSchema,
  UserRole,
  UserSchema,
  UserStatus,
  type Session,
  type TokenPair as TokenPairMsg,
  type User,
} from "../../gen/chat/v1/auth_pb.js";
import { caller, kClientAddress } from "../server/context.ts";
import { invalidArgument } from "../shared/errors.ts";
import type { AuthService, RequestMeta, SessionView, TokenPair } from "./auth-service.ts";
import type { Role, UserRecord, UserStatus as Status } from "./auth-store.ts";

const ROLE_TO_PB: Record<Role, UserRole> = { user: UserRole.USER, admin: UserRole.ADMIN };

export function userToPb(u: UserRecord, opts: { withEmail: boolean }): User {
  return create(UserSchema, {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    email: opts.withEmail ? u.email : "",
    roles: u.roles.map((r) => ROLE_TO_PB[r]).filter((r) => r !== undefined),
    status: u.status === "active" ? UserStatus.ACTIVE : UserStatus.SUSPENDED,
    createdAt: timestampFromDate(u.createdAt),
    updatedAt: timestampFromDate(u.updatedAt),
  });
}

function tokensToPb(t: TokenPair): TokenPairMsg {
  return create(TokenPairSchema, {
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    accessTokenExpiresAt: timestampFromDate(t.accessTokenExpiresAt),
    refreshTokenExpiresAt: timestampFromDate(t.refreshTokenExpiresAt),
    sessionId: t.sessionId,
  });
}

function sessionToPb(s: SessionView): Session {
  return create(SessionSchema, {
    sessionId: s.id,
    deviceId: s.deviceId,
    deviceName: s.deviceName,
    createdAt: timestampFromDate(s.createdAt),
    lastUsedAt: timestampFromDate(s.lastUsedAt),
    current: s.current,
    expiresAt: timestampFromDate(s.expiresAt),
  });
}

function rolesFromPb(roles: UserRole[]): Role[] {
  if (roles.length === 0) throw invalidArgument("roles", "at least one role is required");
  return roles.map((r) => {
    if (r === UserRole.USER) return "user";
    if (r === UserRole.ADMIN) return "admin";
    throw invalidArgument("roles", `unknown role ${r}`);
  });
}

function statusFromPb(s: UserStatus): Status {
  if (s === UserStatus.ACTIVE) return "active";
  if (s === UserStatus.SUSPENDED) return "suspended";
  throw invalidArgument("status", "must be USER_STATUS_ACTIVE or USER_STATUS_SUSPENDED");
}

const meta = (ctx: HandlerContext): RequestMeta => ({ clientAddress: ctx.values.get(kClientAddress) });

export function authHandler(auth: AuthService): ServiceImpl<typeof AuthServiceDesc> {
  return {
    async register(req, ctx) {
      const { user, tokens } = await auth.register(
        { email: req.email, username: req.username, password: req.password, displayName: req.displayName, deviceId: req.deviceId, deviceName: req.deviceName },
        meta(ctx),
      );
      return { user: userToPb(user, { withEmail: true }), tokens: tokensToPb(tokens) };
    },
    async login(req, ctx) {
      const { user, tokens } = await auth.login({ login: req.login, password: req.password, deviceId: req.deviceId, deviceName: req.deviceName }, meta(ctx));
      return { user: userToPb(user, { withEmail: true }), tokens: tokensToPb(tokens) };
    },
    async refresh(req, ctx) {
      return { tokens: tokensToPb(await auth.refresh(req.refreshToken, meta(ctx))) };
    },
    async logout(req, ctx) {
      await auth.logout(caller(ctx), req.allSessions, meta(ctx));
      return {};
    },
    async getMe(_req, ctx) {
      return { user: userToPb(await auth.getMe(caller(ctx)), { withEmail: true }) };
    },
    async listSessions(_req, ctx) {
      return { sessions: (await auth.listSessions(caller(ctx))).map(sessionToPb) };
    },
    async revokeSession(req, ctx) {
      await auth.revokeSession(caller(ctx), req.sessionId, meta(ctx));
      return {};
    },
    async updateProfile(req, ctx) {
      return { user: userToPb(await auth.updateProfile(caller(ctx), req.displayName), { withEmail: true }) };
    },
    async changePassword(req, ctx) {
      return { tokens: tokensToPb(await auth.changePassword(caller(ctx), req.currentPassword, req.newPassword, meta(ctx))) };
    },
    async getUsers(req, ctx) {
      caller(ctx);
      return { users: (await auth.getUsers(req.userIds)).map((u) => userToPb(u, { withEmail: false })) };
    },
    async searchUsers(req, ctx) {
      caller(ctx);
      return { users: (await auth.searchUsers(req.query, req.pageSize)).map((u) => userToPb(u, { withEmail: false })) };
    },
    async setUserRoles(req, ctx) {
      const user = await auth.setUserRoles(caller(ctx), req.userId, rolesFromPb(req.roles), meta(ctx));
      return { user: userToPb(user, { withEmail: false }) };
    },
    async setUserStatus(req, ctx) {
      const user = await auth.setUserStatus(caller(ctx), req.userId, statusFromPb(req.status), meta(ctx));
      return { user: userToPb(user, { withEmail: false }) };
    },
  };
}
