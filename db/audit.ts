/**
 * The one writer of the audit log, and chain verification.
 *
 * Each entry's hash covers its canonical encoding (RFC 8785 JSON) and the previous entry's hash.
 * Appends take a transaction-scoped advisory lock, so concurrent writers still produce a single
 * unbroken chain, and the entry commits or rolls back together with the change it records.
 */
import { createHash, hash as digest, sign, verify, type KeyObject } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import canonicalize from 'canonicalize';
import { asc, desc, sql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { Db, DbOrTx } from './index';
import { auditCheckpoints, auditLog, type AuditCheckpointRow, type AuditRow } from './schema';

export const GENESIS_HASH = '0'.repeat(64);
/** Arbitrary constant naming the advisory lock that serializes appends to the chain. */
export const AUDIT_CHAIN_LOCK = 7_211_001;

/** What an entry is about; `GET /v1/audit?category=` filters on it. */
export const AUDIT_CATEGORIES = [
  'regions',
  'settings',
  'policies',
  'subjects',
  'signals',
  'alerts',
  'cases',
  'approvals',
  'identity',
  'notice_templates',
  'notices',
  'audit',
  'system',
] as const;
export type AuditCategory = (typeof AUDIT_CATEGORIES)[number];

export interface AuditEntry {
  actor: string;
  actorRoles?: string[];
  action: string;
  category: AuditCategory;
  targetType?: string | null;
  targetId?: string | null;
  region?: string | null;
  outcome: 'allowed' | 'denied';
  reason?: string | null;
  requestId?: string | null;
  /** Ids and statuses only: never a name, an email or free text about a person. */
  details?: Record<string, unknown> | null;
  at?: Date;
}

type HashedFields = Omit<AuditRow, 'hash'>;

/** Canonical encoding of an entry (everything but its own hash). */
export function encodeAuditEntry(row: HashedFields): string {
  return canonicalize([
    row.seq,
    row.at.toISOString(),
    row.actor,
    row.actorRoles,
    row.action,
    row.category,
    row.targetType,
    row.targetId,
    row.region,
    row.outcome,
    row.reason,
    row.requestId,
    row.details ?? null,
    row.prevHash,
  ])!;
}

export function hashAuditEntry(row: HashedFields): string {
  return createHash('sha256').update(encodeAuditEntry(row)).digest('hex');
}

/**
 * Append one entry. Call it inside the transaction of the change it records; with a plain `Db` it
 * opens its own transaction.
 */
export async function appendAudit(dbOrTx: DbOrTx, entry: AuditEntry): Promise<AuditRow> {
  const run = async (tx: DbOrTx): Promise<AuditRow> => {
    // The lock, then the tail and the next sequence number read in a fresh snapshot (migration
    // 0018's function), so the entry the previous holder committed while we waited is seen.
    const tail = await tx.execute<{ hash: string | null; seq: string }>(
      sql`select hash, seq::text as seq from audit_chain_lock_tail(${AUDIT_CHAIN_LOCK})`,
    );
    const last = tail.rows[0]!;
    const fields: HashedFields = {
      seq: Number(last.seq),
      at: entry.at ?? new Date(),
      actor: entry.actor,
      actorRoles: entry.actorRoles ?? [],
      action: entry.action,
      category: entry.category,
      targetType: entry.targetType ?? null,
      targetId: entry.targetId ?? null,
      region: entry.region ?? null,
      outcome: entry.outcome,
      reason: entry.reason ?? null,
      requestId: entry.requestId ?? null,
      details: entry.details ?? null,
      prevHash: last.hash ?? GENESIS_HASH,
    };
    const row: AuditRow = { ...fields, hash: hashAuditEntry(fields) };
    await tx.insert(auditLog).values(row);
    return row;
  };
  return isTx(dbOrTx) ? run(dbOrTx) : (dbOrTx as Db).transaction(run);
}

function isTx(d: DbOrTx): boolean {
  // drizzle transactions expose `rollback`; the root database does not.
  return typeof (d as { rollback?: unknown }).rollback === 'function';
}

/**
 * Why verification stopped, at the first entry (by seq) where it did:
 * - `hash_mismatch`: the entry's content no longer matches its hash (edited);
 * - `reordered`: the entry links to the hash of the entry after it (a pair swapped places);
 * - `entry_missing`: an intact entry whose predecessor is gone (deleted), `lastGoodSeq` is before the gap;
 * - `prev_hash_mismatch`: an intact entry linked to something that is not the previous entry (inserted);
 * - `checkpoint_mismatch`: a signed checkpoint names a hash the chain does not have at its seq (rewritten);
 * - `tail_missing`: a signed checkpoint names an entry past the end of the chain (newest entries deleted);
 * - `checkpoint_signature_invalid`: a checkpoint signed with the configured key does not verify.
 */
export type BrokenReason =
  | 'hash_mismatch'
  | 'reordered'
  | 'entry_missing'
  | 'prev_hash_mismatch'
  | 'checkpoint_mismatch'
  | 'tail_missing'
  | 'checkpoint_signature_invalid';

export interface BrokenLink {
  /** The first entry that failed, or the checkpoint's seq for checkpoint failures. */
  seq: number;
  reason: BrokenReason;
  /** The last entry that verified before the break (`null`: none did). */
  lastGoodSeq: number | null;
  message: string;
}

export interface ChainVerification {
  ok: boolean;
  /** Entries verified before the first break (all of them when ok). */
  checked: number;
  lastSeq: number | null;
  lastHash: string;
  firstBroken?: BrokenLink;
  /** The newest checkpoint that verified with the configured key (when a key was given). */
  checkpoint?: { seq: number; hash: string; signedAt: string; keyId: string } | null;
  checkpoints?: { total: number; verified: number; otherKeys: number };
  durationMs: number;
}

/** The public half of the audit signing key, as verification needs it. */
export interface CheckpointVerifier {
  publicKey: KeyObject;
  keyId: string;
}

/** A row as the fast scanner reads it: `at` already in ISO form, `seq` a number. */
export interface ScannedRow {
  seq: number;
  at: string;
  actor: string;
  actorRoles: string[];
  action: string;
  category: string;
  targetType: string | null;
  targetId: string | null;
  region: string | null;
  outcome: string;
  reason: string | null;
  requestId: string | null;
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

/**
 * Fast path of `encodeAuditEntry` for rows read as text: RFC 8785 serializes strings, numbers,
 * null and arrays of strings exactly as `JSON.stringify` does, so only `details` needs
 * canonicalization. A unit test keeps both encodings identical.
 */
export function encodeScannedRow(r: Omit<ScannedRow, 'hash'>): string {
  const head = JSON.stringify([
    r.seq,
    r.at,
    r.actor,
    r.actorRoles,
    r.action,
    r.category,
    r.targetType,
    r.targetId,
    r.region,
    r.outcome,
    r.reason,
    r.requestId,
  ]);
  return `${head.slice(0, -1)},${r.details === null ? 'null' : canonicalize(r.details)!},${JSON.stringify(r.prevHash)}]`;
}

const SCAN_COLUMNS = sql.raw(
  `seq, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), actor, actor_roles, action, category,
   target_type, target_id, region, outcome::text, reason, request_id, details, prev_hash, hash`,
);

const dialect = new PgDialect();

function toScanned(a: unknown[]): ScannedRow {
  return {
    seq: Number(a[0]),
    at: a[1] as string,
    actor: a[2] as string,
    actorRoles: a[3] as string[],
    action: a[4] as string,
    category: a[5] as string,
    targetType: a[6] as string | null,
    targetId: a[7] as string | null,
    region: a[8] as string | null,
    outcome: a[9] as string,
    reason: a[10] as string | null,
    requestId: a[11] as string | null,
    details: a[12] as Record<string, unknown> | null,
    prevHash: a[13] as string,
    hash: a[14] as string,
  };
}

/**
 * Read audit rows in seq order in keyset batches (never the whole log in memory), prefetching the
 * next batch while the caller works on the current one. `where` narrows the rows (export filters).
 */
/** One keyset page of rows, read raw (array rows, `at` formatted by the server): the list's query. */
export async function queryAuditRows(
  db: Db,
  opts: {
    afterSeq?: number | null;
    toSeq?: number | null;
    limit: number;
    where?: ReturnType<typeof sql>;
    order?: 'asc' | 'desc';
  },
): Promise<ScannedRow[]> {
  // The raw pool: array rows skip drizzle's per-row mapping, which dominates at 100k rows/s.
  const pool = (db as unknown as { $client: pg.Pool }).$client;
  const desc = opts.order === 'desc';
  const conditions = [sql`true`];
  if (opts.afterSeq != null) conditions.push(desc ? sql`seq < ${opts.afterSeq}` : sql`seq > ${opts.afterSeq}`);
  if (opts.toSeq != null) conditions.push(sql`seq <= ${opts.toSeq}`);
  if (opts.where) conditions.push(opts.where);
  const query = dialect.sqlToQuery(
    sql`select ${SCAN_COLUMNS} from audit_log where ${sql.join(conditions, sql` and `)} order by seq ${sql.raw(desc ? 'desc' : 'asc')} limit ${opts.limit}`,
  );
  const result = await pool.query({ text: query.sql, values: query.params, rowMode: 'array' });
  return (result.rows as unknown[][]).map(toScanned);
}

/**
 * Read audit rows in seq order in keyset batches (never the whole log in memory), prefetching the
 * next batch while the caller works on the current one. `where` narrows the rows (export filters).
 */
export async function* scanAudit(
  db: Db,
  opts: { afterSeq?: number | null; toSeq?: number | null; batchSize?: number; where?: ReturnType<typeof sql> } = {},
): AsyncGenerator<ScannedRow[]> {
  const limit = opts.batchSize ?? 5000;
  const fetch = (afterSeq: number | null) => queryAuditRows(db, { afterSeq, toSeq: opts.toSeq, limit, where: opts.where });
  let next = fetch(opts.afterSeq ?? null);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!.seq;
    next = rows.length < limit ? Promise.resolve([]) : fetch(last);
    // A rejected prefetch must not become an unhandled rejection if the consumer stops early.
    next.catch(() => undefined);
    yield rows;
  }
}

/**
 * A row as verification reads it: its canonical encoding (built in Node from the row's text), its
 * stored hash and link. `encoded` is null when the fast reader declines a row (a role name that
 * Postgres had to quote); such rows go through the exact reader.
 */
export interface DigestRow {
  seq: number;
  prevHash: string;
  hash: string;
  encoded: string | null;
}

/** The columns of `SCAN_COLUMNS`, for `COPY … TO STDOUT` (text format). */
const COPY_COLUMNS = `seq, at at time zone 'UTC', actor, actor_roles, action, category,
   target_type, target_id, region, outcome, reason, request_id, details, prev_hash, hash`;

/**
 * `2026-01-02 03:04:05.678901` (a UTC timestamp as COPY writes it, ISO DateStyle) → the
 * `2026-01-02T03:04:05.678Z` of `SCAN_COLUMNS`' `to_char(… 'MS')` (milliseconds, truncated),
 * which is cheaper done here than by `to_char` in Postgres. Null for any other shape.
 */
function isoFromCopyTimestamp(f: string): string | null {
  if (f.length < 19 || f[10] !== ' ' || f[4] !== '-' || (f.length > 19 && f[19] !== '.')) return null;
  const ms = f.length > 19 ? (f.slice(20, 23) + '00').slice(0, 3) : '000';
  return `${f.slice(0, 10)}T${f.slice(11, 19)}.${ms}Z`;
}

const COPY_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };
/** A field of COPY's text format: `\N` is NULL; backslash escapes as Postgres writes them. */
function copyField(f: string): string | null {
  if (f === '\\N') return null;
  return f.includes('\\') ? f.replace(/\\(.)/g, (_, c: string) => COPY_ESCAPES[c] ?? c) : f;
}

