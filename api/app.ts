/**
 * The Express application: `createApp(deps)` wires middleware, every route and the OpenAPI
 * document. It never listens (api/server.ts and scripts/start.ts do) so tests drive it directly.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { OpenAPIRegistry, OpenApiGeneratorV3 } from '@asteasolutions/zod-to-openapi';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import { decodeCsvBody } from './csv';
import { errorMiddleware, notFoundRoute } from './errors';
import { mountRoutes, route, type AppDeps, type RouteSpec } from './http';
import { alertRoutes } from './routes/alerts';
import { auditRoutes } from './routes/audit';
import { caseRoutes } from './routes/cases';
import { codecRoutes } from './routes/codec';
import { healthRoutes } from './routes/health';
import { historyRoutes } from './routes/history';
import { identityRoutes } from './routes/identity';
import { noticeTemplateRoutes } from './routes/notice-templates';
import { devRoutes } from './routes/dev';
import { policyRoutes } from './routes/policies';
import { regionRoutes } from './routes/regions';
import { settingsRoutes } from './routes/settings';
import { signalRoutes } from './routes/signals';
import { subjectRoutes } from './routes/subjects';
import { systemRoutes } from './routes/system';

declare module 'http' {
  interface IncomingMessage {
    id: string | number | object;
  }
}

/** Detection: connectors' ingest, policies, the users view and alert triage. */
const detectionRoutes = [...subjectRoutes, ...signalRoutes, ...policyRoutes, ...alertRoutes];

/** Every route of the API, in one list: the OpenAPI document and the authorization matrix read it. */
export function allRoutes(extra: RouteSpec[] = []): RouteSpec[] {
  return [
    ...healthRoutes,
    ...regionRoutes,
    ...settingsRoutes,
    ...systemRoutes,
    ...codecRoutes,
    ...auditRoutes,
    ...historyRoutes,
    ...caseRoutes,
    ...identityRoutes,
    ...noticeTemplateRoutes,
    ...detectionRoutes,
    ...extra,
  ] as RouteSpec[];
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

const requestId: RequestHandler = (req, res, next) => {
  const given = req.header('x-request-id');
  req.id = given && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', String(req.id));
  next();
};

export interface App {
  app: Express;
  openapi: ReturnType<OpenApiGeneratorV3['generateDocument']>;
  metrics: Registry;
}

/**
 * Keep-alive connections outlive the usual idle timeouts of clients and load balancers (60 s), so
 * the server is never the side that closes an idle connection a client is about to reuse (which
 * the client sees as ECONNRESET on a request that never arrived).
 */
export function configureHttpServer(server: Server): Server {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

export function createApp(deps: AppDeps): App {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const httpDuration = new Histogram({
    name: 'warden_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [metrics],
  });

  app.use(requestId);
  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req) => req.id as string,
      // Paths carry opaque ids only; query strings may carry filters, so they are left out.
      serializers: {
        req: (req: { id: unknown; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          path: req.url.split('?')[0],
        }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    }),
  );
  app.use((req, res, next) => {
    const end = httpDuration.startTimer({ method: req.method });
    res.on('finish', () =>
      end({ route: (req.route?.path as string | undefined) ?? 'unmatched', status: String(res.statusCode) }),
    );
    next();
  });
  app.use(express.json({ limit: '20mb', strict: true }));
  app.use(express.raw({ type: ['text/csv'], limit: '20mb' }), decodeCsvBody);

  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });

  const router = express.Router();
  // The document is generated after every route is registered; its own route serves it then.
  const contract: { document?: App['openapi'] } = {};
  const contractRoutes = [
    route({
      method: 'get',
      path: '/metrics',
      tag: 'Operations',
      summary: 'Prometheus metrics',
      permission: 'public',
      responses: { 200: { description: 'Metrics in the Prometheus text format', schema: z.string(), contentType: 'text/plain' } },
      async handler({ res }) {
        res.setHeader('Content-Type', metrics.contentType);
        res.send(await metrics.metrics());
      },
    }),
    route({
      method: 'get',
      path: '/openapi.json',
      tag: 'Operations',
      summary: 'This OpenAPI document',
      permission: 'public',
      responses: { 200: { description: 'OpenAPI 3 document', schema: z.object({}).passthrough() } },
      handler: () => ({ body: contract.document }),
    }),
  ];
  // Development-only routes exist only on development defaults (never with WARDEN_ENV=production).
  const devOnly = deps.config.isDevelopmentDefaults ? devRoutes : [];
  mountRoutes(router, registry, [...allRoutes(), ...devOnly, ...contractRoutes] as RouteSpec[], deps);
  registry.registerPath({
    method: 'get',
    path: '/docs',
    summary: 'Interactive API documentation (Swagger UI)',
    tags: ['Operations'],
    responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: z.string() } } } },
  });

  const document = new OpenApiGeneratorV3(registry.definitions).generateDocument({
    openapi: '3.0.3',
    info: {
      title: 'Warden API',
      version: '1.0.0',
      description: 'Workflow-orchestrated case management for insider risk programmes.',
    },
    servers: [{ url: deps.config.http.publicUrl ?? '/' }],
  });
  contract.document = document;

  // The Temporal Web UI calls the codec endpoint from its own origin, with credentials.
  app.use(
    '/codec',
    cors({
      origin: deps.config.codecCorsOrigins,
      credentials: true,
      allowedHeaders: ['Content-Type', 'Authorization', 'X-Namespace'],
    }),
  );
  app.use(router);
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'Warden API' }));
  app.use(notFoundRoute);
  app.use(errorMiddleware(deps.logger));
  return { app, openapi: document, metrics };
}
