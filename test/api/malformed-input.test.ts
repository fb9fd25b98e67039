/**
 * Malformed input, swept over every route of the OpenAPI document: no route answers garbage with a
 * 5xx, a hang, a crash or a 2xx, and every refusal is a 4xx in the one error shape, with a code and
 * a message that names the offending field and does not echo a long input back.
 *
 * The cases are generated from the document itself (parameters, their schemas, the JSON request
 * body), so a new route is swept without editing this file. Each route is called by a role it
 * allows (`x-warden-roles`), so authorization never hides how the route treats its input. A route
 * that takes no input at all, or where a case is meaningless by the route's nature, is listed below
 * with the reason — and the lists are checked against the document, so they cannot go stale.
 */
import { randomUUID } from 'node:crypto';
import supertest, { type Response, type Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorResponse } from '../../api/http';
import { ErrorType } from '../../domain/errors';
import type { TestPrincipal } from '../helpers/cases';
import { startTestSystem, type TestSystem } from '../helpers/system';

// ---------------------------------------------------------------------------------------------
// The OpenAPI document, as much of it as the sweep reads
// ---------------------------------------------------------------------------------------------

interface JsonSchema {
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  $ref?: string;
}
interface Parameter {
  in: 'path' | 'query' | 'header' | 'cookie';
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  'x-warden-roles'?: string[];
}
interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

// ---------------------------------------------------------------------------------------------
// Routes left out, each with why
// ---------------------------------------------------------------------------------------------

/**
 * Routes that declare no parameter and no body: there is no input to malform. The first test
 * checks this list against the document both ways.
 */
const NO_INPUT: Record<string, string> = {
  'GET /healthz': 'liveness probe: no parameters, no body',
  'GET /readyz': 'readiness probe: no parameters, no body',
  'GET /metrics': 'Prometheus scrape: no parameters, no body',
  'GET /openapi.json': 'the document itself: no parameters, no body',
  'GET /docs': 'static Swagger UI page: no parameters, no body',
  'GET /v1/audit/public-key': 'the published key: no parameters, no body',
  'GET /v1/regions': 'the whole region list: no parameters, no body',
  'GET /v1/settings': 'the tenant settings: no parameters, no body',
  'POST /v1/system/check': 'a command without input: no parameters, no body',
  'POST /v1/audit/checkpoints': 'a command without input: no parameters, no body',
};

/**
 * Routes whose body has no required field: `{}` is a valid (empty) request there, not garbage, so
 * the empty-object case does not apply. Checked against the document both ways.
 */
const EMPTY_BODY_IS_VALID: Record<string, string> = {
  'PATCH /v1/settings': 'a partial update: every field is optional, `{}` changes nothing',
  'PATCH /v1/policies/{id}': 'a partial update: every field is optional, `{}` changes nothing',
};

/**
 * Routes that validate the items of an array one by one and keep the good ones: a batch whose
 * items are all garbage is answered 200 with every item rejected by index (the documented
 * contract), so for them the deep-nesting case must show that rejection instead of a 4xx.
 * The codec passes payloads through as proto3 JSON, where every field is optional and unknown
 * fields are ignored: a payload that is a deep object of unknown fields is an empty payload.
 */
