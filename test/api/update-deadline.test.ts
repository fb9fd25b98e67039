/**
 * Every Update the API sends has a deadline: with no worker to answer, the caller gets a 504 after
 * UPDATE_DEADLINE_MS instead of a hanging request.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfirmAlertResult } from '../../api/routes/cases';
import { caseNotes } from '../../db/schema';
import { caseDriver } from '../helpers/cases';
import { subjectWithAlerts } from '../helpers/fixtures';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false, env: { UPDATE_DEADLINE_MS: '400' } });
});
afterAll(async () => sys?.close());

describe('Update deadlines', () => {
  it('a command to a case whose workflow gets no worker answers 504 within the deadline', async () => {
    const drive = caseDriver(sys);
    const { alerts } = await subjectWithAlerts(sys.db, sys.config, 'eu');
    // Confirming needs no worker: the case row is claimed and the workflow started.
    const { caseId } = ConfirmAlertResult.parse((await drive.confirm(alerts[0]!.id)).body);
    const t0 = Date.now();
    const res = await sys.http
      .post(`/v1/cases/${caseId}/notes`)
      .set('Authorization', await sys.auth({ sub: 'investigator-1', roles: ['investigator'] }))
      .send({ body: 'nobody will write this' });
    expect(res.status).toBe(504);
    expect(res.body.error.code).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await sys.db.select().from(caseNotes).where(eq(caseNotes.caseId, caseId))).toEqual([]);
  });
});
