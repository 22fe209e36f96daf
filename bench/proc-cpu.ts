// CPU time of processes on this machine, from /proc (Linux), for the benchmarks'
// "CPU per send" figures.

import { readFileSync, readdirSync } from "node:fs";

/** Fields after the command name in /proc/<pid>/stat (utime is [11], stime [12], cutime [13], cstime [14]). */
function statFields(pid: string | number): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU seconds (user + system) used so far by one process. */
export function processCpuSeconds(pid: number): number {
  const f = statFields(pid);
  if (!f) throw new Error(`no process ${pid}`);
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * CPU seconds of every Postgres process on this machine: the live ones' own
 * time plus what exited backends left in their parent's (the postmaster's)
 * children counters, so short-lived backends (pgbench's) count too.
 */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      continue;
    }
    if (comm !== "postgres") continue;
    const f = statFields(pid);
    if (f) total += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return total / 100;
}