const ITEM_LEVEL: Record<string, { why: string; check: (res: Response) => void }> = {
  'POST /v1/subjects/import': {
    why: 'roster records are validated one by one; bad ones are rejected by index',
    check: (res) => expect(res.body).toMatchObject({ created: 0, updated: 0, unchanged: 0, rejected: [{ index: 0 }] }),
  },
  'POST /v1/signals': {
    why: 'events are validated one by one; bad ones are rejected by index',
    check: (res) => expect(res.body).toMatchObject({ accepted: 0, rejected: [{ index: 0 }], scoringWorkflowId: null }),
  },
  'POST /codec/decode': {
    why: 'proto3 JSON payloads: unknown fields are ignored, so the payload is an empty one',
    check: (res) => expect(res.body).toEqual({ payloads: [{ metadata: {} }] }),
  },
  'POST /codec/encode': {
    why: 'proto3 JSON payloads: unknown fields are ignored, so the payload is an empty one',
    check: (res) => expect((res.body as { payloads: unknown[] }).payloads).toHaveLength(1),
  },
};

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/** The over-long value; a response must not carry even `ECHO_LIMIT` characters of it back. */
const LONG = 'z'.repeat(10_000);
const ECHO_LIMIT = 100;
const DEPTH = 10_000;
/** `{"d":{"d":…1…}}`, DEPTH levels deep (built as text: no recursion on this side either). */
const DEEP = '{"d":'.repeat(DEPTH) + '1' + '}'.repeat(DEPTH);
const REQUEST_TIMEOUT_MS = 10_000;
const ERROR_CODES = new Set<string>(Object.values(ErrorType));

interface Case {
  kind: 'path' | 'query' | 'body' | 'deep' | 'content-type';
  route: string;
  label: string;
  method: string;
  url: string;
  /** The raw body and its content type; none: no body (or `{}` on a JSON-body route, so only the case under test is wrong). */
  body?: { type: string; data: string };
  /**
   * `edge`: rejected by the route's schemas before any handler runs, so exactly a 400 whose
   * message or details name `field`. `reject`: any 4xx (a handler may look the object up first),
   * and a 400 names `field`. `deep`: a 4xx, or for ITEM_LEVEL routes their per-item rejection.
   */
  expect: 'edge' | 'reject' | 'deep';
  field?: string;
  /** A long value of the request that the response must not echo. */
  echo?: string;
}

const base64url = (s: string) => Buffer.from(s).toString('base64url');

/** Cursors a client could forge: not base64 JSON, JSON of the wrong shape, or the right shape with garbage inside. */
const FORGED_CURSORS: Array<[string, string]> = [
  ['not base64', '!!garbage!!'],
  ['base64 of broken JSON', base64url('{"at": "2026-01-01", ')],
  ['base64 of a JSON object', base64url('{"a":1}')],
  ['base64 of an empty array', base64url('[]')],
  ['base64 of an out-of-range number', base64url('[1e20]')],
  ['base64 of an impossible timestamp and a uuid', base64url(JSON.stringify(['2026-13-45T25:61:00Z', randomUUID()]))],
  ['base64 of garbage strings', base64url(JSON.stringify(['garbage', 'garbage']))],
];

function resolve(doc: OpenApiDocument, s: JsonSchema): JsonSchema {
  if (!s.$ref) return s;
  const name = s.$ref.replace('#/components/schemas/', '');
  const target = doc.components?.schemas?.[name];
  if (!target) throw new Error(`unresolvable ${s.$ref}`);
  return resolve(doc, target);
}

const matches = (s: JsonSchema, v: string) =>
  (!s.pattern || new RegExp(s.pattern).test(v)) &&
  (s.format !== 'uuid' || /^[0-9a-f-]{36}$/.test(v)) &&
  (!s.enum || s.enum.includes(v));

/** A valid value for a path parameter, so only the case under test is wrong. */
function samplePathValue(s: JsonSchema = {}): string {
  const candidate = ['eu', randomUUID(), ...(s.enum ?? []).map(String)].find((v) => matches(s, v));
  if (!candidate) throw new Error(`no sample path value for ${JSON.stringify(s)}`);
  return candidate;
}

/** A value valid on its own (for the repeated-parameter case: two valid values are still not one). */
function sampleQueryValue(s: JsonSchema): string | undefined {
  if (s.enum) return String(s.enum[0]);
  if (s.type === 'integer' || s.type === 'number') return String(s.minimum ?? 1);
  if (s.format === 'uuid') return randomUUID();
  if (s.format === 'date-time') return new Date().toISOString();
  if (s.format === 'uri') return 'https://example.com/';
  if (s.pattern) return ['eu', 'en'].find((v) => matches(s, v));
  if (s.type === 'string') return 'x'.repeat(Math.max(s.minLength ?? 1, 1));
  return undefined;
}

