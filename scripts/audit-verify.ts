/**
 * `npm run audit:verify -- [--database-url URL] [--public-key FILE] [--checkpoint FILE] [--json]`
 *
 * Offline verification of the audit log, straight against a database (no API, no Temporal): the
 * whole hash chain from genesis, every signed checkpoint, and that the chain still holds the entry
 * each checkpoint names. `--checkpoint` adds a checkpoint kept outside Warden (a JSON object as
 * `GET /v1/audit/checkpoints` returns it), which catches a tail deleted together with its
 * checkpoints. Exit codes: 0 intact, 1 broken (the position is printed), 2 usage or connection
 * error, 3 the log verifies but no checkpoint is signed by the given key (truncation undetectable).
 *
 * The key: `--public-key` (SPKI PEM file), else `AUDIT_PUBLIC_KEY`, else the public half of
 * `AUDIT_SIGNING_KEY` (the development key when unset).
 */
import { createPublicKey, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { verifyAuditChain, verifyCheckpointSignature, type ChainVerification, type CheckpointVerifier } from '../db/audit';
import { createDatabase } from '../db';
import { auditLog } from '../db/schema';
import { DEV_AUDIT_SIGNING_KEY, loadAuditVerifyConfig, parseEd25519PrivateKey } from '../infra/config';

const ExternalCheckpoint = z.object({
  seq: z.number().int(),
  hash: z.string(),
  signedAt: z.string().datetime(),
  keyId: z.string(),
  signature: z.string(),
});

function fail(code: number, message: string): never {
  process.stderr.write(`audit:verify: ${message}\n`);
  process.exit(code);
}

function verifierFromPem(pem: string): CheckpointVerifier {
  const publicKey = createPublicKey(pem);
  if (publicKey.asymmetricKeyType !== 'ed25519') fail(2, `the public key is ${publicKey.asymmetricKeyType}, expected Ed25519`);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { publicKey, keyId: createHash('sha256').update(der).digest('hex').slice(0, 16) };
}

let values: { 'database-url'?: string; 'public-key'?: string; checkpoint?: string; json?: boolean };
try {
  values = parseArgs({
    options: {
      'database-url': { type: 'string' },
      'public-key': { type: 'string' },
      checkpoint: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  }).values;
} catch (err) {
  fail(2, (err as Error).message);
}

let env: ReturnType<typeof loadAuditVerifyConfig>;
try {
  env = loadAuditVerifyConfig();
} catch (err) {
  fail(2, (err as Error).message);
}
const url = values['database-url'] ?? env.databaseUrl;
if (!url) fail(2, 'give --database-url or DATABASE_URL');

let verifier: CheckpointVerifier;
let keySource: string;
if (values['public-key']) {
  verifier = verifierFromPem(readFileSync(values['public-key'], 'utf8'));
  keySource = values['public-key'];
} else if (env.publicKeyPem) {
  verifier = verifierFromPem(env.publicKeyPem);
  keySource = 'AUDIT_PUBLIC_KEY';
} else {
  verifier = env.signingKey ?? parseEd25519PrivateKey(DEV_AUDIT_SIGNING_KEY);
  keySource = env.signingKey ? 'AUDIT_SIGNING_KEY' : 'the development key (AUDIT_SIGNING_KEY unset)';
}

const database = createDatabase(url, 2);
let result: ChainVerification;
let external: { seq: number; ok: boolean; message: string } | undefined;
try {
  result = await verifyAuditChain(database.db, { verifier });
  if (values.checkpoint) {
    const cp = ExternalCheckpoint.parse(JSON.parse(readFileSync(values.checkpoint, 'utf8')));
    const signed = verifyCheckpointSignature(verifier, { ...cp, signedAt: new Date(cp.signedAt) });
    const [row] = await database.db.select({ hash: auditLog.hash }).from(auditLog).where(eq(auditLog.seq, cp.seq));
    external = !signed
      ? { seq: cp.seq, ok: false, message: `the external checkpoint for entry ${cp.seq} is not signed by the given key` }
      : !row
        ? { seq: cp.seq, ok: false, message: `the external checkpoint names entry ${cp.seq}, which the log no longer has` }
        : row.hash !== cp.hash
          ? { seq: cp.seq, ok: false, message: `entry ${cp.seq} differs from the external checkpoint's hash` }
          : { seq: cp.seq, ok: true, message: `entry ${cp.seq} matches the external checkpoint` };
  }
} catch (err) {
  await database.close();
  fail(2, `cannot verify: ${(err as Error).message}`);
}
await database.close();

const noSignedCheckpoint = result.ok && (result.checkpoints?.verified ?? 0) === 0;
const code = !result.ok || (external && !external.ok) ? 1 : noSignedCheckpoint ? 3 : 0;
if (values.json) {
  process.stdout.write(JSON.stringify({ ...result, externalCheckpoint: external, keyId: verifier.keyId }) + '\n');
} else {
  const lines = [
    `key        ${verifier.keyId} (${keySource})`,
    `entries    ${result.checked} verified${result.lastSeq !== null ? `, up to seq ${result.lastSeq}` : ''} in ${result.durationMs} ms`,
    `checkpoints ${result.checkpoints?.verified ?? 0} of ${result.checkpoints?.total ?? 0} signed by this key${result.checkpoint ? `, newest at seq ${result.checkpoint.seq} (${result.checkpoint.signedAt})` : ''}`,
  ];
  if (external) lines.push(`external   ${external.message}`);
  if (result.firstBroken) {
    lines.push(
      `BROKEN     at seq ${result.firstBroken.seq} (${result.firstBroken.reason}); last good entry: ${result.firstBroken.lastGoodSeq ?? 'none'}`,
    );
    lines.push(`           ${result.firstBroken.message}`);
  } else if (noSignedCheckpoint) {
    lines.push(
      'WARNING    the chain is intact, but no checkpoint is signed by this key: deleting the newest entries would go unnoticed',
    );
  } else if (code === 0) {
    lines.push('OK         the audit log is intact');
  }
  process.stdout.write(lines.join('\n') + '\n');
}
process.exit(code);
