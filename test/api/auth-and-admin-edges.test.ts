/**
 * Edges of authentication (claims jose does not check by itself, the header's scheme, an oversized
 * token, a production-style issuer with a public key) and of the administrator's configuration
 * APIs under concurrency (settings, regions, notice templates): what the audit log says must match
 * the order in which the changes were applied.
 */
import { generateKeyPairSync } from 'node:crypto';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { SignJWT, importPKCS8 } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ISSUER } from '../../api/middleware/auth';
import { RegionSchema } from '../../api/routes/regions';
import { SavedNoticeTemplateSchema } from '../../api/routes/notice-templates';
import { SettingsSchema } from '../../api/routes/settings';
import { auditLog } from '../../db/schema';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let admin: string;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  admin = await sys.auth(principals.admin);
}, 60_000);
afterAll(async () => sys?.close());

const secret = () => new TextEncoder().encode(sys.config.auth.devSecret);
const now = () => Math.floor(Date.now() / 1000);

/** A development-signed token whose payload is exactly `payload` (no claim added for us). */
async function devToken(payload: Record<string, unknown>): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(secret());
}

async function expect401(s: TestSystem, authorization: string, message: RegExp) {
  const res = await s.http.get('/v1/regions').set('Authorization', authorization);
  expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(401);
  expect(res.body.error.code).toBe('unauthenticated');
  expect(res.body.error.message).toMatch(message);
  expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
  expect(res.body.items).toBeUndefined();
}

describe('claims a token must carry', () => {
  const base = { sub: 'admin-x', iss: DEV_ISSUER, roles: ['admin'], regions: ['*'] };

  it('a token without an expiry is refused: a leaked token must not work for ever', async () => {
    const jwt = await devToken({ ...base, iat: now() });
    await expect401(sys, `Bearer ${jwt}`, /Invalid token|exp/);
  });

  it('a token not valid before a far-future time is refused', async () => {
    const jwt = await devToken({ ...base, iat: now(), nbf: now() + 86_400, exp: now() + 2 * 86_400 });
    await expect401(sys, `Bearer ${jwt}`, /Invalid token/);
  });

  it('an expiry written as a string is refused, not read as "never"', async () => {
    const jwt = await devToken({ ...base, iat: now(), exp: String(now() + 3600) });
    await expect401(sys, `Bearer ${jwt}`, /Invalid token/);
  });

  it('roles given as a string instead of a list are refused, naming the claim', async () => {
    const jwt = await devToken({ ...base, roles: 'admin', exp: now() + 3600 });
    await expect401(sys, `Bearer ${jwt}`, /roles/);
  });

  it('a token without regions reaches no region (not every region)', async () => {
    const { regions: _omitted, ...noRegions } = base;
    const jwt = await devToken({ ...noRegions, exp: now() + 3600 });
    const list = await sys.http.get('/v1/regions').set('Authorization', `Bearer ${jwt}`);
    expect(list.status).toBe(200);
    expect(list.body.items).toEqual([]);
    const one = await sys.http.get('/v1/regions/eu').set('Authorization', `Bearer ${jwt}`);
    expect(one.status).toBe(404);
    expect(one.body.error.code).toBe('not_found');
  });
});

describe('the Authorization header', () => {
  it('the scheme is case-insensitive (RFC 7235): "bearer" works like "Bearer"', async () => {
    const token = await sys.token(principals.admin);
    const res = await sys.http.get('/v1/regions').set('Authorization', `bearer ${token}`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((r: { code: string }) => r.code)).toEqual(['eu', 'us']);
  });

  it('a large garbage token is a 401 in the error shape; a 100 kB one a 4xx, never a 5xx', async () => {
    await expect401(sys, `Bearer ${'a'.repeat(4000)}.${'b'.repeat(4000)}.${'c'.repeat(4000)}`, /Invalid token/);
    const huge = await sys.http.get('/v1/regions').set('Authorization', `Bearer ${'x'.repeat(100_000)}`);
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
    expect(huge.body?.items).toBeUndefined();
  });
});

