/**
 * Region isolation (object-level authorization): one object of every kind is built in the EU
 * through the real API and workflows — subjects (roster import), a signal batch scored into alerts,
 * an EU policy (active, and a draft), a case with notes, a reveal grant, a sent notice and a pending
 * step, audit entries and workflow history — beside a few US objects as controls. Then every route
 * of the OpenAPI document (read from `GET /openapi.json`) is called by principals of each of its
 * roles confined to `us`:
 *
 * - object routes answer exactly like for an object that does not exist (the same 404 body), and
 *   the refusal of the existing object is audited once as denied with the object's region
 *   (docs/audit.md "Denied attempts on objects"); the decision route answers 403 `not_in_region`,
 *   as documented (docs/cases.md);
 * - refused commands change nothing: every table but the audit log, and the case and step
 *   workflows' histories, are read back before and after;
 * - lists, exports, histories and audit reads hold no EU object and no EU entry (entries without a
 *   region are tenant-wide and visible to all, db/queries/audit.ts), also when filtered by the EU;
 * - no answer to a US caller carries an EU object's id, pseudonym or identity.
 *
 * A route of the document without a check here, or without a reason in NO_REGIONAL_OBJECT, fails
 * the first test.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import supertest, { type Response, type Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/middleware/auth';
import { auditLog } from '../../db/schema';
import { DEFAULT_REGIONS } from '../../domain/regions';
import type { Role } from '../../domain/roles';
import { createLogger } from '../../infra/logger';
import { startSmtpSink, type SmtpSink } from '../../infra/smtp';
import { workflowIds } from '../../workflows/definitions';
import { caseDriver, people, waitFor, type TestPrincipal } from '../helpers/cases';
import {
  activePolicy,
  createPolicy,
  ev,
  importPeople,
  ingest,
  person,
  policyBody,
  subjectIdOf,
  uniq,
  type Person,
} from '../helpers/detection';
import { putTemplate } from '../helpers/notices';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

const EU = 'eu';
const TEMPLATE_ID = 'iso-first-notice';

/** Callers confined to the US, one per role (the approver: Legal, which every EU step here requires). */
const US: Record<Role, TestPrincipal> = {
  admin: { sub: 'iso-admin-us', roles: ['admin'], regions: ['us'], languages: ['en'] },
  analyst: { sub: 'iso-analyst-us', roles: ['analyst'], regions: ['us'], languages: ['en'] },
  investigator: { sub: 'iso-investigator-us', roles: ['investigator'], regions: ['us'], languages: ['en'] },
  auditor: { sub: 'iso-auditor-us', roles: ['auditor'], regions: ['us'], languages: ['en'] },
  connector: { sub: 'iso-connector-us', roles: ['connector'], regions: ['us'], languages: ['en'] },
  approver: { sub: 'iso-legal-us', roles: ['approver'], stakeholder: 'legal', regions: ['us'], languages: ['en'] },
};
/** The investigator who holds the EU reveal grant, with a token now confined to the US. */
const grantHolderInUs: TestPrincipal = { ...people.investigator, regions: ['us'] };

let sys: TestSystem;
let sink: SmtpSink;
let tables: string[];

/** The EU world and the US controls, by id. */
const eu = {
  subjects: [] as Person[],
  subjectIds: [] as string[],
  policyId: '',
  draftPolicyId: '',
  batchId: '',
  alertId: '', // confirmed into the case
  openAlertId: '', // still needs review
  caseId: '',
  revealStepId: '', // approved
  noticeStepId: '', // approved
  pendingStepId: '', // escalate_investigation, pending
  grantId: '',
  noticeId: '',
  /** Every EU value a US caller must never receive: ids, pseudonyms, identities (value → what it is). */
  data: new Map<string, string>(),
};
const us = { subjectId: '', policyId: '', alertId: '', caseId: '', stepId: '' };

