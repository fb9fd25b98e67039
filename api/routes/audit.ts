/**
 * Auditors' routes over the audit log: filtered query, chain verification, signed checkpoints and
 * their public key, and streaming export. Region-scoped like every read: an auditor sees entries
 * of its regions and tenant-wide entries (no region); a `*` region claim sees all.
 */
import { desc, eq, lt } from 'drizzle-orm';
import { z } from 'zod';
import {
  appendAudit,
  AUDIT_CATEGORIES,
  checkpointStatement,
  scanAudit,
  verifyAuditChain,
  verifyAuditRange,
  writeAuditCheckpoint,
} from '../../db/audit';
import { auditWhere, listAudit, oldestAuditEntryAt, type AuditFilter } from '../../db/queries/audit';
import { auditCheckpoints, cases, type AuditCheckpointRow, type AuditRow } from '../../db/schema';
import { regionScope, type Principal } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { HttpError } from '../errors';
import { route } from '../http';
import { decodeCursor, encodeCursor, pageSchema } from '../pagination';
import { writeChunk } from '../streaming';

export const AuditEntrySchema = z
  .object({
    seq: z.number().int(),
    at: z.string().datetime(),
    actor: z.string(),
    actorRoles: z.array(z.string()),
    action: z.string(),
    category: z.string(),
    targetType: z.string().nullable(),
    targetId: z.string().nullable(),
    region: z.string().nullable(),
    outcome: z.enum(['allowed', 'denied']),
    reason: z.string().nullable(),
    requestId: z.string().nullable(),
    details: z.record(z.unknown()).nullable(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('AuditEntry');
export type AuditEntrySchema = z.infer<typeof AuditEntrySchema>;

const commaList = <T extends z.ZodTypeAny>(item: T) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) =>
      (Array.isArray(v) ? v : [v])
        .flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1));

/** Filters shared by the list and the export. */
const AuditFilterQuery = z.object({
  actor: z.string().min(1).max(200).optional().describe('Token subject of the actor'),
  action: z.string().min(1).max(200).optional().describe('Exact action, or a prefix ending in `*` (e.g. `case.*`)'),
  category: commaList(z.enum(AUDIT_CATEGORIES))
    .optional()
    .describe(`Comma-separated: ${AUDIT_CATEGORIES.join(', ')}`),
  caseId: z.string().uuid().optional().describe('Entries about this case: its target, or `details.caseId`'),
  targetType: z.string().min(1).max(100).optional(),
  targetId: z.string().min(1).max(200).optional(),
  region: z.string().min(1).max(50).optional(),
  outcome: z.enum(['allowed', 'denied']).optional(),
  from: z.string().datetime({ offset: true }).optional().describe('Entries at or after this time'),
  to: z.string().datetime({ offset: true }).optional().describe('Entries before this time'),
});
type AuditFilterQuery = z.infer<typeof AuditFilterQuery>;

export const AuditQuery = AuditFilterQuery.extend({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(500).optional(),
  order: z.enum(['desc', 'asc']).default('desc').describe('By seq: newest first (default) or oldest first'),
}).strict();

export const AuditExportQuery = AuditFilterQuery.extend({
  format: z.enum(['ndjson', 'csv']).default('ndjson'),
}).strict();

export const VerifyQuery = z
  .object({
    fromSeq: z.coerce
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Verify only this range (with toSeq), linked to the entry before it'),
    toSeq: z.coerce.number().int().min(1).optional(),
  })
  .strict()
  .refine((q) => (q.fromSeq === undefined) === (q.toSeq === undefined), { message: 'give both fromSeq and toSeq, or neither' })
  .refine((q) => q.fromSeq === undefined || q.toSeq! >= q.fromSeq, {
    message: 'toSeq must not be before fromSeq',
    path: ['toSeq'],
  });

const BrokenLinkSchema = z.object({
  seq: z.number().int(),
  reason: z.enum([
    'hash_mismatch',
    'reordered',
    'entry_missing',
    'prev_hash_mismatch',
    'checkpoint_mismatch',
    'tail_missing',
    'checkpoint_signature_invalid',
  ]),
  lastGoodSeq: z.number().int().nullable(),
  message: z.string(),
});

export const CheckpointSchema = z
  .object({
    seq: z.number().int(),
    hash: z.string(),
    signedAt: z.string().datetime(),
    keyId: z.string(),
    signature: z.string().describe('base64 Ed25519 signature over `statement`'),
    statement: z.string().describe('The exact signed bytes (UTF-8): canonical JSON of v, kind, seq, hash, signedAt, keyId'),
    createdBy: z.string(),
  })
  .openapi('AuditCheckpoint');

