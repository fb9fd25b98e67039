/**
 * Detection test helpers: a roster imported through the API, signals sent through the API (and the
 * batch's scoring workflow awaited), policies created and activated through the API. Every test
 * uses its own group, so the policies of one test never score the subjects of another.
 */
import { randomBytes } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import { subjectPolicyScores, subjects } from '../../db/schema';
import { externalKey } from '../../infra/identity';
import type { ScoreSubjectsResult } from '../../workflows/definitions';
import { principals, type TestSystem } from './system';

export const uniq = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

export const BASE = Date.parse('2026-11-02T09:00:00Z');
export const DAY = 86_400_000;
export const at = (offsetMs: number) => new Date(BASE + offsetMs).toISOString();

let seq = 0;
const eid = (p: string) => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}-${randomBytes(3).toString('hex')}`;

// A type alias (not an interface), so a Person also fits `Record<string, unknown>`.
export type Person = {
  externalId: string;
  displayName: string;
  email: string;
  groups: string[];
  region: string;
};

export function person(group: string, region = 'eu', extra: Partial<Person> = {}): Person {
  const externalId = uniq('E');
  return {
    externalId,
    displayName: `Person ${externalId}`,
    email: `${externalId.toLowerCase()}@corp.example`,
    groups: [group],
    region,
    ...extra,
  };
}

export async function importPeople(sys: TestSystem, people: Array<{ externalId: string } & Record<string, unknown>>) {
  const res = await sys.http
    .post('/v1/subjects/import')
    .set('Authorization', await sys.auth(principals.connector))
    .send({ subjects: people });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { created: number; updated: number; unchanged: number; rejected: Array<{ index: number; reason: string }> };
}

export async function subjectIdOf(sys: TestSystem, externalId: string): Promise<string> {
  const [row] = await sys.db
    .select({ id: subjects.id })
    .from(subjects)
    .where(eq(subjects.externalKey, externalKey(sys.config.keys.pseudonym, externalId)));
  if (!row) throw new Error('subject not imported');
  return row.id;
}

export interface IngestResult {
  status: number;
  body: {
    batchId: string;
    accepted: number;
    duplicates: number;
    rejected: Array<{ index: number; reason: string }>;
    scoringWorkflowId: string | null;
  };
  scoring: ScoreSubjectsResult | null;
}

/** POST /v1/signals and wait for the batch's scoring workflow. */
export async function ingest(sys: TestSystem, events: unknown[]): Promise<IngestResult> {
  const res = await sys.http
    .post('/v1/signals')
    .set('Authorization', await sys.auth(principals.connector))
    .send({ events });
  expect([200, 202], JSON.stringify(res.body)).toContain(res.status);
  return { status: res.status, body: res.body, scoring: await scoringOf(sys, res.body.scoringWorkflowId) };
}

export async function scoringOf(sys: TestSystem, workflowId: string | null): Promise<ScoreSubjectsResult | null> {
  if (!workflowId) return null;
  return (await sys.client.workflow.getHandle(workflowId).result()) as ScoreSubjectsResult;
}

// Event builders (subject = the HR external id, as connectors send it).
export const ev = {
  resignation: (subject: string, when = at(0)) => ({
    source: 'hr',
    externalId: eid('hr'),
    subject,
    type: 'resignation',
    occurredAt: when,
    attributes: { lastWorkingDate: when.slice(0, 10) },
  }),
  termination: (subject: string, when = at(0)) => ({
    source: 'hr',
    externalId: eid('hr'),
    subject,
    type: 'termination',
    occurredAt: when,
    attributes: {},
  }),
  performanceReview: (subject: string, when = at(0), remarks?: string) => ({
    source: 'hr',
    externalId: eid('hr'),
    subject,
    type: 'performance_review',
    occurredAt: when,
    attributes: { rating: 1, effectiveDate: when.slice(0, 10), ...(remarks ? { remarks } : {}) },
  }),
  levelChange: (subject: string, oldLevel: string, newLevel: string, when = at(0)) => ({
    source: 'hr',
    externalId: eid('hr'),
    subject,
    type: 'job_level_change',
    occurredAt: when,
    attributes: { oldLevel, newLevel },
  }),
  dlp: (subject: string, severity: 'low' | 'medium' | 'high', when = at(0)) => ({
    source: 'dlp',
    externalId: eid('dlp'),
    subject,
    type: 'dlp_alert',
    occurredAt: when,
    severity,
    attributes: { policy: 'PCI', files: 3 },
  }),
  endpoint: (subject: string, when = at(0)) => ({
    source: 'endpoint',
    externalId: eid('edr'),
    subject,
    type: 'endpoint_alert',
    occurredAt: when,
    attributes: { alertType: 'malware', status: 'new' },
  }),
  activity: (subject: string, type: string, count: number, when = at(DAY)) => ({
    source: 'activity',
    externalId: eid('act'),
    subject,
    type,
    occurredAt: when,
    attributes: { count },
  }),
  usb: (subject: string, count: number, when = at(DAY)) => ev.activity(subject, 'file_copied_to_usb', count, when),
};

export interface PolicyBody {
  name?: string;
  template: 'data_theft_departing_users' | 'data_leaks' | 'security_policy_violations' | 'risky_users';
  scope?: unknown;
  priorityGroups?: string[];
  indicators?: Record<string, number>;
  thresholds?: { minRiskScore: number; severity: { medium: number; high: number } };
  boosters?: Partial<{ priorityGroup: number; aboveUsualActivity: number; previousViolation: number }>;
  activationWindowDays?: number;
  dailyAlertCap?: number;
}

/** A policy body confined to `group`, counting USB copies at 3 points each, boosters off. */
export function policyBody(template: PolicyBody['template'], group: string, over: Partial<PolicyBody> = {}): PolicyBody {
  return {
    name: `${template} ${group}`,
    template,
    scope: { include: { groups: [group] } },
    indicators: { file_copied_to_usb: 3 },
    thresholds: { minRiskScore: 40, severity: { medium: 60, high: 80 } },
    boosters: { priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 0 },
    activationWindowDays: 30,
    dailyAlertCap: 100,
    ...over,
  };
}

export async function createPolicy(sys: TestSystem, body: PolicyBody) {
  const res = await sys.http
    .post('/v1/policies')
    .set('Authorization', await sys.auth(principals.admin))
    .send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as {
    id: string;
    version: number;
    status: string;
    prerequisites: { met: boolean; missing: Array<{ id: string }> };
  };
}

/** The connector data each template needs, sent for a throwaway subject outside every test group. */
export async function satisfyPrerequisites(sys: TestSystem, template: PolicyBody['template']) {
  const p = person(uniq('prereq'));
  await importPeople(sys, [p]);
  const event = {
    data_theft_departing_users: ev.resignation(p.externalId),
    data_leaks: ev.dlp(p.externalId, 'low'),
    security_policy_violations: ev.endpoint(p.externalId),
    risky_users: ev.performanceReview(p.externalId),
  }[template];
  await ingest(sys, [event]);
}

export async function activate(sys: TestSystem, policyId: string) {
  const res = await sys.http.post(`/v1/policies/${policyId}/activate`).set('Authorization', await sys.auth(principals.admin));
  if (res.status === 200 && res.body.backfillWorkflowId)
    await sys.client.workflow.getHandle(res.body.backfillWorkflowId).result();
  return res;
}

export async function activePolicy(sys: TestSystem, body: PolicyBody) {
  await satisfyPrerequisites(sys, body.template);
  const p = await createPolicy(sys, body);
  const res = await activate(sys, p.id);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as { id: string; version: number };
}

/** The stored score row of a (subject, policy) pair, or null. */
export async function scoreOf(sys: TestSystem, subjectId: string, policyId: string) {
  const [row] = await sys.db
    .select()
    .from(subjectPolicyScores)
    .where(and(eq(subjectPolicyScores.subjectId, subjectId), eq(subjectPolicyScores.policyId, policyId)));
  return row ?? null;
}

/** A departing person in a fresh group with an active data-theft policy scoped to that group. */
export async function departing(sys: TestSystem, over: Parameters<typeof policyBody>[2] = {}) {
  const g = uniq('g');
  const policy = await activePolicy(sys, policyBody('data_theft_departing_users', g, over));
  const p = person(g);
  await importPeople(sys, [p]);
  return { g, policy, p, sid: await subjectIdOf(sys, p.externalId) };
}