/** `{a,b}` → ['a', 'b']; null when an element is quoted (the exact reader handles those). */
function copyTextArray(f: string): string[] | null {
  if (f.includes('"') || f.includes('\\')) return null;
  return f === '{}' ? [] : f.slice(1, -1).split(',');
}

function digestOfCopyLine(line: string): DigestRow {
  const f = line.split('\t');
  const seq = Number(f[0]);
  const prevHash = f[13]!;
  const hash = f[14]!;
  const roles = copyTextArray(f[3]!);
  const at = isoFromCopyTimestamp(f[1]!);
  if (!roles || at === null || f.length !== 15) return { seq, prevHash, hash, encoded: null };
  const details = copyField(f[12]!);
  const encoded = encodeScannedRow({
    seq,
    at,
    actor: copyField(f[2]!)!,
    actorRoles: roles,
    action: copyField(f[4]!)!,
    category: copyField(f[5]!)!,
    targetType: copyField(f[6]!),
    targetId: copyField(f[7]!),
    region: copyField(f[8]!),
    outcome: copyField(f[9]!)!,
    reason: copyField(f[10]!),
    requestId: copyField(f[11]!),
    details: details === null ? null : (JSON.parse(details) as Record<string, unknown>),
    prevHash,
  });
  return { seq, prevHash, hash, encoded };
}

