/**
 * Bearer-token authentication with jose. Development: HS256 tokens signed with the development
 * secret (minted by `npm run token`). Production: tokens from the configured issuer, verified
 * with its JWKS or public key. `alg: none`, expired or expiry-less, wrongly signed and malformed tokens → 401.
 */
import { createRemoteJWKSet, importSPKI, jwtVerify, SignJWT, type CryptoKey, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { Principal } from '../../domain/authz';
import { ErrorType } from '../../domain/errors';
import { ROLES, STAKEHOLDERS } from '../../domain/roles';
import type { Config } from '../../infra/config';
import { HttpError } from '../errors';

export const DEV_ISSUER = 'warden-dev';

export const Claims = z.object({
  sub: z.string().min(1).max(200),
  roles: z.array(z.enum(ROLES)).min(1),
  stakeholder: z.enum(STAKEHOLDERS).optional(),
  regions: z.array(z.string().min(1)).default([]),
  languages: z.array(z.string().min(2)).default([]),
});
export type Claims = z.infer<typeof Claims>;

export interface Authenticator {
  authenticate(header: string | undefined): Promise<Principal>;
}

const unauthenticated = (msg: string) => new HttpError(ErrorType.Unauthenticated, msg);

export async function createAuthenticator(config: Config): Promise<Authenticator> {
  const a = config.auth;
  let key: Uint8Array | CryptoKey | JWTVerifyGetKey;
  let algorithms: string[];
  let issuer: string | undefined;
  if (a.jwksUrl) {
    key = createRemoteJWKSet(new URL(a.jwksUrl));
    algorithms = ['RS256', 'ES256', 'EdDSA', 'PS256'];
    issuer = a.issuer;
  } else if (a.publicKeyPem) {
    const alg = a.publicKeyPem.includes('BEGIN PUBLIC KEY') ? guessAlg(a.publicKeyPem) : 'RS256';
    key = await importSPKI(a.publicKeyPem, alg);
    algorithms = [alg];
    issuer = a.issuer;
  } else {
    key = new TextEncoder().encode(a.devSecret);
    algorithms = ['HS256'];
    issuer = DEV_ISSUER;
  }
  // Tokens verified lately: a client's next calls with the same token skip the signature check and
  // the claims' parsing. An entry lives at most VERIFIED_TTL_MS (so a key withdrawn from a JWKS
  // stops working within that time) and never past the token's own `exp`.
  const verified = new Map<string, { principal: Principal; until: number }>();
  return {
    async authenticate(header) {
      if (!header) throw unauthenticated('Missing Authorization header: expected "Bearer <token>"');
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw unauthenticated('Malformed Authorization header: expected "Bearer <token>"');
      const token = m[1]!;
      const hit = verified.get(token);
      if (hit) {
        if (Date.now() < hit.until) return hit.principal;
        verified.delete(token);
      }
      let payload: unknown;
      try {
        // `exp` required: jose checks it only when present, and a token without one would work for ever.
        const result = await jwtVerify(token, key as Uint8Array, {
          algorithms,
          issuer,
          audience: a.audience,
          requiredClaims: ['exp'],
        });
        payload = result.payload;
      } catch (err) {
        const code = (err as { code?: string }).code;
        throw unauthenticated(code === 'ERR_JWT_EXPIRED' ? 'Token expired' : 'Invalid token');
      }
      const claims = Claims.safeParse(payload);
      if (!claims.success) {
        const i = claims.error.issues[0]!;
        throw unauthenticated(`Invalid token claims: ${i.path.join('.')}: ${i.message}`);
      }
      const c = claims.data;
      if (c.roles.includes('approver') && !c.stakeholder)
        throw unauthenticated('Invalid token claims: approvers need a stakeholder');
      // Frozen: the same principal serves every request made with this token.
      const principal: Principal = Object.freeze({
        sub: c.sub,
        roles: Object.freeze([...c.roles]) as Principal['roles'],
        stakeholder: c.stakeholder,
        regions: Object.freeze([...c.regions]) as Principal['regions'],
        languages: Object.freeze([...c.languages]) as Principal['languages'],
      });
      const exp = typeof (payload as { exp?: unknown }).exp === 'number' ? (payload as { exp: number }).exp * 1000 : Infinity;
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal, until: Math.min(Date.now() + VERIFIED_TTL_MS, exp) });
      return principal;
    },
  };
}

/** How long a verified token is taken on trust before its signature is checked again. */
const VERIFIED_TTL_MS = 60_000;
/** Verified tokens remembered at most (the oldest is forgotten first). */
const VERIFIED_MAX = 10_000;

function guessAlg(pem: string): string {
  // Ed25519 SPKI keys are short; EC P-256 medium; anything else RSA.
  const len = pem.replace(/-----[^-]+-----|\s/g, '').length;
  return len < 80 ? 'EdDSA' : len < 140 ? 'ES256' : 'RS256';
}

/** Mint a development token (the `npm run token` CLI and tests). */
export async function mintDevToken(secret: string, claims: Claims, ttl: string | number = '12h'): Promise<string> {
  const { sub, ...rest } = Claims.parse(claims);
  return new SignJWT(rest)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuer(DEV_ISSUER)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(secret));
}
