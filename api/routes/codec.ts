/**
 * The Temporal codec server protocol (`POST /codec/decode`, `/codec/encode`) for authorized
 * auditors, so the Temporal Web UI and `temporal workflow show --codec-endpoint` can read
 * encrypted histories. Payloads travel as proto3 JSON (bytes base64).
 *
 * The Web UI cannot send our bearer token, so `GET /codec/session?token=…` (an auditor token)
 * sets an HttpOnly same-site cookie the codec routes also accept; enable "Include cross-origin
 * credentials" in the UI's codec settings.
 */
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { ErrorType } from '../../domain/errors';
import { EncryptionCodec } from '../../infra/codec';
import { CODEC_COOKIE } from '../codec-cookie';
import { HttpError } from '../errors';
import { route } from '../http';

const Base64 = z.string().regex(/^[A-Za-z0-9+/=_-]*$/, 'expected base64');
const JsonPayload = z.object({ metadata: z.record(Base64).optional(), data: Base64.optional() }).passthrough();
const PayloadsBody = z.object({ payloads: z.array(JsonPayload).max(10_000) }).openapi('CodecPayloads');

function fromJson(p: z.infer<typeof JsonPayload>): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: p.data !== undefined ? Buffer.from(p.data, 'base64') : undefined,
  };
}

function toJson(p: Payload) {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    ...(p.data ? { data: Buffer.from(p.data).toString('base64') } : {}),
  };
}

const codecRoute = (direction: 'decode' | 'encode') =>
  route({
    method: 'post',
    path: `/codec/${direction}`,
    tag: 'Codec',
    summary: direction === 'decode' ? 'Decode (decrypt) Temporal payloads for an auditor' : 'Encode (encrypt) Temporal payloads',
    description: 'Temporal codec server protocol. Accepts the bearer token or the codec session cookie.',
    permission: 'codec:use',
    category: 'audit',
    cookieAuth: true,
    body: PayloadsBody,
    responses: { 200: { description: 'The payloads, converted', schema: PayloadsBody } },
    async handler({ deps, body, req, actor }) {
      const namespace = req.header('x-namespace');
      if (namespace && namespace !== deps.config.temporal.namespace) {
        throw new HttpError(ErrorType.NotFound, 'Unknown namespace');
      }
      const codec = new EncryptionCodec(deps.config.keys.payload);
      let out: Payload[];
      try {
        const input = body.payloads.map(fromJson);
        out = direction === 'decode' ? await codec.decode(input) : await codec.encode(input);
      } catch {
        throw new HttpError(
          ErrorType.Validation,
          'Invalid request: body.payloads: a payload could not be decoded with the configured keys',
        );
      }
      if (direction === 'decode') {
        await appendAudit(deps.db, {
          ...actor,
          action: 'codec.decode',
          category: 'audit',
          outcome: 'allowed',
          details: { payloads: body.payloads.length },
        });
      }
      return { body: { payloads: out.map(toJson) } };
    },
  });

export const codecRoutes = [
  codecRoute('decode'),
  codecRoute('encode'),
  route({
    method: 'get',
    path: '/codec/session',
    tag: 'Codec',
    summary: 'Start a codec session for the Temporal Web UI (sets an HttpOnly cookie), then go to the UI',
    permission: 'codec:use',
    category: 'audit',
    query: z.object({ token: z.string().min(10).max(8192).optional(), redirect: z.string().url().max(2048).optional() }),
    cookieAuth: true,
    responses: { 204: { description: 'Session cookie set' }, 302: { description: 'Session cookie set; redirected to the UI' } },
    handler({ req, res, query, deps }) {
      // The token this request was authenticated with: the header when there is one (a `token`
      // beside it was never verified), else the query's.
      const header = req.header('authorization');
      const token = header ? header.replace(/^Bearer\s+/i, '') : query.token;
      res.cookie(CODEC_COOKIE, token, {
        httpOnly: true,
        sameSite: 'lax',
        secure: deps.config.env === 'production',
        path: '/codec',
        maxAge: 8 * 3600 * 1000,
      });
      const allowed = deps.config.codecCorsOrigins;
      if (query.redirect && allowed.some((o) => query.redirect!.startsWith(o))) {
        res.redirect(302, query.redirect);
        return;
      }
      return { status: 204 };
    },
  }),
];