/**
 * The verification reader: the rows of `(afterSeq, toSeq]` in seq order, streamed with
 * `COPY … TO STDOUT` on one connection — Postgres writes text while Node hashes, with no per-row
 * type parsing in the driver (which cost more than the hashing) and never more than a chunk in
 * memory. Stopping early (a broken link) discards the connection rather than returning it mid-copy.
 */
export async function* scanDigests(
  db: Db,
  opts: { afterSeq?: number | null; toSeq?: number | null } = {},
): AsyncGenerator<DigestRow[]> {
  const after = Math.trunc(Number(opts.afterSeq ?? 0));
  const to = Math.trunc(Number(opts.toSeq ?? Number.MAX_SAFE_INTEGER));
  if (!Number.isSafeInteger(after) || !Number.isSafeInteger(to)) throw new RangeError('seq bounds must be integers');
  const pool = (db as unknown as { $client: pg.Pool }).$client;
  const client = await pool.connect();
  let finished = false;
  const stream = client.query(
    copyTo(`copy (select ${COPY_COLUMNS} from audit_log where seq > ${after} and seq <= ${to} order by seq) to stdout`, {
      // Room for Postgres to keep writing while Node hashes the previous chunks.
      highWaterMark: 1 << 20,
    }),
  );
  try {
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const lines = (rest + decoder.write(chunk)).split('\n');
      rest = lines.pop()!;
      if (lines.length) yield lines.map(digestOfCopyLine);
    }
    rest += decoder.end();
    if (rest) yield [digestOfCopyLine(rest)];
    finished = true;
  } finally {
    if (finished) client.release();
    else {
      stream.destroy();
      client.release(true);
    }
  }
}

