import { existsSync } from "node:fs";
import { execFile } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";

/** Finds a Go tool (grpcurl, ghz) on PATH, in GOBIN or ~/go/bin. */
export function findTool(name: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(":"), process.env.GOBIN ?? "", join(homedir(), "go/bin")];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return null;
}

export function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
