/**
 * Auditors read a case's workflow history: the case workflow (every continue-as-new run) and its
 * child workflows (steps, notices), decoded and readable, paged; or download it raw (payloads
 * still encrypted) to replay it. Closed runs come from the archive written when they closed
 * (activities/archive.ts), so a closed case is served entirely from Postgres even after Temporal's
 * retention deleted it; runs still open come from Temporal.
 */
import type { LoadedDataConverter } from '@temporalio/common';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/data-converter-helpers';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { getCaseRow } from '../../db/queries/cases';
import { archiveHistorySource } from '../../db/queries/history-archive';
import { inRegion } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import type { Config } from '../../infra/config';
import { createDataConverter } from '../../infra/temporal';
import { collectWorkflowTree, mergeEvents, renderEvents } from '../../infra/workflow-history';
import { workflowIds } from '../../workflows/definitions';
import { HttpError, notFound, outsideRegion } from '../errors';
import { route, type HandlerContext } from '../http';
import { decodeCursor, encodeCursor } from '../pagination';
import { writeChunk } from '../streaming';

const converters = new WeakMap<Config, LoadedDataConverter>();
function converterFor(config: Config): LoadedDataConverter {
  let c = converters.get(config);
  if (!c) converters.set(config, (c = loadDataConverter(createDataConverter(config))));
  return c;
}

const CaseParams = z.object({ id: z.string().uuid() });

export const HistoryQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(100),
    cursor: z.string().max(200).optional(),
    include: z
      .enum(['readable', 'all'])
      .default('readable')
      .describe('`all` adds Temporal’s bookkeeping events (workflow tasks, activity starts)'),
  })
  .strict();

const Actor = z.object({ sub: z.string(), roles: z.array(z.string()), stakeholder: z.string().optional() });

export const HistoryEventSchema = z
  .object({
    position: z.number().int().describe('1-based position in the merged, time-ordered list'),
    at: z.string().datetime(),
    workflowId: z.string(),
    runId: z.string(),
    run: z.number().int().describe('Run number in the workflow’s continue-as-new chain (0: unknown, earlier runs lost)'),
    workflowType: z.string(),
    eventId: z.number().int(),
    type: z.string().describe('Temporal event type, e.g. `WorkflowExecutionUpdateAccepted`, `TimerFired`'),
    summary: z.string().describe('One readable line: who did what'),
    actor: Actor.nullable().describe('The person or process behind the event, from the typed actor in its input'),
    identity: z.string().nullable().describe('The Temporal client or worker identity that sent the command'),
    details: z.record(z.unknown()).describe('Decoded inputs, results, failures, names and timers'),
  })
  .openapi('HistoryEvent');

export const WorkflowRunSchema = z.object({
  workflowId: z.string(),
  runId: z.string(),
  run: z.number().int(),
  workflowType: z.string(),
  status: z.enum(['running', 'completed', 'failed', 'canceled', 'terminated', 'continued_as_new', 'timed_out']),
  startedAt: z.string().datetime(),
  closedAt: z.string().datetime().nullable(),
  parentWorkflowId: z.string().nullable(),
  continuedFromRunId: z.string().nullable(),
  newExecutionRunId: z.string().nullable(),
  eventCount: z.number().int(),
  source: z.enum(['archive', 'temporal']),
});

export const CaseHistoryPage = z
  .object({
    caseId: z.string().uuid(),
    workflowId: z.string(),
    source: z.enum(['archive', 'temporal', 'mixed']).describe('Where the runs came from: all archived, all live, or both'),
    complete: z.boolean().describe('False when a run is neither archived nor retained by Temporal any more'),
    workflows: z.array(WorkflowRunSchema),
    missing: z.array(z.object({ workflowId: z.string(), runId: z.string().nullable(), reason: z.string() })),
    items: z.array(HistoryEventSchema),
    nextCursor: z.string().nullable(),
  })
  .openapi('CaseHistoryPage');

const HistoryCursor = z.tuple([z.enum(['readable', 'all']), z.number().int().min(0)]);

type Ctx = Pick<HandlerContext<z.infer<typeof CaseParams>, unknown, unknown>, 'deps' | 'principal' | 'actor' | 'params'>;

/** The case in the caller's scope; an attempt on another region's case is audited as denied and answered 404. */
async function caseForHistory(ctx: Ctx, action: string) {
  const row = await getCaseRow(ctx.deps.db, ctx.params.id);
  if (!row) throw notFound('Case');
  if (!inRegion(ctx.principal, row.region)) {
    throw outsideRegion('Case', action, row);
  }
  return row;
}

async function loadTree(ctx: Ctx, workflowId: string) {
  const tree = await collectWorkflowTree(archiveHistorySource(ctx.deps.db, { client: ctx.deps.temporal }), workflowId);
  if (!tree) throw new HttpError(ErrorType.NotFound, 'The case’s workflow history is neither archived nor retained by Temporal');
  return tree;
}

