/**
 * Auditors' view of the audit log: query with filters and keyset pagination, region scope,
 * verification (incl. every kind of tampering, at the right position), signed checkpoints and the
 * published key, and streamed NDJSON / CSV export.
 */
import { verify } from 'node:crypto';
import { asc, eq, sql } from 'drizzle-orm';
import type supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AuditEntrySchema, CheckpointSchema, PublicKeySchema, VerificationSchema } from '../../api/routes/audit';
import {
  appendAudit,
  encodeAuditEntry,
  GENESIS_HASH,
  hashAuditEntry,
  writeAuditCheckpoint,
  type AuditEntry,
} from '../../db/audit';
import { auditCheckpoints, auditLog } from '../../db/schema';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

const Page = z.object({ items: z.array(AuditEntrySchema), nextCursor: z.string().nullable() });
const CASE_EU = '4f6c1c7e-0b7a-4d55-9d2e-2a8f3f0c0e01';
const CASE_US = '9b2d9a55-5d0e-4c8e-a0a5-7b1f1c9f6a02';

const base = { actorRoles: ['investigator'], outcome: 'allowed' as const };
/** A small, varied log: two regions, a tenant-wide change, a denied attempt, case references by target and by details. */
const SEED: AuditEntry[] = [
  { ...base, actor: 'inv-eu', action: 'case.read', category: 'cases', targetType: 'case', targetId: CASE_EU, region: 'eu' },
  { ...base, actor: 'inv-eu', action: 'case.note.add', category: 'cases', targetType: 'case', targetId: CASE_EU, region: 'eu' },
  { ...base, actor: 'inv-us', action: 'case.read', category: 'cases', targetType: 'case', targetId: CASE_US, region: 'us' },
  {
    ...base,
    actor: 'legal-1',
    actorRoles: ['approver'],
    action: 'step.decide',
    category: 'approvals',
    targetType: 'step',
    targetId: 's-1',
    region: 'eu',
    details: { caseId: CASE_EU, decision: 'approve' },
  },
  {
    ...base,
    actor: 'inv-eu',
    action: 'identity.read',
    category: 'identity',
    targetType: 'subject',
    targetId: 'subj-1',
    region: 'eu',
    details: { caseId: CASE_EU },
  },
  {
    ...base,
    actor: 'admin-1',
    actorRoles: ['admin'],
    action: 'settings.update',
    category: 'settings',
    targetType: 'settings',
    targetId: 'tenant',
  },
  {
    ...base,
    actor: 'analyst-9',
    actorRoles: ['analyst'],
    action: 'GET /v1/cases/{id}',
    category: 'cases',
    outcome: 'denied',
    reason: 'outside region',
    region: 'us',
  },
  {
    ...base,
    actor: 'system:timer',
    actorRoles: [],
    action: 'step.expire',
    category: 'approvals',
    targetType: 'step',
    targetId: 's-2',
    region: 'us',
    details: { caseId: CASE_US },
  },
];

let sys: TestSystem;
let auditor: string;
let seeded: Awaited<ReturnType<typeof appendAudit>>[];

beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  auditor = await sys.auth(principals.auditor);
  seeded = [];
  for (const e of SEED) seeded.push(await appendAudit(sys.db, e));
});
afterAll(async () => sys?.close());

const get = async (query: string, authz = auditor) => {
  const res = await sys.http.get(`/v1/audit${query}`).set('Authorization', authz);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return Page.parse(res.body);
};

/** Read a streamed body as text, whatever its content type. */
const text = (req: supertest.Test) =>
  req.buffer(true).parse((res, cb) => {
    let data = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (data += c));
    res.on('end', () => cb(null, data));
  });

