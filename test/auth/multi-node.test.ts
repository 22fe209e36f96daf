// Two server nodes sharing Postgres and Redis: a session ended on one node is
// refused on the other within 1 s (pushed over Redis; polled here with that
// bound, not timed); throttles and reuse detection are shared; revocations are
// announced to every node.

import { afterAll, beforeAll, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { AuthService } from "../../gen/chat/v1/auth_pb.js";
import { forEachBackend } from "../support/backends.ts";
import { provisionBackends, startTestServer, type ProvisionedBackends, type TestServer } from "../support/server.ts";
import { GrpcJsClient } from "../support/clients.ts";
import { DEFAULT_TEST_PASSWORD, registerUser } from "../support/users.ts";
import { SessionRevocations, type SessionRevokedMessage } from "../../src/auth/revocations.ts";
import { until } from "../support/poll.ts";
import { eventually, grpcFailure } from "./helpers.ts";

forEachBackend(
  "auth across two nodes",
  ["postgres"] as const,
  () => {
    let backends: ProvisionedBackends;
    let nodeA: TestServer;
    let nodeB: TestServer;
    let a: GrpcJsClient;
    let b: GrpcJsClient;

    beforeAll(async () => {
      backends = await provisionBackends({ sql: "postgres", redis: true });
      // Long login delays: the refusals below do not depend on how fast the machine is.
      nodeA = await startTestServer(backends.env, { NODE_ID: "node-a", LOGIN_BACKOFF_BASE_SEC: "60" });
      nodeB = await startTestServer(backends.env, { NODE_ID: "node-b", LOGIN_BACKOFF_BASE_SEC: "60" });
      a = new GrpcJsClient(nodeA.address);
      b = new GrpcJsClient(nodeB.address);
    });
    afterAll(async () => {
      a?.close();
      b?.close();
      await nodeA?.close();
      await nodeB?.close();
      await backends?.cleanup();
    });

    const login = (client: GrpcJsClient, username: string, deviceId: string, password = DEFAULT_TEST_PASSWORD) =>
      client.unary(AuthService.method.login, { login: username, password, deviceId });
    const getMe = (client: GrpcJsClient, token: string) => client.unary(AuthService.method.getMe, {}, { token });

    it("uses Redis for the ephemeral store on both nodes", () => {
      expect(nodeA.app.stores.ephemeral.kind).toBe("redis");
      expect(nodeB.app.stores.ephemeral.kind).toBe("redis");
    });

    /** Polls node `client` with `token` until it answers UNAUTHENTICATED; fails if that takes a second or more. */
    const refusedWithin1s = (client: GrpcJsClient, token: string, what: string) =>
      until(
        async () => {
          const err = await getMe(client, token).then(
            () => null,
            (e: { code: number }) => e,
          );
          if (err && err.code !== grpc.status.UNAUTHENTICATED) throw err;
          return err !== null;
        },
        1_000,
        what,
      );

    it("a session revoked on one node is refused on the other within 1 s", async () => {
      const messagesOnA: SessionRevokedMessage[] = [];
      const unsubscribe = await SessionRevocations.subscribe(nodeA.app.stores.ephemeral, (m) => messagesOnA.push(m));
      const reg = await registerUser(nodeA.baseUrl, { deviceId: "phone" });
      const laptop = await login(b, reg.user.username, "laptop");

      // Tokens work on either node; node A has just accepted the phone's token.
      expect((await getMe(a, reg.accessToken)).user!.id).toBe(reg.user.id);
      expect((await getMe(b, reg.accessToken)).user!.id).toBe(reg.user.id);
      expect((await getMe(a, laptop.tokens!.accessToken)).user!.id).toBe(reg.user.id);

      // Revoke the phone's session through node B; node B refuses it at once, node A within a second.
      await b.unary(AuthService.method.revokeSession, { sessionId: reg.sessionId }, { token: laptop.tokens!.accessToken });
      expect((await grpcFailure(getMe(b, reg.accessToken))).code).toBe(grpc.status.UNAUTHENTICATED);
      await refusedWithin1s(a, reg.accessToken, "the phone's token refused on node A");

      // Logout(all_sessions) on A ends the laptop's session as seen from B.
      const tablet = await login(a, reg.user.username, "tablet");
      expect((await getMe(b, laptop.tokens!.accessToken)).user!.id).toBe(reg.user.id);
      await a.unary(AuthService.method.logout, { allSessions: true }, { token: tablet.tokens!.accessToken });
      await refusedWithin1s(b, laptop.tokens!.accessToken, "the laptop's token refused on node B");
      await refusedWithin1s(b, tablet.tokens!.accessToken, "the tablet's token refused on node B");

      // Node A heard about the revocations done on node B (for closing streams).
      const heard = await eventually(() => messagesOnA.find((m) => m.sessionIds.includes(reg.sessionId) && m.reason === "revoked"));
      expect(heard.userId).toBe(reg.user.id);
      await unsubscribe();
    });

    it("detects refresh-token reuse across nodes", async () => {
      const reg = await registerUser(nodeA.baseUrl);
      const rotated = await a.unary(AuthService.method.refresh, { refreshToken: reg.refreshToken });
      expect((await grpcFailure(b.unary(AuthService.method.refresh, { refreshToken: reg.refreshToken }))).code).toBe(grpc.status.UNAUTHENTICATED);
      await refusedWithin1s(a, rotated.tokens!.accessToken, "the rotated token refused on node A after reuse on node B");
      expect((await grpcFailure(a.unary(AuthService.method.refresh, { refreshToken: rotated.tokens!.refreshToken }))).code).toBe(
        grpc.status.UNAUTHENTICATED,
      );
    });

    it("counts failed logins for one account across nodes", async () => {
      const reg = await registerUser(nodeA.baseUrl);
      for (let i = 0; i < 5; i++) {
        const node = i % 2 ? b : a;
        expect((await grpcFailure(login(node, reg.user.username, "d", "wrong password"))).code).toBe(grpc.status.UNAUTHENTICATED);
      }
      expect((await grpcFailure(login(b, reg.user.username, "d"))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect((await grpcFailure(login(a, reg.user.username, "d"))).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    });
  },
  { alsoNeeds: ["redis"] },
);
