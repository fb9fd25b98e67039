/**
 * The identity vault's keys and the roster's semantics, probed through the API with a rotated
 * vault key ring (`VAULT_KEYS=vnew:…,vold:…`): identities sealed under the old key still open, a
 * re-import re-seals under the new one, a retired key or a tampered (or moved) vault row fails
 * loudly instead of serving an identity; pseudonyms stay unique and stable; a regional connector
 * cannot take over another region's person; the 10,000-record limit; no identity in logs.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, identityVault, revealGrants, signals, subjects } from '../../db/schema';
import type { KeyRingEntry } from '../../infra/codec';
import { externalKey, openIdentity, pseudonymFor, sealIdentity, type IdentityRecord } from '../../infra/identity';
import { openText, sealText } from '../../infra/sealed';
import { caseDriver, people, waitFor, type TestPrincipal } from '../helpers/cases';
import { ev, importPeople, ingest, subjectIdOf, uniq } from '../helpers/detection';
import { createAlert } from '../helpers/fixtures';
import { principals, startTestSystem, testConfig, type TestSystem } from '../helpers/system';

/** Every display name of this file carries this string, so the log check at the end can find any of them. */
const CANARY = `Qvkcanary${randomBytes(3).toString('hex')}`;

const OLD_KEY: KeyRingEntry = { id: 'vold', key: randomBytes(32) };
const NEW_KEY: KeyRingEntry = { id: 'vnew', key: randomBytes(32) };
const RETIRED_KEY: KeyRingEntry = { id: 'vretired', key: randomBytes(32) };
const ring = (...keys: KeyRingEntry[]) => keys.map((k) => `${k.id}:${k.key.toString('base64')}`).join(',');

let sys: TestSystem;
let drive: ReturnType<typeof caseDriver>;
beforeAll(async () => {
  // After a rotation: the new key first (it encrypts), the old one still configured (it decrypts).
  sys = await startTestSystem({ env: { VAULT_KEYS: ring(NEW_KEY, OLD_KEY) } });
  drive = caseDriver(sys);
});
afterAll(async () => sys?.close());

type Roster = {
  externalId: string;
  displayName: string;
  email: string;
  upn: string;
  manager: string;
  department: string;
  groups: string[];
  region: string;
};

function rosterPerson(region = 'us', extra: Partial<Roster> = {}): Roster {
  const externalId = uniq('K');
  return {
    externalId,
    displayName: `${CANARY} ${externalId}`,
    email: `${externalId.toLowerCase()}@corp.example`,
    upn: `${externalId.toLowerCase()}@upn.corp.example`,
    manager: `boss-${externalId.toLowerCase()}@corp.example`,
    department: 'Sales',
    groups: ['sales'],
    region,
    ...extra,
  };
}

/** The identity record exactly as the import seals it. */
const identityOf = (p: Roster): IdentityRecord => ({
  externalId: p.externalId,
  displayName: p.displayName,
  email: p.email,
  upn: p.upn,
  manager: p.manager,
  department: p.department,
});

const vaultRow = async (subjectId: string) =>
  (await sys.db.select().from(identityVault).where(eq(identityVault.subjectId, subjectId)))[0]!;

/** Replace a subject's vault row as an earlier deployment (or an intruder with database access) left it. */
async function writeVault(subjectId: string, row: { keyId: string; ciphertext: string; fingerprint: string }) {
  await sys.db.update(identityVault).set(row).where(eq(identityVault.subjectId, subjectId));
}

/** A US person imported through the API, a case about them, and an approved reveal (US: Legal alone) for the investigator. */
async function revealedCase(p: Roster = rosterPerson('us')) {
  expect(await importPeople(sys, [p])).toMatchObject({ created: 1 });
  const subjectId = await subjectIdOf(sys, p.externalId);
  const alert = await createAlert(sys.db, { subjectId, region: 'us' });
  const confirmed = await drive.confirm(alert.id);
  expect([200, 201], JSON.stringify(confirmed.body)).toContain(confirmed.status);
  const caseId = confirmed.body.caseId as string;
  const requested = await drive.requestStep(caseId, 'reveal_identity');
  expect(requested.status, JSON.stringify(requested.body)).toBe(202);
  const stepId = requested.body.stepId as string;
  const decided = await drive.decide(caseId, stepId, people.legal);
  expect(decided.status, JSON.stringify(decided.body)).toBe(200);
  const grant = await waitFor(
    async () => (await sys.db.select().from(revealGrants).where(eq(revealGrants.stepId, stepId)))[0],
    (g) => g?.status === 'active',
  );
  expect(grant?.status, 'grant created after approval').toBe('active');
  return { p, subjectId, caseId };
}