beforeAll(async () => {
  sink = await startSmtpSink();
  sys = await startTestSystem({ env: { SMTP_URL: sink.url } });
  const drive = caseDriver(sys);
  const tableRows = await sys.db.execute<{ table_name: string }>(
    sql`select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`,
  );
  tables = tableRows.rows.map((r) => r.table_name).sort();
  await putTemplate(sys, TEMPLATE_ID, { language: 'en' });

  // Detection: people imported by a connector, regional policies, signals scored into alerts.
  const gEu = uniq('iso-eu');
  const gUs = uniq('iso-us');
  const euScope = { regions: [EU], include: { groups: [gEu] } };
  eu.policyId = (await activePolicy(sys, policyBody('data_theft_departing_users', gEu, { scope: euScope }))).id;
  us.policyId = (
    await activePolicy(
      sys,
      policyBody('data_theft_departing_users', gUs, { scope: { regions: ['us'], include: { groups: [gUs] } } }),
    )
  ).id;
  eu.draftPolicyId = (await createPolicy(sys, policyBody('data_leaks', gEu, { name: `draft ${gEu}`, scope: euScope }))).id;
  eu.subjects = [person(gEu, EU), person(gEu, EU), person(uniq('iso-eu-quiet'), EU)];
  const usPerson = person(gUs, 'us');
  await importPeople(sys, [...eu.subjects, usPerson]);
  eu.subjectIds = await Promise.all(eu.subjects.map((p) => subjectIdOf(sys, p.externalId)));
  us.subjectId = await subjectIdOf(sys, usPerson.externalId);

  const euBatch = await ingest(
    sys,
    eu.subjects.slice(0, 2).flatMap((p) => [ev.resignation(p.externalId), ev.usb(p.externalId, 20)]),
  );
  eu.batchId = euBatch.body.batchId;
  expect(euBatch.scoring?.alertsCreated, 'two EU alerts').toHaveLength(2);
  const usBatch = await ingest(sys, [ev.resignation(usPerson.externalId), ev.usb(usPerson.externalId, 20)]);
  expect(usBatch.scoring?.alertsCreated, 'one US alert').toHaveLength(1);
  us.alertId = usBatch.scoring!.alertsCreated[0]!;
  const alertOf = async (subjectId: string) =>
    (await sys.db.execute<{ id: string }>(sql`select id from alerts where subject_id = ${subjectId}`)).rows[0]!.id;
  eu.alertId = await alertOf(eu.subjectIds[0]!);
  eu.openAlertId = await alertOf(eu.subjectIds[1]!);

  // The EU case: confirmed, a note, an approved reveal (grant), an approved and sent notice, a pending step.
  const confirmed = await drive.confirm(eu.alertId);
  expect(confirmed.status, JSON.stringify(confirmed.body)).toBe(201);
  eu.caseId = confirmed.body.caseId;
  const note = await sys.http
    .post(`/v1/cases/${eu.caseId}/notes`)
    .set('Authorization', await sys.auth(people.investigator))
    .send({ body: 'USB copies before the last working day' });
  expect(note.status, JSON.stringify(note.body)).toBe(201);
  const approve = async (kind: string, extra: Record<string, unknown>, approvers: TestPrincipal[]) => {
    const req = await drive.requestStep(eu.caseId, kind, people.investigator, extra);
    expect(req.status, JSON.stringify(req.body)).toBe(202);
    for (const a of approvers) expect((await drive.decide(eu.caseId, req.body.stepId, a)).status).toBe(200);
    return req.body.stepId as string;
  };
  eu.revealStepId = await approve('reveal_identity', {}, [people.privacy, people.legal]);
  eu.noticeStepId = await approve('send_notice', { templateId: TEMPLATE_ID }, [people.hr, people.legal]);
  const pending = await drive.requestStep(eu.caseId, 'escalate_investigation');
  expect(pending.status, JSON.stringify(pending.body)).toBe(202);
  eu.pendingStepId = pending.body.stepId;
  const detail = await drive.readUntil(
    eu.caseId,
    (c) => c.notices[0]?.status === 'sent' && c.notes.some((n) => n.body.startsWith('Notice sent')) && c.steps.length === 3,
  );
  eu.noticeId = detail.notices[0]!.noticeId;
  const grant = await waitFor(
    async () => (await sys.db.execute<{ id: string }>(sql`select id from reveal_grants where case_id = ${eu.caseId}`)).rows,
    (rows) => rows.length === 1,
  );
  eu.grantId = grant[0]!.id;
  // An EU auditor reads the case's history and exports its audit trail.
  const euAuditor = await sys.auth({ sub: 'iso-auditor-eu', roles: ['auditor'], regions: [EU] });
  expect((await sys.http.get(`/v1/cases/${eu.caseId}/history`).set('Authorization', euAuditor)).status).toBe(200);
  expect((await sys.http.get(`/v1/audit/export?caseId=${eu.caseId}`).set('Authorization', euAuditor)).status).toBe(200);

  // The US controls: a case with a pending step (US rule: one Legal approval).
  const usConfirmed = await drive.confirm(us.alertId);
  expect(usConfirmed.status, JSON.stringify(usConfirmed.body)).toBe(201);
  us.caseId = usConfirmed.body.caseId;
  const usStep = await drive.requestStep(us.caseId, 'escalate_investigation');
  expect(usStep.status, JSON.stringify(usStep.body)).toBe(202);
  us.stepId = usStep.body.stepId;

  // What a US caller must never receive.
  const d = eu.data;
  const pseudonyms = await sys.db.execute<{ id: string; pseudonym: string }>(
    sql`select id, pseudonym from subjects where region = ${EU}`,
  );
  for (const s of pseudonyms.rows) {
    d.set(s.id, `EU subject ${s.id}`);
    d.set(s.pseudonym, `EU subject's pseudonym ${s.pseudonym}`);
  }
  for (const p of eu.subjects) {
    d.set(p.externalId, 'an EU person’s HR id');
    d.set(p.displayName, 'an EU person’s name');
    d.set(p.email, 'an EU person’s email');
  }
  const alertRows = await sys.db.execute<{ id: string }>(sql`select id from alerts where region = ${EU}`);
  for (const a of alertRows.rows) d.set(a.id, `EU alert ${a.id}`);
  d.set(eu.policyId, 'the EU policy');
  d.set(eu.draftPolicyId, 'the EU draft policy');
  d.set(eu.caseId, 'the EU case');
  d.set(eu.revealStepId, 'the EU reveal step');
  d.set(eu.noticeStepId, 'the EU notice step');
  d.set(eu.pendingStepId, 'the EU pending step');
  d.set(eu.grantId, 'the EU reveal grant');
  d.set(eu.noticeId, 'the EU notice');
  for (const n of detail.notes) d.set(n.id, `a note of the EU case (${n.kind})`);
  for (const e of detail.history) d.set(e.id, `a history event of the EU case (${e.type})`);
}, 180_000);

afterAll(async () => {
  await sys?.close();
  await sink?.stop();
});

// ---------------------------------------------------------------------------------------------
// Helpers

async function send(who: TestPrincipal | null, method: string, path: string, body?: unknown, app = sys.http): Promise<Response> {
  const agent = app as unknown as Record<string, (p: string) => Test>;
  let req = agent[method.toLowerCase()]!(path).buffer(true);
  if (who) req = req.set('Authorization', await sys.auth(who));
  if (body !== undefined) req = req.send(body as object);
  return await req;
}

