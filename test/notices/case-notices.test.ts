/**
 * Notices through the real case flow: roster import (identity into the vault), signals scored into
 * an alert, confirm into a case, a send_notice step approved by the region's stakeholders, and
 * delivery to a real SMTP server — plus the canary: the person's identity reaches the SMTP peer and
 * nothing else (no Temporal history, no log line, no table but the vault).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { caseReference } from '../../domain/notices';
import { startSmtpSink, type SmtpSink } from '../../infra/smtp';
import { caseDriver, people } from '../helpers/cases';
import { createPolicy, importPeople, policyBody, subjectIdOf, uniq } from '../helpers/detection';
import { createAlert } from '../helpers/fixtures';
import { historyText } from '../helpers/leaks';
import { canaryIdentity, putTemplate } from '../helpers/notices';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let sink: SmtpSink;
let cases: ReturnType<typeof caseDriver>;

beforeAll(async () => {
  sink = await startSmtpSink();
  sys = await startTestSystem({ env: { SMTP_URL: sink.url } });
  cases = caseDriver(sys);
  await putTemplate(sys, 'eu-first-notice', { name: 'EU first notice', language: 'en' });
  await putTemplate(sys, 'eu-second-notice-de', {
    name: 'EU Hinweis',
    language: 'de',
    subject: 'Hinweis zum Fall {{case.reference}}',
  });
});
afterAll(async () => {
  await sys?.close();
  await sink?.stop();
});
beforeEach(() => sink.clear());

/**
 * A subject imported through the API (its identity goes to the vault), a real policy, an alert of
 * that policy as scoring raises it, confirmed into a case through the API.
 */
async function openCase(identity = canaryIdentity()) {
  const group = uniq('notice');
  await importPeople(sys, [
    {
      externalId: identity.externalId,
      displayName: identity.displayName,
      email: identity.email ?? undefined,
      upn: identity.upn ?? undefined,
      manager: identity.manager ?? undefined,
      groups: [group],
      region: 'eu',
    } as Parameters<typeof importPeople>[1][number],
  ]);
  const policyName = `Departing staff ${group}`;
  const policy = await createPolicy(sys, policyBody('data_theft_departing_users', group, { name: policyName }));
  const subjectId = await subjectIdOf(sys, identity.externalId);
  const alert = await createAlert(sys.db, { subjectId, region: 'eu', policyId: policy.id });
  const confirmed = await cases.confirm(alert.id);
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBeLessThan(300);
  return { caseId: confirmed.body.caseId as string, identity, policyName };
}

async function approveAll(caseId: string, stepId: string) {
  expect((await cases.decide(caseId, stepId, people.hr)).status).toBe(200);
  expect((await cases.decide(caseId, stepId, people.legal)).status).toBe(200);
}

