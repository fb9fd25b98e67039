import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { systemChecks } from '../../db/schema';
import { ENCODING } from '../../infra/codec';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

describe('the pipe: HTTP → Temporal workflow → activity → Postgres', () => {
  it('a system check started through the API writes its row through a worker activity', async () => {
    const res = await sys.http.post('/v1/system/check').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(200);
    const [row] = await sys.db.select().from(systemChecks).where(eq(systemChecks.id, res.body.checkId));
    expect(row).toBeDefined();
    expect(row!.requestedBy).toBe(principals.admin.sub);
    expect(row!.workflowId).toBe(res.body.workflowId);
    const described = await sys.client.workflow.getHandle(res.body.workflowId).describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.taskQueue).toBe(sys.taskQueue);
  });

  it('stores workflow inputs and results in Temporal only as ciphertext', async () => {
    const res = await sys.http.post('/v1/system/check').set('Authorization', await sys.auth(principals.admin));
    const history = await sys.client.workflow.getHandle(res.body.workflowId).fetchHistory();
    const started = history.events!.find((e) => e.workflowExecutionStartedEventAttributes)!;
    const input = started.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(new TextDecoder().decode(input.metadata!.encoding!)).toBe(ENCODING);
    // The raw bytes do not contain the requester's id in clear.
    expect(Buffer.from(input.data!).toString('latin1')).not.toContain(principals.admin.sub);
  });
});
