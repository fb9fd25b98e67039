/**
 * Notice test drivers: a template through the API, a case with an approved (or pending) send_notice
 * step written as the case workflow's projections would write it, an identity sealed into the vault
 * with the real helpers, a fault injected into Postgres (a trigger that fails a write a given number
 * of times, like a lost connection), and the delivery workflow run on the test worker.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { expect } from 'vitest';
import { cases, identityVault, steps } from '../../db/schema';
import type { StepStatus } from '../../domain/cases';
import { sealIdentity, type IdentityRecord } from '../../infra/identity';
import { workflowIds, type NoticeWorkflowInput, type NoticeWorkflowResult } from '../../workflows/definitions';
import { createSubject } from './fixtures';
import type { TestSystem } from './system';

export const noticeTemplate = (over: Record<string, unknown> = {}) => ({
  name: 'First notice (EN)',
  language: 'en',
  from: 'insider-risk@example.org',
  fromName: 'Insider Risk Team',
  cc: ['hr-notices@example.org'],
  bcc: ['archive@example.org'],
  subject: 'Notice about case {{case.reference}}',
  htmlBody:
    '<p>Dear {{subject.displayName}},</p><p>Under the policy <b>{{policy.name}}</b> we ask you to respond by {{response.deadline}}.</p>',
  textBody: 'Dear {{subject.displayName}},\n\nUnder the policy {{policy.name}} we ask you to respond by {{response.deadline}}.\n',
  responseDays: 10,
  ...over,
});

export async function putTemplate(sys: TestSystem, id: string, over: Record<string, unknown> = {}) {
  const res = await sys.http
    .put(`/v1/notice-templates/${id}`)
    .set('Authorization', await sys.auth({ sub: 'admin-1', roles: ['admin'], regions: ['*'] }))
    .send(noticeTemplate(over));
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  return res.body as { id: string; version: number };
}

/** A person with a unique name and address, so a test can search for them anywhere. */
export function canaryIdentity(tag = randomBytes(4).toString('hex')): IdentityRecord & { email: string } {
  return {
    externalId: `CANARY-EXT-${tag}`,
    displayName: `Quillon Farthingale-${tag}`,
    email: `quillon.farthingale.${tag}@canary.example.net`,
    upn: `qfarthingale-${tag}@corp.example.net`,
    manager: `Maris Underhollow-${tag}`,
    department: 'Sales',
  };
}

/** A case with a send_notice step in `status`, as the case and step workflows project them. */
export async function seedNoticeCase(
  sys: TestSystem,
  opts: { identity?: IdentityRecord | null; templateId?: string | null; stepStatus?: StepStatus; region?: string } = {},
) {
  const region = opts.region ?? 'eu';
  // The vault row is this subject's: its external id gives the subject's keyed one.
  const identity = opts.identity === null ? null : (opts.identity ?? canaryIdentity());
  const subject = await createSubject(sys.db, sys.config, { region, externalId: identity?.externalId });
  if (identity) {
    const sealed = sealIdentity(sys.config.keys.vault, identity);
    await sys.db.insert(identityVault).values({ subjectId: subject.id, ...sealed });
  }
  const caseId = randomUUID();
  const stepId = randomUUID();
  await sys.db.insert(cases).values({
    id: caseId,
    subjectId: subject.id,
    region,
    severity: 'medium',
    owner: 'investigator-1',
    openedBy: 'analyst-1',
    workflowId: workflowIds.case(caseId),
  });
  const now = new Date();
  const rule = {
    region,
    regionVersion: 1,
    require: [
      { stakeholder: 'hr' as const, count: 1 },
      { stakeholder: 'legal' as const, count: 1 },
    ],
    slaHours: 48,
    remindAtPercent: [],
    onExpiry: 'reject' as const,
    languages: ['en'],
    requireReviewerLanguage: false,
    restricted: [],
  };
  await sys.db.insert(steps).values({
    id: stepId,
    caseId,
    kind: 'send_notice',
    region,
    status: opts.stepStatus ?? 'approved',
    requestedBy: 'investigator-1',
    reason: 'Inform the employee',
    templateId: opts.templateId === undefined ? null : opts.templateId,
    rule,
    requirements: rule.require,
    progress: [],
    outstanding: [],
    languages: ['en'],
    requireLanguage: false,
    restricted: [],
    slaMs: 48 * 3_600_000,
    dueAt: new Date(now.getTime() + 48 * 3_600_000),
    remindAt: [],
    workflowId: workflowIds.step(caseId, stepId),
    requestedAt: now,
  });
  return { caseId, stepId, subjectId: subject.id, noticeId: randomUUID() };
}

/** Run the delivery workflow on the test worker, with a fast retry policy. */
export async function runNotice(
  sys: TestSystem,
  ids: { caseId: string; stepId: string; noticeId: string },
  retry: NoticeWorkflowInput['retry'] = { initialIntervalMs: 200, maximumAttempts: 5 },
): Promise<NoticeWorkflowResult> {
  return sys.client.workflow.execute('noticeWorkflow', {
    taskQueue: sys.taskQueue,
    workflowId: workflowIds.notice(ids.caseId, ids.noticeId),
    args: [{ noticeId: ids.noticeId, caseId: ids.caseId, stepId: ids.stepId, retry } satisfies NoticeWorkflowInput],
    workflowExecutionTimeout: '2 minutes',
  }) as Promise<NoticeWorkflowResult>;
}

/**
 * Make the next `times` writes matching `when` (a trigger condition on NEW/OLD of `table`) fail, as
 * a lost database connection would. The counter is a sequence: it survives the failed transaction.
 */
export async function injectWriteFault(sys: TestSystem, table: 'notices' | 'notice_outbox', when: string, times: number) {
  const name = `fault_${randomBytes(4).toString('hex')}`;
  await sys.db.execute(sql.raw(`create sequence ${name}_seq`));
  await sys.db.execute(
    sql.raw(`create function ${name}() returns trigger as $$
      begin
        if (${when}) and nextval('${name}_seq') <= ${times} then
          raise exception 'injected fault: the connection was lost';
        end if;
        return new;
      end $$ language plpgsql`),
  );
  await sys.db.execute(sql.raw(`create trigger ${name} before update on ${table} for each row execute function ${name}()`));
  return name;
}
