/**
 * `npm run bench:cases [-- --cases 1000000]`: the case benchmarks of the performance floors, each
 * beside its raw baseline measured in the same run, on a throwaway Temporal dev server and embedded
 * PostgreSQL (scripts/standalone.ts), driven over loopback HTTP.
 *
 * HTTP load comes from its own thread (bench/http-load.ts), so the API's event loop serves requests
 * rather than generating them.
 *
 * 1. Confirm → case workflow running and the case listed: throughput (closed loop) and latency at
 *    50/s (open loop), beside an empty workflow start.
 * 2. A decision (HTTP → eligibility → Update on the step workflow → projection → audit) at 50/s over
 *    120 cases, and the decision Update alone sent straight to the step workflows, beside a no-op
 *    Update round trip at the same rate.
 * 3. The case list with filters over 1,000,000 cases (bulk-loaded with generate_series) at
 *    50 req/s (the other floors' rate) and 200 req/s, beside the raw SQL of the same lists.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { decideStepUpdate, WardenCaseId, WardenRegion, WardenStatus, workflowIds } from '../workflows/definitions';
import { apiClient, startStandalone } from '../scripts/standalone';
import { noopUpdate, stopSignal } from './case-bench-defs';
import { cpuByComponent, cpuPerItem, fmtCpu } from './cpu';
import { runLoad, type LoadResult } from './http-load';
import type { caseShapeWorkflow, emptyWorkflow, updateBaselineWorkflow } from './case-workflows';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '1000000' },
    only: { type: 'string', default: 'confirm,decide,list' },
    /** The API's client on a grpc-js connection of its own, no eager starts (the wiring before), for A/B runs. */
    'grpc-client': { type: 'boolean', default: false },
  },
});
const BULK = Number(values.cases);
const ONLY = new Set(values.only.split(','));
const out = (line = '') => process.stdout.write(line + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
const lat = (xs: number[]) => `p50 ${ms(pct(xs, 50))} · p99 ${ms(pct(xs, 99))} (n=${xs.length})`;

/** Open loop: start call i at i/rate seconds, whatever the previous ones do; latencies in ms. */
async function paced(n: number, rate: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const latencies: number[] = [];
  const start = performance.now();
  const running: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    running.push(
      (async () => {
        const t0 = performance.now();
        await fn(i);
        latencies.push(performance.now() - t0);
      })(),
    );
  }
  await Promise.all(running);
  return latencies;
}

