// `buf breaking` against a git ref, minus the breaks the project accepted on
// purpose (.ci/accepted-breaks.txt). Each accepted break is one exact line
// "<path> <RULE> <buf's message>" (no line numbers, so edits elsewhere in the
// file do not unaccept it), written once by the change that makes the break
// and named in its commit message; anything else buf reports still fails.
//
// Usage: sh scripts/node.sh node scripts/buf-breaking.ts '<buf input to compare against>'
//   e.g. '.git#branch=main' (on a branch) or '.git#ref=<sha>' (on main).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const against = process.argv[2];
if (!against) {
  console.error("usage: node scripts/buf-breaking.ts '<against input>'");
  process.exit(2);
}
const accepted = new Set(
  readFileSync(new URL("../.ci/accepted-breaks.txt", import.meta.url), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#")),
);

const res = spawnSync("npx", ["buf", "breaking", "--against", against, "--error-format=json"], { encoding: "utf8" });
process.stderr.write(res.stderr ?? "");
if (res.status === 0) process.exit(0);
if (res.status !== 100) {
  // Not "breaking changes found": buf itself failed (bad input, compile error).
  process.stdout.write(res.stdout ?? "");
  process.exit(res.status ?? 1);
}

interface Finding {
  path: string;
  start_line: number;
  type: string;
  message: string;
}
let failed = false;
for (const line of (res.stdout ?? "").split("\n")) {
  if (line.trim() === "") continue;
  let f: Finding;
  try {
    f = JSON.parse(line) as Finding;
  } catch {
    console.log(line);
    failed = true;
    continue;
  }
  const key = `${f.path} ${f.type} ${f.message}`;
  if (accepted.has(key)) console.log(`accepted (.ci/accepted-breaks.txt): ${f.path}:${f.start_line}: ${f.message}`);
  else {
    console.log(`${f.path}:${f.start_line}: ${f.message} (${f.type})`);
    failed = true;
  }
}
process.exit(failed ? 100 : 0);
