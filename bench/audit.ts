/**
 * `npm run bench:audit [-- --entries 1000000 --ranges 300]`: audit log benchmarks, each beside its
 * raw baseline measured in the same run.
 *
 * 1. Chain verification (`verifyAuditChain`: stream from Postgres, canonical encoding, SHA-256,
 *    link check) in entries/s, beside the raw SHA-256 rate over the same entries' encodings and
 *    the raw scan rate (the same keyset SQL, no hashing).
 * 2. Fetching and verifying 1,000 entries through the API (`GET /v1/audit/verify?fromSeq&toSeq`,
 *    and `GET /v1/audit?limit=1000` verified by the client): p50 / p99, beside the raw SQL of the page.
 * 3. Export of every entry as NDJSON and CSV through the API, with the process's peak heap and RSS
 *    sampled during the export, beside a 10% export: equal peaks mean constant memory.
 *
 * Runs its own embedded PostgreSQL in a temporary folder unless BENCH_DATABASE_URL names a scratch
 * database (it is migrated and filled). Temporal is not needed: the audit routes never call it.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Client, Connection } from '@temporalio/client';
import { sql } from 'drizzle-orm';
import { createApp } from '../api/app';
import { createAuthenticator, mintDevToken } from '../api/middleware/auth';
import { encodeAuditEntry, encodeScannedRow, GENESIS_HASH, scanAudit, verifyAuditChain, writeAuditCheckpoint } from '../db/audit';
import { createDatabase } from '../db';
import { migrateDatabase } from '../db/migrate';
import { loadConfig } from '../infra/config';
import { freePort, startEmbeddedPostgres } from '../infra/dev-services';
import { createLogger } from '../infra/logger';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    ranges: { type: 'string', default: '300' },
  },
});
const N = Number(values.entries);
// A real collector between measurements, so heap peaks compare like with like.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const RANGES = Number(values.ranges);
const out = (line: string) => process.stdout.write(line + '\n');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

// ---------------------------------------------------------------------------------------------
// Database

let stopPg: (() => Promise<void>) | undefined;
let url = process.env.BENCH_DATABASE_URL;
const dir = mkdtempSync(path.join(os.tmpdir(), 'warden-bench-audit-'));
if (!url) {
  chmodSync(dir, 0o755);
  const pg = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort(), database: 'bench' });
  stopPg = pg.stop;
  url = pg.url;
}
const database = createDatabase(url, 6);
const { db } = database;
await migrateDatabase(db);
out(
  `# Warden audit benchmark — ${os.cpus().length} CPUs, Node ${process.version}, ${N.toLocaleString('en-US')} entries, ` +
    `load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
);

// ---------------------------------------------------------------------------------------------
// Fill: a valid chain, computed here and inserted in batches (the chain lock is not needed: this
// process is the only writer of a fresh database).

const ACTIONS = ['case.read', 'case.note.add', 'step.decide', 'identity.read', 'alert.confirm', 'settings.update'];
const CATEGORIES = ['cases', 'cases', 'approvals', 'identity', 'alerts', 'settings'];
const base = Date.UTC(2026, 0, 1);
const existing = (await db.execute<{ n: string }>(sql`select count(*)::text as n from audit_log`)).rows[0]!.n;
if (Number(existing) === 0) {
  const t0 = performance.now();
  let prevHash = GENESIS_HASH;
  const BATCH = 5000;
  for (let start = 1; start <= N; start += BATCH) {
    const cols: unknown[][] = Array.from({ length: 15 }, () => []);
    for (let seq = start; seq < Math.min(start + BATCH, N + 1); seq++) {
      const k = seq % ACTIONS.length;
      const caseId = `c0ffee00-0000-4000-8000-${String(seq % 5000).padStart(12, '0')}`;
      const row = {
        seq,
        at: new Date(base + seq),
        actor: `user-${seq % 97}`,
        actorRoles: [k === 2 ? 'approver' : 'investigator'],
        action: ACTIONS[k]!,
        category: CATEGORIES[k]!,
        targetType: 'case',
        targetId: caseId,
        region: seq % 3 === 0 ? 'us' : 'eu',
        outcome: (seq % 50 === 0 ? 'denied' : 'allowed') as 'allowed' | 'denied',
        reason: seq % 50 === 0 ? 'outside region' : null,
        requestId: `req-${seq}`,
        details: k === 2 ? { caseId, decision: 'approve' } : null,
        prevHash,
      };
      const hash = createHash('sha256').update(encodeAuditEntry(row)).digest('hex');
      [
        row.seq,
        row.at.toISOString(),
        row.actor,
        `{${row.actorRoles.join(',')}}`,
        row.action,
        row.category,
        row.targetType,
        row.targetId,
        row.region,
        row.outcome,
        row.reason,
        row.requestId,
        row.details ? JSON.stringify(row.details) : null,
        prevHash,
        hash,
      ].forEach((v, i) => cols[i]!.push(v));
      prevHash = hash;
    }
    await database.pool.query(
      `insert into audit_log (seq, at, actor, actor_roles, action, category, target_type, target_id, region, outcome, reason, request_id, details, prev_hash, hash)
       select s, a, ac, r::text[], act, cat, tt, ti, reg, o::audit_outcome, rs, rq, d::jsonb, p, h
       from unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
         as x(s, a, ac, r, act, cat, tt, ti, reg, o, rs, rq, d, p, h)`,
      cols,
    );
  }
  await db.execute(sql`select setval('audit_log_seq_seq', (select max(seq) from audit_log))`);
  await db.execute(sql`vacuum analyze audit_log`);
  out(`fill: ${fmt(N)} entries written in ${((performance.now() - t0) / 1000).toFixed(1)} s (setup, not a measurement)`);
}
const config = loadConfig({ WARDEN_ENV: 'test', DATABASE_URL: url, LOG_LEVEL: 'silent' });
await writeAuditCheckpoint(db, config.audit.signingKey, { actor: 'bench', actorRoles: ['auditor'], requestId: null });
const total = Number((await db.execute<{ n: string }>(sql`select count(*)::text as n from audit_log`)).rows[0]!.n);

// ---------------------------------------------------------------------------------------------
// 1. Verification beside raw hashing

out(`\n## 1. Chain verification (load average ${os.loadavg()[0]!.toFixed(1)})`);
{
  // Raw scan: the same keyset batches, rows decoded, no hashing.
  let t = performance.now();
  let scanned = 0;
  for await (const rows of scanAudit(db)) scanned += rows.length;
  const scanRate = scanned / ((performance.now() - t) / 1000);

  // Raw hashing: SHA-256 over the same entries' canonical encodings, already in memory.
  const sample: string[] = [];
  for await (const rows of scanAudit(db, { toSeq: 200_000 })) for (const r of rows) sample.push(encodeScannedRow(r));
  t = performance.now();
  for (const s of sample) createHash('sha256').update(s).digest('hex');
  const hashRate = sample.length / ((performance.now() - t) / 1000);
  // Encoding + hashing in memory (what verification adds to the scan).
  const rowsSample: Parameters<typeof encodeScannedRow>[0][] = [];
  for await (const rows of scanAudit(db, { toSeq: 200_000 })) rowsSample.push(...rows);
  t = performance.now();
  for (const r of rowsSample) createHash('sha256').update(encodeScannedRow(r)).digest('hex');
  const encHashRate = rowsSample.length / ((performance.now() - t) / 1000);

  const runs: number[] = [];
  let last;
  for (let i = 0; i < 3; i++) {
    t = performance.now();
    last = await verifyAuditChain(db, { verifier: config.audit.signingKey });
    runs.push(last.checked / ((performance.now() - t) / 1000));
  }
  if (!last!.ok) throw new Error(`the bench chain does not verify: ${JSON.stringify(last!.firstBroken)}`);
  out(
    `verifyAuditChain (Postgres → encode → SHA-256 → link + checkpoint)  ${fmt(Math.max(...runs))} entries/s  (best of 3; runs ${runs.map(fmt).join(', ')}; ${fmt(last!.checked)} entries)`,
  );
  out(`  baseline: raw SHA-256 of the same encodings, in memory          ${fmt(hashRate)} entries/s`);
  out(`  baseline: canonical encoding + SHA-256, in memory                ${fmt(encHashRate)} entries/s`);
  out(`  baseline: raw keyset scan of the same rows, no hashing            ${fmt(scanRate)} entries/s`);
  out(`  floor: ≥ 100,000 entries/s → ${Math.max(...runs) >= 100_000 ? 'met' : 'NOT met'}`);
}

// ---------------------------------------------------------------------------------------------
// 2 and 3 go through the HTTP API.

const logger = createLogger({ level: 'silent' });
// The audit routes never call Temporal; a lazy connection satisfies the app's dependencies.
const temporal = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
const { app } = createApp({ config, db, temporal, taskQueue: 'bench', logger, authenticator: await createAuthenticator(config) });
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const token = await mintDevToken(config.auth.devSecret, {
  sub: 'bench-auditor',
  roles: ['auditor'],
  regions: ['*'],
  languages: [],
});
const headers = { Authorization: `Bearer ${token}` };

out(`\n## 2. Fetch and verify 1,000 entries (load average ${os.loadavg()[0]!.toFixed(1)})`);
{
  const maxSeq = total - 1000;
  const starts = Array.from({ length: RANGES }, (_, i) => 1 + Math.floor(((i * 7919) % RANGES) * (maxSeq / RANGES)));
  // Warm-up.
  for (const s of starts.slice(0, 10))
    await (await fetch(`${api}/v1/audit/verify?fromSeq=${s}&toSeq=${s + 999}`, { headers })).json();

  const server1: number[] = [];
  for (const s of starts) {
    const t = performance.now();
    const body = (await (await fetch(`${api}/v1/audit/verify?fromSeq=${s}&toSeq=${s + 999}`, { headers })).json()) as {
      ok: boolean;
      checked: number;
    };
    server1.push(performance.now() - t);
    if (!body.ok || body.checked !== 1000) throw new Error('range did not verify');
  }
  const client1: number[] = [];
  for (const s of starts) {
    const t = performance.now();
    const cursor = Buffer.from(JSON.stringify([s - 1])).toString('base64url');
    const page = (await (await fetch(`${api}/v1/audit?order=asc&limit=1000&cursor=${cursor}`, { headers })).json()) as {
      items: Array<Parameters<typeof encodeScannedRow>[0] & { hash: string }>;
    };
    for (let i = 0; i < page.items.length; i++) {
      const e = page.items[i]!;
      if (createHash('sha256').update(encodeScannedRow(e)).digest('hex') !== e.hash) throw new Error('hash');
      if (i > 0 && e.prevHash !== page.items[i - 1]!.hash) throw new Error('link');
    }
    client1.push(performance.now() - t);
    if (page.items.length !== 1000) throw new Error('short page');
  }
  const raw: number[] = [];
  for (const s of starts) {
    const t = performance.now();
    await database.pool.query('select * from audit_log where seq >= $1 and seq < $2 order by seq', [s, s + 1000]);
    raw.push(performance.now() - t);
  }
  out(
    `GET /v1/audit/verify?fromSeq&toSeq (1,000 entries, server verifies)   p50 ${pct(server1, 50).toFixed(1)} ms  p99 ${pct(server1, 99).toFixed(1)} ms  (${RANGES} ranges)`,
  );
  out(
    `GET /v1/audit?limit=1000 + client verifies hashes and links            p50 ${pct(client1, 50).toFixed(1)} ms  p99 ${pct(client1, 99).toFixed(1)} ms`,
  );
  out(
    `  baseline: raw SQL select of the same 1,000 rows                     p50 ${pct(raw, 50).toFixed(1)} ms  p99 ${pct(raw, 99).toFixed(1)} ms`,
  );
  out(`  floor: p99 ≤ 100 ms → ${Math.max(pct(server1, 99), pct(client1, 99)) <= 100 ? 'met' : 'NOT met'}`);
}

out(`\n## 3. Streaming export (load average ${os.loadavg()[0]!.toFixed(1)})`);
/**
 * Export through HTTP, consuming the stream as a client would. Memory: the peak RSS, and the live
 * heap — heap used right after a full collection, sampled during the export — whose maximum is
 * what the export holds; garbage awaiting collection is not held.
 */
