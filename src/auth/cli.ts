// Operator command for the first admin (nobody can call SetUserRoles before one exists):
//   node src/auth/cli.ts grant-admin <username>
//   node src/auth/cli.ts revoke-admin <username>
// Uses the same DATABASE_URL / DATA_DIR as the server (stop an embedded-store
// server first: PGlite allows one process per data directory). The user's
// current access tokens keep their old roles until they expire or refresh.

import { loadConfig } from "../config.ts";
import { openSql } from "../stores/stores.ts";
import { loadMigrations, migrate } from "../stores/sql/migrate.ts";
import { MIGRATIONS_DIR } from "../stores/stores.ts";
import { AuditLog } from "../audit/audit-log.ts";

async function main(argv: string[]): Promise<number> {
  const [command, username] = argv;
  if ((command !== "grant-admin" && command !== "revoke-admin") || !username) {
    process.stderr.write("usage: node src/auth/cli.ts grant-admin|revoke-admin <username>\n");
    return 2;
  }
  const sql = await openSql(loadConfig());
  try {
    await migrate(sql, await loadMigrations(MIGRATIONS_DIR));
    const roles = command === "grant-admin" ? ["user", "admin"] : ["user"];
    const { rows } = await sql.query<{ id: string }>("UPDATE users SET roles = $2::text[], updated_at = now() WHERE username = $1 RETURNING id", [
      username.trim().toLowerCase(),
      roles,
    ]);
    if (!rows[0]) {
      process.stderr.write(`no user named ${username}\n`);
      return 1;
    }
    await new AuditLog(sql).record({
      actorId: null,
      action: "auth.user.roles_changed",
      entityType: "user",
      entityId: rows[0].id,
      metadata: { to: roles, via: "cli" },
    });
    process.stdout.write(`${username}: roles ${roles.join(", ")}\n`);
    return 0;
  } finally {
    await sql.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  },
);
