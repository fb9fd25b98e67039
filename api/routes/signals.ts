import { randomUUID } from 'node:crypto';
import { and, inArray } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../../db';
import { appendAudit } from '../../db/audit';
import { getBatch, noteConnectorData, storeBatch, type SignalInsert } from '../../db/queries/signals';
import { resolveSubjects } from '../../db/queries/subjects';
import { alerts } from '../../db/schema';
import { regionScope, type Principal } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import {
  isActivityType,
  MAX_SIGNAL_BATCH,
  parseSignalEvent,
  SEALED_ATTRIBUTES,
  SIGNAL_TYPES,
  type ValidEvent,
} from '../../domain/signals';
import { sealText } from '../../infra/sealed';
import { detectionWorkflowIds } from '../../workflows/definitions';
import type { scoreSignalBatchWorkflow } from '../../workflows/scoring';
import { CsvRowError, hrEventsFromCsv, HR_EVENT_COLUMNS } from '../csv';
import { deniedNotFound, HttpError, notFound } from '../errors';
import { auditDeniedPerRegion, route } from '../http';

export const Rejection = z.object({ index: z.number().int(), reason: z.string() }).openapi('Rejection');

const SignalBatchBody = z
  .object({
    events: z
      .array(z.unknown())
      .min(1, 'a batch has at least one event')
      .describe(
        `Up to ${MAX_SIGNAL_BATCH} events (more: 413). Each: { source, externalId, subject, type, occurredAt, severity?, attributes }. ` +
          `Types: ${SIGNAL_TYPES.join(', ')}. Bad events are rejected by index; the others are kept.`,
      ),
  })
  .strict()
  .openapi('SignalBatch');

const SignalBatchResult = z
  .object({
    batchId: z.string().uuid(),
    accepted: z.number().int().describe('New events stored'),
    duplicates: z.number().int().describe('Events already stored (same source + externalId), or repeated in this batch'),
    rejected: z.array(Rejection),
    scoringWorkflowId: z.string().nullable().describe('The scoring workflow of this batch (one per batch)'),
    ignoredColumns: z.array(z.string()).optional().describe('CSV columns that are not part of an HR event'),
  })
  .openapi('SignalBatchResult');

const BatchStatus = z
  .object({
    batchId: z.string().uuid(),
    accepted: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.number().int(),
    subjects: z.number().int(),
    status: z.enum(['scoring', 'scored', 'not_scored']),
    scoringWorkflowId: z.string().nullable(),
    receivedAt: z.string().datetime(),
    scoredAt: z.string().datetime().nullable(),
    result: z.record(z.unknown()).nullable().describe('Counts and alert ids'),
  })
  .openapi('SignalBatchStatus');

/** How many subject ids a denied entry of a batch lists. */
const DENIED_IDS_LISTED = 100;

const UNKNOWN_SUBJECT = 'subject: unknown subject (import it with POST /v1/subjects/import first)';

/**
 * A batch's scoring result as the caller may see it: alert ids outside its regions left out (a
 * batch holds signals of people of every region its connector covers).
 */
async function resultInScope(db: Db, principal: Principal, result: Record<string, unknown>) {
  const scope = regionScope(principal);
  if (scope === null) return result;
  const lists = ['alertsCreated', 'alertsRaised'].filter((k) => Array.isArray(result[k]));
  const ids = lists.flatMap((k) => result[k] as string[]);
  if (!ids.length) return result;
  const visible = new Set(
    (
      await db
        .select({ id: alerts.id })
        .from(alerts)
        .where(and(inArray(alerts.id, ids), inArray(alerts.region, scope.length ? scope : [''])))
    ).map((r) => r.id),
  );
  return { ...result, ...Object.fromEntries(lists.map((k) => [k, (result[k] as string[]).filter((id) => visible.has(id))])) };
}