/** The EU values found in a text, except those the caller itself sent (`own`). */
function euDataIn(text: string, own: string[] = []): string[] {
  return [...eu.data.entries()].filter(([v]) => !own.includes(v) && text.includes(v)).map(([, what]) => what);
}

/** What an error answer tells the caller (everything but its request id). */
const errorShape = (res: Response) => {
  const { requestId: _ignored, ...error } = (res.body?.error ?? {}) as Record<string, unknown>;
  return { status: res.status, error };
};

const auditOf = async (res: Response) =>
  sys.db
    .select()
    .from(auditLog)
    .where(sql`${auditLog.requestId} = ${res.headers['x-request-id']!}`);

/** Every row of every table but the audit log (and, optionally, others), and the given workflows' history lengths. */
async function state(opts: { except?: string[]; workflows?: string[] } = {}) {
  const out = new Map<string, Set<string>>();
  for (const t of tables) {
    if (['audit_log', 'audit_checkpoints', ...(opts.except ?? [])].includes(t)) continue;
    const rows = await sys.db.execute<{ row: string }>(sql.raw(`select t::text as row from "${t}" t`));
    out.set(t, new Set(rows.rows.map((r) => r.row)));
  }
  for (const id of opts.workflows ?? []) {
    const { historyLength } = await sys.client.workflow.getHandle(id).describe();
    out.set(`temporal ${id}`, new Set([`history length ${historyLength}`]));
  }
  return out;
}

function changes(before: Map<string, Set<string>>, after: Map<string, Set<string>>) {
  const out: Record<string, { added: string[]; removed: string[] }> = {};
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(k) ?? new Set<string>();
    const a = after.get(k) ?? new Set<string>();
    const added = [...a].filter((x) => !b.has(x));
    const removed = [...b].filter((x) => !a.has(x));
    if (added.length || removed.length) out[k] = { added, removed };
  }
  return out;
}

/** The case's and its pending step's workflows: a refused command must not reach them. */
const caseWorkflows = () => [workflowIds.case(eu.caseId), workflowIds.step(eu.caseId, eu.pendingStepId)];

interface Hidden {
  method: string;
  /** The request on the EU object, and its twin on an object that does not exist. */
  path: string;
  missingPath: string;
  body?: unknown;
  /** The denied entry the refusal leaves (region `eu`, reason `outside_region` unless given). */
  denied: { action: string; targetType: string; targetId: string | null; reason?: string } & Record<string, unknown>;
  /** The twin is refused on the record too (a region's write is audited whether or not it exists). */
  missingAudited?: boolean;
  expectStatus?: number;
}

/**
 * An EU object asked for by a US caller: the same answer as a missing one (status and error body),
 * nothing of the EU in it, one denied entry naming the object and its region, and nothing changed.
 */
async function expectHidden(who: TestPrincipal, h: Hidden) {
  const label = `${who.sub} ${h.method} ${h.path}`;
  const before = await state({ workflows: caseWorkflows() });
  const res = await send(who, h.method, h.path, h.body);
  const missing = await send(who, h.method, h.missingPath, h.body);
  const after = await state({ workflows: caseWorkflows() });
  expect(res.status, `${label}: ${res.text}`).toBe(h.expectStatus ?? 404);
  expect(errorShape(res), `${label}: answered like an object that does not exist`).toEqual(errorShape(missing));
  expect(euDataIn(res.text), `${label}: EU data in the answer`).toEqual([]);
  const entries = await auditOf(res);
  expect(entries, `${label}: one audit entry, the denied attempt`).toHaveLength(1);
  expect(entries[0], `${label}: the denied entry`).toMatchObject({
    actor: who.sub,
    outcome: 'denied',
    reason: 'outside_region',
    region: EU,
    ...h.denied,
  });
  if (!h.missingAudited) expect(await auditOf(missing), `${label}: a missing object leaves no entry`).toEqual([]);
  expect(changes(before, after), `${label}: nothing changed`).toEqual({});
}

/** A list (or read) for a US caller: 200, no EU value, nothing refused; `mustShow` are the US controls it must show. */
async function expectListed(who: TestPrincipal, path: string, mustShow: string[] = []) {
  const res = await send(who, 'GET', path);
  const label = `${who.sub} GET ${path}`;
  expect(res.status, `${label}: ${res.text}`).toBe(200);
  expect(euDataIn(res.text), `${label}: EU data in the answer`).toEqual([]);
  for (const id of mustShow) expect(res.text, `${label}: shows the US control ${id}`).toContain(id);
  const denied = (await auditOf(res)).filter((e) => e.outcome === 'denied');
  expect(denied, `${label}: a list refuses nothing and audits no denial`).toEqual([]);
  return res;
}

const rnd = () => randomUUID();

