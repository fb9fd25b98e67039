import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let admin: string;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  admin = await sys.auth(principals.admin);
});
afterAll(async () => sys?.close());

describe('one error shape', () => {
  it('an unknown route is a 404 in the error shape', async () => {
    const res = await sys.http.get('/v1/nothing-here').set('Authorization', admin);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      error: { code: 'not_found', message: 'No route GET /v1/nothing-here', requestId: expect.any(String) },
    });
  });

  it('malformed JSON is a 400 that says so', async () => {
    const res = await sys.http
      .patch('/v1/settings')
      .set('Authorization', admin)
      .set('Content-Type', 'application/json')
      .send('{"alertVolume": ');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('malformed_json');
  });

  it('a CSV body sent to a route that takes JSON is a 415, and changes nothing', async () => {
    const before = await sys.http.get('/v1/settings').set('Authorization', admin);
    const res = await sys.http
      .patch('/v1/settings')
      .set('Authorization', admin)
      .set('Content-Type', 'text/csv')
      .send('alertVolume\n5\n');
    expect(res.status).toBe(415);
    expect(res.body.error).toMatchObject({
      code: 'unsupported_media_type',
      message: expect.stringContaining('application/json'),
    });
    expect((await sys.http.get('/v1/settings').set('Authorization', admin)).body).toEqual(before.body);
  });

  it('an unknown key is named, cut short, not echoed whole', async () => {
    const key = `k${'x'.repeat(10_000)}`;
    const res = await sys.http
      .patch('/v1/settings')
      .set('Authorization', admin)
      .send({ [key]: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain(`Unrecognized key(s) in object: '${key.slice(0, 64)}…'`);
    expect(JSON.stringify(res.body).length).toBeLessThan(1_000);
  });

  it('a request id given by the caller is echoed in the header and in errors', async () => {
    const res = await sys.http.get('/v1/nothing').set('X-Request-Id', 'trace-abc-123');
    expect(res.headers['x-request-id']).toBe('trace-abc-123');
    expect(res.body.error.requestId).toBe('trace-abc-123');
  });

  it('an unknown failure is a 500 that reveals nothing internal and is logged with the request id', async () => {
    // A real fault: the table the route reads disappears under it.
    await sys.db.execute(sql`alter table settings rename to settings_moved_away`);
    try {
      const res = await sys.http.get('/v1/settings').set('Authorization', admin);
      expect(res.status).toBe(500);
      expect(res.body.error).toEqual({
        code: 'internal_error',
        message: 'Internal error',
        requestId: res.headers['x-request-id'],
      });
      expect(JSON.stringify(res.body)).not.toContain('settings');
      expect(sys.logs.some((l) => l.includes('"level":50') && l.includes(res.headers['x-request-id']!))).toBe(true);
    } finally {
      await sys.db.execute(sql`alter table settings_moved_away rename to settings`);
    }
  });
});