const readIdentity = async (caseId: string) =>
  sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await sys.auth(people.investigator));

const allowedReads = async (caseId: string) =>
  (
    await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'identity.read'), eq(auditLog.targetId, caseId), eq(auditLog.outcome, 'allowed')))
  ).length;

describe('vault key rotation (VAULT_KEYS: first key encrypts, every key decrypts)', () => {
  it('an identity sealed under the old key is still revealed; new writes and a re-import of the same record seal under the new key', async () => {
    const { p, subjectId, caseId } = await revealedCase();
    // Imported after the rotation: sealed under the new key, which alone opens it.
    const fresh = await vaultRow(subjectId);
    expect(fresh.keyId).toBe(NEW_KEY.id);
    expect(openIdentity([NEW_KEY], fresh)).toEqual(identityOf(p));

    // The row as the deployment before the rotation wrote it.
    await writeVault(subjectId, sealIdentity([OLD_KEY], identityOf(p)));
    const res = await readIdentity(caseId);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.identity).toEqual({
      displayName: p.displayName,
      email: p.email,
      upn: p.upn,
      manager: p.manager,
      department: p.department,
    });

    // The same record again moves the row to the new key (an update, nothing else changes)…
    const before = await vaultRow(subjectId);
    expect(await importPeople(sys, [p])).toEqual({ created: 0, updated: 1, unchanged: 0, rejected: [] });
    const resealed = await vaultRow(subjectId);
    expect(resealed.keyId).toBe(NEW_KEY.id);
    expect(resealed.version).toBe(before.version + 1);
    expect(openIdentity([NEW_KEY], resealed)).toEqual(identityOf(p));
    // …and once there, the same record is a no-op again.
    expect(await importPeople(sys, [p])).toEqual({ created: 0, updated: 0, unchanged: 1, rejected: [] });
    expect(await vaultRow(subjectId)).toEqual(resealed);
  });

  it('HR remarks are sealed under the new key; remarks sealed under the old key still open with the configured ring', async () => {
    const p = rosterPerson('us');
    await importPeople(sys, [p]);
    const remark = `Discussed the move with ${CANARY} in person`;
    const review = ev.performanceReview(p.externalId, undefined, remark);
    const r = await ingest(sys, [review]);
    expect(r.body).toMatchObject({ accepted: 1, rejected: [] });
    const [row] = await sys.db.select().from(signals).where(eq(signals.externalId, review.externalId));
    expect(row!.sealed!.startsWith(`${NEW_KEY.id}:`)).toBe(true);
    expect(JSON.stringify(row!.attributes)).not.toContain(CANARY);
    expect(openText([NEW_KEY], row!.sealed!)).toEqual({ remarks: remark });
    // A remark stored before the rotation.
    expect(openText(sys.config.keys.vault, sealText([OLD_KEY], { remarks: remark }))).toEqual({ remarks: remark });
  });

  it('a key ring naming one key id twice is refused at start-up, naming the variable (rows sealed under the shadowed key would not open)', () => {
    // A rotation done by putting the new key under the old id: the old key, second, is shadowed.
    const shadowing = ring({ id: 'v1', key: NEW_KEY.key }, { id: 'v1', key: OLD_KEY.key });
    const sealedBefore = sealIdentity([{ id: 'v1', key: OLD_KEY.key }], identityOf(rosterPerson()));
    const ambiguous = [
      { id: 'v1', key: NEW_KEY.key },
      { id: 'v1', key: OLD_KEY.key },
    ];
    expect(() => openIdentity(ambiguous, sealedBefore)).toThrow();
    expect(() => testConfig({ VAULT_KEYS: shadowing })).toThrow(/VAULT_KEYS/);
  });

  it('a vault row under a key no longer configured fails loudly (500 revealing nothing, logged), never served; a re-import re-seals it', async () => {
    const { p, subjectId, caseId } = await revealedCase();
    await writeVault(subjectId, sealIdentity([RETIRED_KEY], identityOf(p)));
    const readsBefore = await allowedReads(caseId);
    const logsBefore = sys.logs.length;

    const res = await readIdentity(caseId);
    expect(res.status).toBe(500);
    expect(res.body.identity).toBeUndefined();
    expect(res.text).not.toContain(CANARY);
    expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
    // Logged with its request id, so an operator finds the missing key.
    const logged = sys.logs.slice(logsBefore).join('\n');
    expect(logged).toContain(res.headers['x-request-id']!);
    expect(logged).toContain(RETIRED_KEY.id);
    expect(await allowedReads(caseId)).toBe(readsBefore);

    // The HR system sends the person again: the row is sealed under the active key and reads again.
    expect(await importPeople(sys, [p])).toMatchObject({ updated: 1 });
    expect((await vaultRow(subjectId)).keyId).toBe(NEW_KEY.id);
    const again = await readIdentity(caseId);
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.identity.displayName).toBe(p.displayName);
  });
});

