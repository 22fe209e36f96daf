// chat.v1.AuthService over Connect: protobuf in, domain call, protobuf out.

import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type AuthService as AuthServiceDesc,
  SessionSchema,
  TokenPairSchema,
  UserRole,
  UserSchema,
  UserStatus,
  type Session,
  type TokenPair as TokenPairMsg,
  type User,
} from "../../gen/chat/v1/auth_pb.js";
import { caller, kClientAddress, kRequestAuthority } from "../server/context.ts";
import { AppError, unauthenticated } from "../shared/errors.ts";
import {
  COOKIE_MODE_HEADER,
  clearedRefreshCookie,
  cookieModeRequested,
  deviceCookie,
  readDeviceCookies,
  readRefreshCookie,
  refreshCookie,
} from "./refresh-cookie.ts";
import {
  MAX_DEVICE_TOKEN_CANDIDATES,
  type AuthService,
  type IssuedDeviceToken,
  type RequestMeta,
  type SessionView,
  type TokenPair,
} from "./auth-service.ts";
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

function tokensToPb(t: TokenPair, opts: { cookie: boolean }): TokenPairMsg {
  return create(TokenPairSchema, {
    accessToken: t.accessToken,
    // Cookie mode: the refresh token travels only in the HttpOnly cookie.
    refreshToken: opts.cookie ? "" : t.refreshToken,
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

// The proto's rules admit only defined, specified roles and ACTIVE or SUSPENDED.
function rolesFromPb(roles: UserRole[]): Role[] {
  return roles.map((r) => (r === UserRole.ADMIN ? "admin" : "user"));
}

function statusFromPb(s: UserStatus): Status {
  return s === UserStatus.SUSPENDED ? "suspended" : "active";
}

const meta = (ctx: HandlerContext): RequestMeta => ({ clientAddress: ctx.values.get(kClientAddress) });

export interface AuthHandlerOptions {
  /** `Secure` on the browser refresh cookie. */
  cookieSecure: boolean;
}

export function authHandler(auth: AuthService, opts: AuthHandlerOptions = { cookieSecure: false }): ServiceImpl<typeof AuthServiceDesc> {
  /** Cookie mode asked for (and its same-origin checks passed); checked before any work is done. */
  const cookieMode = (ctx: HandlerContext) => cookieModeRequested(ctx.requestHeader, ctx.values.get(kRequestAuthority));
  /** The pair for the response body; in cookie mode the refresh token goes into Set-Cookie instead. */
  const issue = (ctx: HandlerContext, t: TokenPair, cookie: boolean) => {
    if (cookie) ctx.responseHeader.append("set-cookie", refreshCookie(t.refreshToken, t.refreshTokenExpiresAt, opts.cookieSecure));
    return tokensToPb(t, { cookie });
  };
  /** The device token for the response body; in cookie mode it goes into an HttpOnly cookie instead. */
  const issueDevice = (ctx: HandlerContext, userId: string, d: IssuedDeviceToken, cookie: boolean): string => {
    if (!cookie) return d.token;
    ctx.responseHeader.append("set-cookie", deviceCookie(userId, d.token, d.expiresAt, opts.cookieSecure));
    return "";
  };
  return {
    async register(req, ctx) {
      const cookie = cookieMode(ctx);
      const { user, tokens, deviceToken } = await auth.register(
        {
          email: req.email,
          username: req.username,
          password: req.password,
          displayName: req.displayName,
          deviceId: req.deviceId,
          deviceName: req.deviceName,
        },
        meta(ctx),
      );
      return {
        user: userToPb(user, { withEmail: true }),
        tokens: issue(ctx, tokens, cookie),
        deviceToken: issueDevice(ctx, user.id, deviceToken, cookie),
      };
    },
    async login(req, ctx) {
      const cookie = cookieMode(ctx);
      // The body's token first, then (cookie mode) the browser's device cookies.
      const candidates = [req.deviceToken, ...(cookie ? readDeviceCookies(ctx.requestHeader, MAX_DEVICE_TOKEN_CANDIDATES) : [])].filter(
        (t) => t !== "",
      );
      const { user, tokens, deviceToken } = await auth.login(
        { login: req.login, password: req.password, deviceId: req.deviceId, deviceName: req.deviceName, deviceTokens: candidates },
        meta(ctx),
      );
      return {
        user: userToPb(user, { withEmail: true }),
        tokens: issue(ctx, tokens, cookie),
        deviceToken: issueDevice(ctx, user.id, deviceToken, cookie),
      };
    },
    async refresh(req, ctx) {
      if (!cookieMode(ctx)) return { tokens: tokensToPb(await auth.refresh(req.refreshToken, meta(ctx)), { cookie: false }) };
      // Cookie mode reads only the cookie (a token in the body is ignored).
      const token = readRefreshCookie(ctx.requestHeader);
      if (token === "") throw unauthenticated("REFRESH_COOKIE_MISSING", "no refresh cookie; sign in");
      try {
        return { tokens: issue(ctx, await auth.refresh(token, meta(ctx)), true) };
      } catch (err) {
        // A refused token is dead for good: drop the cookie so the browser stops sending it.
        if (err instanceof AppError && (err.kind === "unauthenticated" || err.kind === "permission_denied"))
          ctx.responseHeader.append("set-cookie", clearedRefreshCookie(opts.cookieSecure));
        throw err;
      }
    },
    async logout(req, ctx) {
      await auth.logout(caller(ctx), req.allSessions, meta(ctx));
      // The cookie's session is over; a browser that asks has its cookie cleared.
      if (ctx.requestHeader.get(COOKIE_MODE_HEADER) === "1") ctx.responseHeader.append("set-cookie", clearedRefreshCookie(opts.cookieSecure));
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
      const cookie = cookieMode(ctx);
      return { tokens: issue(ctx, await auth.changePassword(caller(ctx), req.currentPassword, req.newPassword, meta(ctx)), cookie) };
    },
    async getUsers(req, ctx) {
      caller(ctx);
      return { users: (await auth.getUsers(req.userIds)).map((u) => userToPb(u, { withEmail: false })) };
    },
    async searchUsers(req, ctx) {
      const page = await auth.searchUsers(caller(ctx).userId, req.query, req.pageSize, req.pageToken, req.workspaceId || undefined);
      return { users: page.users.map((u) => userToPb(u, { withEmail: false })), nextPageToken: page.nextPageToken };
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