/** The exact check of one entry (RFC 8785 encoder over typed values), for fast-path mismatches. */
async function exactContentOk(db: Db, seq: number): Promise<boolean> {
  const [row] = await queryAuditRows(db, { afterSeq: seq - 1, toSeq: seq, limit: 1 });
  return !!row && row.seq === seq && createHash('sha256').update(encodeScannedRow(row)).digest('hex') === row.hash;
}

/** The statement a checkpoint signs: canonical JSON, versioned, naming the key. */
export function checkpointStatement(c: { seq: number; hash: string; signedAt: string; keyId: string }): string {
  return canonicalize({ v: 1, kind: 'warden-audit-checkpoint', seq: c.seq, hash: c.hash, signedAt: c.signedAt, keyId: c.keyId })!;
}

export function verifyCheckpointSignature(
  verifier: CheckpointVerifier,
  c: Pick<AuditCheckpointRow, 'seq' | 'hash' | 'signedAt' | 'keyId' | 'signature'>,
): boolean {
  const statement = checkpointStatement({ seq: c.seq, hash: c.hash, signedAt: c.signedAt.toISOString(), keyId: c.keyId });
  try {
    return verify(null, Buffer.from(statement), verifier.publicKey, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

interface VerifyOptions {
  /** With a key, signed checkpoints are checked too, so a deleted tail is detected. */
  verifier?: CheckpointVerifier;
}

/**
 * Recompute the whole chain in order, streaming, and report the first broken link; with a
 * verifier, also check every checkpoint's signature and that the chain still holds the entry each
 * signed checkpoint names (so deleting the newest entries is detected, not only editing old ones).
 */
export async function verifyAuditChain(db: Db, o: VerifyOptions = {}): Promise<ChainVerification> {
  const started = performance.now();
  let checkpoints: AuditCheckpointRow[] = [];
  let cpStats: ChainVerification['checkpoints'];
  let badSignature: AuditCheckpointRow | undefined;
  if (o.verifier) {
    const all = await db.select().from(auditCheckpoints).orderBy(asc(auditCheckpoints.seq));
    const mine = all.filter((c) => c.keyId === o.verifier!.keyId);
    badSignature = mine.find((c) => !verifyCheckpointSignature(o.verifier!, c));
    checkpoints = mine.filter((c) => c !== badSignature);
    cpStats = {
      total: all.length,
      verified: badSignature ? mine.indexOf(badSignature) : mine.length,
      otherKeys: all.length - mine.length,
    };
    if (badSignature) checkpoints = mine.slice(0, mine.indexOf(badSignature));
  }
  const result = (
    r: Omit<ChainVerification, 'durationMs' | 'checkpoint' | 'checkpoints'>,
    verifiedCp: AuditCheckpointRow | null,
  ): ChainVerification => ({
    ...r,
    ...(o.verifier
      ? {
          checkpoint: verifiedCp
            ? { seq: verifiedCp.seq, hash: verifiedCp.hash, signedAt: verifiedCp.signedAt.toISOString(), keyId: verifiedCp.keyId }
            : null,
          checkpoints: cpStats,
        }
      : {}),
    durationMs: Math.round(performance.now() - started),
  });

  let prevHash = GENESIS_HASH;
  let checked = 0;
  let lastSeq: number | null = null;
  let cpIndex = 0;
  let lastVerifiedCp: AuditCheckpointRow | null = null;
  const broken = (seq: number, reason: BrokenReason, message: string) =>
    result(
      { ok: false, checked, lastSeq, lastHash: prevHash, firstBroken: { seq, reason, lastGoodSeq: lastSeq, message } },
      lastVerifiedCp,
    );

  for await (const rows of scanDigests(db)) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      // A checkpoint whose seq the chain skipped over: the signed entry is gone or renumbered.
      while (cpIndex < checkpoints.length && checkpoints[cpIndex]!.seq < row.seq) {
        const cp = checkpoints[cpIndex]!;
        return broken(cp.seq, 'checkpoint_mismatch', `signed checkpoint names entry ${cp.seq}, which the chain no longer has`);
      }
      const contentOk =
        (row.encoded !== null && digest('sha256', row.encoded, 'hex') === row.hash) || (await exactContentOk(db, row.seq));
      const linkOk = row.prevHash === prevHash;
      if (!contentOk || !linkOk) {
        const next = rows[i + 1];
        if (!linkOk && next && next.hash === row.prevHash) {
          return broken(
            row.seq,
            'reordered',
            `entry ${row.seq} links to entry ${next.seq}, which follows it: the pair was reordered`,
          );
        }
        if (!contentOk) return broken(row.seq, 'hash_mismatch', `entry ${row.seq} does not match its hash: it was changed`);
        if (lastSeq === null ? row.seq > 1 : row.seq > lastSeq + 1) {
          return broken(
            row.seq,
            'entry_missing',
            `entry ${row.seq} links to an entry that is missing${lastSeq === null ? ' at the start of the log' : ` after entry ${lastSeq}`}`,
          );
        }
        return broken(row.seq, 'prev_hash_mismatch', `entry ${row.seq} does not link to entry ${lastSeq ?? 'genesis'}`);
      }
      const cp = checkpoints[cpIndex];
      if (cp && cp.seq === row.seq) {
        if (cp.hash !== row.hash)
          return broken(
            cp.seq,
            'checkpoint_mismatch',
            `entry ${cp.seq} differs from the hash its signed checkpoint names: the chain was rewritten`,
          );
        lastVerifiedCp = cp;
        cpIndex++;
      }
      prevHash = row.hash;
      lastSeq = row.seq;
      checked++;
    }
  }
  const missingTail = checkpoints[cpIndex];
  if (missingTail) {
    return broken(
      missingTail.seq,
      'tail_missing',
      `signed checkpoint names entry ${missingTail.seq} but the chain ends at ${lastSeq ?? 'genesis'}: the newest entries were deleted`,
    );
  }
  if (badSignature) {
    return result(
      {
        ok: false,
        checked,
        lastSeq,
        lastHash: prevHash,
        firstBroken: {
          seq: badSignature.seq,
          reason: 'checkpoint_signature_invalid',
          lastGoodSeq: lastSeq,
          message: `checkpoint for entry ${badSignature.seq} has an invalid signature`,
        },
      },
      lastVerifiedCp,
    );
  }
  return result({ ok: true, checked, lastSeq, lastHash: prevHash }, lastVerifiedCp);
}

/**
 * Verify a range `[fromSeq, toSeq]`: each entry's hash, and each link, starting from the stored
 * hash of the entry just before the range. Proves the range is intact and consistent with its
 * neighbour; the whole chain's integrity is `verifyAuditChain`.
 */
export async function verifyAuditRange(db: Db, fromSeq: number, toSeq: number): Promise<ChainVerification> {
  const started = performance.now();
  const [before] = await db
    .select({ seq: auditLog.seq, hash: auditLog.hash })
    .from(auditLog)
    .where(sql`${auditLog.seq} < ${fromSeq}`)
    .orderBy(desc(auditLog.seq))
    .limit(1);
  let prevHash = before?.hash ?? GENESIS_HASH;
  let lastSeq: number | null = before?.seq ?? null;
  let checked = 0;
  for await (const rows of scanDigests(db, { afterSeq: fromSeq - 1, toSeq })) {
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const contentOk =
        (row.encoded !== null && digest('sha256', row.encoded, 'hex') === row.hash) || (await exactContentOk(db, row.seq));
      const linkOk = row.prevHash === prevHash;
      if (!contentOk || !linkOk) {
        const next = rows[i + 1];
        const reason: BrokenReason =
          !linkOk && next && next.hash === row.prevHash
            ? 'reordered'
            : !contentOk
              ? 'hash_mismatch'
              : (lastSeq === null ? row.seq > 1 : row.seq > lastSeq + 1)
                ? 'entry_missing'
                : 'prev_hash_mismatch';
        return {
          ok: false,
          checked,
          lastSeq,
          lastHash: prevHash,
          firstBroken: { seq: row.seq, reason, lastGoodSeq: lastSeq, message: `entry ${row.seq}: ${reason.replace(/_/g, ' ')}` },
          durationMs: Math.round(performance.now() - started),
        };
      }
      prevHash = row.hash;
      lastSeq = row.seq;
      checked++;
    }
  }
  // The entry after the range must link to the range's last one: else the range lost its tail.
  const [after] = await db
    .select({ seq: auditLog.seq, prevHash: auditLog.prevHash })
    .from(auditLog)
    .where(sql`${auditLog.seq} > ${toSeq}`)
    .orderBy(asc(auditLog.seq))
    .limit(1);
  if (after && after.prevHash !== prevHash) {
    const reason: BrokenReason = after.seq > (lastSeq ?? 0) + 1 ? 'entry_missing' : 'prev_hash_mismatch';
    return {
      ok: false,
      checked,
      lastSeq,
      lastHash: prevHash,
      firstBroken: { seq: after.seq, reason, lastGoodSeq: lastSeq, message: `entry ${after.seq}: ${reason.replace(/_/g, ' ')}` },
      durationMs: Math.round(performance.now() - started),
    };
  }
  return { ok: true, checked, lastSeq, lastHash: prevHash, durationMs: Math.round(performance.now() - started) };
}

