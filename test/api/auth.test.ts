import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_ISSUER } from '../../api/middleware/auth';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
});
afterAll(async () => sys?.close());

const secret = () => new TextEncoder().encode(sys.config.auth.devSecret);
const claims = { roles: ['admin'], regions: ['*'], languages: ['en'] };

async function expect401(authorization: string | undefined, message: RegExp) {
  const req = sys.http.get('/v1/regions');
  const res = authorization === undefined ? await req : await req.set('Authorization', authorization);
  expect(res.status).toBe(401);
  expect(res.body.error.code).toBe('unauthenticated');
  expect(res.body.error.message).toMatch(message);
  expect(res.body.error.requestId).toBe(res.headers['x-request-id']);
}

describe('bearer-token authentication', () => {
  it('a valid development token is accepted', async () => {
    const res = await sys.http.get('/v1/regions').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(200);
    expect(res.body.items.map((r: { code: string }) => r.code)).toEqual(['eu', 'us']);
  });

  it('a missing Authorization header is refused', async () => {
    await expect401(undefined, /Missing Authorization header/);
  });

  it('a header that is not "Bearer <token>" is refused', async () => {
    await expect401('Basic YWxpY2U6c2VjcmV0', /Malformed Authorization header/);
  });

  it('a malformed token is refused', async () => {
    await expect401('Bearer not.a.jwt', /Invalid token/);
  });

  it('an expired token is refused', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer(DEV_ISSUER)
      .setIssuedAt(Math.floor(Date.now() / 1000) - 7200)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(secret());
    await expect401(`Bearer ${jwt}`, /Token expired/);
  });

  it('a token accepted (and remembered) before it expires is refused once it has expired', async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer(DEV_ISSUER)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(secret());
    for (let i = 0; i < 2; i++) {
      expect((await sys.http.get('/v1/regions').set('Authorization', `Bearer ${jwt}`)).status).toBe(200);
    }
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 100));
    await expect401(`Bearer ${jwt}`, /Token expired/);
  });

  it('an unsigned token (alg: none) is refused', async () => {
    const jwt = new UnsecuredJWT(claims).setSubject('alice').setIssuer(DEV_ISSUER).setExpirationTime('1h').encode();
    await expect401(`Bearer ${jwt}`, /Invalid token/);
  });

  it('a token signed with another key is refused', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer(DEV_ISSUER)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-another-secret-another-secret!!'));
    await expect401(`Bearer ${jwt}`, /Invalid token/);
  });

  it('a token from another issuer is refused', async () => {
    const jwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('elsewhere')
      .setExpirationTime('1h')
      .sign(secret());
    await expect401(`Bearer ${jwt}`, /Invalid token/);
  });

  it('a token whose claims are not Warden claims is refused, naming the claim', async () => {
    const jwt = await new SignJWT({ roles: ['superuser'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer(DEV_ISSUER)
      .setExpirationTime('1h')
      .sign(secret());
    await expect401(`Bearer ${jwt}`, /roles/);
  });

  it('an approver token without a stakeholder is refused', async () => {
    const jwt = await new SignJWT({ roles: ['approver'], regions: ['eu'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('bob')
      .setIssuer(DEV_ISSUER)
      .setExpirationTime('1h')
      .sign(secret());
    await expect401(`Bearer ${jwt}`, /stakeholder/);
  });
});
