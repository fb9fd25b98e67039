import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { route, type AppDeps } from '../http';

const Health = z.object({ status: z.literal('ok') }).openapi('Health');
const Readiness = z
  .object({ status: z.enum(['ready', 'not_ready']), checks: z.record(z.enum(['ok', 'failed'])) })
  .openapi('Readiness');

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error('timeout')), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

async function readiness(deps: AppDeps) {
  const probes: Record<string, () => Promise<unknown>> = {
    postgres: () => deps.db.execute(sql`select 1`),
    temporal: () => deps.temporal.connection.workflowService.getSystemInfo({}),
    ...deps.ready,
  };
  const checks: Record<string, 'ok' | 'failed'> = {};
  await Promise.all(
    Object.entries(probes).map(async ([name, probe]) => {
      try {
        await withTimeout(probe(), 2000);
        checks[name] = 'ok';
      } catch {
        checks[name] = 'failed';
      }
    }),
  );
  return checks;
}

export const healthRoutes = [
  route({
    method: 'get',
    path: '/healthz',
    tag: 'Operations',
    summary: 'Liveness: the process answers',
    permission: 'public',
    responses: { 200: { description: 'Alive', schema: Health } },
    handler: () => ({ body: { status: 'ok' } }),
  }),
  route({
    method: 'get',
    path: '/readyz',
    tag: 'Operations',
    summary: 'Readiness: Postgres and Temporal answer',
    permission: 'public',
    responses: {
      200: { description: 'Ready', schema: Readiness },
      503: { description: 'A dependency does not answer', schema: Readiness },
    },
    async handler({ deps }) {
      const checks = await readiness(deps);
      const ok = Object.values(checks).every((c) => c === 'ok');
      return { status: ok ? 200 : 503, body: { status: ok ? 'ready' : 'not_ready', checks } };
    },
  }),
];