/** RFC 4180 lines to cells (quoted cells may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

/** Every audit entry the caller can list, oldest first. */
async function allAuditEntries(who: TestPrincipal) {
  const out: Array<Record<string, unknown>> = [];
  let cursor: string | null = null;
  do {
    const res = await send(who, 'GET', `/v1/audit?order=asc&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status, res.text).toBe(200);
    out.push(...(res.body.items as Array<Record<string, unknown>>));
    cursor = res.body.nextCursor as string | null;
  } while (cursor);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Every route: a check per route with a regional object, a reason for the others

/**
 * Routes without a regional object (checked against the document): the same answer in every
 * region. Their GET answers to a US caller are still searched for EU values below.
 */
const NO_REGIONAL_OBJECT: Record<string, string> = {
  'GET /healthz': 'public liveness probe',
  'GET /readyz': 'public readiness probe',
  'GET /metrics': 'public Prometheus metrics (route patterns and counts, no ids)',
  'GET /openapi.json': 'public contract',
  'GET /docs': 'public contract (Swagger UI)',
  'GET /v1/audit/public-key': 'public key of the audit checkpoints',
  'GET /v1/settings': 'tenant-wide settings',
  'PATCH /v1/settings': 'tenant-wide settings',
  'POST /v1/system/check': 'an end-to-end probe; no regional object',
  'POST /codec/decode': 'converts payloads the caller sends; names no object',
  'POST /codec/encode': 'converts payloads the caller sends; names no object',
  'GET /codec/session': 'sets the codec cookie; names no object',
  'GET /v1/notice-templates': 'notice templates are tenant-wide (no region column)',
  'GET /v1/notice-templates/{id}': 'notice templates are tenant-wide (no region column)',
  'PUT /v1/notice-templates/{id}': 'notice templates are tenant-wide (no region column)',
  'GET /v1/audit/verify': 'verifies the one tenant-wide chain; answers counts and hashes, no entries',
  'GET /v1/audit/checkpoints': 'checkpoints sign the one tenant-wide chain (seq and hash only)',
  'POST /v1/audit/checkpoints': 'checkpoints sign the one tenant-wide chain (seq and hash only)',
};

type Check = (who: TestPrincipal) => Promise<void>;
interface RouteCase {
  what: string;
  check: Check;
  /** Callers besides the document's roles confined to the US. */
  also?: TestPrincipal[];
}

const caseCommand = (suffix: string, action: string, body: unknown): RouteCase => ({
  what: `a command on the EU case is a 404 (${action}), audited, and changes nothing`,
  check: (who) =>
    expectHidden(who, {
      method: 'POST',
      path: `/v1/cases/${eu.caseId}/${suffix}`,
      missingPath: `/v1/cases/${rnd()}/${suffix}`,
      body,
      denied: { action, targetType: 'case', targetId: eu.caseId },
    }),
});

const alertCommand = (suffix: string, action: string, body: unknown): RouteCase => ({
  what: `a command on an EU alert is a 404 (${action}), audited, and changes nothing`,
  check: (who) =>
    expectHidden(who, {
      method: 'POST',
      path: `/v1/alerts/${eu.openAlertId}/${suffix}`,
      missingPath: `/v1/alerts/${rnd()}/${suffix}`,
      body,
      denied: { action, targetType: 'alert', targetId: eu.openAlertId },
    }),
});

const ROUTES: Record<string, RouteCase> = {
  'GET /v1/regions': {
    what: 'lists the caller’s regions only',
    check: async (who) => {
      const res = await expectListed(who, '/v1/regions', []);
      expect(res.body.items.map((r: { code: string }) => r.code)).toEqual(['us']);
    },
  },
  'GET /v1/regions/{code}': {
    what: 'the EU region is a 404, audited',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/regions/${EU}`,
        missingPath: '/v1/regions/zz-none',
        denied: { action: 'region.read', targetType: 'region', targetId: EU },
      }),
  },
  'PUT /v1/regions/{code}': {
    what: 'replacing the EU region is a 404, audited, and changes nothing',
    check: (who) =>
      expectHidden(who, {
        method: 'PUT',
        path: `/v1/regions/${EU}`,
        missingPath: '/v1/regions/zz-none',
        body: { ...DEFAULT_REGIONS.eu, name: 'Taken over', revealGrantHours: 720 },
        denied: { action: 'region.update', targetType: 'region', targetId: EU },
        missingAudited: true,
      }),
  },
  'GET /v1/policies': {
    what: 'lists no EU policy',
    check: async (who) => void (await expectListed(who, '/v1/policies?limit=500', [us.policyId])),
  },
  'POST /v1/policies': {
    what: 'a policy reaching into the EU is refused (400, audited) and not created',
    check: async (who) => {
      const before = await state();
      const res = await send(
        who,
        'POST',
        '/v1/policies',
        policyBody('data_leaks', uniq('iso-eu-new'), { scope: { regions: [EU] } }),
      );
      const after = await state();
      expect(res.status, res.text).toBe(400);
      expect(res.body.error.details).toEqual([{ field: 'body.scope.regions', message: expect.any(String) }]);
      const entries = await auditOf(res);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ action: 'policy.create', outcome: 'denied', reason: 'outside_region', region: EU });
      expect(changes(before, after), 'no policy created').toEqual({});
    },
  },
  'GET /v1/policies/{id}': {
    what: 'the EU policy is a 404, audited',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/policies/${eu.policyId}`,
        missingPath: `/v1/policies/${rnd()}`,
        denied: { action: 'policy.read', targetType: 'policy', targetId: eu.policyId },
      }),
  },
  'PATCH /v1/policies/{id}': {
    what: 'changing the EU policy is a 404, audited, and changes nothing',
    check: (who) =>
      expectHidden(who, {
        method: 'PATCH',
        path: `/v1/policies/${eu.policyId}`,
        missingPath: `/v1/policies/${rnd()}`,
        body: { dailyAlertCap: 1, thresholds: { minRiskScore: 99, severity: { medium: 99, high: 100 } } },
        denied: { action: 'policy.update', targetType: 'policy', targetId: eu.policyId },
      }),
  },
  'POST /v1/policies/{id}/activate': {
    what: 'activating the EU draft policy is a 404, audited, and it stays a draft',
    check: (who) =>
      expectHidden(who, {
        method: 'POST',
        path: `/v1/policies/${eu.draftPolicyId}/activate`,
        missingPath: `/v1/policies/${rnd()}/activate`,
        denied: { action: 'policy.activate', targetType: 'policy', targetId: eu.draftPolicyId },
      }),
  },
  'POST /v1/policies/{id}/pause': {
    what: 'pausing the active EU policy is a 404, audited, and it stays active',
    check: (who) =>
      expectHidden(who, {
        method: 'POST',
        path: `/v1/policies/${eu.policyId}/pause`,
        missingPath: `/v1/policies/${rnd()}/pause`,
        denied: { action: 'policy.pause', targetType: 'policy', targetId: eu.policyId },
      }),
  },
  'GET /v1/subjects': {
    what: 'the users view lists no EU person, also filtered by the EU; the EU policy as a filter is a 404',
    check: async (who) => {
      await expectListed(who, '/v1/subjects?limit=500', [us.subjectId, us.policyId]);
      const filtered = await expectListed(who, `/v1/subjects?limit=500&region=${EU}`);
      expect(filtered.body.items).toEqual([]);
      await expectHidden(who, {
        method: 'GET',
        path: `/v1/subjects?policyId=${eu.policyId}`,
        missingPath: `/v1/subjects?policyId=${rnd()}`,
        denied: { action: 'subjects.read', targetType: 'policy', targetId: eu.policyId },
      });
    },
  },
  'POST /v1/signals': {
    what: 'an event about an EU person is rejected like one about nobody, audited, and not stored',
    check: async (who) => {
      const before = await state({ except: ['signal_batches'] });
      const events = [ev.usb(eu.subjects[0]!.externalId, 50), ev.usb(`nobody-${rnd()}`, 50)];
      const res = await send(who, 'POST', '/v1/signals', { events });
      const after = await state({ except: ['signal_batches'] });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({ accepted: 0, scoringWorkflowId: null });
      expect(res.body.rejected).toHaveLength(2);
      expect(res.body.rejected[0], 'the EU person is as unknown as nobody').toEqual({ ...res.body.rejected[1], index: 0 });
      expect(euDataIn(res.text, [eu.subjects[0]!.externalId])).toEqual([]);
      expect(changes(before, after), 'no signal stored').toEqual({});
      const denied = (await auditOf(res)).filter((e) => e.outcome === 'denied');
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({
        action: 'signals.ingest',
        reason: 'outside_region',
        targetType: 'subject',
        targetId: eu.subjectIds[0],
        region: EU,
      });
    },
  },
  'GET /v1/signals/batches/{batchId}': {
    what: 'the batch of EU people shows nothing of the EU (another connector: 404, audited as documented)',
    check: async (who) => {
      if (who.roles.includes('connector')) {
        // Batches belong to the connector that sent them (docs/audit.md: not_batch_owner, no region).
        const res = await send(who, 'GET', `/v1/signals/batches/${eu.batchId}`);
        const missing = await send(who, 'GET', `/v1/signals/batches/${rnd()}`);
        expect(res.status).toBe(404);
        expect(errorShape(res)).toEqual(errorShape(missing));
        const entries = await auditOf(res);
        expect(entries).toHaveLength(1);
        expect(entries[0]).toMatchObject({ action: 'signals.batch.read', reason: 'not_batch_owner', targetId: eu.batchId });
        return;
      }
      const res = await send(who, 'GET', `/v1/signals/batches/${eu.batchId}`);
      expect(res.status, res.text).toBeLessThan(500);
      expect(euDataIn(res.text), `${who.sub}: EU objects named by the batch record (${res.text})`).toEqual([]);
    },
  },
  'GET /v1/alerts': {
    what: 'the queue lists no EU alert, whatever the filter names',
    check: async (who) => {
      await expectListed(who, '/v1/alerts?limit=500', [us.alertId]);
      for (const q of [`region=${EU}`, `subjectId=${eu.subjectIds[1]}`, `policyId=${eu.policyId}`, 'status=needs_review']) {
        await expectListed(who, `/v1/alerts?limit=500&${q}`);
      }
    },
  },
  'GET /v1/alerts/{id}': {
    what: 'an EU alert is a 404, audited',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/alerts/${eu.alertId}`,
        missingPath: `/v1/alerts/${rnd()}`,
        denied: { action: 'alert.read', targetType: 'alert', targetId: eu.alertId },
      }),
  },
  'POST /v1/alerts/{id}/dismiss': alertCommand('dismiss', 'alert.dismiss', { reason: 'false_positive', comment: 'not ours' }),
  'POST /v1/alerts/{id}/assign': alertCommand('assign', 'alert.assign', { assignee: 'mallory' }),
  'POST /v1/alerts/{id}/confirm': alertCommand('confirm', 'alert.confirm', { comment: 'confirming from the US' }),
  'POST /v1/alerts/dismiss': {
    what: 'a bulk dismissal reports an EU alert not_found like a missing one, audits it, and dismisses nothing',
    check: async (who) => {
      const missingId = rnd();
      const before = await state();
      const res = await send(who, 'POST', '/v1/alerts/dismiss', {
        ids: [eu.openAlertId, missingId],
        reason: 'duplicate',
        comment: 'bulk from the US',
      });
      const after = await state();
      expect(res.status, res.text).toBe(200);
      expect(res.body).toEqual({
        dismissed: [],
        failed: [
          { id: eu.openAlertId, reason: 'not_found' },
          { id: missingId, reason: 'not_found' },
        ],
      });
      const entries = await auditOf(res);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        action: 'alerts.bulk_dismiss',
        outcome: 'denied',
        reason: 'outside_region',
        region: EU,
        details: { count: 1, alertIds: [eu.openAlertId] },
      });
      expect(changes(before, after)).toEqual({});
    },
  },
  'GET /v1/cases': {
    what: 'lists no EU case, also filtered by the EU',
    check: async (who) => {
      await expectListed(who, '/v1/cases?limit=500', [us.caseId]);
      const filtered = await expectListed(who, `/v1/cases?limit=500&region=${EU}`);
      expect(filtered.body.items).toEqual([]);
      await expectListed(who, `/v1/cases?limit=500&owner=${encodeURIComponent(people.analyst.sub)}&status=open`);
    },
  },
  'GET /v1/cases/{id}': {
    what: 'the EU case is a 404, audited (not as a read)',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/cases/${eu.caseId}`,
        missingPath: `/v1/cases/${rnd()}`,
        denied: { action: 'case.read', targetType: 'case', targetId: eu.caseId },
      }),
  },
  'POST /v1/cases/{id}/assign': caseCommand('assign', 'case.assign', { owner: 'mallory' }),
  'POST /v1/cases/{id}/notes': caseCommand('notes', 'case.note', { body: 'written from the US' }),
  'POST /v1/cases/{id}/steps': caseCommand('steps', 'case.step.request', {
    kind: 'escalate_hr_action',
    reason: 'requested from the US',
  }),
  'POST /v1/cases/{id}/resolve': caseCommand('resolve', 'case.resolve', { outcome: 'benign', actionTaken: 'closed from the US' }),
  'POST /v1/cases/{id}/steps/{stepId}/decision': {
    what: 'an approver outside the EU is refused 403 not_in_region (documented), audited, whatever the step’s state; changes nothing',
    check: async (who) => {
      const decide = { decision: 'approve', comment: 'approved from the US' };
      for (const [stepId, status] of [
        [eu.pendingStepId, 'pending'],
        [eu.revealStepId, 'approved'],
      ] as const) {
        const label = `${who.sub} decides the ${status} EU step`;
        const before = await state({ workflows: caseWorkflows() });
        const res = await send(who, 'POST', `/v1/cases/${eu.caseId}/steps/${stepId}/decision`, decide);
        const after = await state({ workflows: caseWorkflows() });
        expect
          .soft(
            { status: res.status, reason: res.body.error?.details?.reason },
            `${label}: the answer tells nothing about the step (${res.text})`,
          )
          .toEqual({ status: 403, reason: 'not_in_region' });
        expect(euDataIn(res.text, [eu.caseId, stepId]), label).toEqual([]);
        const entries = await auditOf(res);
        expect(entries, label).toHaveLength(1);
        expect(entries[0], label).toMatchObject({
          action: 'step.decide',
          outcome: 'denied',
          reason: 'not_in_region',
          targetType: 'step',
          targetId: stepId,
          region: EU,
        });
        expect(changes(before, after), label).toEqual({});
      }
      // The EU step named through a US case: no such step there.
      const before = await state({ workflows: caseWorkflows() });
      const cross = await send(who, 'POST', `/v1/cases/${us.caseId}/steps/${eu.pendingStepId}/decision`, decide);
      const missing = await send(who, 'POST', `/v1/cases/${us.caseId}/steps/${rnd()}/decision`, decide);
      const after = await state({ workflows: caseWorkflows() });
      expect(cross.status, cross.text).toBe(404);
      expect(errorShape(cross)).toEqual(errorShape(missing));
      expect(changes(before, after)).toEqual({});
    },
  },
  'GET /v1/approvals/inbox': {
    what: 'holds the US step, not the EU one the approver’s stakeholder owes',
    check: async (who) => {
      const res = await expectListed(who, '/v1/approvals/inbox?limit=500', [us.stepId]);
      expect(res.body.items.map((i: { region: string }) => i.region)).toEqual(['us']);
    },
  },
  'GET /v1/cases/{id}/identity': {
    what: 'the EU identity is a 404, audited — also for the grant holder whose token no longer covers the EU',
    also: [grantHolderInUs],
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/cases/${eu.caseId}/identity`,
        missingPath: `/v1/cases/${rnd()}/identity`,
        denied: { action: 'identity.read', targetType: 'case', targetId: eu.caseId },
      }),
  },
  'GET /v1/cases/{id}/grants': {
    what: 'the EU case’s grants are a 404, audited',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/cases/${eu.caseId}/grants`,
        missingPath: `/v1/cases/${rnd()}/grants`,
        denied: { action: 'identity.grants.read', targetType: 'case', targetId: eu.caseId },
      }),
  },
  'POST /v1/cases/{id}/grants/{grantId}/revoke': {
    what: 'revoking the EU grant is a 404 (through its case or a US case), audited, and the grant stays active',
    check: async (who) => {
      const body = { comment: 'revoked from the US' };
      await expectHidden(who, {
        method: 'POST',
        path: `/v1/cases/${eu.caseId}/grants/${eu.grantId}/revoke`,
        missingPath: `/v1/cases/${rnd()}/grants/${rnd()}/revoke`,
        body,
        denied: { action: 'identity.grant_revoke', targetType: 'case', targetId: eu.caseId },
      });
      await expectHidden(who, {
        method: 'POST',
        path: `/v1/cases/${us.caseId}/grants/${eu.grantId}/revoke`,
        missingPath: `/v1/cases/${us.caseId}/grants/${rnd()}/revoke`,
        body,
        denied: { action: 'identity.grant_revoke', targetType: 'reveal_grant', targetId: eu.grantId },
      });
    },
  },
  'GET /v1/cases/{id}/history': {
    what: 'the EU case’s history is a 404, audited; a US case’s history holds nothing of the EU',
    check: async (who) => {
      await expectHidden(who, {
        method: 'GET',
        path: `/v1/cases/${eu.caseId}/history?limit=500`,
        missingPath: `/v1/cases/${rnd()}/history?limit=500`,
        denied: { action: 'case.history.read', targetType: 'case', targetId: eu.caseId },
      });
      await expectListed(who, `/v1/cases/${us.caseId}/history?limit=500&include=all`, [us.caseId]);
    },
  },
  'GET /v1/cases/{id}/history/raw': {
    what: 'the EU case’s raw history is a 404, audited',
    check: (who) =>
      expectHidden(who, {
        method: 'GET',
        path: `/v1/cases/${eu.caseId}/history/raw`,
        missingPath: `/v1/cases/${rnd()}/history/raw`,
        denied: { action: 'case.history.download', targetType: 'case', targetId: eu.caseId },
      }),
  },
  'GET /v1/audit': {
    what: 'holds no EU entry, also filtered by the EU region or case',
    check: async (who) => {
      const entries = await allAuditEntries(who);
      expect(entries.filter((e) => e.region === EU).map((e) => `${e.seq} ${e.action}`)).toEqual([]);
      expect(entries.some((e) => e.action === 'alert.confirm' && e.targetId === us.alertId && e.region === 'us')).toBe(true);
      for (const q of [`region=${EU}`, `caseId=${eu.caseId}`, `targetId=${eu.caseId}`, `targetId=${eu.openAlertId}`]) {
        const res = await send(who, 'GET', `/v1/audit?limit=1000&${q}`);
        expect(res.status, res.text).toBe(200);
        expect(res.body.items, `${who.sub} GET /v1/audit?${q}`).toEqual([]);
      }
    },
  },
  'GET /v1/audit/export': {
    what: 'NDJSON and CSV exports hold no EU entry, also filtered by the EU region or case',
    check: async (who) => {
      const nd = await send(who, 'GET', '/v1/audit/export?format=ndjson');
      expect(nd.status).toBe(200);
      const lines = nd.text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { region: string | null; action: string; targetId: string | null });
      expect(lines.filter((e) => e.region === EU).map((e) => e.action)).toEqual([]);
      expect(lines.some((e) => e.targetId === us.alertId)).toBe(true);
      const csv = await send(who, 'GET', '/v1/audit/export?format=csv');
      expect(csv.status).toBe(200);
      const [header, ...rows] = parseCsv(csv.text);
      const region = header!.indexOf('region');
      expect(region).toBeGreaterThan(0);
      expect(rows.length, 'the CSV holds at least what the NDJSON held').toBeGreaterThanOrEqual(lines.length);
      expect(rows.filter((r) => r[region] === EU).map((r) => r.join(','))).toEqual([]);
      for (const q of [`region=${EU}`, `caseId=${eu.caseId}`]) {
        const res = await send(who, 'GET', `/v1/audit/export?format=ndjson&${q}`);
        expect(res.text, `${who.sub} export ?${q}`).toBe('');
      }
    },
  },
  'GET /v1/dev/outbox': {
    what: 'the development mail sink shows no EU notice to an administrator outside the EU',
    check: async (who) => {
      const { app } = createApp({
        config: sys.config,
        db: sys.db,
        temporal: sys.client,
        taskQueue: sys.taskQueue,
        logger: createLogger({ level: 'silent' }),
        authenticator: await createAuthenticator(sys.config),
        devMail: sink,
      });
      const http = supertest(app);
      // Premise: the EU notice was captured, and a global administrator sees it.
      const all = await send(
        principals.admin,
        'GET',
        '/v1/dev/outbox?limit=500',
        undefined,
        http as unknown as TestSystem['http'],
      );
      expect(all.text).toContain(`notice.${eu.noticeId}@`);
      const res = await send(who, 'GET', '/v1/dev/outbox?limit=500', undefined, http as unknown as TestSystem['http']);
      expect(res.status, res.text).toBe(200);
      expect(
        { euNotice: res.text.includes(`notice.${eu.noticeId}@`), euData: euDataIn(res.text) },
        `${who.sub}: the EU notice's message and EU data in the outbox`,
      ).toEqual({ euNotice: false, euData: [] });
    },
  },
  // Last: a wrong answer here could move an EU person into the US for the checks after it.
  'POST /v1/subjects/import': {
    what: 'a record of an EU person changes nothing — neither as an EU record (rejected, audited) nor relabelled as a US one',
    check: async (who) => {
      const quiet = eu.subjects[2]!;
      const asEu = { ...quiet, displayName: 'Renamed From The US', email: 'renamed@us.example' };
      let before = await state();
      const refused = await send(who, 'POST', '/v1/subjects/import', { subjects: [asEu] });
      let after = await state();
      expect(refused.status, refused.text).toBe(200);
      expect(refused.body).toEqual({
        created: 0,
        updated: 0,
        unchanged: 0,
        rejected: [{ index: 0, reason: 'region: outside the caller’s regions' }],
      });
      expect(changes(before, after)).toEqual({});
      const denied = (await auditOf(refused)).filter((e) => e.outcome === 'denied');
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({ action: 'subjects.import', reason: 'outside_region', region: EU });

      // The same person's HR id, labelled `us`: the EU subject must not be moved or re-sealed.
      before = await state();
      const relabelled = await send(who, 'POST', '/v1/subjects/import', { subjects: [{ ...asEu, region: 'us' }] });
      after = await state();
      expect(relabelled.status, relabelled.text).toBe(200);
      expect
        .soft(
          { created: relabelled.body.created, updated: relabelled.body.updated },
          `an EU person relabelled as US is not taken over (${relabelled.text})`,
        )
        .toEqual({ created: 0, updated: 0 });
      expect(changes(before, after), 'the EU subject and its vault row are unchanged').toEqual({});
      expect(
        relabelled.body.rejected.map((r: { index: number }) => r.index),
        'the record is rejected',
      ).toEqual([0]);
      const deniedRelabel = (await auditOf(relabelled)).filter((e) => e.outcome === 'denied');
      expect(deniedRelabel, 'refused on the EU’s record').toEqual([
        expect.objectContaining({ action: 'subjects.import', reason: 'outside_region', region: EU }),
      ]);
    },
  },
};