/** Closed loop with `concurrency` callers: items per second. */
async function throughput(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** Every response of a load run had the expected status (else the figure would be meaningless). */
function expectAll(results: LoadResult[], status: number) {
  const bad = results.filter((r) => r.status !== status);
  if (bad.length)
    throw new Error(
      `${bad.length}/${results.length} responses were not ${status}, e.g. ${bad[0]!.status} ${bad[0]!.body.slice(0, 200)}`,
    );
}

async function main() {
  const sys = await startStandalone({
    workflowsPath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'case-workflows.ts'),
    poolSize: 30,
    env: { DATABASE_POOL_SIZE: '30' },
    log: (m) => out(`# ${m}`),
    shareConnection: !values['grpc-client'],
  });
  out(
    values['grpc-client']
      ? '# API client: a grpc-js connection of its own, no eager starts'
      : "# API client: the worker's native connection, eager workflow starts (as npm start)",
  );
  const results: Array<[string, string, string, string]> = [];
  const record = (r: [string, string, string, string]) => {
    results.push(r);
    out(`# ${r.join(' | ')}`);
  };
  try {
    const db = sys.database.db;
    const call = apiClient(sys.url);
    const analyst = await sys.auth({ sub: 'bench-analyst', roles: ['analyst'] });
    const investigator = await sys.auth({ sub: 'bench-investigator', roles: ['investigator'] });
    const check = (r: { status: number; body: unknown }, ok: number[]) => {
      if (!ok.includes(r.status)) throw new Error(`HTTP ${r.status}: ${JSON.stringify(r.body)}`);
    };

    // A region whose investigation needs ten Legal approvers: decisions leave steps pending.
    const admin = await sys.auth({ sub: 'bench-admin', roles: ['admin'] });
    const { DEFAULT_REGIONS } = await import('../domain/regions');
    check(
      await call('PUT', '/v1/regions/bq', admin, {
        ...DEFAULT_REGIONS.us,
        name: 'Bench quorum',
        approvalRules: {
          escalate_investigation: {
            require: [{ stakeholder: 'legal', count: 10 }],
            slaHours: 72,
            remindAtPercent: [],
            onExpiry: 'reject',
          },
        },
      }),
      [201],
    );

    // Subjects and alerts to confirm (raw SQL: seeding, not the path measured).
    const N_EU = 40 + 1000 + 500;
    const N_CONFIRM = N_EU + 120;
    await db.execute(sql`
      insert into subjects (id, external_key, pseudonym, region, groups)
      select md5('bs' || g)::uuid, 'bench-subject-' || g, 'Bench-' || g, case when g > ${N_EU} then 'bq' else 'eu' end, '{}'
      from generate_series(1, ${N_CONFIRM}) g`);
    const alertRows = await db.execute<{ id: string }>(sql`
      insert into alerts (subject_id, policy_id, region, severity, score, risk_factors, triggered_at)
      select md5('bs' || g)::uuid, gen_random_uuid(), case when g > ${N_EU} then 'bq' else 'eu' end, 'medium', 70, '[]'::jsonb, now()
      from generate_series(1, ${N_CONFIRM}) g
      order by g
      returning id`);
    const alertIds = alertRows.rows.map((r) => r.id);
    let nextAlert = 0;
    const confirm = async () => {
      const r = await call('POST', `/v1/alerts/${alertIds[nextAlert++]!}/confirm`, analyst, { comment: 'bench confirm' });
      check(r, [201]);
      return (r.body as { caseId: string }).caseId;
    };

    /** Wait until every case workflow has projected its first alert (the worker caught up); ms waited. */
    const drain = async (label: string): Promise<number> => {
      const t0 = performance.now();
      for (;;) {
        const r = await sys.database.pool.query<{ n: string }>(`select count(*)::text as n from cases where alert_count = 0`);
        if (r.rows[0]!.n === '0') break;
        if (performance.now() - t0 > 300_000)
          throw new Error(`${label}: ${r.rows[0]!.n} case workflows still behind after 300 s`);
        await sleep(200);
      }
      out(
        `# ${label}: every case workflow had projected its alert ${((performance.now() - t0) / 1000).toFixed(1)} s after the last response`,
      );
      return performance.now() - t0;
    };

    // ---- 1. Confirm → case running and listed -----------------------------------------------
    out('# warm-up');
    const section1 = ONLY.has('confirm');
    for (let i = 0; i < 40; i++) await confirm();
    const startBaseline = async () => {
      await sys.client.workflow.start<typeof emptyWorkflow>('emptyWorkflow', {
        taskQueue: sys.taskQueue,
        workflowId: `bench-empty-${randomUUID()}`,
      });
    };
    for (let i = 0; i < 20; i++) await startBaseline();

    if (section1) {
      out('# confirm throughput (closed loop, 16 callers, 1000 confirms)');
      const confirmReq = (n: number) =>
        Array.from({ length: n }, () => ({
          method: 'POST',
          path: `/v1/alerts/${alertIds[nextAlert++]!}/confirm`,
          token: analyst,
          body: { comment: 'bench confirm' },
        }));
      let cpu0 = cpuByComponent();
      const burst = await runLoad({
        base: sys.url,
        requests: confirmReq(1000),
        mode: 'closed',
        concurrency: 16,
        bodies: 'failures',
      });
      expectAll(burst.results, 201);
      // Until the last case workflow has run, not only the last answer: a backlog is not throughput.
      const caseRate = 1000 / ((burst.elapsedMs + (await drain('after the burst'))) / 1000);
      const confirmCpu = cpuPerItem(cpu0, cpuByComponent(), 1000);
      cpu0 = cpuByComponent();
      // Counted until every one of them has completed (its first and only workflow task run), like
      // the confirms are counted until every case workflow has projected its alert.
      // (A visibility count every 50 ms: cheaper than a result long-poll per workflow.)
      const tStart = performance.now();
      await throughput(1000, 16, startBaseline);
      const running = `WorkflowType = 'emptyWorkflow' AND ExecutionStatus = 'Running'`;
      while ((await sys.client.workflow.count(running)).count > 0) await sleep(50);
      const startRate = 1000 / ((performance.now() - tStart) / 1000);
      const startCpu = cpuPerItem(cpu0, cpuByComponent(), 1000);
      record(['confirm → case running + listed: cost', fmtCpu(confirmCpu), '', `empty workflow start ${fmtCpu(startCpu)}`]);
      record([
        'confirm → case running + listed: throughput',
        `${caseRate.toFixed(0)} cases/s`,
        '≥ 100 cases/s',
        `empty workflow start ${startRate.toFixed(0)} /s (until completed)`,
      ]);

      // The bare shape of a case workflow, no Warden code: an eager start with the three search
      // attributes, one local activity writing one row, kept running. Counted until every row is
      // written, like the confirms: what this machine's Temporal dev server, worker and Postgres
      // allow any confirm under the design (a workflow per case, read models written by
      // activities).
      out('# bare case workflow shape (closed loop, 16 callers, 1000 workflows)');
      const shapeRows = async () =>
        Number(
          (
            await sys.database.pool.query<{ n: string }>(
              `select count(*)::text as n from system_checks where requested_by = 'bench'`,
            )
          ).rows[0]!.n,
        );
      const startShape = async () => {
        const id = randomUUID();
        await sys.client.workflow.start<typeof caseShapeWorkflow>('caseShapeWorkflow', {
          taskQueue: sys.taskQueue,
          workflowId: `bench-shape-${id}`,
          args: [id],
          requestEagerStart: !values['grpc-client'],
          typedSearchAttributes: [
            { key: WardenCaseId, value: id },
            { key: WardenRegion, value: 'eu' },
            { key: WardenStatus, value: 'open' },
          ],
        });
      };
      for (let i = 0; i < 20; i++) await startShape();
      while ((await shapeRows()) < 20) await sleep(50);
      cpu0 = cpuByComponent();
      const tShape = performance.now();
      await throughput(1000, 16, startShape);
      while ((await shapeRows()) < 1020) await sleep(20);
      const shapeRate = 1000 / ((performance.now() - tShape) / 1000);
      record([
        'bare case workflow shape (eager start, 3 search attributes, one local-activity row, kept running; no Warden code)',
        `${shapeRate.toFixed(0)} /s; ${fmtCpu(cpuPerItem(cpu0, cpuByComponent(), 1000))}`,
        '≥ 100 /s would be needed',
        '— (bounds any confirm on this machine)',
      ]);

      out('# confirm latency at 50/s (open loop, 500 confirms)');
      const steady = await runLoad({ base: sys.url, requests: confirmReq(500), mode: 'paced', rate: 50 });
      expectAll(steady.results, 201);
      const confirmLat = steady.results.map((r) => r.ms);
      const confirmed = steady.results.map((r) => (JSON.parse(r.body) as { caseId: string }).caseId);
      await drain('after 50/s');
      const startLat = await paced(500, 50, startBaseline);
      record([
        'confirm → case running + listed at 50/s',
        lat(confirmLat),
        'p99 ≤ 50 ms',
        `empty workflow start ${lat(startLat)}`,
      ]);
      // What the figure claims: the last confirmed cases are listed and their workflows run.
      const listed = await sys.database.pool.query<{ n: string }>(
        'select count(*)::text as n from cases where id = any($1::uuid[])',
        [confirmed.slice(-50)],
      );
      const described = await sys.client.workflow.getHandle(workflowIds.case(confirmed.at(-1)!)).describe();
      out(`# check: ${listed.rows[0]!.n}/50 of the last confirmed cases listed; last case workflow ${described.status.name}`);
    } else nextAlert = 40 + 1000 + 500;

    // ---- 2. Decisions ---------------------------------------------------------------------------
    if (ONLY.has('decide')) {
      out('# decisions: 120 cases in region bq, one pending step each (Legal ×10)');
      const stepCases: Array<{ caseId: string; stepId: string }> = [];
      for (let i = 0; i < 120; i++) {
        const caseId = await confirm(); // the last 120 alerts are in region bq
        // Setup, not measured: on a loaded machine a request may time out after it took effect.
        let stepId: string | undefined;
        for (let k = 0; k < 4 && !stepId; k++) {
          const r = await call('POST', `/v1/cases/${caseId}/steps`, investigator, {
            kind: 'escalate_investigation',
            reason: 'bench',
          });
          if (r.status === 202) stepId = (r.body as { stepId: string }).stepId;
          else if (r.status === 409 || r.status === 504) {
            const found = await sys.database.pool.query<{ id: string }>(
              `select id from steps where case_id = $1 and status = 'pending'`,
              [caseId],
            );
            stepId = found.rows[0]?.id;
          } else check(r, [202]);
        }
        if (!stepId) throw new Error(`no step for case ${caseId}`);
        stepCases.push({ caseId, stepId });
      }
      await drain('after the decision setup');
      const approverTokens = await Promise.all(
        Array.from({ length: 5 }, (_, k) => sys.auth({ sub: `bench-legal-${k}`, roles: ['approver'], stakeholder: 'legal' })),
      );
      let cpu0 = cpuByComponent();
      const mark0 = process.hrtime.bigint() / 1000n;
      const decisions = await runLoad({
        base: sys.url,
        mode: 'paced',
        rate: 50,
        bodies: 'failures',
        requests: Array.from({ length: 500 }, (_, i) => {
          const { caseId, stepId } = stepCases[i % stepCases.length]!;
          return {
            method: 'POST',
            path: `/v1/cases/${caseId}/steps/${stepId}/decision`,
            token: approverTokens[Math.floor(i / stepCases.length)]!,
            body: { decision: 'approve', comment: 'bench' },
          };
        }),
      });
      expectAll(decisions.results, 200);
      // On the monotonic clock (µs) V8's --cpu-prof uses, to cut a profile to this phase.
      out(`# HTTP decisions, monotonic µs: ${mark0}–${process.hrtime.bigint() / 1000n}`);
      const decisionCpu = cpuPerItem(cpu0, cpuByComponent(), decisions.results.length);
      const decisionLat = decisions.results.map((r) => r.ms);
      // Baseline: a no-op Update on 120 running workflows, same rate.
      const baselineIds = Array.from({ length: 120 }, (_, i) => `bench-update-${i}-${randomUUID()}`);
      for (const id of baselineIds) {
        await sys.client.workflow.start<typeof updateBaselineWorkflow>('updateBaselineWorkflow', {
          taskQueue: sys.taskQueue,
          workflowId: id,
        });
      }
      for (const id of baselineIds.slice(0, 20)) await sys.client.workflow.getHandle(id).executeUpdate(noopUpdate, { args: [0] });
      cpu0 = cpuByComponent();
      const noopLat = await paced(500, 50, async (i) => {
        await sys.client.workflow.getHandle(baselineIds[i % baselineIds.length]!).executeUpdate(noopUpdate, { args: [i] });
      });
      record(['decision: cost', fmtCpu(decisionCpu), '', `no-op Update ${fmtCpu(cpuPerItem(cpu0, cpuByComponent(), 500))}`]);
      // Stop the baseline workflows and let them finish before the next phase (120 workflow
      // completions at once would otherwise land in its first seconds).
      for (const id of baselineIds) await sys.client.workflow.getHandle(id).signal(stopSignal);
      await Promise.all(baselineIds.map((id) => sys.client.workflow.getHandle(id).result()));
      await sleep(1000);
      record([
        'decision (HTTP + Update + projection + audit) at 50/s, 120 cases',
        lat(decisionLat),
        'p99 ≤ 50 ms',
        `no-op Update ${lat(noopLat)}`,
      ]);

      // The decision Update alone (validator, quorum, projection with its audit entry), sent
      // straight to the step workflows at the same rate by five more approvers: the floor's
      // "decision Update round trip", beside the same no-op Update.
      cpu0 = cpuByComponent();
      const updateLat = await paced(500, 50, async (i) => {
        const { stepId, caseId } = stepCases[i % stepCases.length]!;
        const sub = `bench-legal-${5 + Math.floor(i / stepCases.length)}`;
        await sys.client.workflow.getHandle(workflowIds.step(caseId, stepId)).executeUpdate(decideStepUpdate, {
          args: [
            {
              decision: 'approve',
              comment: 'bench',
              actor: {
                sub,
                roles: ['approver'],
                stakeholder: 'legal',
                regions: ['*'],
                languages: ['en'],
                requestId: `bench-${i}`,
              },
            },
          ],
        });
      });
      record([
        'decision Update round trip (validator + projection + audit) at 50/s, 120 cases',
        lat(updateLat),
        'p99 ≤ 50 ms',
        `no-op Update ${lat(noopLat)}; cost ${fmtCpu(cpuPerItem(cpu0, cpuByComponent(), 500))}`,
      ]);
    }

    // ---- 3. Case list over 1,000,000 cases ----------------------------------------------------
    if (ONLY.has('list')) {
      out(`# bulk-loading ${BULK.toLocaleString('en-US')} cases (generate_series)`);
      const tLoad = performance.now();
      const SUBJ = 200_000;
      await db.execute(sql`
      insert into subjects (id, external_key, pseudonym, region, groups)
      select md5('bl' || g)::uuid, 'bulk-subject-' || g, 'Bulk-' || g, case when g % 2 = 0 then 'eu' else 'us' end, '{}'
      from generate_series(1, ${SUBJ}) g`);
      const ACTIVE = 150_000;
      for (let from = 1; from <= BULK; from += 250_000) {
        const to = Math.min(BULK, from + 249_999);
        await db.execute(sql`
        insert into cases (id, subject_id, region, status, severity, owner, opened_by, alert_count, workflow_id, version, created_at, updated_at)
        select md5('bc' || g)::uuid,
               md5('bl' || s)::uuid,
               case when s % 2 = 0 then 'eu' else 'us' end,
               (case when g <= ${ACTIVE}::int then (array['open','under_investigation','hr_action'])[1 + g % 3] else 'closed' end)::case_status,
               ((array['low','medium','high'])[1 + (g / 7) % 3])::severity,
               case when g % 4 = 0 then null else 'inv-' || (g % 50) end,
               'bulk', 1, 'case-bulk-' || g, 1, t, t
        from (select g, case when g <= ${ACTIVE}::int then g else (g % ${SUBJ}::int) + 1 end as s,
                     date_trunc('milliseconds', now() - random() * interval '365 days') as t
              from generate_series(${from}::int, ${to}::int) g) x`);
        out(`#   ${to.toLocaleString('en-US')} cases`);
      }
      await db.execute(sql`vacuum analyze cases`);
      await db.execute(sql`vacuum analyze subjects`);
      // The load's dirty pages written now, not by a checkpoint in the middle of the measurement.
      await db.execute(sql`checkpoint`);
      out(`# loaded in ${((performance.now() - tLoad) / 1000).toFixed(0)} s`);

      const now = Date.now();
      const day = 86_400_000;
      const iso = (t: number) => new Date(t).toISOString();
      const queries = [
        'region=eu&status=open',
        'region=us&severity=high',
        'owner=inv-7',
        `status=closed&openedFrom=${iso(now - 60 * day)}&openedTo=${iso(now - 53 * day)}`,
        'status=open,under_investigation&severity=high',
        'region=eu&status=hr_action&severity=low',
        '',
      ];
      // Second pages too: take a cursor from each first page.
      const auditor = await sys.auth({ sub: 'bench-auditor', roles: ['auditor'] });
      const investigatorEuUs = await sys.auth({ sub: 'bench-inv-2', roles: ['investigator'], regions: ['eu', 'us'] });
      const withCursors: string[] = [];
      for (const q of queries) {
        const r = await call('GET', `/v1/cases?limit=50&${q}`, auditor);
        check(r, [200]);
        withCursors.push(q);
        const next = (r.body as { nextCursor: string | null }).nextCursor;
        if (next) withCursors.push(`${q}&cursor=${next}`);
      }
      for (let i = 0; i < 300; i++) await call('GET', `/v1/cases?limit=50&${withCursors[i % withCursors.length]}`, auditor); // warm-up
      const listRequests = (n: number) =>
        Array.from({ length: n }, (_, i) => ({
          method: 'GET',
          path: `/v1/cases?limit=50&${withCursors[i % withCursors.length]}`,
          // Each shape in turn with either caller.
          token: Math.floor(i / withCursors.length) % 2 ? auditor : investigatorEuUs,
        }));

      // Baseline: the raw SQL of the same lists (first pages), straight on the pool.
      const rawSql = (q: URLSearchParams, regions: string[] | null) => {
        const where: string[] = [];
        const args: unknown[] = [];
        const add = (cond: (n: string) => string, v: unknown) => {
          args.push(v);
          where.push(cond(`$${args.length}`));
        };
        if (regions) add((n) => `c.region = any(${n})`, regions);
        if (q.get('region')) add((n) => `c.region = ${n}`, q.get('region'));
        if (q.get('status')) add((n) => `c.status = any(${n}::case_status[])`, q.get('status')!.split(','));
        if (q.get('severity')) add((n) => `c.severity = any(${n}::severity[])`, q.get('severity')!.split(','));
        if (q.get('owner')) add((n) => `c.owner = ${n}`, q.get('owner'));
        if (q.get('openedFrom')) add((n) => `c.created_at >= ${n}`, q.get('openedFrom'));
        if (q.get('openedTo')) add((n) => `c.created_at <= ${n}`, q.get('openedTo'));
        return {
          text: `select c.id, c.subject_id, s.pseudonym, c.region, c.status, c.severity, c.owner, c.alert_count, c.opened_by, c.resolution, c.created_at, c.updated_at
               from cases c join subjects s on s.id = c.subject_id ${where.length ? 'where ' + where.join(' and ') : ''}
               order by c.created_at desc, c.id desc limit 51`,
          values: args,
        };
      };
      const total = await db.execute<{ n: string }>(sql`select count(*)::text as n from cases`);
      const totalCases = Number(total.rows[0]!.n).toLocaleString('en-US');
      // 50/s is the rate of the other two floors; 200/s shows where one API process stands.
      for (const rate of [50, 200]) {
        out(`# case list at ${rate} req/s (open loop, ${rate * 10} requests)`);
        let cpu0 = cpuByComponent();
        const loopDelay = monitorEventLoopDelay({ resolution: 5 });
        loopDelay.enable();
        const lists = await runLoad({
          base: sys.url,
          mode: 'paced',
          rate,
          requests: listRequests(rate * 10),
          bodies: 'failures',
        });
        loopDelay.disable();
        expectAll(lists.results, 200);
        out(
          `#   the API's event loop meanwhile: delay p99 ${ms(loopDelay.percentile(99) / 1e6)}, max ${ms(loopDelay.max / 1e6)}`,
        );
        const listCpu = cpuPerItem(cpu0, cpuByComponent(), lists.results.length);
        // Where the tail comes from: the slowest request shapes (filters, page, caller).
        const shapes = new Map<string, number[]>();
        lists.results.forEach((r, i) => {
          const key = `${Math.floor(i / withCursors.length) % 2 ? 'auditor' : 'eu+us investigator'} ?${withCursors[i % withCursors.length]!.replace(/cursor=[^&]+/, 'cursor=…')}`;
          shapes.set(key, [...(shapes.get(key) ?? []), r.ms]);
        });
        for (const [key, xs] of [...shapes].sort((a, b) => pct(b[1], 99) - pct(a[1], 99)).slice(0, 3))
          out(`#   slow shape: ${key}: ${lat(xs)}`);
        cpu0 = cpuByComponent();
        const rawLat = await paced(rate * 10, rate, async (i) => {
          const q = new URLSearchParams(queries[i % queries.length]!);
          await sys.database.pool.query(rawSql(q, i % 2 ? null : ['eu', 'us']));
        });
        const rawCpu = cpuPerItem(cpu0, cpuByComponent(), rate * 10);
        record([`case list: cost at ${rate} req/s`, fmtCpu(listCpu), '', `raw SQL ${fmtCpu(rawCpu)}`]);
        record([
          `case list with filters over ${totalCases} cases at ${rate} req/s (HTTP)`,
          lat(lists.results.map((r) => r.ms)),
          'p99 ≤ 25 ms',
          `raw SQL ${lat(rawLat)}`,
        ]);
      }
      const explain = await sys.database.pool.query(
        `explain (analyze, costs off, timing off) ${rawSql(new URLSearchParams(queries[1]!), ['eu', 'us']).text}`,
        [['eu', 'us'], 'us', ['high']],
      );
      out('# plan of "region=us&severity=high" for an eu+us investigator:');
      for (const row of explain.rows as Array<Record<string, string>>) out(`#   ${Object.values(row)[0]}`);
    }
  } finally {
    await sys.close();
  }

  out();
  out('| path | measured | floor | baseline (same run) |');
  out('| --- | --- | --- | --- |');
  for (const r of results) out(`| ${r.join(' | ')} |`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
