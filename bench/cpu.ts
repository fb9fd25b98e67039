import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSeconds {
  node: number;
  postgres: number;
  temporal: number;
}

/**
 * CPU seconds used so far by this process and its descendants (the embedded PostgreSQL and the
 * Temporal dev server), from /proc: a measure of cost that other load on the machine barely moves.
 */
export function cpuByComponent(): CpuSeconds {
  const tick = 100; // USER_HZ
  const procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const info = new Map<number, { ppid: number; cpu: number; name: string }>();
  for (const d of procs) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, plus cutime + cstime: the CPU of children it has reaped (Postgres backends
      // that exited, counted by the postmaster), which would otherwise vanish between two readings.
      const own = Number(f[11]) + Number(f[12]);
      const reaped = Number(d) === process.pid ? 0 : Number(f[13]) + Number(f[14]);
      info.set(Number(d), { ppid: Number(f[1]), cpu: (own + reaped) / tick, name });
    } catch {
      // gone meanwhile
    }
  }
  const totals = { node: info.get(process.pid)?.cpu ?? 0, postgres: 0, temporal: 0 };
  for (const [pid, p] of info) {
    if (pid === process.pid) continue;
    let up = p.ppid;
    let depth = 0;
    while (up > 1 && up !== process.pid && depth++ < 20) up = info.get(up)?.ppid ?? 0;
    if (up !== process.pid) continue;
    if (p.name.startsWith('postgres')) totals.postgres += p.cpu;
    else if (p.name.startsWith('temporal')) totals.temporal += p.cpu;
  }
  return totals;
}

/** CPU milliseconds per item between two readings, per component and in all. */
export function cpuPerItem(a: CpuSeconds, b: CpuSeconds, items: number) {
  const per = (k: keyof CpuSeconds) => ((b[k] - a[k]) * 1000) / items;
  const r = { node: per('node'), postgres: per('postgres'), temporal: per('temporal') };
  return { ...r, total: r.node + r.postgres + r.temporal };
}

/** "12.3 ms (Node 6.1, Postgres 2.0, Temporal 4.2) → at most 160/s on 2 idle cores" */
export function fmtCpu(c: ReturnType<typeof cpuPerItem>, cores = 2): string {
  return (
    `${c.total.toFixed(1)} CPU-ms (Node ${c.node.toFixed(1)}, Postgres ${c.postgres.toFixed(1)}, Temporal ${c.temporal.toFixed(1)})` +
    ` → at most ${Math.round((cores * 1000) / c.total)}/s on ${cores} idle cores`
  );
}