// ---------------------------------------------------------------------------------------------
// Tests

interface Operation {
  key: string;
  roles: Role[];
}
let operationsCache: Operation[] | null = null;
/** The routes of the OpenAPI document as served, with the roles each allows. */
async function operations(): Promise<Operation[]> {
  if (operationsCache) return operationsCache;
  const res = await sys.http.get('/openapi.json');
  expect(res.status).toBe(200);
  const paths = res.body.paths as Record<string, Record<string, { 'x-warden-roles'?: Role[] }>>;
  const methods = ['get', 'put', 'post', 'patch', 'delete'];
  operationsCache = Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([m]) => methods.includes(m))
      .map(([m, op]) => ({ key: `${m.toUpperCase()} ${path}`, roles: op['x-warden-roles'] ?? [] })),
  );
  return operationsCache;
}

describe('region isolation: every route, called from outside the EU', () => {
  it('every route of the OpenAPI document has a region check or a reason it has no regional object', async () => {
    const documented = (await operations()).map((o) => o.key).sort();
    const covered = [...Object.keys(ROUTES), ...Object.keys(NO_REGIONAL_OBJECT)];
    expect(
      documented.filter((k) => !covered.includes(k)),
      'routes without a check in ROUTES or a reason in NO_REGIONAL_OBJECT',
    ).toEqual([]);
    expect(
      covered.filter((k) => !documented.includes(k)),
      'entries for routes the document does not have',
    ).toEqual([]);
    expect(
      Object.keys(ROUTES).filter((k) => k in NO_REGIONAL_OBJECT),
      'a route is either checked or exempt',
    ).toEqual([]);
  });

  it('routes without a regional object answer a US caller with nothing of the EU', async () => {
    for (const op of await operations()) {
      if (!(op.key in NO_REGIONAL_OBJECT) || !op.key.startsWith('GET ')) continue;
      const path = op.key.slice(4).replace('{id}', TEMPLATE_ID);
      const who = op.roles[0] ? US[op.roles[0]] : null;
      const res = await send(who, 'GET', path);
      expect(res.status, `${op.key}: ${res.status}`).toBeLessThan(500);
      expect(euDataIn(res.text), `${op.key}: EU data in the answer`).toEqual([]);
    }
  });

  for (const [key, route] of Object.entries(ROUTES)) {
    it(`${key}: ${route.what}`, async () => {
      const op = (await operations()).find((o) => o.key === key);
      expect(op, `${key} is in the OpenAPI document`).toBeDefined();
      expect(op!.roles.length, `${key} names the roles it allows`).toBeGreaterThan(0);
      for (const role of op!.roles) await route.check(US[role]);
      for (const who of route.also ?? []) await route.check(who);
    });
  }
});

