// The catalogue of error reasons. Every error the API returns carries
// google.rpc.ErrorInfo { domain: "chat.v1", reason } with one of these
// reasons, and the reason fixes the status code. Reasons are part of the
// contract: once published, a reason keeps its name and code.
//
// To add an error: add an entry here (code, when, what a client should do),
// throw it with `new AppError("MY_REASON", message)` (or a helper of
// shared/errors.ts), and run `npm run docs:errors` to refresh docs/ERRORS.md.
// test/contract/errors-catalogue.test.ts fails until all three agree.

/** Status codes, as the lower-snake names of google.rpc.Code. */
export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "resource_exhausted"
  | "unavailable"
  | "canceled"
  | "deadline_exceeded"
  | "unimplemented"
  | "internal";

export interface ReasonInfo {
  kind: ErrorKind;
  /** When the server answers with this reason. */
  when: string;
  /** What a client should do about it. */
  action: string;
}

export const ERROR_DOMAIN = "chat.v1";

export const REASONS = {
  // ---- INVALID_ARGUMENT ----
  INVALID_FIELD: {
    kind: "invalid_argument",
    when: "One or more request fields break their rules (the protovalidate rules in the proto, or a configured limit such as MESSAGE_MAX_CHARS). google.rpc.BadRequest lists every violation; each FieldViolation.reason is the rule id (e.g. `string.uuid`, `string.max_len`).",
    action: "Fix the fields named in BadRequest.field_violations; do not retry unchanged.",
  },
  REQUEST_MALFORMED: {
    kind: "invalid_argument",
    when: "The request could not be decoded (bad protobuf or JSON, unknown enum name, invalid UTF-8 over JSON).",
    action: "A client bug: check the generated stubs and the JSON mapping.",
  },
  PAGE_TOKEN_INVALID: {
    kind: "invalid_argument",
    when: "`page_token` is not a `next_page_token` of a previous response of the same RPC.",
    action: "Pass next_page_token back unchanged, or start again without a token.",
  },
  CURSOR_INVALID: {
    kind: "invalid_argument",
    when: "A resume token or event cursor was not issued by this server to this user.",
    action: "Drop the stored cursor and start a fresh stream (reload conversations with ListMessages).",
  },
  PARENT_NOT_IN_CONVERSATION: {
    kind: "invalid_argument",
    when: "`parent_message_id` names no message of this conversation.",
    action: "Reply to a message of the same conversation.",
  },
  THREAD_TOO_DEEP: {
    kind: "invalid_argument",
    when: "`parent_message_id` is itself a reply: threads are one level deep.",
    action: "Reply to the thread's top-level message instead.",
  },
  USER_UNKNOWN: {
    kind: "invalid_argument",
    when: "A user id in the request names no user.",
    action: "Remove the unknown id (metadata `user_id`) and retry.",
  },
  VISIBILITY_NOT_APPLICABLE: {
    kind: "invalid_argument",
    when: "A visibility was given for a conversation that is not a channel.",
    action: "Only set visibility on channels.",
  },
  PASSWORD_INCORRECT: {
    kind: "invalid_argument",
    when: "ChangePassword: `current_password` is wrong.",
    action: "Ask the user for the current password again.",
  },
  PASSWORD_TOO_WEAK: {
    kind: "invalid_argument",
    when: "The new password is very common, one repeated character, or contains the username or email.",
    action: "Ask the user for another password.",
  },
  IDEMPOTENCY_KEY_INVALID: {
    kind: "invalid_argument",
    when: "The `idempotency-key` header is not 1 to 255 visible ASCII characters.",
    action: "Send a valid key (a UUID is best).",
  },
  IDEMPOTENCY_KEY_REUSED: {
    kind: "invalid_argument",
    when: "The `idempotency-key` header was already used with a different request.",
    action: "Use a new key for a new request.",
  },
  STREAM_FRAME_UNEXPECTED: {
    kind: "invalid_argument",
    when: "Stream: the first frame is not `hello`, a later frame is `hello`, or a frame is empty.",
    action: "A client bug: open a stream with exactly one `hello` first.",
  },

  // ---- UNAUTHENTICATED ----
  TOKEN_MISSING: {
    kind: "unauthenticated",
    when: "No `authorization: Bearer <access_token>` header on an RPC that needs one.",
    action: "Log in (or Refresh) and send the access token.",
  },
  TOKEN_INVALID: {
    kind: "unauthenticated",
    when: "The access token is malformed, forged, or not for this service.",
    action: "Refresh; if that fails, log in again.",
  },
  TOKEN_EXPIRED: {
    kind: "unauthenticated",
    when: "The access token expired (also closes a Stream whose token expired without `refresh_auth`).",
    action: "Call Refresh and retry with the new access token; resume streams from the last cursor.",
  },
  TOKEN_OUTDATED: {
    kind: "unauthenticated",
    when: "The user's roles changed after the access token was issued.",
    action: "Call Refresh and retry with the new access token.",
  },
  SESSION_REVOKED: {
    kind: "unauthenticated",
    when: "The token's session ended (logout, RevokeSession, password change, suspension, reuse of a refresh token, or expiry). Metadata `cause` says which when known.",
    action: "Log in again.",
  },
  LOGIN_FAILED: {
    kind: "unauthenticated",
    when: "Login: unknown account or wrong password (deliberately not told apart).",
    action: "Ask the user to check the login and password.",
  },
  REFRESH_TOKEN_INVALID: {
    kind: "unauthenticated",
    when: "Refresh: the refresh token is unknown or expired.",
    action: "Log in again.",
  },
  REFRESH_TOKEN_REUSED: {
    kind: "unauthenticated",
    when: "Refresh: the refresh token was already used; the whole session is revoked (theft protection).",
    action: "Log in again. Make sure only one refresh runs at a time per session.",
  },
  REFRESH_COOKIE_MISSING: {
    kind: "unauthenticated",
    when: "Refresh in cookie mode (`x-refresh-cookie: 1`) without the refresh cookie: never signed in on this browser, logged out, or the cookie expired.",
    action: "Show the sign-in form.",
  },
  ACCOUNT_GONE: {
    kind: "unauthenticated",
    when: "The authenticated account no longer exists.",
    action: "Log out locally.",
  },

  // ---- PERMISSION_DENIED ----
  ACCOUNT_SUSPENDED: {
    kind: "permission_denied",
    when: "Login with the right password to a suspended account.",
    action: "Tell the user the account is suspended.",
  },
  CSRF_CHECK_FAILED: {
    kind: "permission_denied",
    when: "A cookie-mode request (`x-refresh-cookie`) that is not same-origin: no or foreign `Origin`, or `Sec-Fetch-Site` other than `same-origin`.",
    action: "Cookie sessions work only from the server's own origin; other clients keep the refresh token in the body.",
  },
  ADMIN_REQUIRED: {
    kind: "permission_denied",
    when: "An admin-only RPC was called without the admin role.",
    action: "Do not offer the action to non-admins.",
  },
  ROLE_INSUFFICIENT: {
    kind: "permission_denied",
    when: "The caller's role in the conversation or workspace does not allow the action (e.g. a member renaming, an admin removing an owner).",
    action: "Do not offer the action; the message says which role is needed.",
  },
  NOT_SENDER: {
    kind: "permission_denied",
    when: "Editing (or deleting, without owner/admin role) someone else's message.",
    action: "Only offer edit on the caller's own messages.",
  },
  JOIN_REQUIRED: {
    kind: "permission_denied",
    when: "A public channel the caller can see but has not joined.",
    action: "Call JoinConversation first.",
  },

  // ---- NOT_FOUND ----
  CONVERSATION_NOT_FOUND: {
    kind: "not_found",
    when: "The conversation does not exist, or the caller may not see it (existence is never leaked).",
    action: "Drop the conversation from local state.",
  },
  WORKSPACE_NOT_FOUND: {
    kind: "not_found",
    when: "The workspace does not exist, or the caller is not a member of it (existence is never leaked). Also for a call without a workspace id when the caller has left the default workspace.",
    action: "Drop the workspace from local state; pass a workspace the caller belongs to (ListMyWorkspaces).",
  },
  INVITE_NOT_FOUND: {
    kind: "not_found",
    when: "JoinWorkspace: no invitation has this token or id, or it is addressed to someone else.",
    action: "Ask the inviter for a new invitation.",
  },
  MESSAGE_NOT_FOUND: {
    kind: "not_found",
    when: "The message does not exist, or is in a conversation the caller may not see.",
    action: "Drop the message from local state.",
  },
  MEMBER_NOT_FOUND: {
    kind: "not_found",
    when: "The user is not a member of the conversation.",
    action: "Refresh the member list.",
  },
  USER_NOT_FOUND: {
    kind: "not_found",
    when: "Admin RPCs, InviteMember by username: the user does not exist.",
    action: "Refresh the user list.",
  },
  SERVICE_UNKNOWN: {
    kind: "not_found",
    when: "grpc.health.v1.Health: the service name is not served here.",
    action: "Check the service name (e.g. `chat.v1.MessageService`, or empty for the server).",
  },
  SESSION_NOT_FOUND: {
    kind: "not_found",
    when: "RevokeSession: no session of the caller has this id.",
    action: "Refresh the session list (ListSessions).",
  },

  // ---- ALREADY_EXISTS ----
  EMAIL_TAKEN: {
    kind: "already_exists",
    when: "Register: the email is already registered.",
    action: "Offer to log in instead.",
  },
  USERNAME_TAKEN: {
    kind: "already_exists",
    when: "Register: the username is taken.",
    action: "Ask for another username.",
  },
  WORKSPACE_SLUG_TAKEN: {
    kind: "already_exists",
    when: "CreateWorkspace / UpdateWorkspace: another workspace has this slug.",
    action: "Ask for another slug.",
  },
  CHANNEL_NAME_TAKEN: {
    kind: "already_exists",
    when: "A channel with this name (case-insensitive) exists.",
    action: "Ask for another name, or join the existing channel.",
  },

  // ---- FAILED_PRECONDITION ----
  MESSAGE_DELETED: {
    kind: "failed_precondition",
    when: "Editing, or reacting to, a deleted message.",
    action: "Show the tombstone; do not retry.",
  },
  THREAD_PARENT_DELETED: {
    kind: "failed_precondition",
    when: "Replying in the thread of a deleted message.",
    action: "Show the thread as closed; do not retry.",
  },
  DIRECT_CONVERSATION_IMMUTABLE: {
    kind: "failed_precondition",
    when: "Renaming, adding members to, or leaving a direct conversation.",
    action: "Do not offer these actions on DMs.",
  },
  MEMBER_LIMIT_REACHED: {
    kind: "failed_precondition",
    when: "The conversation would exceed its member limit (metadata `limit`).",
    action: "Tell the user; remove members first.",
  },
  INVITE_EXPIRED: {
    kind: "failed_precondition",
    when: "JoinWorkspace: the invitation's expiry has passed.",
    action: "Ask the inviter for a new invitation.",
  },
  INVITE_EXHAUSTED: {
    kind: "failed_precondition",
    when: "JoinWorkspace: the invitation has been redeemed as often as its max_uses allows.",
    action: "Ask the inviter for a new invitation.",
  },
  LAST_OWNER: {
    kind: "failed_precondition",
    when: "The last owner of a conversation or workspace tried to leave, give up ownership, or be removed.",
    action: "Make another member owner (SetMemberRole) first.",
  },
  SELF_ADMIN_CHANGE: {
    kind: "failed_precondition",
    when: "An admin tried to remove their own admin role or suspend themselves.",
    action: "Ask another admin.",
  },

  // ---- RESOURCE_EXHAUSTED ----
  RATE_LIMITED: {
    kind: "resource_exhausted",
    when: "Too many attempts (login, registration...). google.rpc.RetryInfo and metadata `retry_after_ms` say when to try again.",
    action: "Wait for the retry delay, then retry.",
  },
  LOGIN_THROTTLED: {
    kind: "resource_exhausted",
    when: 'Login (or ChangePassword\'s current password) failed too often for this device, this account from this address, this account from unknown devices, or this address; the wait doubles with each further failure up to LOGIN_BACKOFF_MAX_SEC (docs/AUTH.md "Login throttling"). The attempt was not counted. google.rpc.RetryInfo and metadata `retry_after_ms` say when the next attempt is let through.',
    action:
      "Wait for the retry delay, then retry once. Send the device token of an earlier login of this account (LoginRequest.device_token) so other people's failures do not slow this device.",
  },
  STREAM_TOO_SLOW: {
    kind: "resource_exhausted",
    when: "A stream fell too far behind its events and was closed.",
    action: "Reconnect and resume from the last cursor processed.",
  },
  STREAM_LIMIT: {
    kind: "resource_exhausted",
    when: "The user already holds STREAM_MAX_PER_USER streams (Stream + Subscribe) on this node; the newest open is refused, open ones are kept. google.rpc.RetryInfo is 10 s.",
    action: "Close a stream you no longer use (or let a dead one expire after three silent heartbeat intervals), then open again.",
  },
  STREAM_OPEN_BUSY: {
    kind: "resource_exhausted",
    when: "Too many streams are opening on this node at once (STREAM_OPEN_CONCURRENCY running, STREAM_OPEN_QUEUE_MAX waiting, or a wait over STREAM_OPEN_WAIT_MS). google.rpc.RetryInfo gives a jittered delay (1-3 s).",
    action: "Open again after the RetryInfo delay (same resume token).",
  },
  REQUEST_TOO_LARGE: {
    kind: "resource_exhausted",
    when: "The request message is larger than the server accepts.",
    action: "Send less per call.",
  },

  // ---- UNAVAILABLE ----
  STORE_UNAVAILABLE: {
    kind: "unavailable",
    when: "A database, Redis or the rate limiter's store cannot be reached (metadata `store`; google.rpc.RetryInfo when known).",
    action: "Retry with exponential backoff.",
  },
  STORE_BUSY: {
    kind: "unavailable",
    when: "The database is overloaded: no pooled connection free in time, too many calls waiting, or a statement timed out. google.rpc.RetryInfo says when to retry.",
    action: "Retry after the RetryInfo delay, with backoff.",
  },
  STREAM_INTERRUPTED: {
    kind: "unavailable",
    when: "A stream ended because of a server-side fault.",
    action: "Reconnect and resume from the last cursor processed.",
  },
  STREAM_SILENT: {
    kind: "unavailable",
    when: "A stream sent no frame for three heartbeat intervals and was closed.",
    action: "Ping at the heartbeat interval; reconnect and resume from the last cursor.",
  },
  SERVER_STOPPING: {
    kind: "unavailable",
    when: "The server is shutting down.",
    action: "Reconnect (to any node) and resume from the last cursor.",
  },
  IDEMPOTENT_CALL_IN_PROGRESS: {
    kind: "unavailable",
    when: "A call with the same idempotency key is still running.",
    action: "Retry the same call (same key) a little later.",
  },
  UNAVAILABLE: {
    kind: "unavailable",
    when: "The transport reported the service unavailable.",
    action: "Retry with exponential backoff.",
  },

  // ---- Raised by the transport ----
  CANCELED: {
    kind: "canceled",
    when: "The client canceled the call.",
    action: "Nothing.",
  },
  DEADLINE_EXCEEDED: {
    kind: "deadline_exceeded",
    when: "The call's deadline passed.",
    action: "Retry with a longer deadline if the call is idempotent.",
  },
  UNIMPLEMENTED: {
    kind: "unimplemented",
    when: "No such RPC (or not over this protocol).",
    action: "Check the client's generated code against the server's version.",
  },
  INTERNAL: {
    kind: "internal",
    when: "A server bug. The message holds a request id to report; no internals are exposed.",
    action: "Report the request id; retry only if the call is idempotent.",
  },
} as const satisfies Record<string, ReasonInfo>;

export type Reason = keyof typeof REASONS;

/** The reasons whose code is `K`. */
export type ReasonOf<K extends ErrorKind> = { [R in Reason]: (typeof REASONS)[R]["kind"] extends K ? R : never }[Reason];

export function isReason(s: string): s is Reason {
  return Object.hasOwn(REASONS, s);
}