/** Garbage for one query parameter, by its schema: each value breaks one declared constraint. */
function queryGarbage(name: string, s: JsonSchema): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (s.type === 'integer' || s.type === 'number') {
    out.push(['not a number', 'abc']);
    if (s.minimum !== undefined) out.push(['below the minimum', String(s.minimum - 1)]);
    if (s.maximum !== undefined) out.push(['above the maximum', String(Math.max(s.maximum + 1, 100_000))]);
    if (s.type === 'integer') out.push(['a fraction', '1.5']);
  }
  if (s.enum) out.push(['a value outside the enum', 'maybe']);
  if (s.format === 'uuid') out.push(['not a uuid', 'not-a-uuid']);
  if (s.format === 'date-time') {
    out.push(['an impossible date', '2026-13-45']);
    out.push(['an impossible date-time', '2026-13-45T25:61:00Z']);
    out.push(['words for a date', 'yesterday']);
  }
  if (s.format === 'uri') out.push(['not a URI', 'not a uri']);
  if (s.pattern && !new RegExp(s.pattern).test('Not Valid!')) out.push(['a value breaking the pattern', 'Not Valid!']);
  if ((s.minLength ?? 0) >= 1) out.push(['an empty value', '']);
  if (name === 'cursor') out.push(...FORGED_CURSORS);
  return out;
}

/** The JSON body schema of an operation, if it takes one. */
const jsonBody = (doc: OpenApiDocument, op: Operation): JsonSchema | undefined => {
  const s = op.requestBody?.content['application/json']?.schema;
  return s ? resolve(doc, s) : undefined;
};

/** A JSON value of the wrong type for a field of this schema. */
function wrongType(s: JsonSchema): unknown {
  switch (s.type) {
    case 'string':
      return 12345;
    case 'integer':
    case 'number':
      return 'abc';
    case 'boolean':
      return 'maybe';
    case 'array':
      return 'not-an-array';
    case 'object':
      return 'not-an-object';
    default:
      return s.enum ? 12345 : undefined;
  }
}

interface Route {
  key: string;
  method: string;
  path: string;
  op: Operation;
}