describe('a tampered vault row is detected, never served', () => {
  it('a flipped byte in the ciphertext makes the read fail (500), with no identity and no allowed read audited', async () => {
    const { subjectId, caseId } = await revealedCase();
    const row = await vaultRow(subjectId);
    const bytes = Buffer.from(row.ciphertext, 'base64');
    bytes[20] = bytes[20]! ^ 0x01;
    await writeVault(subjectId, { ...row, ciphertext: bytes.toString('base64') });
    const readsBefore = await allowedReads(caseId);

    const res = await readIdentity(caseId);
    expect(res.status).toBe(500);
    expect(res.body.identity).toBeUndefined();
    expect(res.text).not.toContain(CANARY);
    expect(await allowedReads(caseId)).toBe(readsBefore);
  });

  it('another subject’s vault row copied onto this subject is refused, not served as this subject’s identity', async () => {
    const { p, subjectId, caseId } = await revealedCase();
    const other = rosterPerson('us');
    await importPeople(sys, [other]);
    const otherRow = await vaultRow(await subjectIdOf(sys, other.externalId));
    // A valid ciphertext under a configured key, but sealed for someone else.
    await writeVault(subjectId, { keyId: otherRow.keyId, ciphertext: otherRow.ciphertext, fingerprint: otherRow.fingerprint });

    const res = await readIdentity(caseId);
    // The investigator's grant is for this case's subject; the other person's identity must not come out of it.
    expect(res.body.identity?.displayName ?? null, 'served another person’s identity for this case').not.toBe(other.displayName);
    expect(res.text).not.toContain(other.email);
    expect(res.status).toBe(500);
    expect(res.text).not.toContain(p.displayName);
  });
});