/** The signing half of the audit key (from `config.audit.signingKey`). */
export interface CheckpointSigner extends CheckpointVerifier {
  privateKey: KeyObject;
}

export interface CheckpointResult {
  checkpoint: AuditCheckpointRow;
  /** False when a periodic run found nothing new since the last checkpoint. */
  created: boolean;
}

/**
 * Sign the chain's newest entry. On demand (`by` a person), the request is itself appended first,
 * so the checkpoint covers it. Periodic runs (`by: 'schedule'`) skip when the newest entry is
 * already checkpointed, and otherwise record an `audit.checkpoint` entry like a person would.
 * Runs under the chain lock, so no entry can slip in between reading the tail and signing it.
 */
export async function writeAuditCheckpoint(
  db: Db,
  signer: CheckpointSigner,
  by: 'schedule' | Pick<AuditEntry, 'actor' | 'actorRoles' | 'requestId'>,
): Promise<CheckpointResult | null> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK})`);
    const [latest] = await tx.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.seq)).limit(1);
    if (by === 'schedule') {
      const [tail] = await tx.select({ seq: auditLog.seq }).from(auditLog).orderBy(desc(auditLog.seq)).limit(1);
      if (!tail) return null;
      if (latest && latest.seq === tail.seq) return { checkpoint: latest, created: false };
    }
    const actor = by === 'schedule' ? { actor: 'system:schedule', actorRoles: [], requestId: null } : by;
    const entry = await appendAudit(tx, {
      ...actor,
      action: 'audit.checkpoint',
      category: 'audit',
      targetType: 'audit_log',
      targetId: 'chain',
      outcome: 'allowed',
      details: { previousCheckpointSeq: latest?.seq ?? null, trigger: by === 'schedule' ? 'schedule' : 'request' },
    });
    const signedAt = new Date();
    const statement = checkpointStatement({
      seq: entry.seq,
      hash: entry.hash,
      signedAt: signedAt.toISOString(),
      keyId: signer.keyId,
    });
    const signature = sign(null, Buffer.from(statement), signer.privateKey).toString('base64');
    const [checkpoint] = await tx
      .insert(auditCheckpoints)
      .values({ seq: entry.seq, hash: entry.hash, signedAt, keyId: signer.keyId, signature, createdBy: actor.actor })
      .returning();
    return { checkpoint: checkpoint!, created: true };
  });
}