async function exportRun(query: string) {
  gc();
  const base = process.memoryUsage();
  let peakRss = base.rss;
  let peakLive = base.heapUsed;
  const sampler = setInterval(() => {
    gc();
    const m = process.memoryUsage();
    peakLive = Math.max(peakLive, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
  }, 1000);
  const t = performance.now();
  const res = await fetch(`${api}/v1/audit/export?${query}`, { headers });
  let bytes = 0;
  let lines = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
  }
  clearInterval(sampler);
  return { lines, bytes, ms: performance.now() - t, peakLive, peakRss, baseHeap: base.heapUsed, baseRss: base.rss };
}
{
  const tenth = new Date(base + Math.floor(N / 10) + 1).toISOString();
  for (const [label, query] of [
    ['NDJSON, 10%', `format=ndjson&to=${tenth}`],
    ['NDJSON, all', 'format=ndjson'],
    ['CSV, all', 'format=csv'],
  ] as const) {
    const r = await exportRun(query);
    out(
      `${label.padEnd(12)} ${fmt(r.lines).padStart(10)} lines  ${mb(r.bytes).padStart(9)}  ${(r.ms / 1000).toFixed(1)} s  ${fmt(r.lines / (r.ms / 1000))} lines/s  ` +
        `live heap max ${mb(r.peakLive)} (+${mb(r.peakLive - r.baseHeap)})  peak RSS ${mb(r.peakRss)} (+${mb(r.peakRss - r.baseRss)})`,
    );
  }
  const t = performance.now();
  let n = 0;
  for await (const rows of scanAudit(db, { batchSize: 2000 })) n += rows.length;
  out(
    `  baseline: raw keyset scan of the same rows, no formatting or HTTP   ${fmt(n / ((performance.now() - t) / 1000))} rows/s`,
  );
}

server.close();
server.closeAllConnections();
await database.close();
await stopPg?.();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