describe('pseudonyms: stable and unique', () => {
  it('a person whose derived pseudonym is already taken gets another; it stays theirs across re-imports that change everything else', async () => {
    const p = rosterPerson('eu');
    const first = pseudonymFor(sys.config.keys.pseudonym, p.externalId, 0);
    // Someone else already holds the first derivation.
    await sys.db.execute(sql`
      insert into subjects (external_key, pseudonym, region, groups)
      values (${randomBytes(32).toString('hex')}, ${first}, 'eu', array[]::text[])`);
    expect(await importPeople(sys, [p])).toMatchObject({ created: 1, rejected: [] });
    const id = await subjectIdOf(sys, p.externalId);
    const [row] = await sys.db.select().from(subjects).where(eq(subjects.id, id));
    expect(row!.pseudonym).not.toBe(first);
    expect(row!.pseudonym).toBe(pseudonymFor(sys.config.keys.pseudonym, p.externalId, 1));

    const changed = { ...p, displayName: `${CANARY} Renamed`, department: 'Audit', groups: ['audit'], region: 'us' };
    expect(await importPeople(sys, [changed])).toMatchObject({ updated: 1 });
    const [after] = await sys.db.select().from(subjects).where(eq(subjects.id, id));
    expect(after).toMatchObject({ pseudonym: row!.pseudonym, region: 'us', department: 'Audit' });
  });

  it('two new people whose derivations collide get distinct pseudonyms, in one import and in two concurrent imports', async () => {
    // Find two external ids with the same first derivation (a birthday search over 31^6 pseudonyms).
    const findPair = (prefix: string): [string, string] => {
      const seen = new Map<string, string>();
      for (let i = 0; ; i++) {
        const id = `${prefix}-${i}`;
        const ps = pseudonymFor(sys.config.keys.pseudonym, id, 0);
        const prior = seen.get(ps);
        if (prior) return [prior, id];
        seen.set(ps, id);
      }
    };
    const pseudonymsOf = async (ids: string[]) =>
      (
        await sys.db
          .select({ pseudonym: subjects.pseudonym })
          .from(subjects)
          .where(
            inArray(
              subjects.externalKey,
              ids.map((x) => externalKey(sys.config.keys.pseudonym, x)),
            ),
          )
      ).map((r) => r.pseudonym);

    const [a, b] = findPair(uniq('PA'));
    expect(pseudonymFor(sys.config.keys.pseudonym, a, 0)).toBe(pseudonymFor(sys.config.keys.pseudonym, b, 0));
    expect(await importPeople(sys, [rosterPerson('eu', { externalId: a }), rosterPerson('eu', { externalId: b })])).toMatchObject(
      { created: 2, rejected: [] },
    );
    const inOne = await pseudonymsOf([a, b]);
    expect(inOne).toHaveLength(2);
    expect(new Set(inOne).size).toBe(2);

    const [c, d] = findPair(uniq('PC'));
    const connector = await sys.auth(principals.connector);
    const post = (x: string) =>
      sys.http
        .post('/v1/subjects/import')
        .set('Authorization', connector)
        .send({ subjects: [rosterPerson('eu', { externalId: x })] });
    const [rc, rd] = await Promise.all([post(c), post(d)]);
    expect([rc.status, rd.status], JSON.stringify([rc.body, rd.body])).toEqual([200, 200]);
    expect([rc.body.created, rd.body.created]).toEqual([1, 1]);
    const concurrent = await pseudonymsOf([c, d]);
    expect(concurrent).toHaveLength(2);
    expect(new Set(concurrent).size).toBe(2);
  });
});

