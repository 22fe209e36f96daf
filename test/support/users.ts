// Registering real users through the real server: for the tests of Register
// itself and of what follows it. Other tests seed users (./seed.ts), much faster.

import { randomBytes } from "node:crypto";
import { AuthService, type User } from "../../gen/chat/v1/auth_pb.js";
import { connectClient } from "./clients.ts";
import { DEFAULT_TEST_PASSWORD } from "./seed.ts";

export { DEFAULT_TEST_PASSWORD };

/**
 * Registers a user over Connect (random unique username and email unless
 * given) and returns the profile and the first session's tokens.
 */
export async function registerUser(
  baseUrl: string,
  opts?: { username?: string; password?: string; deviceId?: string },
): Promise<{ user: User; accessToken: string; refreshToken: string; sessionId: string }> {
  const username = opts?.username ?? `u_${randomBytes(6).toString("hex")}`;
  const client = connectClient(AuthService, "connect", baseUrl);
  const res = await client.register({
    email: `${username}.${randomBytes(3).toString("hex")}@example.test`,
    username,
    password: opts?.password ?? DEFAULT_TEST_PASSWORD,
    displayName: "",
    deviceId: opts?.deviceId ?? "",
    deviceName: "test",
  });
  if (!res.user || !res.tokens) throw new Error("Register returned no user or tokens");
  return { user: res.user, accessToken: res.tokens.accessToken, refreshToken: res.tokens.refreshToken, sessionId: res.tokens.sessionId };
}