function casesOf(doc: OpenApiDocument, r: Route): Case[] {
  const params = r.op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const body = jsonBody(doc, r.op);
  const samples = Object.fromEntries(pathParams.map((p) => [p.name, samplePathValue(p.schema)]));
  const pathWith = (name?: string, value?: string) =>
    r.path.replace(/\{([^}]+)\}/g, (_, n: string) => encodeURIComponent(n === name ? value! : samples[n]!));
  const emptyJson = body ? { type: 'application/json', data: '{}' } : undefined;
  const make = (c: Omit<Case, 'route' | 'method'>): Case => ({ route: r.key, method: r.method, ...c });
  const cases: Case[] = [];

  for (const p of pathParams) {
    const s = p.schema ?? {};
    const field = `path.${p.name}`;
    if (s.format === 'uuid') {
      cases.push(
        make({
          kind: 'path',
          label: `${p.name}: not a uuid`,
          url: pathWith(p.name, 'not-a-uuid'),
          body: emptyJson,
          expect: 'edge',
          field,
        }),
      );
    } else if (s.pattern) {
      cases.push(
        make({
          kind: 'path',
          label: `${p.name}: breaks the pattern`,
          url: pathWith(p.name, 'Not_Valid!'),
          body: emptyJson,
          expect: 'edge',
          field,
        }),
      );
    }
    cases.push(
      make({
        kind: 'path',
        label: `${p.name}: 10,000 characters`,
        url: pathWith(p.name, LONG),
        body: emptyJson,
        expect: 'edge',
        field,
        echo: LONG,
      }),
    );
  }

  const withQuery = (pairs: Array<[string, string]>) => `${pathWith()}?${new URLSearchParams(pairs).toString()}`;
  for (const p of queryParams) {
    const s = p.schema ?? {};
    const field = `query.${p.name}`;
    // The cursor passes the schema (a short string); it is the handler that must refuse it.
    for (const [what, value] of queryGarbage(p.name, s)) {
      const outcome = p.name === 'cursor' && FORGED_CURSORS.some(([w]) => w === what) ? 'reject' : 'edge';
      cases.push(
        make({
          kind: 'query',
          label: `?${p.name}: ${what}`,
          url: withQuery([[p.name, value]]),
          body: emptyJson,
          expect: outcome,
          field,
        }),
      );
    }
    cases.push(
      make({
        kind: 'query',
        label: `?${p.name}: 10,000 characters`,
        url: withQuery([[p.name, LONG]]),
        body: emptyJson,
        expect: 'edge',
        field,
        echo: LONG,
      }),
    );
    const acceptsList = s.type === 'array' || (s.anyOf ?? []).some((a) => a.type === 'array');
    const one = sampleQueryValue(s);
    if (!acceptsList && one !== undefined) {
      cases.push(
        make({
          kind: 'query',
          label: `?${p.name}: given twice`,
          url: withQuery([
            [p.name, one],
            [p.name, one],
          ]),
          body: emptyJson,
          expect: 'edge',
          field,
        }),
      );
    }
  }

  if (body) {
    const url = pathWith();
    const json = (data: string) => ({ type: 'application/json', data });
    cases.push(make({ kind: 'body', label: 'body: not JSON', url, body: json('{'), expect: 'edge', field: 'body' }));
    cases.push(make({ kind: 'body', label: 'body: a JSON array', url, body: json('[]'), expect: 'edge', field: 'body' }));
    cases.push(make({ kind: 'body', label: 'body: null', url, body: json('null'), expect: 'edge', field: 'body' }));
    const required = body.required ?? [];
    if (!(r.key in EMPTY_BODY_IS_VALID)) {
      // Every required field is named, not only the first.
      for (const f of required)
        cases.push(
          make({ kind: 'body', label: `body: {} (misses ${f})`, url, body: json('{}'), expect: 'edge', field: `body.${f}` }),
        );
    }
    for (const f of required) {
      const wrong = wrongType(resolve(doc, body.properties?.[f] ?? {}));
      if (wrong === undefined) continue;
      cases.push(
        make({
          kind: 'body',
          label: `body.${f}: ${JSON.stringify(wrong)} (wrong type)`,
          url,
          body: json(JSON.stringify({ [f]: wrong })),
          expect: 'edge',
          field: `body.${f}`,
        }),
      );
    }
    cases.push(
      make({
        kind: 'deep',
        label: `body: ${DEPTH}-deep object`,
        url,
        body: json(DEEP),
        expect: 'deep',
        echo: DEEP.slice(0, 500),
      }),
    );
    const everyField = Object.entries(body.properties ?? {})
      .map(([f, s]) => `${JSON.stringify(f)}:${resolve(doc, s).type === 'array' ? `[${DEEP}]` : DEEP}`)
      .join(',');
    if (everyField) {
      cases.push(
        make({
          kind: 'deep',
          label: `body: a ${DEPTH}-deep object in every field`,
          url,
          body: json(`{${everyField}}`),
          expect: 'deep',
          echo: DEEP.slice(0, 500),
        }),
      );
    }
    cases.push(
      make({
        kind: 'content-type',
        label: 'body: JSON sent as text/plain',
        url,
        body: { type: 'text/plain', data: '{}' },
        expect: 'reject',
      }),
    );
  }
  return cases;
}

// ---------------------------------------------------------------------------------------------
// The system, the callers, the verdict
// ---------------------------------------------------------------------------------------------

let sys: TestSystem;
let doc: OpenApiDocument;
let routes: Route[];
const tokens = new Map<string, string>();

