/**
 * Route definitions: one object per route carries its permission, its zod schemas and its handler.
 * `mountRoutes` registers each route with Express (authenticate → authorize → validate → handle)
 * and with the OpenAPI registry, so the document describes every route by construction and no
 * route can exist without a permission.
 */
import { extendZodWithOpenApi, type OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { Request, Response, Router } from 'express';
import { z, type ZodTypeAny } from 'zod';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../db';
import { appendAudit, type AuditCategory, type AuditEntry } from '../db/audit';
import { hasPermission, PERMISSIONS, type Permission, type Principal } from '../domain/authz';
import { ErrorType } from '../domain/errors';
import type { Config } from '../infra/config';
import type { SmtpSink } from '../infra/smtp';
import { DeniedError, HttpError, type Denial } from './errors';
import { CODEC_COOKIE } from './codec-cookie';
import type { Authenticator } from './middleware/auth';

extendZodWithOpenApi(z);

/** What every route handler may use. */
export interface AppDeps {
  config: Config;
  db: Db;
  temporal: Client;
  taskQueue: string;
  logger: Logger;
  authenticator: Authenticator;
  /** Extra readiness probes (name → check); Postgres and Temporal are always checked. */
  ready?: Record<string, () => Promise<void>>;
  /** The development SMTP sink (`npm start` without SMTP_URL): what `GET /v1/dev/outbox` shows. */
  devMail?: Pick<SmtpSink, 'messages'>;
  /**
   * The client shares its NativeConnection with a worker of `taskQueue` in this process: workflows
   * the API starts may ask for eager start (their first task comes back with the start response).
   */
  eagerStart?: boolean;
}

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface HandlerContext<P, Q, B> {
  req: Request;
  res: Response;
  deps: AppDeps;
  principal: Principal;
  params: P;
  query: Q;
  body: B;
  requestId: string;
  /** Audit fields of this request (actor, roles, request id), to spread into an entry. */
  actor: Pick<AuditEntry, 'actor' | 'actorRoles' | 'requestId'>;
}

export interface Reply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteSpec<
  P extends ZodTypeAny = ZodTypeAny,
  Q extends ZodTypeAny = ZodTypeAny,
  B extends ZodTypeAny = ZodTypeAny,
> {
  method: Method;
  /** OpenAPI-style path, e.g. `/v1/regions/{code}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  permission: Permission | 'public';
  /** The audit category of a denied attempt on this route. */
  category?: AuditCategory;
  params?: P;
  query?: Q;
  body?: B;
  /** Also accept the codec session cookie (or a `token` query parameter) as credentials. */
  cookieAuth?: boolean;
  /** Content types accepted besides JSON (e.g. `text/csv`), as raw text bodies. */
  rawBodyTypes?: string[];
  responses: Record<number, { description: string; schema?: ZodTypeAny; contentType?: string }>;
  handler: (ctx: HandlerContext<z.infer<P>, z.infer<Q>, z.infer<B>>) => Promise<Reply | void> | Reply | void;
}

/** Identity helper that keeps the schema types flowing into the handler. */
export function route<P extends ZodTypeAny = ZodTypeAny, Q extends ZodTypeAny = ZodTypeAny, B extends ZodTypeAny = ZodTypeAny>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec<P, Q, B> {
  return spec;
}

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
      requestId: z.string(),
    }),
  })
  .openapi('Error');

const STANDARD_ERRORS: Record<number, string> = {
  400: 'Invalid request: the message names the field',
  401: 'Missing, expired or invalid bearer token',
  403: 'Authenticated, but not allowed',
  404: 'Not found, or outside the caller’s regions',
};

/** The Authorization header, or for cookie-auth routes the session cookie / `token` query. */
function credentials(req: Request, spec: RouteSpec): string | undefined {
  if (req.headers.authorization || !spec.cookieAuth) return req.headers.authorization;
  const fromQuery = typeof req.query.token === 'string' ? req.query.token : undefined;
  const fromCookie = (req.headers.cookie ?? '')
    .split(';')
    .map((c) => c.trim().split('='))
    .find(([k]) => k === CODEC_COOKIE)?.[1];
  const token = fromQuery ?? (fromCookie ? decodeURIComponent(fromCookie) : undefined);
  return token ? `Bearer ${token}` : undefined;
}

function toExpressPath(p: string): string {
  return p.replace(/\{([^}]+)\}/g, ':$1');
}

/** Zod's messages, except that what the caller sent is not echoed back (it may be anything, personal data included). */
const noEcho: z.ZodErrorMap = (issue, ctx) => {
  if (issue.code === 'invalid_enum_value')
    return { message: `expected one of ${issue.options.map((o) => `'${String(o)}'`).join(', ')}` };
  // Unknown keys are named (what to remove), cut short: a key can be as long as the body.
  if (issue.code === 'unrecognized_keys')
    return {
      message: `Unrecognized key(s) in object: ${issue.keys.map((k) => `'${k.length > 64 ? `${k.slice(0, 64)}…` : k}'`).join(', ')}`,
    };
  return { message: ctx.defaultError };
};

function parseOrThrow<T extends ZodTypeAny>(schema: T | undefined, value: unknown, where: string): z.infer<T> {
  if (!schema) return value;
  const r = schema.safeParse(value, { errorMap: noEcho });
  if (r.success) return r.data;
  const details = r.error.issues.map((i) => ({ field: [where, ...i.path].join('.'), message: i.message }));
  const first = details[0]!;
  throw new HttpError(ErrorType.Validation, `Invalid request: ${first.field}: ${first.message}`, details);
}