describe('roster semantics', () => {
  it('an external id with surrounding spaces is the same person: trimmed in the roster, the vault and the signals', async () => {
    const bare = uniq('T');
    const p = rosterPerson('eu', { externalId: `  ${bare}\t` });
    expect(await importPeople(sys, [p])).toMatchObject({ created: 1, rejected: [] });
    const id = await subjectIdOf(sys, bare);
    expect(openIdentity(sys.config.keys.vault, await vaultRow(id)).externalId).toBe(bare);
    // The same record without the spaces changes nothing; a signal naming the person with spaces reaches them.
    expect(await importPeople(sys, [{ ...p, externalId: bare }])).toEqual({ created: 0, updated: 0, unchanged: 1, rejected: [] });
    const usb = ev.usb(` ${bare} `, 2);
    const r = await ingest(sys, [usb]);
    expect(r.body).toMatchObject({ accepted: 1, rejected: [] });
    const [stored] = await sys.db.select().from(signals).where(eq(signals.externalId, usb.externalId));
    expect(stored!.subjectId).toBe(id);
  });

  it('a connector of one region cannot take over a person of another region by re-importing them into its own', async () => {
    const p = rosterPerson('eu');
    await importPeople(sys, [p]);
    const id = await subjectIdOf(sys, p.externalId);
    const [subjectBefore] = await sys.db.select().from(subjects).where(eq(subjects.id, id));
    const vaultBefore = await vaultRow(id);

    const usConnector: TestPrincipal = { sub: 'connector-us', roles: ['connector'], regions: ['us'] };
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await sys.auth(usConnector))
      .send({ subjects: [{ ...p, region: 'us', displayName: `${CANARY} Impostor`, email: 'impostor@evil.example' }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // The EU person stays in the EU with the identity the EU roster gave them.
    const [subjectAfter] = await sys.db.select().from(subjects).where(eq(subjects.id, id));
    expect(subjectAfter!.region, 'an EU subject was moved by a US-only connector').toBe('eu');
    expect(subjectAfter).toEqual(subjectBefore);
    expect(await vaultRow(id)).toEqual(vaultBefore);
    expect(res.body).toMatchObject({ created: 0, updated: 0, unchanged: 0 });
    expect(res.body.rejected).toHaveLength(1);
    expect(res.body.rejected[0].index).toBe(0);
  });

  it('accepts exactly 10,000 records; 10,001 is a 413 that stores nothing', async () => {
    const batch = (group: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({
        externalId: `${group}-${i}`,
        displayName: `${CANARY} ${group} ${i}`,
        groups: [group],
        region: i % 2 ? 'eu' : 'us',
      }));
    const countIn = async (group: string) =>
      (await sys.db.execute<{ n: number }>(sql`select count(*)::int as n from subjects where ${group} = any(groups)`)).rows[0]!.n;
    const connector = await sys.auth(principals.connector);

    const big = uniq('big');
    const over = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', connector)
      .send({ subjects: batch(big, 10_001) });
    expect(over.status).toBe(413);
    expect(over.body.error.message).toContain('10000');
    expect(await countIn(big)).toBe(0);

    const ok = uniq('max');
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', connector)
      .send({ subjects: batch(ok, 10_000) });
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(200);
    expect(res.body).toEqual({ created: 10_000, updated: 0, unchanged: 0, rejected: [] });
    expect(await countIn(ok)).toBe(10_000);
    const vaulted = await sys.db.execute<{ n: number }>(sql`
      select count(*)::int as n from identity_vault v join subjects s on s.id = v.subject_id
      where ${ok} = any(s.groups) and v.key_id = ${NEW_KEY.id}`);
    expect(vaulted.rows[0]!.n).toBe(10_000);
    const distinct = await sys.db.execute<{ n: number }>(
      sql`select count(distinct pseudonym)::int as n from subjects where ${ok} = any(groups)`,
    );
    expect(distinct.rows[0]!.n).toBe(10_000);
  }, 60_000);

  it('rejections name the field, never echo the identity; a rejected person is stored nowhere', async () => {
    const p = rosterPerson('eu');
    const badEmail = `${CANARY.toLowerCase()}-not-an-email`;
    const res = await sys.http
      .post('/v1/subjects/import')
      .set('Authorization', await sys.auth(principals.connector))
      .send({
        subjects: [
          { ...p, email: badEmail },
          { ...p, externalId: '   ' },
        ],
      });
    expect(res.status).toBe(200);
    expect(res.body.created).toBe(0);
    expect(res.body.rejected.map((r: { index: number; reason: string }) => [r.index, r.reason.split(':')[0]])).toEqual([
      [0, 'email'],
      [1, 'externalId'],
    ]);
    expect(res.text.toLowerCase()).not.toContain(CANARY.toLowerCase());
    const [none] = await sys.db
      .select()
      .from(subjects)
      .where(eq(subjects.externalKey, externalKey(sys.config.keys.pseudonym, p.externalId)));
    expect(none).toBeUndefined();
  });
});

describe('identity fields never logged', () => {
  it('no log line of this file’s imports, reveals, failures and rejections carries a name, email or external id', () => {
    expect(sys.logs.length).toBeGreaterThan(0);
    const text = sys.logs.join('\n').toLowerCase();
    expect(text).not.toContain(CANARY.toLowerCase());
    expect(text).not.toContain('@corp.example');
    expect(text).not.toContain('impostor');
    // A sanity check of the premise: the request ids of failed reads are in the logs.
    expect(text).toContain('request failed');
  });
});