beforeAll(async () => {
  sys = await startTestSystem();
  // The document as served: the sweep covers exactly what clients are told exists.
  const res = await sys.http.get('/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body as OpenApiDocument;
  routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      key: `${method.toUpperCase()} ${path}`,
      method: method.toUpperCase(),
      path,
      op,
    })),
  );
});
afterAll(async () => sys?.close());

/** A caller the route allows: its first role in the document (approvers as Legal), in every region. */
async function authorization(r: Route): Promise<string | undefined> {
  const role = r.op['x-warden-roles']?.[0];
  if (!role) return undefined;
  let t = tokens.get(role);
  if (!t) {
    const who = {
      sub: `malformed-${role}`,
      roles: [role],
      ...(role === 'approver' ? { stakeholder: 'legal' } : {}),
      regions: ['*'],
      languages: ['en'],
    } as TestPrincipal;
    t = await sys.auth(who);
    tokens.set(role, t);
  }
  return t;
}

function send(c: Case, auth: string | undefined): Test {
  // Not the system's agent: no cookie jar, so a cookie one case sets (GET /codec/session) cannot
  // change what the next case sends.
  const agent = supertest(sys.app.app) as unknown as Record<string, (url: string) => Test>;
  let req = agent[c.method.toLowerCase()]!(c.url).buffer(true).timeout(REQUEST_TIMEOUT_MS);
  if (auth) req = req.set('Authorization', auth);
  if (c.body) req = req.set('Content-Type', c.body.type).send(c.body.data);
  return req;
}

/** What the server logged about a request (its error lines), for the report of a 5xx. */
function serverLog(requestId: string | undefined): string {
  if (!requestId) return '(no request id)';
  const lines = sys.logs.filter((l) => l.includes(requestId) && /"level":(50|60)/.test(l));
  return (
    lines
      .map((l) => {
        const e = JSON.parse(l) as { msg?: string; err?: { type?: string; message?: string; stack?: string } };
        return `${e.msg}: ${e.err?.type ?? ''} ${e.err?.message ?? ''} ${e.err?.stack?.split('\n')[1]?.trim() ?? ''}`;
      })
      .join(' | ') || '(nothing logged at error level)'
  );
}

/** Why a response to a case is wrong, or null when it is right. */
function verdict(c: Case, res: Response): string | null {
  const requestId = res.headers['x-request-id'];
  const brief = res.text.length > 300 ? `${res.text.slice(0, 300)}…` : res.text;
  if (res.status >= 500) return `${res.status} ${brief} — server log: ${serverLog(requestId)}`;
  if (c.echo && res.text.includes(c.echo.slice(0, ECHO_LIMIT))) {
    return `${res.status}: the response echoes the long input back (${res.text.length} chars): ${brief}`;
  }
  if (res.status < 400) {
    const accepted = ITEM_LEVEL[c.route];
    if (c.expect !== 'deep' || !accepted) return `${res.status} for garbage: ${brief}`;
    try {
      accepted.check(res);
      return null;
    } catch (err) {
      return `${res.status}, not the item-level rejection (${accepted.why}): ${(err as Error).message}`;
    }
  }
  const parsed = ErrorResponse.strict().safeParse(res.body);
  if (!parsed.success) return `${res.status} outside the error shape: ${brief}`;
  const e = parsed.data.error;
  if (!ERROR_CODES.has(e.code)) return `${res.status} with an unknown code ${e.code}`;
  if (e.message.trim().length < 5) return `${res.status} with an empty message: ${brief}`;
  if (e.requestId !== requestId) return `${res.status}: requestId ${e.requestId} is not the request's ${requestId}`;
  if (c.expect === 'edge' && res.status !== 400) return `${res.status} (${e.code}), expected the schema's 400: ${e.message}`;
  if (c.field && res.status === 400) {
    const fields = Array.isArray(e.details) ? (e.details as Array<{ field?: string }>).map((d) => d.field) : [];
    const named =
      fields.some((f) => f === c.field || f?.startsWith(`${c.field}.`)) ||
      e.message.includes(c.field) ||
      // A body that is not JSON at all (or `null`, refused by the strict parser) is named by its code.
      (c.field === 'body' && e.code === ErrorType.MalformedJson);
    if (!named) return `400 that does not name ${c.field}: ${e.message} ${JSON.stringify(e.details ?? null)}`;
  }
  return null;
}

