// The SDK's device tokens (docs/AUTH.md "Login throttling", docs/CLIENTS.md)
// against the real server: ChatClient keeps the token Register/Login return,
// per account, in its DeviceTokenStorage, and sends it with the next Login of
// that account, so a stranger's failed logins do not hold that device back.
// A client without one (another device) is held back with LOGIN_THROTTLED.

import { afterAll, beforeAll, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { ChatClient, nodeTransport, type DeviceTokenStorage, type NodeProtocol } from "../../client/src/node.ts";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { connectClient } from "../support/clients.ts";
import { connectErrorInfo, failure } from "../support/errors.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { DEFAULT_TEST_PASSWORD } from "../support/users.ts";

/** What an app persists between runs (a file, the keychain...): here a variable. */
function memoryStorage(): DeviceTokenStorage & { saved: Record<string, string> | null } {
  return {
    saved: null,
    load() {
      return this.saved;
    },
    save(tokens) {
      this.saved = tokens;
    },
  };
}

forEachBackend("SDK device tokens", ["embedded"] as const, () => {
  let backends: ProvisionedBackends;
  let server: TestServer;

  beforeAll(async () => {
    backends = await provisionBackends({ sql: "pglite" });
    server = await startTestServer(backends.env, { LOGIN_BACKOFF_BASE_SEC: "600" });
  });
  afterAll(async () => {
    await server?.close();
    await backends?.cleanup();
  });

  it.each(["grpc", "connect", "grpc-web"] as NodeProtocol[])(
    "over %s: the device that registered signs in again past a stranger's failures; another device waits",
    async (protocol) => {
      const storage = memoryStorage();
      const make = (s?: DeviceTokenStorage) =>
        new ChatClient({ transport: nodeTransport({ baseUrl: server.baseUrl, protocol }), deviceId: `dev-${protocol}`, deviceTokenStorage: s });
      const username = `sdk_${randomBytes(5).toString("hex")}`;
      const first = make(storage);
      const user = await first.register({ email: `${username}@Example.test`, username, password: DEFAULT_TEST_PASSWORD, displayName: "" });
      await first.logout();
      // Kept under the username and the email (case-insensitive).
      expect(Object.keys(storage.saved ?? {}).sort()).toEqual([`${username}@example.test`, username].sort());

      const stranger = connectClient(AuthService, "connect", server.baseUrl);
      for (let i = 0; i < 6; i++) await failure(stranger.login({ login: username, password: `guess ${i}` }));

      // Another device (no token) is held back, and told for how long.
      const err = ConnectError.from(await failure(make().login({ login: username, password: DEFAULT_TEST_PASSWORD })));
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(connectErrorInfo(err)?.reason).toBe("LOGIN_THROTTLED");

      // The app restarted: a new client over the same storage signs in, by username or by email.
      const again = make(storage);
      expect((await again.login({ login: username, password: DEFAULT_TEST_PASSWORD })).id).toBe(user.id);
      await again.logout();
      const before = storage.saved![username];
      expect((await make(storage).login({ login: `${username.toUpperCase()}@EXAMPLE.TEST`, password: DEFAULT_TEST_PASSWORD })).id).toBe(user.id);
      // Each login renews the token.
      expect(storage.saved![username]).not.toBe(before);
    },
  );
});