describe('GET /v1/audit', () => {
  it('pages newest first by seq with an opaque cursor, without gaps or repeats, and oldest first on request', async () => {
    for (let i = 0; i < 23; i++)
      await appendAudit(sys.db, { ...base, actor: 'pager', action: 'page.test', category: 'system', details: { i } });
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`?actor=pager&limit=10${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(10);
      seen.push(...page.items.map((e) => e.seq));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(23);
    expect([...seen].sort((a, b) => b - a)).toEqual(seen);
    const asc = await get('?actor=pager&order=asc&limit=5');
    expect(asc.items.map((e) => e.details!.i)).toEqual([0, 1, 2, 3, 4]);
  });

  it('filters by actor, action (exact or prefix), category, region, outcome and time range', async () => {
    expect((await get('?actor=inv-eu')).items.map((e) => e.action)).toEqual(['identity.read', 'case.note.add', 'case.read']);
    expect((await get('?action=case.read')).items).toHaveLength(2);
    expect((await get('?action=case.*')).items.map((e) => e.action).sort()).toEqual(['case.note.add', 'case.read', 'case.read']);
    expect((await get('?category=identity,settings')).items.map((e) => e.category).sort()).toEqual(['identity', 'settings']);
    expect((await get('?category=identity&category=approvals')).items).toHaveLength(3);
    expect((await get('?region=us')).items.every((e) => e.region === 'us')).toBe(true);
    const denied = (await get('?outcome=denied&actor=analyst-9')).items;
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ reason: 'outside region', outcome: 'denied' });

    const at = seeded[3]!.at;
    const window = await get(`?from=${at.toISOString()}&to=${new Date(at.getTime() + 1).toISOString()}&order=asc`);
    expect(window.items.map((e) => e.seq)).toContain(seeded[3]!.seq);
    expect(window.items.every((e) => e.at === at.toISOString())).toBe(true);
    expect((await get(`?to=${seeded[0]!.at.toISOString()}`)).items).toEqual([]);
  });

  it('caseId finds entries that target the case and entries that name it in their details', async () => {
    const items = (await get(`?caseId=${CASE_EU}&order=asc`)).items;
    expect(items.map((e) => e.action)).toEqual(['case.read', 'case.note.add', 'step.decide', 'identity.read']);
    expect((await get(`?caseId=${CASE_US}`)).items.map((e) => e.action)).toEqual(['step.expire', 'case.read']);
  });

  it('a region-scoped auditor sees its regions and tenant-wide entries, never another region', async () => {
    const euAuditor = await sys.auth({ sub: 'auditor-eu', roles: ['auditor'], regions: ['eu'] });
    const items = (await get('?limit=1000', euAuditor)).items;
    expect(items.some((e) => e.region === 'eu')).toBe(true);
    expect(items.some((e) => e.region === null)).toBe(true);
    expect(items.filter((e) => e.region === 'us')).toEqual([]);
    expect((await get(`?caseId=${CASE_US}`, euAuditor)).items).toEqual([]);
    expect((await get('?region=us', euAuditor)).items).toEqual([]);
  });

  it('a denied attempt to read the log is itself in the log, with its reason', async () => {
    const res = await sys.http.get('/v1/audit').set('Authorization', await sys.auth(principals.analyst));
    expect(res.status).toBe(403);
    const [entry] = (await get(`?outcome=denied&actor=${principals.analyst.sub}`)).items;
    expect(entry).toMatchObject({
      action: 'GET /v1/audit',
      category: 'audit',
      reason: 'missing permission audit:read',
      requestId: res.headers['x-request-id'],
    });
  });

  it('bad filters answer 400 naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['?category=gossip', 'query.category'],
      ['?caseId=not-a-uuid', 'query.caseId'],
      ['?outcome=maybe', 'query.outcome'],
      ['?from=yesterday', 'query.from'],
      ['?limit=5000', 'query.limit'],
      ['?cursor=bm90LWEtY3Vyc29y', 'query.cursor'],
      ['?color=red', 'query'],
      ['?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'query.to'],
    ];
    for (const [q, field] of cases) {
      const res = await sys.http.get(`/v1/audit${q}`).set('Authorization', auditor);
      expect(res.status, q).toBe(400);
      expect(res.body.error.message, q).toContain(field);
    }
  });
});

describe('checkpoints and the published key', () => {
  it('a checkpoint on demand signs the entry recording the request, verifiable with the public key', async () => {
    const res = await sys.http.post('/v1/audit/checkpoints').set('Authorization', auditor);
    expect(res.status).toBe(201);
    const cp = CheckpointSchema.parse(res.body);
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.seq, cp.seq));
    expect(entry).toMatchObject({ action: 'audit.checkpoint', actor: principals.auditor.sub, hash: cp.hash });
    expect(cp.seq).toBe(
      (
        await sys.db
          .select()
          .from(auditLog)
          .orderBy(sql`seq desc`)
          .limit(1)
      )[0]!.seq,
    );

    const key = PublicKeySchema.parse((await sys.http.get('/v1/audit/public-key')).body);
    expect(key.keyId).toBe(cp.keyId);
    expect(verify(null, Buffer.from(cp.statement), key.publicKeyPem, Buffer.from(cp.signature, 'base64'))).toBe(true);
    expect(JSON.parse(cp.statement)).toMatchObject({ seq: cp.seq, hash: cp.hash, signedAt: cp.signedAt, keyId: cp.keyId });

    const list = await sys.http.get('/v1/audit/checkpoints').set('Authorization', auditor);
    expect(list.body.items[0]).toEqual(res.body);
  });

  it('administrators may ask for a checkpoint too; a periodic run skips when nothing is new', async () => {
    const res = await sys.http.post('/v1/audit/checkpoints').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(201);
    const periodic = await writeAuditCheckpoint(sys.db, sys.config.audit.signingKey, 'schedule');
    expect(periodic).toMatchObject({ created: false, checkpoint: { seq: res.body.seq } });
    await appendAudit(sys.db, { ...base, actor: 'x', action: 'x.y', category: 'system' });
    const next = await writeAuditCheckpoint(sys.db, sys.config.audit.signingKey, 'schedule');
    expect(next!.created).toBe(true);
    expect(next!.checkpoint.createdBy).toBe('system:schedule');
  });

  it('the database refuses to change or remove a checkpoint', async () => {
    const err = await sys.db.execute(sql`delete from audit_checkpoints`).then(
      () => 'accepted',
      (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
    );
    expect(err).toMatch(/audit_checkpoints is append-only: DELETE/);
    const upd = await sys.db.execute(sql`update audit_checkpoints set hash = 'x'`).then(
      () => 'accepted',
      (e: Error & { cause?: Error }) => e.cause?.message ?? e.message,
    );
    expect(upd).toMatch(/append-only: UPDATE/);
  });
});

describe('GET /v1/audit/verify on an intact log', () => {
  it('reports ok, the entries checked, the newest verified checkpoint and the retention floor', async () => {
    const res = await sys.http.get('/v1/audit/verify').set('Authorization', auditor);
    expect(res.status).toBe(200);
    const v = VerificationSchema.parse(res.body);
    const count = (await sys.db.select({ n: sql<number>`count(*)::int` }).from(auditLog))[0]!.n;
    expect(v).toMatchObject({ ok: true, scope: 'chain', checked: count, retention: { days: 180 } });
    const [latest] = await sys.db
      .select()
      .from(auditCheckpoints)
      .orderBy(sql`seq desc`)
      .limit(1);
    expect(v.checkpoint).toMatchObject({ seq: latest!.seq, hash: latest!.hash });
    expect(v.checkpoints).toMatchObject({ total: 3, verified: 3, otherKeys: 0 });
  });

  it('verifies a range linked to the entry before it', async () => {
    const res = await sys.http
      .get(`/v1/audit/verify?fromSeq=${seeded[2]!.seq}&toSeq=${seeded[5]!.seq}`)
      .set('Authorization', auditor);
    expect(res.body).toMatchObject({ ok: true, scope: 'range', checked: 4, lastSeq: seeded[5]!.seq, lastHash: seeded[5]!.hash });
    const bad = await sys.http.get('/v1/audit/verify?fromSeq=5').set('Authorization', auditor);
    expect(bad.status).toBe(400);
  });
});

describe('tampering behind the trigger is detected at the right position', () => {
  /** A fresh log of 10 entries with a checkpoint at its end, then `tamper` run as the database owner. */
  async function tampered(
    tamper: (rows: { seq: number }[], s: TestSystem) => Promise<void>,
    opts: { extraAfterCheckpoint?: number } = {},
  ) {
    const s = await startTestSystem({ worker: false });
    try {
      for (let i = 0; i < 10; i++)
        await appendAudit(s.db, { ...base, actor: `a${i}`, action: 'seed', category: 'system', details: { i } });
      await writeAuditCheckpoint(s.db, s.config.audit.signingKey, {
        actor: 'auditor-1',
        actorRoles: ['auditor'],
        requestId: null,
      });
      for (let i = 0; i < (opts.extraAfterCheckpoint ?? 0); i++)
        await appendAudit(s.db, { ...base, actor: 'late', action: 'seed', category: 'system' });
      const rows = await s.db.select({ seq: auditLog.seq }).from(auditLog).orderBy(asc(auditLog.seq));
      await tamper(rows, s);
      const res = await s.http.get('/v1/audit/verify').set('Authorization', await s.auth(principals.auditor));
      expect(res.status).toBe(200);
      return { rows, result: VerificationSchema.parse(res.body) };
    } finally {
      await s.close();
    }
  }
  /** Run SQL with the append-only triggers off, inside one transaction (they stay on for everyone else). */
  const asOwner = (s: TestSystem, ...statements: ReturnType<typeof sql>[]) =>
    s.db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      for (const st of statements) await tx.execute(st);
    });

  it('an edited entry: hash_mismatch at that entry', async () => {
    const { rows, result } = await tampered((rows, s) =>
      asOwner(s, sql`update audit_log set actor = 'someone-else' where seq = ${rows[4]!.seq}`),
    );
    expect(result).toMatchObject({
      ok: false,
      checked: 4,
      firstBroken: { seq: rows[4]!.seq, reason: 'hash_mismatch', lastGoodSeq: rows[3]!.seq },
    });
  });

  it('an edit that also recomputes the entry’s hash: the next entry no longer links to it', async () => {
    const { rows, result } = await tampered(async (rows, s) => {
      const [row] = await s.db.select().from(auditLog).where(eq(auditLog.seq, rows[4]!.seq));
      const forged = { ...row!, actor: 'someone-else' };
      const { hash: _old, ...fields } = forged;
      await asOwner(
        s,
        sql`update audit_log set actor = 'someone-else', hash = ${hashAuditEntry(fields)} where seq = ${row!.seq}`,
      );
    });
    expect(result.firstBroken).toMatchObject({ seq: rows[5]!.seq, reason: 'prev_hash_mismatch', lastGoodSeq: rows[4]!.seq });
  });

  it('a deleted middle entry: entry_missing at the entry after the gap', async () => {
    const { rows, result } = await tampered((rows, s) => asOwner(s, sql`delete from audit_log where seq = ${rows[5]!.seq}`));
    expect(result).toMatchObject({
      ok: false,
      checked: 5,
      firstBroken: { seq: rows[6]!.seq, reason: 'entry_missing', lastGoodSeq: rows[4]!.seq },
    });
  });

  it('a deleted first entry: entry_missing at the new first entry', async () => {
    const { rows, result } = await tampered((rows, s) => asOwner(s, sql`delete from audit_log where seq = ${rows[0]!.seq}`));
    expect(result.firstBroken).toMatchObject({ seq: rows[1]!.seq, reason: 'entry_missing', lastGoodSeq: null });
  });

  it('a deleted tail: the chain alone looks fine, the signed checkpoint catches it', async () => {
    const { rows, result } = await tampered((rows, s) => asOwner(s, sql`delete from audit_log where seq >= ${rows[8]!.seq}`), {
      extraAfterCheckpoint: 2,
    });
    // rows: 10 seeded, the checkpoint's own entry (index 10), 2 later entries; the checkpointed entry is gone.
    expect(result).toMatchObject({
      ok: false,
      checked: 8,
      lastSeq: rows[7]!.seq,
      firstBroken: { seq: rows[10]!.seq, reason: 'tail_missing', lastGoodSeq: rows[7]!.seq },
    });
    expect(result.firstBroken!.message).toMatch(/newest entries were deleted/);
  });

  it('a reordered pair: reordered at the first of the two', async () => {
    const { rows, result } = await tampered((rows, s) => {
      const [a, b] = [rows[3]!.seq, rows[4]!.seq];
      return asOwner(
        s,
        sql`update audit_log set seq = -1 where seq = ${a}`,
        sql`update audit_log set seq = ${a} where seq = ${b}`,
        sql`update audit_log set seq = ${b} where seq = -1`,
      );
    });
    expect(result).toMatchObject({
      ok: false,
      checked: 3,
      firstBroken: { seq: rows[3]!.seq, reason: 'reordered', lastGoodSeq: rows[2]!.seq },
    });
  });

  it('a chain rewritten consistently after a checkpoint: the checkpoint no longer matches', async () => {
    const { rows, result } = await tampered(async (rows, s) => {
      // Re-hash every entry from the 3rd on, so each link and hash is self-consistent again.
      const all = await s.db.select().from(auditLog).orderBy(asc(auditLog.seq));
      let prev = all[1]!.hash;
      const statements = [];
      for (const row of all.slice(2)) {
        const fields = { ...row, actor: row.seq === all[2]!.seq ? 'rewritten' : row.actor, prevHash: prev };
        const { hash: _h, ...hashed } = fields;
        const hash = hashAuditEntry(hashed);
        statements.push(
          sql`update audit_log set actor = ${fields.actor}, prev_hash = ${prev}, hash = ${'tmp-' + hash} where seq = ${row.seq}`,
        );
        prev = hash;
      }
      statements.push(sql`update audit_log set hash = substr(hash, 5) where hash like 'tmp-%'`);
      await asOwner(s, ...statements);
    });
    expect(result.firstBroken).toMatchObject({ seq: rows[10]!.seq, reason: 'checkpoint_mismatch' });
  });

  it('a forged checkpoint signature is reported', async () => {
    const { result } = await tampered(async (_rows, s) => {
      const [cp] = await s.db.select().from(auditCheckpoints);
      await asOwner(
        s,
        sql`insert into audit_checkpoints (seq, hash, signed_at, key_id, signature, created_by)
            values (${cp!.seq + 1000}, 'forged', now(), ${cp!.keyId}, ${Buffer.alloc(64).toString('base64')}, 'mallory')`,
      );
    });
    expect(result.firstBroken).toMatchObject({ seq: expect.any(Number), reason: 'checkpoint_signature_invalid' });
    expect(result.checkpoints).toMatchObject({ total: 2, verified: 1 });
  });
});

describe('GET /v1/audit/export', () => {
  it('NDJSON: one entry per line, oldest first, a chain that verifies offline, and the export itself audited', async () => {
    const res = await text(sys.http.get('/v1/audit/export?format=ndjson').set('Authorization', auditor));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="warden-audit-.*\.ndjson"/);
    const lines = (res.body as string)
      .trimEnd()
      .split('\n')
      .map((l) => AuditEntrySchema.strict().parse(JSON.parse(l)));
    const count = (await sys.db.select({ n: sql<number>`count(*)::int` }).from(auditLog))[0]!.n;
    expect(lines).toHaveLength(count);
    let prev = GENESIS_HASH;
    for (const e of lines) {
      expect(e.prevHash).toBe(prev);
      const { hash, ...fields } = { ...e, at: new Date(e.at) };
      expect(hashAuditEntry(fields)).toBe(hash);
      expect(encodeAuditEntry(fields)).not.toContain('displayName');
      prev = hash;
    }
    expect(lines[lines.length - 1]).toMatchObject({
      action: 'audit.export',
      actor: principals.auditor.sub,
      details: { format: 'ndjson' },
    });
  });

  it('CSV: a header and one row per entry, quoted where needed, formulas neutralized, filters applied', async () => {
    await appendAudit(sys.db, {
      ...base,
      actor: '=HYPERLINK("x")',
      action: 'csv.test',
      category: 'system',
      reason: 'a "quoted", multi\nline reason',
      details: { k: 'v,w' },
    });
    const res = await text(sys.http.get('/v1/audit/export?format=csv&action=csv.test').set('Authorization', auditor));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const body = res.body as string;
    const [header, ...rest] = body.split('\r\n');
    expect(header).toBe(
      'seq,at,actor,actor_roles,action,category,target_type,target_id,region,outcome,reason,request_id,details,prev_hash,hash',
    );
    expect(rest.filter(Boolean)).toHaveLength(1);
    expect(body).toContain(`"'=HYPERLINK(""x"")"`);
    expect(body).toContain('"a ""quoted"", multi\nline reason"');
    expect(body).toContain('"{""k"":""v,w""}"');
    expect(body).toContain(',investigator,csv.test,system,,,,allowed,');
  });

  it('a region-scoped auditor’s export holds only its regions and tenant-wide entries', async () => {
    const euAuditor = await sys.auth({ sub: 'auditor-eu', roles: ['auditor'], regions: ['eu'] });
    const res = await text(sys.http.get('/v1/audit/export').set('Authorization', euAuditor));
    const regions = new Set(
      (res.body as string)
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).region),
    );
    expect([...regions].sort()).toEqual(['eu', null].sort());
  });

  it('refuses an unknown format naming the field', async () => {
    const res = await sys.http.get('/v1/audit/export?format=xml').set('Authorization', auditor);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('query.format');
  });
});