/** Send every case of the kind over every route; the failures, one line each. */
async function sweep(kind: (c: Case) => boolean): Promise<{ sent: number; failures: string[] }> {
  const failures: string[] = [];
  let sent = 0;
  for (const r of routes) {
    const auth = await authorization(r);
    for (const c of casesOf(doc, r).filter(kind)) {
      sent++;
      const shown = c.url.length > 120 ? `${c.url.slice(0, 120)}…` : c.url;
      try {
        const res = await send(c, auth);
        const why = verdict(c, res);
        if (why) failures.push(`${c.route} [${c.label}] ${shown} → ${why}`);
      } catch (err) {
        failures.push(`${c.route} [${c.label}] ${shown} → no answer: ${(err as Error).message}`);
      }
    }
  }
  return { sent, failures };
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('malformed input on every route', () => {
  it('every route of the OpenAPI document gets cases, or is listed with why it takes no input', () => {
    const withoutCases = routes.filter((r) => casesOf(doc, r).length === 0).map((r) => r.key);
    expect(withoutCases.sort(), 'routes without cases = NO_INPUT').toEqual(Object.keys(NO_INPUT).sort());
    const noRequired = routes.filter((r) => {
      const b = jsonBody(doc, r.op);
      return b !== undefined && (b.required ?? []).length === 0;
    });
    expect(noRequired.map((r) => r.key).sort(), 'bodies without required fields = EMPTY_BODY_IS_VALID').toEqual(
      Object.keys(EMPTY_BODY_IS_VALID).sort(),
    );
    const itemLevel = Object.keys(ITEM_LEVEL).filter((k) => !routes.some((r) => r.key === k && jsonBody(doc, r.op)));
    expect(itemLevel, 'ITEM_LEVEL entries without a JSON-body route').toEqual([]);
    // The sweep covers the routes that take input: at least one per route with parameters or a body.
    expect(routes.length - withoutCases.length).toBeGreaterThan(30);
  });

  it('a malformed or 10,000-character path parameter is a 400 that names the parameter', async () => {
    const { sent, failures } = await sweep((c) => c.kind === 'path');
    expect(sent).toBeGreaterThan(40);
    expect(failures).toEqual([]);
  });

  it('a garbage, over-long or repeated query parameter, or a forged cursor, is a 4xx that names the parameter', async () => {
    const { sent, failures } = await sweep((c) => c.kind === 'query');
    expect(sent).toBeGreaterThan(100);
    expect(failures).toEqual([]);
  });

  it('a JSON body that is not JSON, an array, null, {} or a required field of the wrong type is a 400 naming the field', async () => {
    const { sent, failures } = await sweep((c) => c.kind === 'body');
    expect(sent).toBeGreaterThan(50);
    expect(failures).toEqual([]);
  });

  it(`a ${DEPTH}-deep JSON body crashes nothing: a 4xx, or the item-level rejection of batch routes`, async () => {
    const { sent, failures } = await sweep((c) => c.kind === 'deep');
    expect(sent).toBeGreaterThan(20);
    expect(failures).toEqual([]);
    // The process is still serving.
    const health = await sys.http.get('/healthz');
    expect(health.status).toBe(200);
  });

  it('a JSON route refuses a text/plain body with a 4xx in the error shape', async () => {
    const { sent, failures } = await sweep((c) => c.kind === 'content-type');
    expect(sent).toBeGreaterThan(15);
    expect(failures).toEqual([]);
  });
});