describe('tokens from a configured issuer (public key)', () => {
  let idp: TestSystem;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const ISSUER = 'https://idp.example.org/';
  const AUDIENCE = 'warden-api';

  beforeAll(async () => {
    idp = await startTestSystem({
      worker: false,
      env: { AUTH_PUBLIC_KEY: publicPem, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE },
    });
  }, 60_000);
  afterAll(async () => idp?.close());

  const claims = { roles: ['admin'], regions: ['*'] };
  const signed = async (over: { iss?: string; aud?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('idp-admin')
      .setIssuer(over.iss ?? ISSUER)
      .setAudience(over.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(await importPKCS8(privatePem, 'ES256'));

  it('accepts the issuer’s token; refuses another issuer, another audience, HS256 with the public key and dev tokens', async () => {
    const ok = await idp.http.get('/v1/regions').set('Authorization', `Bearer ${await signed()}`);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.items.map((r: { code: string }) => r.code)).toEqual(['eu', 'us']);

    await expect401(idp, `Bearer ${await signed({ iss: 'https://evil.example.org/' })}`, /Invalid token/);
    await expect401(idp, `Bearer ${await signed({ aud: 'another-api' })}`, /Invalid token/);
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('idp-admin')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('10m')
      .sign(new TextEncoder().encode(publicPem));
    await expect401(idp, `Bearer ${confused}`, /Invalid token/);
    await expect401(idp, await idp.auth(principals.admin), /Invalid token/);
  });
});

describe('concurrent configuration changes are audited in the order they were applied', () => {
  it('settings: each audited change starts from what the previous one left; no change goes unaudited', async () => {
    const start = SettingsSchema.parse((await sys.http.get('/v1/settings').set('Authorization', admin)).body).alertVolume;
    const values = ['more', 'fewer', 'default', 'more', 'default', 'fewer', 'more', 'fewer', 'default', 'more'] as const;
    const responses = await Promise.all(
      values.map((alertVolume) => sys.http.patch('/v1/settings').set('Authorization', admin).send({ alertVolume })),
    );
    const sent = new Map<string, string>();
    responses.forEach((r, i) => {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      sent.set(String(r.headers['x-request-id']), values[i]!);
    });
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.action, 'settings.update'), inArray(auditLog.requestId, [...sent.keys()])))
      .orderBy(asc(auditLog.seq));
    expect(entries).toHaveLength(values.length);
    // Replay the requests in the order the log holds them: what each entry should say.
    let state: string = start;
    const expected = entries.map((e) => {
      const to = sent.get(e.requestId!)!;
      const details = to === state ? {} : { alertVolume: { from: state, to } };
      state = to;
      return details;
    });
    expect(entries.map((e) => e.details)).toEqual(expected);
    const final = SettingsSchema.parse((await sys.http.get('/v1/settings').set('Authorization', admin)).body);
    expect(final.alertVolume).toBe(state);
  });

  it('regions: concurrent PUTs of a new region create it once and give every write its own consecutive version', async () => {
    const body = (hours: number) => ({
      name: 'Latin America',
      languages: ['es', 'pt'],
      revealGrantHours: hours,
      approvalRules: { reveal_identity: { require: [{ stakeholder: 'legal', count: 1 }], slaHours: 24 } },
    });
    const responses = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((h) => sys.http.put('/v1/regions/latam').set('Authorization', admin).send(body(h))),
    );
    for (const r of responses) expect([200, 201], JSON.stringify(r.body)).toContain(r.status);
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    const versions = responses.map((r) => RegionSchema.parse(r.body).version).sort((a, b) => a - b);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6]);
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetType, 'region'), eq(auditLog.targetId, 'latam')))
      .orderBy(asc(auditLog.seq));
    expect(entries.map((e) => [e.action, e.details])).toEqual([
      ['region.create', { version: 1 }],
      ...[2, 3, 4, 5, 6].map((v) => ['region.update', { version: v }]),
    ]);
    const last = responses.find((r) => r.body.version === 6)!;
    const read = RegionSchema.parse((await sys.http.get('/v1/regions/latam').set('Authorization', admin)).body);
    expect(read).toMatchObject({ version: 6, revealGrantHours: last.body.revealGrantHours });
  });

  it('notice templates: concurrent saves of a new template make versions 1..n, one creation, each audited once', async () => {
    const template = (n: number) => ({
      name: `Concurrent notice ${n}`,
      language: 'en',
      from: 'insider-risk@example.org',
      cc: [],
      bcc: [],
      subject: 'Notice about case {{case.reference}}',
      htmlBody: `<p>Dear {{subject.displayName}}, version ${n}.</p>`,
      textBody: `Dear {{subject.displayName}}, version ${n}.`,
      responseDays: 10,
    });
    const responses = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        sys.http.put('/v1/notice-templates/concurrent-notice').set('Authorization', admin).send(template(n)),
      ),
    );
    for (const r of responses) expect([200, 201], JSON.stringify(r.body)).toContain(r.status);
    const saved = responses.map((r) => SavedNoticeTemplateSchema.parse(r.body));
    expect(responses.filter((r) => r.status === 201)).toHaveLength(1);
    expect(saved.every((s) => s.changed)).toBe(true);
    expect(saved.map((s) => s.version).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    const read = await sys.http.get('/v1/notice-templates/concurrent-notice').set('Authorization', admin);
    expect(read.body.versions.map((v: { version: number }) => v.version)).toEqual([5, 4, 3, 2, 1]);
    for (const v of read.body.versions as Array<{ version: number; subject: string; textBody: string }>) {
      const mine = saved.find((s) => s.version === v.version)!;
      expect(v.textBody).toBe(mine.textBody);
    }
    const entries = await sys.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetType, 'notice_template'), eq(auditLog.targetId, 'concurrent-notice')))
      .orderBy(asc(auditLog.seq));
    expect(entries.map((e) => [e.action, (e.details as { version: number }).version])).toEqual([
      ['notice_template.create', 1],
      ...[2, 3, 4, 5].map((v) => ['notice_template.version', v]),
    ]);
  });
});
