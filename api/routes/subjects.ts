import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../db';
import { appendAudit } from '../../db/audit';
import { importRoster, listSubjectPage, resolveSubjects, type RosterRecord } from '../../db/queries/subjects';
import { alerts, policies, regions, subjectPolicyScores, subjects } from '../../db/schema';
import { regionScope } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { inScope, POLICY_STATUSES, POLICY_TEMPLATES, type PolicyScope } from '../../domain/policies';
import { RegionCode } from '../../domain/regions';
import { SEVERITIES } from '../../domain/signals';
import { CsvRowError, rosterFromCsv, ROSTER_COLUMNS } from '../csv';
import { HttpError, notFound } from '../errors';
import { auditDeniedPerRegion, route } from '../http';
import { CreatedCursor, decodeCursor, page, PageQuery, pageSchema } from '../pagination';
import { SubjectRef, subjectRefs } from '../subject-view';
import { policyOutsideRegion } from './policies';
import { Rejection } from './signals';

/** Largest roster one request may carry (JSON records or CSV rows); more is a 413. */
export const MAX_IMPORT = 10_000;

const Text = (max: number) => z.string().trim().min(1).max(max);

export const RosterRecordSchema = z
  .object({
    externalId: Text(200).describe('The HR system’s id of the person; stored only as a keyed hash and in the vault'),
    displayName: Text(300),
    email: z.string().trim().max(320).email('not an email address').nullable().optional(),
    upn: Text(320).nullable().optional(),
    manager: Text(320).nullable().optional(),
    department: Text(200).nullable().optional(),
    groups: z.array(Text(200)).max(200).default([]),
    region: RegionCode,
  })
  .strict()
  .openapi('RosterRecord');

const ImportBody = z
  .object({ subjects: z.array(z.unknown()).min(1, 'at least one subject').describe(`Up to ${MAX_IMPORT} RosterRecord objects`) })
  .strict()
  .openapi('RosterImport');

const ImportResult = z
  .object({
    created: z.number().int(),
    updated: z.number().int(),
    unchanged: z.number().int(),
    rejected: z.array(Rejection),
    ignoredColumns: z.array(z.string()).optional(),
  })
  .openapi('RosterImportResult');

const PreviousTrigger = z.object({
  triggeredAt: z.string().datetime(),
  score: z.number().int(),
  severity: z.enum(SEVERITIES),
  scoredAt: z.string().datetime(),
});

const SubjectPolicyView = z.object({
  policyId: z.string().uuid(),
  policyName: z.string(),
  template: z.enum(POLICY_TEMPLATES),
  policyStatus: z.enum(POLICY_STATUSES),
  inScope: z.boolean().describe('The subject is in the policy’s current scope (its scope now, the subject’s attributes now)'),
  triggered: z.boolean().describe('In scope and triggered: the policy scores the subject (always false out of scope)'),
  triggeredAt: z.string().datetime().nullable().describe('Set when `triggered`'),
  score: z.number().int().nullable().describe('The current score; set when `triggered`'),
  severity: z.enum(SEVERITIES).nullable().describe('Set when `triggered`'),
  alertId: z.string().uuid().nullable().describe('The pair’s open alert, in or out of scope (an open alert stays open)'),
  suppressedByCap: z.boolean(),
  scoredAt: z.string().datetime().nullable().describe('Set when `triggered`'),
  previousTrigger: PreviousTrigger.nullable().describe(
    'Out of scope only: the last score computed while the subject was in scope (before the policy’s scope changed or the ' +
      'subject was re-imported with other attributes). Frozen, no longer updated; null in scope or when never triggered.',
  ),
});

export const SubjectView = z
  .object({
    subject: SubjectRef,
    region: z.string(),
    department: z.string().nullable(),
    groups: z.array(z.string()),
    policies: z.array(SubjectPolicyView),
  })
  .openapi('SubjectView');

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const UsersQuery = PageQuery.extend({
  policyId: z.string().uuid().optional().describe('Show this policy only (needed by inScope and triggered)'),
  region: RegionCode.optional(),
  inScope: bool.optional(),
  triggered: bool.optional(),
})
  .strict()
  .superRefine((q, ctx) => {
    for (const f of ['inScope', 'triggered'] as const) {
      if (q[f] !== undefined && !q.policyId)
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [f], message: `${f} needs policyId` });
    }
  });