/**
 * Append the audit entry of a denied attempt: outcome `denied`, the reason, and the object (type,
 * opaque id, region) when there is one. The one writer of denied entries for the routes: role-level
 * refusals (above), object-level ones (`DeniedError`, e.g. another region's case answered 404) and
 * refusals the handlers record themselves (e.g. an Update validator's).
 */
export async function auditDenied(
  db: DbOrTx,
  actor: HandlerContext<unknown, unknown, unknown>['actor'],
  routeCategory: AuditCategory | undefined,
  denial: Denial,
): Promise<void> {
  await appendAudit(db, {
    ...actor,
    action: denial.action,
    category: denial.category ?? routeCategory ?? 'system',
    targetType: denial.targetType ?? null,
    targetId: denial.targetId ?? null,
    region: denial.region ?? null,
    outcome: 'denied',
    reason: denial.reason,
    details: denial.details ?? null,
  });
}

/**
 * One denied entry per region of a request that touched several (a batch, a bulk command, a
 * roster), in region order so the same request always chains the same way. `denial` builds each
 * region's entry from what was refused there.
 */
export async function auditDeniedPerRegion<T>(
  db: DbOrTx,
  actor: HandlerContext<unknown, unknown, unknown>['actor'],
  routeCategory: AuditCategory,
  byRegion: ReadonlyMap<string, T>,
  denial: (refused: T) => Omit<Denial, 'region'>,
): Promise<void> {
  for (const region of [...byRegion.keys()].sort()) {
    await auditDenied(db, actor, routeCategory, { ...denial(byRegion.get(region)!), region });
  }
}

export function mountRoutes(router: Router, registry: OpenAPIRegistry, routes: RouteSpec[], deps: AppDeps): void {
  for (const spec of routes) {
    registerOpenApi(registry, spec);
    router[spec.method](toExpressPath(spec.path), async (req: Request, res: Response) => {
      const requestId = String(req.id);
      let principal: Principal;
      if (spec.permission === 'public') {
        principal = { sub: 'anonymous', roles: [], regions: [], languages: [] };
      } else {
        principal = await deps.authenticator.authenticate(credentials(req, spec));
        if (!hasPermission(principal, spec.permission)) {
          await auditDenied(deps.db, { actor: principal.sub, actorRoles: principal.roles, requestId }, spec.category, {
            action: `${spec.method.toUpperCase()} ${spec.path}`,
            reason: `missing permission ${spec.permission}`,
          });
          throw new HttpError(
            ErrorType.Forbidden,
            `This action needs one of the roles: ${PERMISSIONS[spec.permission].join(', ')}`,
          );
        }
      }
      res.locals.principal = principal;
      if (spec.body && req.body === undefined) {
        throw new HttpError(ErrorType.Validation, 'Invalid body: a JSON request body is required');
      }
      const params = parseOrThrow(spec.params, req.params, 'path');
      const query = parseOrThrow(spec.query, req.query, 'query');
      if (typeof req.body === 'string' && !spec.rawBodyTypes?.length) {
        throw new HttpError(ErrorType.UnsupportedMediaType, 'This route takes a JSON body (Content-Type: application/json)');
      }
      const body = typeof req.body === 'string' ? req.body : parseOrThrow(spec.body, req.body, 'body');
      const actor = { actor: principal.sub, actorRoles: principal.roles, requestId };
      let reply: Reply | void;
      try {
        reply = await spec.handler({ req, res, deps, principal, params, query, body, requestId, actor });
      } catch (err) {
        // A refusal of an existing object: audited here, once any transaction of the handler is over.
        if (err instanceof DeniedError) await auditDenied(deps.db, actor, spec.category, err.denial);
        throw err;
      }
      if (res.headersSent) return;
      if (reply?.headers) for (const [k, v] of Object.entries(reply.headers)) res.setHeader(k, v);
      const status = reply?.status ?? 200;
      if (reply?.body === undefined) res.status(status).end();
      else res.status(status).json(reply.body);
    });
  }
}

function registerOpenApi(registry: OpenAPIRegistry, spec: RouteSpec): void {
  const responses: Record<string, { description: string; content?: Record<string, { schema: ZodTypeAny }> }> = {};
  for (const [status, r] of Object.entries(spec.responses)) {
    responses[status] = r.schema
      ? { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: r.schema } } }
      : { description: r.description };
  }
  const errorStatuses = spec.permission === 'public' ? [] : [400, 401, 403, 404];
  for (const s of errorStatuses) {
    responses[String(s)] ??= { description: STANDARD_ERRORS[s]!, content: { 'application/json': { schema: ErrorResponse } } };
  }
  const bodyContent: Record<string, { schema: ZodTypeAny }> = {};
  if (spec.body) bodyContent['application/json'] = { schema: spec.body };
  for (const t of spec.rawBodyTypes ?? []) bodyContent[t] = { schema: z.string() };
  registry.registerPath({
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    description: spec.description,
    tags: [spec.tag],
    security: spec.permission === 'public' ? [] : [{ bearerAuth: [] }],
    'x-warden-permission': spec.permission,
    'x-warden-roles': spec.permission === 'public' ? [] : [...PERMISSIONS[spec.permission]],
    request: {
      params: spec.params as never,
      query: spec.query as never,
      body: Object.keys(bodyContent).length ? { content: bodyContent, required: true } : undefined,
    },
    responses,
  } as never);
}
