import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { asc, sql } from 'drizzle-orm';
import { afterEach, describe, expect, it } from 'vitest';
import { toCheckpoint } from '../../api/routes/audit';
import { appendAudit, writeAuditCheckpoint } from '../../db/audit';
import { createDatabase, type Database } from '../../db';
import { auditLog } from '../../db/schema';
import { testConfig, createTestDatabase } from '../helpers/system';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'audit-verify-'));
const config = testConfig();

/** `npm run audit:verify` as an auditor runs it: a separate process against a database URL. */
async function verifyCli(env: Record<string, string>, args: string[] = []) {
  return run(path.join(root, 'node_modules/.bin/tsx'), ['scripts/audit-verify.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH!, ...env },
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

let open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.map((d) => d.close()));
  open = [];
});

async function log(entries = 12, checkpoint = true) {
  const url = await createTestDatabase();
  const database = createDatabase(url, 2);
  open.push(database);
  for (let i = 0; i < entries; i++)
    await appendAudit(database.db, { actor: `a${i}`, action: 'seed', category: 'system', outcome: 'allowed' });
  const cp = checkpoint
    ? await writeAuditCheckpoint(database.db, config.audit.signingKey, {
        actor: 'auditor-1',
        actorRoles: ['auditor'],
        requestId: null,
      })
    : null;
  const seqs = (await database.db.select({ seq: auditLog.seq }).from(auditLog).orderBy(asc(auditLog.seq))).map((r) => r.seq);
  const asOwner = (q: ReturnType<typeof sql>) =>
    database.db.transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await tx.execute(q);
    });
  return { url, db: database.db, seqs, cp, asOwner };
}

describe('npm run audit:verify (offline, against a database)', () => {
  it('an intact log with a signed checkpoint exits 0', async () => {
    const { url, seqs } = await log();
    const r = await verifyCli({ DATABASE_URL: url });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${seqs.length} verified, up to seq ${seqs.at(-1)}`);
    expect(r.stdout).toContain('OK         the audit log is intact');
  });

  it('an edited entry exits 1 naming its position; --json gives the machine-readable result', async () => {
    const { url, seqs, asOwner } = await log();
    await asOwner(sql`update audit_log set action = 'forged' where seq = ${seqs[6]!}`);
    const r = await verifyCli({ DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`BROKEN     at seq ${seqs[6]} (hash_mismatch); last good entry: ${seqs[5]}`);
    const j = await verifyCli({ DATABASE_URL: url }, ['--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, firstBroken: { seq: seqs[6], reason: 'hash_mismatch' } });
  });

  it('a deleted tail exits 1 via the checkpoint, checked with the published public key file', async () => {
    const { url, seqs, asOwner } = await log();
    await asOwner(sql`delete from audit_log where seq >= ${seqs[10]!}`);
    const pem = path.join(tmp, 'audit-public.pem');
    writeFileSync(pem, config.audit.signingKey.publicKeyPem);
    const r = await verifyCli({ DATABASE_URL: url }, ['--public-key', pem]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`BROKEN     at seq ${seqs.at(-1)} (tail_missing); last good entry: ${seqs[9]}`);
  });

  it('a tail deleted together with its checkpoints is caught by a checkpoint kept outside Warden', async () => {
    const { url, seqs, cp, asOwner } = await log();
    const file = path.join(tmp, 'kept-checkpoint.json');
    writeFileSync(file, JSON.stringify(toCheckpoint(cp!.checkpoint)));
    await asOwner(sql`delete from audit_log where seq >= ${seqs[10]!}`);
    await asOwner(sql`delete from audit_checkpoints`);
    const inside = await verifyCli({ DATABASE_URL: url });
    expect(inside.code).toBe(3);
    expect(inside.stdout).toContain('no checkpoint is signed by this key');
    const r = await verifyCli({ DATABASE_URL: url }, ['--checkpoint', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `external   the external checkpoint names entry ${cp!.checkpoint.seq}, which the log no longer has`,
    );
  });

  it('checkpoints signed by another key do not count; bad usage exits 2', async () => {
    const { url } = await log(3);
    const other = await verifyCli({ DATABASE_URL: url, AUDIT_SIGNING_KEY: Buffer.alloc(32, 99).toString('base64') });
    expect(other.code).toBe(3);
    expect(other.stdout).toContain('0 of 1 signed by this key');
    expect((await verifyCli({})).code).toBe(2);
    expect((await verifyCli({ DATABASE_URL: url }, ['--bogus'])).code).toBe(2);
  });
});
