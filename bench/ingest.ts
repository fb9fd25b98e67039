/**
 * `npm run bench:ingest [-- --seconds 20 --concurrency 4 --subjects 2000]`: signal ingest including
 * scoring, beside a raw multi-row INSERT of the same rows into the same table, in the same run, on
 * a throwaway Temporal dev server and embedded PostgreSQL (scripts/standalone.ts) over loopback HTTP.
 *
 * - Ingest: closed loop, `concurrency` connectors each posting 1,000-event batches to
 *   POST /v1/signals and waiting for the batch's scoring workflow to complete. Throughput counts
 *   events until the last batch is scored; batch latency is POST → scoring workflow completed.
 * - Alert visible: about three times a second one batch carries the event that takes a prepared
 *   subject over a policy's threshold; latency is POST → the alert listed by GET /v1/alerts.
 * - Baseline: the same rows (fresh idempotency keys) inserted by a plain multi-row INSERT … VALUES
 *   into `signals`, 1,000 rows per statement, same concurrency — no validation, no scoring.
 *
 * The population: `subjects` people; 10 % resigned and 5 % had a High DLP alert before the run
 * (triggered for the two active policies), the rest only produce activity. Events are mostly
 * activity (downloads, USB, cloud uploads, prints, external email) plus low/medium DLP alerts.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sql } from 'drizzle-orm';
import { scoreSubjects } from '../activities/scoring';
import { subjectCache } from '../db/queries/scoring-cache';
import { createLogger } from '../infra/logger';
import { apiClient, startStandalone } from '../scripts/standalone';
import type { batchShapeWorkflow } from './case-workflows';
import { cpuByComponent } from './cpu';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '4' },
    subjects: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '1000' },
    /** Print the statements that used the most Postgres time during the ingest phase. */
    'pg-stats': { type: 'boolean', default: false },
    /** The API's client on a grpc-js connection of its own, no eager starts (the wiring before), for A/B runs. */
    'grpc-client': { type: 'boolean', default: false },
  },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const SUBJECTS = Number(values.subjects);
const BATCH = Number(values.batch);
const PG_STATS = values['pg-stats'];
const PROBE_EVERY_MS = 330;

