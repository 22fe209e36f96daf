import { afterAll, beforeAll, expect, it } from "vitest";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { registerUser, DEFAULT_TEST_PASSWORD } from "../support/users.ts";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";

forEachBackend("auth smoke", ["postgres", "pglite"] as const, (sql) => {
  let backends: ProvisionedBackends;
  let server: TestServer;
  beforeAll(async () => {
    backends = await provisionBackends({ sql });
    server = await startTestServer(backends.env);
  });
  afterAll(async () => {
    await server?.close();
    await backends?.cleanup();
  });
  it("registers, logs in and calls GetMe", async () => {
    const reg = await registerUser(server.baseUrl);
    const c = new GrpcJsClient(server.address);
    try {
      const me = await c.unary(AuthService.method.getMe, {}, { token: reg.accessToken });
      expect(me.user?.id).toBe(reg.user.id);
      const login = await c.unary(AuthService.method.login, { login: reg.user.username.toUpperCase(), password: DEFAULT_TEST_PASSWORD, deviceId: "d2" });
      expect(login.tokens?.sessionId).not.toBe(reg.sessionId);
      const me2 = await c.unary(AuthService.method.getMe, {}, { token: login.tokens!.accessToken });
      expect(me2.user?.email).toContain("@example.test");
    } finally {
      c.close();
    }
  });
});
