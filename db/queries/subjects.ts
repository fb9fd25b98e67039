/**
 * Subjects: roster import (identities to the vault only) and the users view.
 */
import { and, asc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import type { KeyRingEntry } from '../../infra/codec';
import { externalKey, identityFingerprint, pseudonymFor, sealIdentity, type IdentityRecord } from '../../infra/identity';
import { cursorTime } from '../cursor';
import type { DbOrTx } from '../index';
import { identityVault, subjects, subjectViolations } from '../schema';

/** A roster record, checked. Identity fields are sealed into the vault; the rest scopes policies. */
export interface RosterRecord {
  externalId: string;
  displayName: string;
  email?: string | null;
  upn?: string | null;
  manager?: string | null;
  department?: string | null;
  groups: string[];
  region: string;
}

export interface ImportOutcome {
  created: number;
  updated: number;
  unchanged: number;
  /** Opaque ids of the subjects created or updated, by record index. */
  subjectIds: Map<number, string>;
}

interface Keys {
  pseudonym: string;
  vault: KeyRingEntry[];
}

/**
 * Create or update subjects from roster records, idempotently: an unchanged record is a no-op
 * (compared through the vault fingerprint and the scoping attributes), a changed one updates the
 * subject and re-seals its identity. Runs inside the caller's transaction.
 */
export async function importRoster(
  tx: DbOrTx,
  keys: Keys,
  records: Array<{ index: number; record: RosterRecord }>,
): Promise<ImportOutcome> {
  const outcome: ImportOutcome = { created: 0, updated: 0, unchanged: 0, subjectIds: new Map() };
  if (records.length === 0) return outcome;
  const activeKey = keys.vault[0]!;
  const prepared = records.map(({ index, record }) => {
    const identity: IdentityRecord = {
      externalId: record.externalId,
      displayName: record.displayName,
      email: record.email ?? null,
      upn: record.upn ?? null,
      manager: record.manager ?? null,
      department: record.department ?? null,
    };
    return {
      index,
      record,
      identity,
      key: externalKey(keys.pseudonym, record.externalId),
      fingerprint: identityFingerprint(activeKey.key, identity),
      groups: [...new Set(record.groups)].sort(),
    };
  });

  const existing = await tx
    .select({
      id: subjects.id,
      externalKey: subjects.externalKey,
      region: subjects.region,
      department: subjects.department,
      groups: subjects.groups,
      fingerprint: identityVault.fingerprint,
      keyId: identityVault.keyId,
    })
    .from(subjects)
    .leftJoin(identityVault, eq(identityVault.subjectId, subjects.id))
    .where(
      inArray(
        subjects.externalKey,
        prepared.map((p) => p.key),
      ),
    )
    .for('update', { of: subjects });
  const byKey = new Map(existing.map((e) => [e.externalKey, e]));

  const fresh = prepared.filter((p) => !byKey.has(p.key));
  if (fresh.length) {
    // Pseudonyms are derived from the external id; on the rare collision with someone else's,
    // the next attempt's derivation is used.
    const pseudonyms = new Map<string, string>();
    const taken = new Set<string>();
    for (let attempt = 0; attempt < 8; attempt++) {
      const pending = fresh.filter((p) => !pseudonyms.has(p.key));
      if (!pending.length) break;
      const candidates = pending.map((p) => ({ p, pseudonym: pseudonymFor(keys.pseudonym, p.record.externalId, attempt) }));
      const clash = await tx
        .select({ pseudonym: subjects.pseudonym })
        .from(subjects)
        .where(
          inArray(
            subjects.pseudonym,
            candidates.map((c) => c.pseudonym),
          ),
        );
      for (const c of clash) taken.add(c.pseudonym);
      for (const c of candidates) {
        if (!taken.has(c.pseudonym)) {
          pseudonyms.set(c.p.key, c.pseudonym);
          taken.add(c.pseudonym);
        }
      }
    }
    const inserted = await tx
      .insert(subjects)
      .values(
        fresh.map((p) => ({
          externalKey: p.key,
          pseudonym: pseudonyms.get(p.key)!,
          region: p.record.region,
          department: p.record.department ?? null,
          groups: p.groups,
        })),
      )
      .returning({ id: subjects.id, externalKey: subjects.externalKey });
    const idByKey = new Map(inserted.map((r) => [r.externalKey, r.id]));
    await tx
      .insert(identityVault)
      .values(fresh.map((p) => ({ subjectId: idByKey.get(p.key)!, ...sealIdentity(keys.vault, p.identity) })));
    for (const p of fresh) outcome.subjectIds.set(p.index, idByKey.get(p.key)!);
    outcome.created = fresh.length;
  }

  for (const p of prepared) {
    const e = byKey.get(p.key);
    if (!e) continue;
    outcome.subjectIds.set(p.index, e.id);
    const attributesChanged =
      e.region !== p.record.region || (e.department ?? null) !== (p.record.department ?? null) || !sameList(e.groups, p.groups);
    const identityChanged = e.fingerprint !== p.fingerprint || e.keyId !== activeKey.id;
    if (!attributesChanged && !identityChanged) {
      outcome.unchanged++;
      continue;
    }
    if (attributesChanged) {
      await tx
        .update(subjects)
        .set({ region: p.record.region, department: p.record.department ?? null, groups: p.groups, updatedAt: new Date() })
        .where(eq(subjects.id, e.id));
    }
    if (identityChanged) {
      const sealed = sealIdentity(keys.vault, p.identity);
      await tx
        .insert(identityVault)
        .values({ subjectId: e.id, ...sealed })
        .onConflictDoUpdate({
          target: identityVault.subjectId,
          set: { ...sealed, version: sql`${identityVault.version} + 1`, updatedAt: new Date() },
        });
    }
    outcome.updated++;
  }
  return outcome;
}

function sameList(a: string[], b: string[]): boolean {
  const sa = [...a].sort();
  return sa.length === b.length && sa.every((v, i) => v === b[i]);
}

/**
 * Keyed hashes of connector external ids, memoized per process (per pseudonym key): ingest hashes
 * the same people batch after batch, and one HMAC costs more than the rest of an event's handling.
 * Bounded; only in memory, never logged. The hash of an id never changes, so nothing to invalidate.
 */
const KEY_MEMO_SIZE = 100_000;
const keyMemo = new Map<string, Map<string, string>>();
function memoExternalKey(pseudonymKey: string, externalId: string): string {
  let memo = keyMemo.get(pseudonymKey);
  if (!memo) keyMemo.set(pseudonymKey, (memo = new Map()));
  let key = memo.get(externalId);
  if (key === undefined) {
    if (memo.size >= KEY_MEMO_SIZE) memo.delete(memo.keys().next().value!);
    key = externalKey(pseudonymKey, externalId);
    memo.set(externalId, key);
  }
  return key;
}

/** Subject ids and regions by connector external id (matched through the keyed hash). */
export async function resolveSubjects(
  db: DbOrTx,
  pseudonymKey: string,
  externalIds: string[],
): Promise<Map<string, { id: string; region: string }>> {
  const keyOf = new Map(externalIds.map((x) => [memoExternalKey(pseudonymKey, x), x]));
  if (keyOf.size === 0) return new Map();
  // One array parameter (a 5,000-item IN list costs more to plan than to run); raw rows (no mapping).
  const res = await db.execute<{ id: string; key: string; region: string }>(sql`
    select id, external_key as key, region from subjects
    where external_key = any(${sql.param([...keyOf.keys()])}::text[])`);
  return new Map(res.rows.map((r) => [keyOf.get(r.key)!, { id: r.id, region: r.region }]));
}

/**
 * Record that a case about this subject was resolved as a confirmed violation (idempotent per
 * case). Scoring then applies the previous-violation booster to the subject's next scores.
 */
export async function recordConfirmedViolation(
  db: DbOrTx,
  input: { subjectId: string; caseId: string; resolvedAt: Date },
): Promise<void> {
  await db.insert(subjectViolations).values(input).onConflictDoNothing();
}

export interface SubjectPageFilter {
  regions: string[] | null;
  region?: string;
  after?: [string, string] | null;
  limit: number;
  /** Extra SQL condition (e.g. a policy's scope, or "triggered"). */
  where?: SQL;
}

/** A page of subjects ordered by (created_at, id). */
export async function listSubjectPage(db: DbOrTx, f: SubjectPageFilter) {
  const conds: Array<SQL | undefined> = [
    f.regions === null ? undefined : inArray(subjects.region, f.regions.length ? f.regions : ['']),
    f.region ? eq(subjects.region, f.region) : undefined,
    // Keyset on the exact (microsecond) timestamp: a JS Date would round it to milliseconds.
    f.after ? sql`(${subjects.createdAt}, ${subjects.id}) > (${f.after[0]}::timestamptz, ${f.after[1]}::uuid)` : undefined,
    f.where,
  ];
  return db
    .select({
      id: subjects.id,
      pseudonym: subjects.pseudonym,
      region: subjects.region,
      department: subjects.department,
      groups: subjects.groups,
      createdAt: subjects.createdAt,
      cursorAt: cursorTime(subjects.createdAt),
    })
    .from(subjects)
    .where(and(...conds))
    .orderBy(asc(subjects.createdAt), asc(subjects.id))
    .limit(f.limit + 1);
}
