import { randomBytes } from 'node:crypto';
import { desc } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit, verifyAuditChain } from '../../db/audit';
import { auditCheckpoints } from '../../db/schema';
import { ensureAuditCheckpointSchedule } from '../../infra/schedules';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
const scheduleId = `test-audit-checkpoint-${randomBytes(4).toString('hex')}`;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => {
  await sys?.client.schedule
    .getHandle(scheduleId)
    .delete()
    .catch(() => undefined);
  await sys?.close();
});

async function waitFor<T>(probe: () => Promise<T | undefined | null>, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('periodic audit checkpoints run from a Temporal schedule, not a timer in the API', () => {
  it('the schedule is created idempotently with the configured interval and signs a checkpoint when it fires', async () => {
    const logger = (await import('../../infra/logger')).createLogger({ level: 'silent' });
    await ensureAuditCheckpointSchedule(sys.client, { config: sys.config, taskQueue: sys.taskQueue, logger, scheduleId });
    // A second worker starting up: no error, same schedule.
    await ensureAuditCheckpointSchedule(sys.client, { config: sys.config, taskQueue: sys.taskQueue, logger, scheduleId });
    const handle = sys.client.schedule.getHandle(scheduleId);
    const described = await handle.describe();
    expect(described.spec.intervals?.[0]?.every).toBe(15 * 60 * 1000);
    expect(described.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'auditCheckpointWorkflow',
      taskQueue: sys.taskQueue,
    });

    await appendAudit(sys.db, { actor: 'x', action: 'x.y', category: 'system', outcome: 'allowed' });
    await handle.trigger();
    const cp = await waitFor(
      async () => (await sys.db.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.seq)).limit(1))[0],
    );
    expect(cp.createdBy).toBe('system:schedule');
    const v = await verifyAuditChain(sys.db, { verifier: sys.config.audit.signingKey });
    expect(v).toMatchObject({ ok: true, checkpoint: { seq: cp.seq, hash: cp.hash } });
  });
});
