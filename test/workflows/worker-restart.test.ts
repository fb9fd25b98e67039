/**
 * A worker stopped in the middle of a step, and a new one started on the same task queue: the step
 * completes and nothing recorded before the restart is lost (the new worker replays the histories).
 */
import type { Worker } from '@temporalio/worker';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createActivities } from '../../activities';
import { ConfirmAlertResult, StepDecisionResult, StepRequestedResult } from '../../api/routes/cases';
import { stepDecisions, steps } from '../../db/schema';
import { createLogger } from '../../infra/logger';
import { createWorker } from '../../infra/temporal';
import { caseDriver, people } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
const running: Array<{ worker: Worker; done: Promise<void>; close: () => Promise<void> }> = [];

async function startWorker() {
  const logger = createLogger({ level: 'warn' });
  const { worker, connection } = await createWorker({
    config: sys.config,
    address: inject('temporalAddress'),
    taskQueue: sys.taskQueue,
    activities: createActivities({ db: sys.db, logger, config: sys.config }),
    bundlePath: inject('workflowBundlePath'),
    logger,
  });
  const done = worker.run();
  const entry = {
    worker,
    done,
    close: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
      await connection.close();
    },
  };
  running.push(entry);
  return entry;
}

beforeAll(async () => {
  sys = await startTestSystem({ worker: false, env: { UPDATE_DEADLINE_MS: '30000' } });
  drive = caseDriver(sys);
});
afterAll(async () => {
  for (const w of running) await w.close().catch(() => undefined);
  await sys?.close();
});

describe('worker restart in the middle of a step', () => {
  it('a new worker on the same task queue finishes the step; decisions, notes and the stage change are all there', async () => {
    const first = await startWorker();
    const { alerts } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(alerts[0]!.id, 'before the restart')).body);
    const step = StepRequestedResult.parse((await drive.requestStep(caseId, 'escalate_investigation')).body);
    expect(StepDecisionResult.parse((await drive.decide(caseId, step.stepId, people.legal)).body).status).toBe('pending');

    await first.close();
    expect(first.worker.getState()).toBe('STOPPED');

    // The second decision is sent while no worker runs; it completes once the new worker is up.
    const decision = drive.decide(caseId, step.stepId, people.privacy);
    await new Promise((r) => setTimeout(r, 1_000));
    await startWorker();
    const res = await decision;
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const view = StepDecisionResult.parse(res.body);
    expect(view.status).toBe('approved');
    expect(view.decisions.map((d) => d.approver)).toEqual([people.legal.sub, people.privacy.sub]);

    const c = await drive.readUntil(caseId, (x) => x.status === 'under_investigation');
    expect(c.notes[0]!.body).toBe('before the restart');
    expect(
      (await sys.db.select().from(stepDecisions).where(eq(stepDecisions.stepId, step.stepId))).map((d) => d.approver).sort(),
    ).toEqual([people.legal.sub, people.privacy.sub].sort());
    const [row] = await sys.db.select().from(steps).where(eq(steps.id, step.stepId));
    expect(row!.status).toBe('approved');
  });
});
