import { asc, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  appendAudit,
  encodeScannedRow,
  GENESIS_HASH,
  queryAuditRows,
  scanDigests,
  verifyAuditChain,
  type DigestRow,
} from '../../db/audit';
import { auditLog } from '../../db/schema';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
});
afterAll(async () => sys?.close());

const entry = (i: number) => ({
  actor: `actor-${i % 3}`,
  actorRoles: ['admin'],
  action: 'test.append',
  category: 'system' as const,
  targetType: 'thing',
  targetId: `t-${i}`,
  outcome: 'allowed' as const,
  details: { i, nested: { b: 2, a: 1 } },
});

describe('the audit log is a hash chain', () => {
  it('each appended entry links to the previous one, and verification recomputes every hash', async () => {
    const first = await appendAudit(sys.db, entry(1));
    const second = await appendAudit(sys.db, entry(2));
    expect(first.prevHash).toBe(GENESIS_HASH);
    expect(second.prevHash).toBe(first.hash);
    expect(second.seq).toBeGreaterThan(first.seq);
    const result = await verifyAuditChain(sys.db);
    expect(result).toMatchObject({ ok: true, checked: 2, lastHash: second.hash });
  });

  it('concurrent writers still produce one unbroken chain', async () => {
    await Promise.all(Array.from({ length: 60 }, (_, i) => appendAudit(sys.db, entry(100 + i))));
    const rows = await sys.db.select().from(auditLog).orderBy(asc(auditLog.seq));
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    expect(new Set(rows.map((r) => r.prevHash)).size).toBe(rows.length);
    expect(await verifyAuditChain(sys.db)).toMatchObject({ ok: true, checked: rows.length });
  });

  it('an entry rolls back with the change it records', async () => {
    const before = await verifyAuditChain(sys.db);
    await expect(
      sys.db.transaction(async (tx) => {
        await appendAudit(tx, entry(999));
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await verifyAuditChain(sys.db)).toMatchObject({ ok: true, checked: before.checked, lastHash: before.lastHash });
  });

  it('the database refuses UPDATE, DELETE and TRUNCATE of the log', async () => {
    const refusal = (q: ReturnType<typeof sql>) =>
      sys.db.execute(q).then(
        () => 'accepted',
        (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
      );
    expect(await refusal(sql`update audit_log set actor = 'someone-else'`)).toMatch(/append-only: UPDATE/);
    expect(await refusal(sql`delete from audit_log`)).toMatch(/append-only: DELETE/);
    expect(await refusal(sql`truncate audit_log`)).toMatch(/append-only: TRUNCATE/);
    expect((await verifyAuditChain(sys.db)).ok).toBe(true);
  });

  it('the streaming verification reader encodes every entry exactly as the canonical encoder does', async () => {
    const odd = [
      { s: 'quote " backslash \\ newline \n tab \t ctl \u0001 del \u007f é 😀 \u2028 {a,b}', b: true, n: null, i: -42 },
      { big: 12345678901234, float: 1.5, tiny: 1.5e-7, huge: 1e21, neg0: -0 },
      { list: ['a', 'b'], obj: { z: 1, a: [null, { y: 'x' }] } },
      {},
      { zeta: 1, Alpha: 2, alpha: 3, 'a b': 4, ä: 5, '\ue000': 6, '😀': 7 },
    ];
    const written = [];
    // Whole seconds and trailing-zero milliseconds: Postgres prints them shorter than to_char does.
    const times = [Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 0, 0, 0, 100), Date.UTC(2026, 0, 1, 0, 0, 0, 120)];
    for (const [i, details] of odd.entries())
      written.push(
        await appendAudit(sys.db, {
          ...entry(7),
          actor: 'tab\tback\\slash',
          reason: 'why "so"\n\r',
          details,
          ...(times[i] ? { at: new Date(times[i]) } : {}),
        }),
      );
    // A role Postgres must quote in its array syntax: the fast reader hands that row to the exact one.
    written.push(await appendAudit(sys.db, { ...entry(8), actorRoles: ['odd, "role"', 'x'] }));
    const from = written[0]!.seq - 1;
    const to = written.at(-1)!.seq;
    const fast: DigestRow[] = [];
    for await (const rows of scanDigests(sys.db, { afterSeq: from, toSeq: to })) fast.push(...rows);
    const exact = await queryAuditRows(sys.db, { afterSeq: from, toSeq: to, limit: 100 });
    expect(fast.map((r) => r.seq)).toEqual(written.map((w) => w.seq));
    expect(fast.map((r) => r.hash)).toEqual(written.map((w) => w.hash));
    expect(fast.map((r, i) => r.encoded === encodeScannedRow(exact[i]!))).toEqual([true, true, true, true, true, false]);
    expect(fast.at(-1)!.encoded).toBeNull();
    const sha = (t: string) => createHash('sha256').update(t).digest('hex');
    expect(fast.slice(0, -1).every((r) => sha(r.encoded!) === r.hash)).toBe(true);
    expect(await verifyAuditChain(sys.db)).toMatchObject({ ok: true, lastSeq: to });
  });

  it('an entry edited behind the trigger is detected at its position', async () => {
    const rows = await sys.db.select().from(auditLog).orderBy(asc(auditLog.seq));
    const victim = rows[5]!;
    await sys.db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(sql`update audit_log set target_id = 'forged' where seq = ${victim.seq}`);
    });
    expect(await verifyAuditChain(sys.db)).toMatchObject({
      ok: false,
      firstBroken: { seq: victim.seq, reason: 'hash_mismatch' },
    });
  });
});
