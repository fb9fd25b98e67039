/**
 * The development SMTP sink of `npm start`: started only without SMTP_URL on development defaults,
 * it captures the notices the worker sends; `GET /v1/dev/outbox` (admin) shows them, and the route
 * does not exist in production.
 */
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/middleware/auth';
import { CapturedMessageSchema } from '../../api/routes/dev';
import { pageSchema } from '../../api/pagination';
import { createLogger } from '../../infra/logger';
import type { SmtpSink } from '../../infra/smtp';
import { Lifecycle, startDevMailSink } from '../../infra/system';
import { putTemplate, runNotice, seedNoticeCase } from '../helpers/notices';
import { principals, startTestSystem, testConfig, type TestSystem } from '../helpers/system';

const logger = createLogger({ level: 'silent' });
const life = new Lifecycle(logger);
let sink: SmtpSink;
let sys: TestSystem;

beforeAll(async () => {
  const started = await startDevMailSink(testConfig(), life, logger);
  expect(started, 'development defaults without SMTP_URL start the sink').not.toBeNull();
  sink = started!;
  sys = await startTestSystem({ env: { SMTP_URL: sink.url } });
  await putTemplate(sys, 'first-en');
});
afterAll(async () => {
  await sys?.close();
  await life.stopAll();
});

async function appWith(overrides: { devMail?: SmtpSink; production?: boolean }) {
  const config = { ...sys.config, isDevelopmentDefaults: !overrides.production };
  const { app, openapi } = createApp({
    config,
    db: sys.db,
    temporal: sys.client,
    taskQueue: sys.taskQueue,
    logger,
    authenticator: await createAuthenticator(sys.config),
    devMail: overrides.devMail,
  });
  return { http: supertest(app), openapi: openapi as unknown as { paths: Record<string, unknown> } };
}

describe('the development SMTP sink', () => {
  it('is not started when SMTP_URL is set, nor in production', async () => {
    expect(await startDevMailSink(testConfig({ SMTP_URL: 'smtp://mail.example.org:587' }), life, logger)).toBeNull();
    expect(await startDevMailSink({ ...testConfig(), isDevelopmentDefaults: false }, life, logger)).toBeNull();
  });

  it('captures a sent notice, and GET /v1/dev/outbox shows it to an administrator, newest first, paged', async () => {
    const first = await seedNoticeCase(sys, { templateId: 'first-en' });
    const second = await seedNoticeCase(sys, { templateId: 'first-en' });
    await runNotice(sys, first);
    await runNotice(sys, second);
    const { http } = await appWith({ devMail: sink });
    const admin = await sys.auth(principals.admin);

    const page1 = await http.get('/v1/dev/outbox?limit=1').set('Authorization', admin);
    expect(page1.status).toBe(200);
    const body1 = pageSchema(CapturedMessageSchema).parse(page1.body);
    expect(body1.items.map((m) => m.messageId)).toEqual([`<notice.${second.noticeId}@example.org>`]);
    expect(body1.items[0]!.subject).toMatch(/^Notice about case CASE-/);
    expect(body1.items[0]!.raw).toContain('Message-ID:');
    const page2 = await http.get(`/v1/dev/outbox?limit=1&cursor=${body1.nextCursor}`).set('Authorization', admin);
    expect(page2.body.items.map((m: { messageId: string }) => m.messageId)).toEqual([`<notice.${first.noticeId}@example.org>`]);
    expect(page2.body.nextCursor).toBeNull();

    const investigator = await sys.auth(principals.investigator);
    expect((await http.get('/v1/dev/outbox').set('Authorization', investigator)).status).toBe(403);
  });

  it('answers 404 with the reason when this process runs no sink', async () => {
    const { http } = await appWith({});
    const res = await http.get('/v1/dev/outbox').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain('SMTP sink is not running');
  });

  it('does not exist in production: no route, not in the OpenAPI document', async () => {
    const { http, openapi } = await appWith({ devMail: sink, production: true });
    const res = await http.get('/v1/dev/outbox').set('Authorization', await sys.auth(principals.admin));
    expect(res.status).toBe(404);
    expect(res.body.error.message).toBe('No route GET /v1/dev/outbox');
    expect(Object.keys(openapi.paths)).not.toContain('/v1/dev/outbox');
    expect(Object.keys(openapi.paths)).toContain('/v1/notice-templates');
  });
});
