import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkpointStatement, encodeAuditEntry, encodeScannedRow, GENESIS_HASH } from '../../db/audit';
import { ConfigError, DEV_AUDIT_SIGNING_KEY, loadConfig, parseEd25519PrivateKey } from '../../infra/config';

const samples = [
  { actorRoles: [], details: null, reason: null, targetType: null, targetId: null, region: null, requestId: null },
  {
    actorRoles: ['admin', 'auditor'],
    details: { z: 1, a: [3, 'x', { y: null, b: true }], ü: 'é\u2028"\\', n: 1.5e-7, big: 1e21 },
    reason: 'missing permission "x",\nnewline',
    targetType: 'case',
    targetId: '4c1f',
    region: 'eu',
    requestId: 'req-1',
  },
  { actorRoles: ['x'], details: {}, reason: '\u0000\u001f', targetType: 't', targetId: 'i', region: 'us', requestId: 'r' },
];

describe('audit entry encoding', () => {
  it('the fast scanner encoding is byte-identical to the canonical (RFC 8785) encoding', () => {
    samples.forEach((s, i) => {
      const at = new Date(Date.UTC(2026, 10, 27, 4, 5, 6, 789 - i));
      const row = {
        seq: 1000 + i,
        at,
        actor: 'a-' + i,
        action: 'x.y',
        category: 'cases',
        outcome: 'allowed' as const,
        prevHash: GENESIS_HASH,
        ...s,
      };
      expect(encodeScannedRow({ ...row, at: at.toISOString() })).toBe(encodeAuditEntry(row));
    });
  });

  it('a checkpoint statement is canonical JSON naming version, seq, hash, time and key', () => {
    expect(checkpointStatement({ seq: 7, hash: 'ab', signedAt: '2026-01-01T00:00:00.000Z', keyId: 'k' })).toBe(
      '{"hash":"ab","keyId":"k","kind":"warden-audit-checkpoint","seq":7,"signedAt":"2026-01-01T00:00:00.000Z","v":1}',
    );
  });
});

describe('audit configuration', () => {
  it('retention below 180 days is refused at start-up, naming the variable; longer is allowed', () => {
    expect(() => loadConfig({ AUDIT_RETENTION_DAYS: '90' })).toThrow(
      /AUDIT_RETENTION_DAYS: audit entries are kept at least 180 days/,
    );
    expect(loadConfig({}).audit.retentionDays).toBe(180);
    expect(loadConfig({ AUDIT_RETENTION_DAYS: '3650' }).audit.retentionDays).toBe(3650);
  });

  it('the signing key is a base64 Ed25519 seed or a PKCS8 PEM; anything else is refused', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const fromPem = loadConfig({ AUDIT_SIGNING_KEY: pem }).audit.signingKey;
    expect(fromPem.publicKeyPem).toBe(publicKey.export({ format: 'pem', type: 'spki' }).toString());
    // PEMs squeezed into one line with literal \n (common in .env files) work too.
    expect(loadConfig({ AUDIT_SIGNING_KEY: pem.replace(/\n/g, '\\n') }).audit.signingKey.keyId).toBe(fromPem.keyId);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: rsa })).toThrow(/AUDIT_SIGNING_KEY: expected an Ed25519 key, got rsa/);
    expect(() => loadConfig({ AUDIT_SIGNING_KEY: 'c2hvcnQ=' })).toThrow(
      /AUDIT_SIGNING_KEY: expected a PKCS8 PEM or a base64 32-byte/,
    );
  });

  it('the development signing key is refused in production', () => {
    let err: unknown;
    try {
      loadConfig({ WARDEN_ENV: 'production', AUDIT_SIGNING_KEY: DEV_AUDIT_SIGNING_KEY });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/AUDIT_SIGNING_KEY: the development audit signing key is refused in production/);
  });

  it('a seed signs what its published public key verifies', async () => {
    const key = parseEd25519PrivateKey(Buffer.alloc(32, 9).toString('base64'));
    const { sign } = await import('node:crypto');
    const sig = sign(null, Buffer.from('x'), key.privateKey);
    expect(verify(null, Buffer.from('x'), key.publicKeyPem, sig)).toBe(true);
    expect(key.keyId).toMatch(/^[0-9a-f]{16}$/);
  });
});