export const historyRoutes = [
  route({
    method: 'get',
    path: '/v1/cases/{id}/history',
    tag: 'Cases',
    summary: 'Read the case’s workflow history, decoded and readable (auditors)',
    description:
      'The case workflow — every continue-as-new run, joined — and its step and notice workflows, merged in time order: ' +
      'who requested, who decided what, timers fired, activities, signals, results. Payloads are decrypted with the ' +
      'payload codec. Closed runs are served from the archive written when they closed. Every read is audited.',
    permission: 'cases:history',
    category: 'cases',
    params: CaseParams,
    query: HistoryQuery,
    responses: { 200: { description: 'A page of history events', schema: CaseHistoryPage } },
    async handler(ctx) {
      const { deps, query, actor } = ctx;
      const row = await caseForHistory(ctx, 'case.history.read');
      const after = decodeCursor(query.cursor, HistoryCursor);
      if (after && after[0] !== query.include) {
        throw new HttpError(ErrorType.Validation, 'Invalid request: query.cursor: made for another `include`', [
          { field: 'query.cursor', message: 'made for another include' },
        ]);
      }
      const workflowId = row.workflowId || workflowIds.case(row.id);
      const tree = await loadTree(ctx, workflowId);
      const merged = mergeEvents(tree.runs, { includeBookkeeping: query.include === 'all' });
      const offset = after?.[1] ?? 0;
      const slice = merged.slice(offset, offset + query.limit);
      const items = await renderEvents(slice, merged, converterFor(deps.config), offset);
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.history.read',
        category: 'cases',
        targetType: 'case',
        targetId: row.id,
        region: row.region,
        outcome: 'allowed',
        details: { caseId: row.id, fromPosition: offset + 1, events: items.length },
      });
      const sources = new Set(tree.runs.map((r) => r.source));
      return {
        body: {
          caseId: row.id,
          workflowId,
          source: sources.size === 2 ? 'mixed' : sources.has('archive') ? 'archive' : 'temporal',
          complete: tree.missing.length === 0,
          workflows: tree.runs.map((r) => ({
            workflowId: r.facts.workflowId,
            runId: r.facts.runId,
            run: r.run,
            workflowType: r.facts.workflowType,
            status: r.facts.status,
            startedAt: r.facts.startedAt.toISOString(),
            closedAt: r.facts.closedAt?.toISOString() ?? null,
            parentWorkflowId: r.facts.parentWorkflowId,
            continuedFromRunId: r.facts.continuedFromRunId,
            newExecutionRunId: r.facts.newExecutionRunId,
            eventCount: r.facts.eventCount,
            source: r.source,
          })),
          missing: tree.missing,
          items,
          nextCursor: offset + slice.length < merged.length ? encodeCursor([query.include, offset + slice.length]) : null,
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/cases/{id}/history/raw',
    tag: 'Cases',
    summary: 'Download the case’s raw workflow histories for replay (payloads still encrypted)',
    description:
      'One JSON document: `runs[]`, each with its `workflowId`, `runId` and `history` in Temporal’s JSON form (as ' +
      '`temporal workflow show --output json` prints it). Replay with `Worker.runReplayHistory` and the payload keys. ' +
      'Streamed run by run. Every download is audited.',
    permission: 'cases:history',
    category: 'cases',
    params: CaseParams,
    responses: { 200: { description: 'The raw histories', schema: z.object({}).passthrough() } },
    async handler(ctx) {
      const { deps, res, actor } = ctx;
      const row = await caseForHistory(ctx, 'case.history.download');
      const workflowId = row.workflowId || workflowIds.case(row.id);
      const tree = await loadTree(ctx, workflowId);
      await appendAudit(deps.db, {
        ...actor,
        action: 'case.history.download',
        category: 'cases',
        targetType: 'case',
        targetId: row.id,
        region: row.region,
        outcome: 'allowed',
        details: { caseId: row.id, runs: tree.runs.length },
      });
      res.status(200);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="case-${row.id}-history.json"`);
      res.setHeader('Cache-Control', 'no-store');
      res.write(
        `{"caseId":${JSON.stringify(row.id)},"workflowId":${JSON.stringify(workflowId)},"missing":${JSON.stringify(tree.missing)},"runs":[`,
      );
      for (const [i, r] of tree.runs.entries()) {
        const head = {
          workflowId: r.facts.workflowId,
          runId: r.facts.runId,
          run: r.run,
          workflowType: r.facts.workflowType,
          status: r.facts.status,
          source: r.source,
        };
        const chunk = `${i ? ',' : ''}${JSON.stringify(head).slice(0, -1)},"history":${historyToJSON(r.history)}}`;
        if (!(await writeChunk(res, chunk))) return;
      }
      res.end(']}');
    },
  }),
];