const out = (line = '') => process.stdout.write(line + '\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;

const BASE = Date.parse('2026-11-02T09:00:00Z');
const DAY = 86_400_000;
const ACTIVITY = [
  ['file_downloaded', 40],
  ['email_to_external_domain', 25],
  ['file_copied_to_usb', 10],
  ['file_uploaded_to_personal_cloud', 10],
  ['file_printed', 10],
] as const;

let rnd = 42;
/** Deterministic pseudo-random numbers, so two runs send the same traffic. */
const random = () => {
  rnd = (rnd * 1103515245 + 12345) % 2147483648;
  return rnd / 2147483648;
};
const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;

function activityType(): string {
  let r = random() * 95;
  for (const [t, w] of ACTIVITY) if ((r -= w) < 0) return t;
  return 'file_downloaded';
}

let seq = 0;
function backgroundEvent(subject: string) {
  const occurredAt = new Date(BASE + Math.floor(random() * 20 * DAY)).toISOString();
  const externalId = `bench-${(seq++).toString(36)}`;
  if (random() < 0.05) {
    return {
      source: 'dlp',
      externalId,
      subject,
      type: 'dlp_alert',
      occurredAt,
      severity: random() < 0.5 ? 'low' : 'medium',
      attributes: { files: 1 },
    };
  }
  const type = activityType();
  return {
    source: 'activity',
    externalId,
    subject,
    type,
    occurredAt,
    attributes: { count: 1 + Math.floor(random() * 3), bytes: Math.floor(random() * 5e6) },
  };
}

async function main() {
  out(`# bench:ingest — ${SECONDS} s, ${CONCURRENCY} concurrent connectors, ${BATCH}-event batches, ${SUBJECTS} subjects`);
  // Payloads made before anything starts (the load generator's own work stays out of the figures,
  // and no keep-alive socket idles while they are made). Each event is used once unless the run
  // outpaces 30,000 events/s.
  const ids = Array.from({ length: SUBJECTS }, (_, i) => `B${String(i).padStart(6, '0')}`);
  const payloads = Array.from({ length: Math.ceil((SECONDS * 30_000) / BATCH) }, () =>
    Array.from({ length: BATCH }, () => JSON.stringify(backgroundEvent(pick(ids)))),
  );
  const sys = await startStandalone({
    workflowsPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'case-workflows.ts'),
    poolSize: 30,
    env: { DATABASE_POOL_SIZE: '30' },
    log: (m) => out(`# ${m}`),
    shareConnection: !values['grpc-client'],
    postgresFlags: PG_STATS ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'] : [],
  });
  out(
    values['grpc-client']
      ? '# API client: a grpc-js connection of its own, no eager starts'
      : "# API client: the worker's native connection, eager workflow starts (as npm start)",
  );
  try {
    const call = apiClient(sys.url);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const admin = await sys.auth({ sub: 'bench-admin', roles: ['admin'] });
    const connector = await sys.auth({ sub: 'bench-connector', roles: ['connector'] });
    const analyst = await sys.auth({ sub: 'bench-analyst', roles: ['analyst'] });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a bench reads whatever JSON came back
    const ok = (r: { status: number; body: any }, codes: number[]) => {
      if (!codes.includes(r.status)) throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.body)}`);
      return r;
    };
    const scored = (workflowId: string) => sys.client.workflow.getHandle(workflowId).result();

    // --- Population, through the API ---------------------------------------------------------
    const probes = Array.from(
      { length: Math.ceil((SECONDS * 1000) / PROBE_EVERY_MS) + 20 },
      (_, i) => `P${String(i).padStart(6, '0')}`,
    );
    const people = [...ids, ...probes];
    for (let i = 0; i < people.length; i += 5000) {
      ok(
        await call('POST', '/v1/subjects/import', connector, {
          subjects: people.slice(i, i + 5000).map((externalId, j) => ({
            externalId,
            displayName: `Bench Person ${externalId}`,
            email: `${externalId.toLowerCase()}@bench.example`,
            department: 'Sales',
            groups: ['bench'],
            region: (i + j) % 3 === 0 ? 'us' : 'eu',
          })),
        }),
        [200],
      );
    }
    const resigned = ids.filter((_, i) => i % 10 === 0);
    const leaked = ids.filter((_, i) => i % 20 === 5);
    const triggers = [
      ...resigned.map((subject) => ({
        source: 'hr',
        externalId: `r-${subject}`,
        subject,
        type: 'resignation',
        occurredAt: new Date(BASE).toISOString(),
        attributes: { lastWorkingDate: '2026-11-30' },
      })),
      ...leaked.map((subject) => ({
        source: 'dlp',
        externalId: `h-${subject}`,
        subject,
        type: 'dlp_alert',
        severity: 'high',
        occurredAt: new Date(BASE).toISOString(),
        attributes: {},
      })),
      ...probes.map((subject) => ({
        source: 'hr',
        externalId: `r-${subject}`,
        subject,
        type: 'resignation',
        occurredAt: new Date(BASE).toISOString(),
        attributes: { lastWorkingDate: '2026-11-30' },
      })),
    ];
    for (let i = 0; i < triggers.length; i += 5000) {
      const r = ok(await call('POST', '/v1/signals', connector, { events: triggers.slice(i, i + 5000) }), [202]);
      await scored(r.body.scoringWorkflowId);
    }
    const thresholds = { minRiskScore: 40, severity: { medium: 60, high: 80 } };
    for (const template of ['data_theft_departing_users', 'data_leaks']) {
      const p = ok(
        await call('POST', '/v1/policies', admin, {
          name: `Bench ${template}`,
          template,
          thresholds,
          activationWindowDays: 30,
          dailyAlertCap: 100000,
        }),
        [201],
      );
      const a = ok(await call('POST', `/v1/policies/${p.body.id}/activate`, admin), [200]);
      if (a.body.backfillWorkflowId) await sys.client.workflow.getHandle(a.body.backfillWorkflowId).result();
    }
    out(
      `# population: ${people.length} subjects (${resigned.length + probes.length} resigned, ${leaked.length} with a High DLP alert)`,
    );

    // Probe subjects: ids resolved once (the alert list filters by opaque subject id).
    const probeIds = new Map<string, string>();
    {
      const { externalKey } = await import('../infra/identity');
      const rows = await sys.database.db.execute<{ id: string; external_key: string }>(
        sql`select id, external_key from subjects`,
      );
      const byKey = new Map(rows.rows.map((r) => [r.external_key, r.id]));
      for (const p of probes) probeIds.set(p, byKey.get(externalKey(sys.config.keys.pseudonym, p))!);
    }

    // --- Ingest including scoring ------------------------------------------------------------
    const batchLatencies: number[] = [];
    const postLatencies: number[] = [];
    const alertLatencies: number[] = [];
    const probeWaits: Promise<void>[] = [];
    let accepted = 0;
    let nextProbe = 0;
    let lastProbeAt = 0;
    let alertsMissed = 0;
    let nextPayload = 0;
    const postRaw = (path: string, authorization: string, body: string) =>
      new Promise<{ status: number; body: { scoringWorkflowId: string; accepted: number } }>((resolve, reject) => {
        const u = new URL(sys.url);
        const req = http.request(
          {
            agent,
            host: u.hostname,
            port: u.port,
            method: 'POST',
            path,
            headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    if (PG_STATS) {
      await sys.database.pool.query('create extension if not exists pg_stat_statements');
      await sys.database.pool.query('select pg_stat_statements_reset()');
    }
    const deadline = performance.now() + SECONDS * 1000;
    const cpu0 = cpuByComponent();
    const t0 = performance.now();
    const mark0 = process.hrtime.bigint() / 1000n;

    const watchAlert = async (subjectId: string, since: number) => {
      for (;;) {
        const r = await call<{ items: unknown[] }>('GET', `/v1/alerts?subjectId=${subjectId}&limit=1`, analyst);
        if (r.status === 200 && r.body.items.length > 0) {
          alertLatencies.push(performance.now() - since);
          return;
        }
        if (performance.now() - since > 10_000) {
          alertsMissed++;
          return;
        }
        await sleep(25);
      }
    };

    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline) {
          const parts = payloads[nextPayload++ % payloads.length]!.slice();
          let probeSubject: string | null = null;
          if (performance.now() - lastProbeAt >= PROBE_EVERY_MS && nextProbe < probes.length) {
            lastProbeAt = performance.now();
            const p = probes[nextProbe++]!;
            probeSubject = probeIds.get(p)!;
            // 14 USB copies × 3 points = 42 ≥ 40: this one event crosses the threshold.
            parts[Math.floor(random() * BATCH)] = JSON.stringify({
              source: 'activity',
              externalId: `probe-${p}`,
              subject: p,
              type: 'file_copied_to_usb',
              occurredAt: new Date(BASE + DAY).toISOString(),
              attributes: { count: 14 },
            });
          }
          const start = performance.now();
          if (probeSubject) probeWaits.push(watchAlert(probeSubject, start));
          const r = ok(await postRaw('/v1/signals', connector, `{"events":[${parts.join(',')}]}`), [202]);
          postLatencies.push(performance.now() - start);
          await scored(r.body.scoringWorkflowId);
          batchLatencies.push(performance.now() - start);
          accepted += r.body.accepted;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const cpu1 = cpuByComponent();
    // The ingest phase on the monotonic clock (µs), the one V8's --cpu-prof timestamps use.
    out(`# ingest phase, monotonic µs: ${mark0}–${process.hrtime.bigint() / 1000n}`);
    await Promise.all(probeWaits);
    const ingestRate = accepted / elapsed;
    const pgStats = PG_STATS
      ? (
          await sys.database.pool.query<{ calls: string; ms: string; rows: string; query: string }>(
            `select calls, round(total_exec_time)::text as ms, rows, regexp_replace(left(query, 160), '\\s+', ' ', 'g') as query
             from pg_stat_statements order by total_exec_time desc limit 15`,
          )
        ).rows
      : [];

    // --- Check: a cold re-scoring (no per-process cache) of every subject changes nothing ---------
    const everyone = (await sys.database.db.execute<{ id: string }>(sql`select id from subjects order by id`)).rows.map(
      (r) => r.id,
    );
    subjectCache(sys.database.db).clear();
    const cold = await scoreSubjects({ db: sys.database.db, logger: createLogger({ level: 'warn' }) }, { subjectIds: everyone });

    // --- Raw baseline: the same rows, multi-row INSERT, same concurrency -----------------------
    const subjectRows = await sys.database.db.execute<{ id: string }>(
      sql`select id from subjects where external_key <> '' limit ${SUBJECTS}`,
    );
    const subjectIds = subjectRows.rows.map((r) => r.id);
    const pool = sys.database.pool;
    // The same kind of rows, statements made before the clock starts; fresh keys each time.
    const RAW_SECONDS = Math.min(SECONDS, 10);
    // (Enough for 60,000 rows/s in the raw phase and 30,000 in the bare-design phase after it.)
    const rawStatements = Array.from({ length: Math.ceil((RAW_SECONDS * 90_000) / BATCH) }, () => {
      const batchId = randomUUID();
      const params: unknown[] = [];
      const rows: string[] = [];
      for (let i = 0; i < BATCH; i++) {
        const e = backgroundEvent('x');
        const b = params.length;
        rows.push(
          `($${b + 1}::signal_source,$${b + 2},$${b + 3}::uuid,$${b + 4},$${b + 5}::severity,$${b + 6}::timestamptz,$${b + 7}::int,$${b + 8}::jsonb,$${b + 9}::uuid)`,
        );
        params.push(
          e.source,
          `raw-${e.externalId}`,
          pick(subjectIds),
          e.type,
          (e as { severity?: string }).severity ?? null,
          e.occurredAt,
          (e.attributes as { count?: number }).count ?? 1,
          JSON.stringify(e.attributes),
          batchId,
        );
      }
      return {
        text: `insert into signals (source, external_id, subject_id, type, severity, occurred_at, count, attributes, batch_id) values ${rows.join(',')}`,
        params,
      };
    });
    let nextRaw = 0;
    /**
     * `CONCURRENCY` callers inserting the prepared statements for `RAW_SECONDS`, each insert followed
     * by `after` (if any): rows/s, the latency of each step and the CPU readings around the phase.
     */
    const insertPhase = async (after?: () => Promise<unknown>) => {
      const latencies: number[] = [];
      let rows = 0;
      const deadline = performance.now() + RAW_SECONDS * 1000;
      const cpuStart = cpuByComponent();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (performance.now() < deadline) {
            const { text, params } = rawStatements[nextRaw++ % rawStatements.length]!;
            const start = performance.now();
            await pool.query(text, params);
            await after?.();
            latencies.push(performance.now() - start);
            rows += BATCH;
          }
        }),
      );
      return { rate: rows / ((performance.now() - t0) / 1000), rows, latencies, cpuStart, cpuEnd: cpuByComponent() };
    };
    const raw = await insertPhase();

    // --- Bare design: the raw INSERT of each batch, then a bare workflow for it ------------------
    // What every ingested batch needs under the design and nothing else: its rows stored
    // and a workflow per batch (eager start, one local activity writing one row, result awaited) —
    // no HTTP, no validation, no scoring. Its rate bounds the ingest's on this machine.
    const bare = await insertPhase(() => {
      const id = randomUUID();
      return sys.client.workflow.execute<typeof batchShapeWorkflow>('batchShapeWorkflow', {
        taskQueue: sys.taskQueue,
        workflowId: `bench-batch-${id}`,
        args: [id],
        requestEagerStart: !values['grpc-client'],
      });
    });
    // CPU per 1,000-event batch, by component (the bench's own client work is in `node`).
    const perBatch = (a: typeof cpu0, b: typeof cpu0, n: number) => ({
      node: ((b.node - a.node) * 1000) / n,
      postgres: ((b.postgres - a.postgres) * 1000) / n,
      temporal: ((b.temporal - a.temporal) * 1000) / n,
    });
    const cost = perBatch(cpu0, cpu1, batchLatencies.length);
    const rawCost = perBatch(raw.cpuStart, raw.cpuEnd, raw.latencies.length);
    const bareCost = perBatch(bare.cpuStart, bare.cpuEnd, bare.latencies.length);
    const total = (c: typeof cost) => c.node + c.postgres + c.temporal;
    const fmtCost = (c: typeof cost) =>
      `${total(c).toFixed(0)} ms (Node ${c.node.toFixed(0)}, Postgres ${c.postgres.toFixed(0)}, Temporal ${c.temporal.toFixed(0)})`;

    // --- Report ----------------------------------------------------------------------------------
    const alertsTotal = await sys.database.db.execute<{ n: number }>(sql`select count(*)::int as n from alerts`);
    out('');
    out(
      `| measure | Warden: POST /v1/signals + scoring workflow | raw multi-row INSERT (same rows, same table) | bare design: raw INSERT + a bare workflow per batch | floor |`,
    );
    out(`| --- | --- | --- | --- | --- |`);
    out(
      `| events/s (1,000-event batches, ${CONCURRENCY} concurrent) | ${Math.round(ingestRate).toLocaleString('en')} | ${Math.round(raw.rate).toLocaleString('en')} | ${Math.round(bare.rate).toLocaleString('en')} | ≥ 20,000 |`,
    );
    out(
      `| batch p50 | ${ms(pct(batchLatencies, 50))} (HTTP only: ${ms(pct(postLatencies, 50))}) | ${ms(pct(raw.latencies, 50))} | ${ms(pct(bare.latencies, 50))} | |`,
    );
    out(
      `| batch p99 | ${ms(pct(batchLatencies, 99))} (HTTP only: ${ms(pct(postLatencies, 99))}) | ${ms(pct(raw.latencies, 99))} | ${ms(pct(bare.latencies, 99))} | ≤ 250 ms |`,
    );
    out(
      `| threshold crossing → alert listed, p50 / p99 | ${ms(pct(alertLatencies, 50))} / ${ms(pct(alertLatencies, 99))} (n=${alertLatencies.length}, missed ${alertsMissed}) | — | — | p99 ≤ 1 s |`,
    );
    out(
      `| CPU per batch (all processes of the run) | ${fmtCost(cost)} → at most ${Math.round((2000 / total(cost)) * BATCH).toLocaleString('en')} events/s on 2 idle cores | ${fmtCost(rawCost)} | ${fmtCost(bareCost)} → at most ${Math.round((2000 / total(bareCost)) * BATCH).toLocaleString('en')} events/s | |`,
    );
    // The floor's CPU budget: 2 cores' second shared by the batches 20,000 events/s makes.
    const budget = 2000 / (20_000 / BATCH);
    out(
      `| CPU left per batch for what Warden adds (HTTP, validation, subject look-up, scoring, writes) at 20,000 events/s on 2 cores | Warden adds ${(total(cost) - total(bareCost)).toFixed(0)} ms | — | ${budget.toFixed(0)} ms − ${total(bareCost).toFixed(0)} ms = **${(budget - total(bareCost)).toFixed(0)} ms** | |`,
    );
    out('');
    for (const r of pgStats) {
      out(
        `# pg ${r.ms} ms in ${r.calls} calls (${(Number(r.ms) / batchLatencies.length).toFixed(1)} ms/batch), ${r.rows} rows: ${r.query}`,
      );
    }
    out(
      `# cold re-scoring of all ${cold.subjects} subjects after the run: ${cold.pairsScored} pairs, ${cold.scoresChanged} score rows changed, ${cold.alertsCreated.length + cold.alertsRaised.length} alerts created or raised (0 and 0: the cached scoring was exact)`,
    );
    out(`# load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (2 cores)`);
    out(
      `# ${accepted.toLocaleString('en')} events in ${batchLatencies.length} batches over ${elapsed.toFixed(1)} s; ${raw.rows.toLocaleString('en')} raw rows; ${alertsTotal.rows[0]!.n} alerts in total`,
    );
  } finally {
    await sys.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