describe('region isolation: the audit trail a US auditor reads', () => {
  it('no entry visible outside the EU names an EU object (entries about EU objects carry the EU region)', async () => {
    const visible = await allAuditEntries(US.auditor);
    // The US callers' own entries repeat what they sent (ids in paths and filters): not a leak.
    const own = new Set(Object.values(US).map((p) => p.sub));
    const naming = visible
      .filter((e) => !own.has(e.actor as string))
      .map((e) => ({ e, found: euDataIn(JSON.stringify(e)) }))
      .filter((x) => x.found.length > 0)
      .map(
        ({ e, found }) =>
          `seq ${e.seq} ${e.action} by ${e.actor as string} (region ${String(e.region)}, target ${String(e.targetType)}): ${[...new Set(found)].join('; ')}`,
      );
    expect(naming).toEqual([]);
  });

  it('refusals of EU objects are on the EU’s record: an EU auditor sees them, a US auditor does not', async () => {
    const refused = await send(US.investigator, 'GET', `/v1/cases/${eu.caseId}`);
    expect(refused.status).toBe(404);
    const requestId = refused.headers['x-request-id']!;
    const euAuditor: TestPrincipal = { sub: 'iso-auditor-eu', roles: ['auditor'], regions: [EU] };
    const query = `/v1/audit?limit=1000&outcome=denied&actor=${US.investigator.sub}`;
    const euSide = await send(euAuditor, 'GET', query);
    const usSide = await send(US.auditor, 'GET', query);
    const ofRequest = (res: Response) =>
      (res.body.items as Array<{ requestId: string }>).filter((e) => e.requestId === requestId);
    expect(ofRequest(euSide), 'the EU auditor sees the refusal').toEqual([
      expect.objectContaining({ action: 'case.read', reason: 'outside_region', targetId: eu.caseId, region: EU }),
    ]);
    expect(ofRequest(usSide), 'the US auditor does not').toEqual([]);
  });
});