/** A policy's scope as SQL over `subjects` (same rule as domain `inScope`). */
function scopeSql(scope: PolicyScope): SQL {
  const arr = (v: string[]) => sql`${sql.param(v)}::text[]`;
  const uuids = (v: string[]) => sql`${sql.param(v)}::uuid[]`;
  const parts: SQL[] = [];
  if (scope.regions.length) parts.push(sql`${subjects.region} = any(${arr(scope.regions)})`);
  parts.push(
    sql`not (${subjects.id} = any(${uuids(scope.exclude.subjects)}) or ${subjects.groups} && ${arr(scope.exclude.groups)})`,
  );
  if (scope.include.subjects.length || scope.include.groups.length) {
    parts.push(
      sql`(${subjects.id} = any(${uuids(scope.include.subjects)}) or ${subjects.groups} && ${arr(scope.include.groups)})`,
    );
  }
  return sql.join(parts, sql` and `);
}

async function knownRegions(db: Db): Promise<Set<string>> {
  return new Set((await db.select({ code: regions.code }).from(regions)).map((r) => r.code));
}

const isUniqueViolation = (err: unknown) =>
  (err as { code?: string })?.code === '23505' || (err as { cause?: { code?: string } })?.cause?.code === '23505';

export const subjectRoutes = [
  route({
    method: 'post',
    path: '/v1/subjects/import',
    tag: 'Subjects',
    summary: 'Import a roster: create or update subjects (identities go to the vault only)',
    description:
      'JSON `{ subjects: [RosterRecord] }`, or `text/csv` with a header row as HR systems export it ' +
      `(${Object.keys(ROSTER_COLUMNS).join(', ')}; usual synonyms such as "Employee ID", "Email Address", "UserPrincipalName" accepted; ` +
      'groups separated by `;`; comma, semicolon or tab delimited; UTF-8 unless a charset is declared). Identity fields (external id, display name, email, UPN, manager) are encrypted into the identity ' +
      'vault; subjects carry only a keyed hash, a pseudonym, region, department and groups. Re-importing a record is a no-op; ' +
      `a changed record updates. Bad records are rejected by index; the others are kept. At most ${MAX_IMPORT} records (413).`,
    permission: 'subjects:import',
    category: 'subjects',
    body: ImportBody,
    rawBodyTypes: ['text/csv'],
    responses: {
      200: { description: 'Imported', schema: ImportResult },
      413: { description: `More than ${MAX_IMPORT} records` },
      415: { description: 'A CSV charset the server cannot decode (the body is UTF-8 unless `Content-Type` declares a charset)' },
    },
    async handler({ deps, principal, body, actor }) {
      const raw = body as unknown;
      let records: unknown[];
      let ignoredColumns: string[] | undefined;
      if (typeof raw === 'string') {
        ({ records, ignoredColumns } = rosterFromCsv(raw, MAX_IMPORT));
        if (records.length === 0) throw new HttpError(ErrorType.Validation, 'Invalid CSV: no rows after the header');
      } else {
        records = (raw as { subjects: unknown[] }).subjects;
      }
      if (records.length > MAX_IMPORT)
        throw new HttpError(ErrorType.PayloadTooLarge, `At most ${MAX_IMPORT} records per import (got ${records.length})`);

      const rejected: Array<{ index: number; reason: string }> = [];
      const valid: Array<{ index: number; record: RosterRecord }> = [];
      const firstIndex = new Map<string, number>();
      const known = await knownRegions(deps.db);
      const mine = regionScope(principal);
      /** Region → indexes of the records refused for being outside the caller's regions (audited as denied). */
      const outside = new Map<string, number[]>();
      records.forEach((r, index) => {
        if (r instanceof CsvRowError) return void rejected.push({ index, reason: r.reason });
        const parsed = RosterRecordSchema.safeParse(r);
        if (!parsed.success) {
          const i = parsed.error.issues[0]!;
          rejected.push({ index, reason: `${i.path.join('.') || 'record'}: ${i.message}` });
          return;
        }
        const rec = parsed.data;
        if (!known.has(rec.region))
          return void rejected.push({ index, reason: 'region: unknown region (create it with PUT /v1/regions/{code})' });
        if (mine !== null && !mine.includes(rec.region)) {
          outside.set(rec.region, [...(outside.get(rec.region) ?? []), index]);
          return void rejected.push({ index, reason: 'region: outside the caller’s regions' });
        }
        const first = firstIndex.get(rec.externalId);
        if (first !== undefined) return void rejected.push({ index, reason: `externalId: repeats the record at index ${first}` });
        firstIndex.set(rec.externalId, index);
        valid.push({ index, record: rec });
      });

      // A person already imported in a region outside the caller's is not the caller's to change
      // (nor to move into one of its regions): refused like a record of another region.
      if (mine !== null && valid.length) {
        const current = await resolveSubjects(
          deps.db,
          deps.config.keys.pseudonym,
          valid.map((v) => v.record.externalId),
        );
        for (let i = valid.length - 1; i >= 0; i--) {
          const { index, record } = valid[i]!;
          const was = current.get(record.externalId);
          if (!was || mine.includes(was.region)) continue;
          valid.splice(i, 1);
          outside.set(was.region, [...(outside.get(was.region) ?? []), index]);
          rejected.push({ index, reason: 'region: outside the caller’s regions' });
        }
        rejected.sort((a, b) => a.index - b.index);
        for (const list of outside.values()) list.sort((a, b) => a - b);
      }

      let outcome: Awaited<ReturnType<typeof importRoster>> | undefined;
      // A concurrent import creating the same person loses the unique race: retry, it then updates.
      for (let attempt = 0; ; attempt++) {
        try {
          outcome = await deps.db.transaction(async (tx) => {
            const o = await importRoster(tx, { pseudonym: deps.config.keys.pseudonym, vault: deps.config.keys.vault }, valid);
            await auditDeniedPerRegion(tx, actor, 'subjects', outside, (indexes) => ({
              action: 'subjects.import',
              reason: 'outside_region',
              targetType: 'roster',
              details: { count: indexes.length, indexes: indexes.slice(0, 100) }, // the first 100 positions
            }));
            await appendAudit(tx, {
              ...actor,
              action: 'subjects.import',
              category: 'subjects',
              targetType: 'roster',
              outcome: 'allowed',
              details: {
                created: o.created,
                updated: o.updated,
                unchanged: o.unchanged,
                rejected: rejected.length,
                format: typeof raw === 'string' ? 'csv' : 'json',
              },
            });
            return o;
          });
          break;
        } catch (err) {
          if (attempt >= 2 || !isUniqueViolation(err)) throw err;
        }
      }
      rejected.sort((a, b) => a.index - b.index);
      return {
        body: {
          created: outcome.created,
          updated: outcome.updated,
          unchanged: outcome.unchanged,
          rejected,
          ...(ignoredColumns ? { ignoredColumns } : {}),
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/subjects',
    tag: 'Subjects',
    summary: 'The users view: per policy, who is in scope, who was triggered and when, and the current score',
    description:
      'The way to check a new policy works before alerts arrive: with `policyId`, filter by `inScope` and `triggered`. ' +
      'Both follow the policy’s current scope and the subjects’ current attributes: a subject that left the scope (scope ' +
      'changed, or re-imported with another region or groups) is neither in scope nor triggered; its last score from before ' +
      'is shown as `previousTrigger`. Subjects appear by pseudonym; only subjects of the caller’s regions are listed.',
    permission: 'subjects:read',
    category: 'subjects',
    query: UsersQuery,
    responses: { 200: { description: 'Subjects', schema: pageSchema(SubjectView) } },
    async handler({ deps, principal, query, requestId }) {
      const after = decodeCursor(query.cursor, CreatedCursor);
      const mine = regionScope(principal);
      // A policy is shown to a regional caller when it may apply to the caller's subjects: every
      // region (no region in its scope) or one of the caller's. Another region's policy does not
      // exist for it (404, audited like every refusal of an existing object).
      const readable = (p: { scope: PolicyScope }) =>
        mine === null || p.scope.regions.length === 0 || p.scope.regions.some((r) => mine.includes(r));
      const all = await deps.db
        .select()
        .from(policies)
        .where(query.policyId ? eq(policies.id, query.policyId) : undefined)
        .orderBy(policies.createdAt, policies.id);
      if (query.policyId && all.length === 0) throw notFound('Policy');
      if (query.policyId && !readable(all[0]!)) throw policyOutsideRegion('subjects.read', all[0]!);
      const pols = all.filter(readable);
      const conds: SQL[] = [];
      if (query.policyId) {
        const p = pols[0]!;
        // Triggered in the current scope: scoring leaves the score row of a subject that left the scope.
        const triggered = sql`(exists (select 1 from ${subjectPolicyScores} sps where sps.subject_id = ${subjects.id} and sps.policy_id = ${p.id}) and ${scopeSql(p.scope)})`;
        if (query.triggered === true) conds.push(triggered);
        if (query.triggered === false) conds.push(sql`not ${triggered}`);
        if (query.inScope === true) conds.push(scopeSql(p.scope));
        if (query.inScope === false) conds.push(sql`not (${scopeSql(p.scope)})`);
      }
      const rows = await listSubjectPage(deps.db, {
        regions: regionScope(principal),
        region: query.region,
        after,
        limit: query.limit,
        where: conds.length ? and(...conds) : undefined,
      });
      const p = page(rows, query.limit, (r) => [r.cursorAt, r.id]);
      const ids = p.items.map((s) => s.id);
      const scores = ids.length
        ? await deps.db
            .select()
            .from(subjectPolicyScores)
            .where(
              and(
                inArray(subjectPolicyScores.subjectId, ids),
                query.policyId ? eq(subjectPolicyScores.policyId, query.policyId) : undefined,
              ),
            )
        : [];
      const scoreOf = new Map(scores.map((s) => [`${s.subjectId}/${s.policyId}`, s]));
      // The open alert of each pair, from the alerts themselves (the score row's link may lag).
      const open = ids.length
        ? await deps.db
            .select({ id: alerts.id, subjectId: alerts.subjectId, policyId: alerts.policyId })
            .from(alerts)
            .where(and(inArray(alerts.subjectId, ids), inArray(alerts.status, ['needs_review', 'confirmed'])))
        : [];
      const alertOf = new Map(open.map((a) => [`${a.subjectId}/${a.policyId}`, a.id]));
      const refs = await subjectRefs(deps, principal, p.items, requestId);
      return {
        body: {
          items: p.items.map((s) => ({
            subject: refs.get(s.id)!,
            region: s.region,
            department: s.department,
            groups: s.groups,
            policies: pols.map((pol) => {
              const stored = scoreOf.get(`${s.id}/${pol.id}`);
              const scoped = inScope(pol.scope, s);
              // Scoring never deletes a score row: out of the current scope it is history, not the current score.
              const sc = scoped ? stored : undefined;
              const previous = !scoped ? stored : undefined;
              return {
                policyId: pol.id,
                policyName: pol.name,
                template: pol.template,
                policyStatus: pol.status,
                inScope: scoped,
                triggered: !!sc,
                triggeredAt: sc?.triggeredAt.toISOString() ?? null,
                score: sc?.score ?? null,
                severity: sc?.severity ?? null,
                alertId: alertOf.get(`${s.id}/${pol.id}`) ?? null,
                suppressedByCap: sc?.suppressedByCap ?? false,
                scoredAt: sc?.computedAt.toISOString() ?? null,
                previousTrigger: previous
                  ? {
                      triggeredAt: previous.triggeredAt.toISOString(),
                      score: previous.score,
                      severity: previous.severity,
                      scoredAt: previous.computedAt.toISOString(),
                    }
                  : null,
              };
            }),
          })),
          nextCursor: p.nextCursor,
        },
      };
    },
  }),
];