export const VerificationSchema = z
  .object({
    ok: z.boolean(),
    scope: z.enum(['chain', 'range']),
    checked: z.number().int(),
    lastSeq: z.number().int().nullable(),
    lastHash: z.string(),
    firstBroken: BrokenLinkSchema.optional(),
    checkpoint: z
      .object({ seq: z.number().int(), hash: z.string(), signedAt: z.string(), keyId: z.string() })
      .nullable()
      .optional()
      .describe('The newest checkpoint that verified with the published key'),
    checkpoints: z.object({ total: z.number().int(), verified: z.number().int(), otherKeys: z.number().int() }).optional(),
    retention: z.object({ days: z.number().int(), oldestEntryAt: z.string().datetime().nullable() }),
    durationMs: z.number(),
  })
  .openapi('AuditVerification');

export const PublicKeySchema = z
  .object({
    algorithm: z.literal('Ed25519'),
    keyId: z.string(),
    publicKeyPem: z.string(),
    publicKeyJwk: z.object({ kty: z.string(), crv: z.string(), x: z.string() }),
  })
  .openapi('AuditPublicKey');

export function toAuditEntry(row: AuditRow): AuditEntrySchema {
  return { ...row, at: row.at.toISOString(), details: row.details ?? null };
}

export function toCheckpoint(c: AuditCheckpointRow) {
  return {
    seq: c.seq,
    hash: c.hash,
    signedAt: c.signedAt.toISOString(),
    keyId: c.keyId,
    signature: c.signature,
    statement: checkpointStatement({ seq: c.seq, hash: c.hash, signedAt: c.signedAt.toISOString(), keyId: c.keyId }),
    createdBy: c.createdBy,
  };
}

/** An ISO time with an offset, in microseconds since the epoch (Date keeps milliseconds only). */
function isoMicros(s: string): bigint {
  const extra = /\.\d{3}(\d{1,3})/.exec(s)?.[1] ?? '';
  return BigInt(Date.parse(s)) * 1000n + BigInt(extra.padEnd(3, '0'));
}

function toFilter(q: AuditFilterQuery, principal: Principal): AuditFilter {
  // Kept as written: Postgres compares them to the microsecond.
  const { from, to } = q;
  if (from && to && isoMicros(to) <= isoMicros(from)) {
    throw new HttpError(ErrorType.Validation, 'Invalid request: query.to: must be after query.from', [
      { field: 'query.to', message: 'must be after query.from' },
    ]);
  }
  return { ...q, from, to, scope: regionScope(principal) };
}

const SeqCursor = z.tuple([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)]);

/** CSV cell: RFC 4180 quoting; a text cell that a spreadsheet would run as a formula gets a `'`. */
function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v);
  if (typeof v === 'string') {
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    // A spreadsheet whose list separator is `;` (continental Excel) or tab splits the line there,
    // quotes or not: what follows one of them must not start a formula either.
    s = s.replace(/([;\t])(?=[=+\-@\t\r])/g, "$1'");
  }
  return /[",;\t\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_COLUMNS = [
  'seq',
  'at',
  'actor',
  'actor_roles',
  'action',
  'category',
  'target_type',
  'target_id',
  'region',
  'outcome',
  'reason',
  'request_id',
  'details',
  'prev_hash',
  'hash',
] as const;