export const signalRoutes = [
  route({
    method: 'post',
    path: '/v1/signals',
    tag: 'Signals',
    summary: 'Ingest a batch of signals (HR events, DLP and endpoint alerts, activity)',
    description:
      'JSON `{ events: [...] }`, or for HR files `text/csv` with a header row ' +
      `(${Object.keys(HR_EVENT_COLUMNS).join(', ')}; usual synonyms accepted; comma, semicolon or tab delimited; UTF-8 unless a charset is declared). Each event is keyed by source + externalId: ` +
      'a replay counts as a duplicate, never twice. Bad events are rejected by index with a reason; the good ones are kept. ' +
      'The answer comes once the events are stored and the batch’s scoring workflow is started (202); ' +
      'follow `Location` (or the workflow) for the scoring result.',
    permission: 'signals:write',
    category: 'signals',
    body: SignalBatchBody,
    rawBodyTypes: ['text/csv'],
    responses: {
      202: { description: 'Stored; scoring started', schema: SignalBatchResult },
      200: { description: 'Nothing to score (every event rejected)', schema: SignalBatchResult },
      413: { description: `More than ${MAX_SIGNAL_BATCH} events` },
      415: { description: 'A CSV charset the server cannot decode (the body is UTF-8 unless `Content-Type` declares a charset)' },
    },
    async handler({ deps, principal, body, actor }) {
      const raw = body as unknown;
      let events: unknown[];
      let ignoredColumns: string[] | undefined;
      if (typeof raw === 'string') {
        ({ events, ignoredColumns } = hrEventsFromCsv(raw, MAX_SIGNAL_BATCH, deps.config.keys.pseudonym));
        if (events.length === 0) throw new HttpError(ErrorType.Validation, 'Invalid CSV: no rows after the header');
      } else {
        events = (raw as { events: unknown[] }).events;
      }
      if (events.length > MAX_SIGNAL_BATCH) {
        throw new HttpError(
          ErrorType.PayloadTooLarge,
          `At most ${MAX_SIGNAL_BATCH} events per batch (got ${events.length}); split the batch`,
        );
      }

      const rejected: Array<{ index: number; reason: string }> = [];
      const valid: Array<{ index: number; event: ValidEvent }> = [];
      const seen = new Set<string>();
      let repeated = 0;
      events.forEach((e, index) => {
        if (e instanceof CsvRowError) return void rejected.push({ index, reason: e.reason });
        const r = parseSignalEvent(e);
        if (!r.ok) {
          rejected.push({ index, reason: r.reason });
          return;
        }
        const key = `${r.event.source}/${r.event.externalId}`;
        if (seen.has(key)) {
          repeated++;
          return;
        }
        seen.add(key);
        valid.push({ index, event: r.event });
      });

      // Subjects outside the connector's regions are as unknown as subjects never imported.
      const scope = regionScope(principal);
      const names = [...new Set(valid.map((v) => v.event.subject))];
      // Looked up in every region: one outside the connector's is rejected as unknown, and audited.
      const found = await resolveSubjects(deps.db, deps.config.keys.pseudonym, names);
      const outside = new Map<string, { subjectIds: Set<string>; events: number }>();
      const rows: SignalInsert[] = [];
      for (const { index, event } of valid) {
        const subject = found.get(event.subject);
        if (!subject || (scope !== null && !scope.includes(subject.region))) {
          rejected.push({ index, reason: UNKNOWN_SUBJECT });
          if (subject) {
            const o = outside.get(subject.region) ?? { subjectIds: new Set<string>(), events: 0 };
            o.subjectIds.add(subject.id);
            o.events++;
            outside.set(subject.region, o);
          }
          continue;
        }
        // Free-text fields leave the attributes for the sealed column (most events have none: no copy).
        let attributes = event.attributes;
        let sealed: string | null = null;
        if (SEALED_ATTRIBUTES.some((f) => f in attributes)) {
          attributes = { ...attributes };
          const secret: Record<string, string> = {};
          for (const f of SEALED_ATTRIBUTES) {
            if (typeof attributes[f] === 'string') secret[f] = attributes[f] as string;
            delete attributes[f];
          }
          if (Object.keys(secret).length) sealed = sealText(deps.config.keys.vault, secret);
        }
        rows.push({
          source: event.source,
          externalId: event.externalId,
          subjectId: subject.id,
          type: event.type,
          severity: event.severity ?? null,
          occurredAt: event.occurredAt,
          count: isActivityType(event.type) ? ((attributes.count as number | undefined) ?? 1) : 1,
          attributes,
          sealed,
        });
      }
      rejected.sort((a, b) => a.index - b.index);

      const batchId = randomUUID();
      const subjectIds = [...new Set(rows.map((r) => r.subjectId))].sort();
      const scoringWorkflowId = subjectIds.length ? detectionWorkflowIds.scoreBatch(batchId) : null;
      const validCount = rows.length + repeated;
      const accepted = await deps.db.transaction(async (tx) => {
        const n = await storeBatch(
          tx,
          {
            id: batchId,
            receivedBy: principal.sub,
            valid: validCount,
            rejected: rejected.length,
            subjects: subjectIds.length,
            scoringWorkflowId,
          },
          rows,
        );
        // Audit last: its chain lock is then held for the shortest time.
        await auditDeniedPerRegion(tx, actor, 'signals', outside, (o) => {
          const subjectIds = [...o.subjectIds].sort();
          return {
            action: 'signals.ingest',
            reason: 'outside_region',
            targetType: 'subject',
            targetId: subjectIds.length === 1 ? subjectIds[0] : null,
            // At most DENIED_IDS_LISTED ids: the count says how many there were.
            details: {
              batchId,
              subjects: subjectIds.length,
              subjectIds: subjectIds.slice(0, DENIED_IDS_LISTED),
              events: o.events,
            },
          };
        });
        await appendAudit(tx, {
          ...actor,
          action: 'signals.ingest',
          category: 'signals',
          targetType: 'signal_batch',
          targetId: batchId,
          outcome: 'allowed',
          details: {
            accepted: n,
            duplicates: validCount - n,
            rejected: rejected.length,
            subjects: subjectIds.length,
            format: typeof raw === 'string' ? 'csv' : 'json',
          },
        });
        return n;
      });
      // After the commit: a kind noted here is one whose signals are stored.
      const kinds = new Map(rows.map((r) => [`${r.source}/${r.type}`, { source: r.source, type: r.type }]));
      await noteConnectorData(deps.db, [...kinds.values()]);

      // Every valid event's subject is re-scored, duplicates included: if an earlier attempt stored
      // the events but died before its scoring started, the connector's retry still scores them.
      if (scoringWorkflowId) {
        await deps.temporal.workflow.start<typeof scoreSignalBatchWorkflow>('scoreSignalBatchWorkflow', {
          taskQueue: deps.taskQueue,
          workflowId: scoringWorkflowId,
          requestEagerStart: deps.eagerStart === true,
          // Only the batch id: its subjects are read from the batch record, they stay out of the payloads.
          args: [{ batchId }],
        });
      }
      const result = {
        batchId,
        accepted,
        duplicates: rows.length - accepted + repeated,
        rejected,
        scoringWorkflowId,
        ...(ignoredColumns ? { ignoredColumns } : {}),
      };
      return {
        status: scoringWorkflowId ? 202 : 200,
        headers: { Location: `/v1/signals/batches/${batchId}` },
        body: result,
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/signals/batches/{batchId}',
    tag: 'Signals',
    summary: 'What happened to an ingested batch: counts, and its scoring result once scored',
    permission: 'signals:read',
    category: 'signals',
    params: z.object({ batchId: z.string().uuid() }),
    responses: { 200: { description: 'The batch', schema: BatchStatus } },
    async handler({ deps, principal, params }) {
      const b = await getBatch(deps.db, params.batchId);
      // A connector sees its own batches; administrators every batch.
      if (!b) throw notFound('Batch');
      if (!principal.roles.includes('admin') && b.receivedBy !== principal.sub) {
        throw deniedNotFound('Batch', {
          action: 'signals.batch.read',
          reason: 'not_batch_owner',
          targetType: 'signal_batch',
          targetId: b.id,
        });
      }
      return {
        body: {
          batchId: b.id,
          accepted: b.accepted,
          duplicates: b.duplicates,
          rejected: b.rejected,
          subjects: b.subjects,
          status: !b.scoringWorkflowId ? 'not_scored' : b.scoredAt ? 'scored' : 'scoring',
          scoringWorkflowId: b.scoringWorkflowId,
          receivedAt: b.receivedAt.toISOString(),
          scoredAt: b.scoredAt?.toISOString() ?? null,
          result: b.result ? await resultInScope(deps.db, principal, b.result) : null,
        },
      };
    },
  }),
];
