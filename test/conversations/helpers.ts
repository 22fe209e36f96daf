// Helpers for the conversation tests. The shared fixtures live in
// test/support/seed.ts; these names stay for the tests that import them here.

export { openMigratedSql, insertUsers } from "../support/seed.ts";
export { failure, grpcViolations, connectViolations } from "../support/errors.ts";