export const auditRoutes = [
  route({
    method: 'get',
    path: '/v1/audit',
    tag: 'Audit',
    summary: 'Query the audit log',
    description:
      'Every command, read of a case or identity, reveal, denied attempt (with its reason) and automatic transition. ' +
      'Filters combine with AND; keyset pagination by seq (`order=desc` newest first, the default).',
    permission: 'audit:read',
    category: 'audit',
    query: AuditQuery,
    responses: { 200: { description: 'A page of entries', schema: pageSchema(AuditEntrySchema) } },
    async handler({ deps, principal, query }) {
      const { limit, cursor, order, ...filters } = query;
      const after = decodeCursor(cursor, SeqCursor);
      const rows = await listAudit(deps.db, toFilter(filters, principal), { limit, afterSeq: after?.[0] ?? null, order });
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return { body: { items, nextCursor: rows.length > limit && last ? encodeCursor([last.seq]) : null } };
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/verify',
    tag: 'Audit',
    summary: 'Recompute the hash chain and check the signed checkpoints',
    description:
      'Without parameters: the whole chain from genesis, every checkpoint signature, and that the chain still holds each ' +
      'signed entry (a deleted tail is reported as `tail_missing`). With `fromSeq` and `toSeq`: that range only, linked to ' +
      'the entry before it. Answers 200 either way; `ok` says whether the log is intact, `firstBroken` where it is not.',
    permission: 'audit:verify',
    category: 'audit',
    query: VerifyQuery,
    responses: { 200: { description: 'The verification result', schema: VerificationSchema } },
    async handler({ deps, query }) {
      const key = deps.config.audit.signingKey;
      const result =
        query.fromSeq !== undefined
          ? { scope: 'range' as const, ...(await verifyAuditRange(deps.db, query.fromSeq, query.toSeq!)) }
          : { scope: 'chain' as const, ...(await verifyAuditChain(deps.db, { verifier: key })) };
      const oldest = await oldestAuditEntryAt(deps.db);
      return {
        body: { ...result, retention: { days: deps.config.audit.retentionDays, oldestEntryAt: oldest?.toISOString() ?? null } },
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/public-key',
    tag: 'Audit',
    summary: 'The public key that verifies audit checkpoints',
    description: 'Ed25519. Keep a copy outside Warden: it is what makes a rewritten or truncated log detectable.',
    permission: 'public',
    responses: { 200: { description: 'The public key', schema: PublicKeySchema } },
    handler({ deps }) {
      const key = deps.config.audit.signingKey;
      const jwk = key.publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
      return {
        body: {
          algorithm: 'Ed25519' as const,
          keyId: key.keyId,
          publicKeyPem: key.publicKeyPem,
          publicKeyJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
        },
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/checkpoints',
    tag: 'Audit',
    summary: 'Signed checkpoints, newest first',
    description: 'Copy them outside Warden (with the public key) to prove later that no entry up to them was removed.',
    permission: 'audit:read',
    category: 'audit',
    query: z
      .object({ limit: z.coerce.number().int().min(1).max(500).default(50), cursor: z.string().max(500).optional() })
      .strict(),
    responses: { 200: { description: 'A page of checkpoints', schema: pageSchema(CheckpointSchema) } },
    async handler({ deps, query }) {
      const after = decodeCursor(query.cursor, SeqCursor);
      const rows = await deps.db
        .select()
        .from(auditCheckpoints)
        .where(after ? lt(auditCheckpoints.seq, after[0]) : undefined)
        .orderBy(desc(auditCheckpoints.seq))
        .limit(query.limit + 1);
      const items = rows.slice(0, query.limit);
      const last = items[items.length - 1];
      return {
        body: { items: items.map(toCheckpoint), nextCursor: rows.length > query.limit && last ? encodeCursor([last.seq]) : null },
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/audit/checkpoints',
    tag: 'Audit',
    summary: 'Sign a checkpoint of the chain now',
    description:
      'Appends an `audit.checkpoint` entry for this request and signs it (its seq and hash) with the audit key. ' +
      'Checkpoints are also written periodically by a Temporal schedule.',
    permission: 'audit:checkpoint',
    category: 'audit',
    responses: { 201: { description: 'The new checkpoint', schema: CheckpointSchema } },
    async handler({ deps, actor }) {
      const result = await writeAuditCheckpoint(deps.db, deps.config.audit.signingKey, actor);
      return { status: 201, body: toCheckpoint(result!.checkpoint) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/audit/export',
    tag: 'Audit',
    summary: 'Export the audit log as NDJSON or CSV (streamed)',
    description:
      'Oldest first, with the same filters as the list. Streamed in batches: the log is never held in memory. ' +
      'Entries hold opaque ids and pseudonymous references only. NDJSON lines carry `prevHash` and `hash`, so an ' +
      "unfiltered export can be verified offline. CSV text cells that would start a spreadsheet formula are prefixed with `'`.",
    permission: 'audit:export',
    category: 'audit',
    query: AuditExportQuery,
    responses: {
      200: {
        description: 'NDJSON (one entry per line) or CSV with a header row',
        schema: z.string(),
        contentType: 'application/x-ndjson',
      },
    },
    async handler({ deps, principal, query, res, actor, requestId }) {
      const { format, ...filters } = query;
      const filter = toFilter(filters, principal);
      // An export about one case (or region) is an entry of that region: auditors of other regions do not see it.
      const [exported] = filters.caseId
        ? await deps.db.select({ region: cases.region }).from(cases).where(eq(cases.id, filters.caseId.toLowerCase()))
        : [];
      await appendAudit(deps.db, {
        ...actor,
        action: 'audit.export',
        category: 'audit',
        targetType: 'audit_log',
        targetId: 'chain',
        region: exported?.region ?? filters.region ?? null,
        outcome: 'allowed',
        details: { format, filters: { ...filters } },
      });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      res.status(200);
      res.setHeader('Content-Type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="warden-audit-${stamp}.${format}"`);
      res.setHeader('Cache-Control', 'no-store');
      try {
        if (format === 'csv' && !(await writeChunk(res, CSV_COLUMNS.join(',') + '\r\n'))) return;
        for await (const rows of scanAudit(deps.db, { where: auditWhere(filter), batchSize: 2000 })) {
          let chunk = '';
          for (const r of rows) {
            chunk +=
              format === 'csv'
                ? [
                    r.seq,
                    r.at,
                    r.actor,
                    r.actorRoles.join('|'),
                    r.action,
                    r.category,
                    r.targetType,
                    r.targetId,
                    r.region,
                    r.outcome,
                    r.reason,
                    r.requestId,
                    r.details,
                    r.prevHash,
                    r.hash,
                  ]
                    .map(csvCell)
                    .join(',') + '\r\n'
                : JSON.stringify(r) + '\n';
          }
          if (!(await writeChunk(res, chunk))) return;
        }
        res.end();
      } catch (err) {
        // Headers are out: cut the connection so a failed export cannot pass for a complete one.
        deps.logger.error({ err, requestId }, 'audit export failed');
        res.destroy();
      }
    },
  }),
];