describe('send_notice on a case', () => {
  it('needs the EU approvals (HR and Legal) before anything is sent; then the notice is sent once, shown on the case, and noted', async () => {
    const { caseId, identity, policyName } = await openCase();
    const req = await cases.requestStep(caseId, 'send_notice'); // no templateId: the region's language
    expect(req.status, JSON.stringify(req.body)).toBe(202);
    expect(req.body.requirements).toEqual([
      { stakeholder: 'hr', count: 1 },
      { stakeholder: 'legal', count: 1 },
    ]);
    const stepId: string = req.body.stepId;

    expect((await cases.decide(caseId, stepId, people.hr)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect(sink.transactions, 'nothing is sent on one of two approvals').toEqual([]);
    expect((await cases.read(caseId)).notices).toEqual([]);

    expect((await cases.decide(caseId, stepId, people.legal)).status).toBe(200);
    // The detail's parts are read side by side: wait until the note is in the same read too.
    const c = await cases.readUntil(
      caseId,
      (x) => x.notices[0]?.status === 'sent' && x.notes.some((n) => n.body.startsWith('Notice sent')),
    );
    const notice = c.notices[0]!;
    expect(notice).toMatchObject({
      stepId,
      templateId: 'eu-first-notice',
      templateVersion: 1,
      language: 'en',
      failureReason: null,
    });
    expect(notice.delivery).toMatchObject({ state: 'accepted', transmissions: 1, lastError: null });
    expect(c.steps.find((s) => s.stepId === stepId)!.templateId).toBe('eu-first-notice');
    expect(c.notes.map((n) => n.body)).toContain(
      `Notice sent to the subject (template eu-first-notice v1, Message-ID ${notice.messageId}).`,
    );
    expect(c.history.map((e) => e.type)).toContain('notice_sent');

    expect(sink.messages).toHaveLength(1);
    const m = sink.messages[0]!;
    expect(m.messageId).toBe(notice.messageId);
    expect(m.subject).toBe(`Notice about case ${caseReference(caseId)}`);
    expect(m.to).toContain(identity.email);
    expect(m.html).toContain(`Dear ${identity.displayName},`);
    expect(m.text).toContain(`Under the policy ${policyName} we ask you`);
  });

  it('a rejected notice sends nothing', async () => {
    const { caseId } = await openCase();
    const req = await cases.requestStep(caseId, 'send_notice', people.investigator, { templateId: 'eu-first-notice' });
    const stepId: string = req.body.stepId;
    expect((await cases.decide(caseId, stepId, people.hr, 'reject', 'Not proportionate')).status).toBe(200);
    await cases.readUntil(caseId, (x) => x.steps.find((s) => s.stepId === stepId)?.status === 'rejected');
    await new Promise((r) => setTimeout(r, 1000));
    expect(sink.transactions).toEqual([]);
    expect((await cases.read(caseId)).notices).toEqual([]);
  });

  it('uses the template the investigator chose', async () => {
    const { caseId } = await openCase();
    const req = await cases.requestStep(caseId, 'send_notice', people.investigator, { templateId: 'eu-second-notice-de' });
    await approveAll(caseId, req.body.stepId);
    const c = await cases.readUntil(caseId, (x) => x.notices[0]?.status === 'sent');
    expect(c.notices[0]).toMatchObject({ templateId: 'eu-second-notice-de', language: 'de' });
    expect(sink.messages[0]!.subject).toBe(`Hinweis zum Fall ${caseReference(caseId)}`);
  });

  it('refuses an unknown template (404 naming templateId) and a templateId on another kind of step (400)', async () => {
    const { caseId } = await openCase();
    const unknown = await cases.requestStep(caseId, 'send_notice', people.investigator, { templateId: 'no-such-template' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details[0].field).toBe('body.templateId');
    const wrongKind = await cases.requestStep(caseId, 'escalate_investigation', people.investigator, {
      templateId: 'eu-first-notice',
    });
    expect(wrongKind.status).toBe(400);
    expect(wrongKind.body.error.message).toContain('body.templateId');
  });
});

describe('the canary: a person’s identity leaves Warden only in the notice to them', () => {
  it('appears in the SMTP message to the subject, and nowhere in Temporal histories, logs or tables other than the vault', async () => {
    const identity = canaryIdentity(`canary${Date.now().toString(36)}`);
    const { caseId } = await openCase(identity);
    const req = await cases.requestStep(caseId, 'send_notice');
    await approveAll(caseId, req.body.stepId);
    await cases.readUntil(caseId, (x) => x.notices[0]?.status === 'sent');

    const secrets = [identity.displayName, identity.email!, identity.upn!, identity.manager!];

    // The SMTP peer received them, in the one message addressed to the subject.
    expect(sink.messages).toHaveLength(1);
    const m = sink.messages[0]!;
    expect(m.envelope.rcptTo).toContain(identity.email);
    expect(m.to).toContain(identity.email);
    expect(m.html).toContain(identity.displayName);
    expect(m.raw).toContain(identity.email);

    // Temporal: every workflow this system ran, raw and decoded.
    const executions: Array<{ workflowId: string; runId: string; type: string }> = [];
    for await (const w of sys.client.workflow.list({ query: `TaskQueue = '${sys.taskQueue}'` })) {
      executions.push({ workflowId: w.workflowId, runId: w.runId, type: w.type });
    }
    expect(executions.map((e) => e.type)).toEqual(expect.arrayContaining(['caseWorkflow', 'stepWorkflow', 'noticeWorkflow']));
    for (const e of executions) {
      const { raw, decoded } = await historyText(sys, e.workflowId, e.runId);
      expect(decoded.length, `${e.type} has decodable payloads`).toBeGreaterThan(0);
      for (const s of secrets) {
        expect(raw.includes(s), `${s} in the raw history of ${e.type} ${e.workflowId}`).toBe(false);
        expect(decoded.includes(s), `${s} in the decoded history of ${e.type} ${e.workflowId}`).toBe(false);
      }
      for (const s of secrets) expect(e.workflowId).not.toContain(s);
    }

    // Logs of the API, the worker and the activities.
    const logs = sys.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) expect(logs.includes(s), `${s} in the logs`).toBe(false);

    // Every table but the vault (whose rows are ciphertext).
    const tables = await sys.db.execute<{ table_name: string }>(
      sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' and table_name <> 'identity_vault'`,
    );
    expect(tables.rows.map((t) => t.table_name)).toEqual(
      expect.arrayContaining(['notices', 'notice_outbox', 'case_notes', 'audit_log', 'subjects']),
    );
    for (const { table_name } of tables.rows) {
      const dump = await sys.db.execute<{ row: string }>(sql.raw(`select t::text as row from "${table_name}" t`));
      const text = dump.rows.map((r) => r.row).join('\n');
      for (const s of secrets) expect(text.includes(s), `${s} in table ${table_name}`).toBe(false);
    }
  });
});
