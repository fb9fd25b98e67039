import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SettingsSchema } from '../../api/routes/settings';
import { auditLog } from '../../db/schema';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let admin: string;
beforeAll(async () => {
  sys = await startTestSystem({ worker: false });
  admin = await sys.auth(principals.admin);
});
afterAll(async () => sys?.close());

describe('tenant settings', () => {
  it('anonymized names are shown by default', async () => {
    const res = await sys.http.get('/v1/settings').set('Authorization', admin);
    expect(SettingsSchema.parse(res.body)).toMatchObject({ showAnonymizedNames: true, alertVolume: 'default' });
  });

  it('an administrator changes a setting; the change is stored and audited with before and after', async () => {
    const res = await sys.http.patch('/v1/settings').set('Authorization', admin).send({ alertVolume: 'fewer' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ alertVolume: 'fewer', showAnonymizedNames: true });
    expect((await sys.http.get('/v1/settings').set('Authorization', admin)).body.alertVolume).toBe('fewer');
    const [entry] = await sys.db.select().from(auditLog).where(eq(auditLog.requestId, res.headers['x-request-id']!));
    expect(entry).toMatchObject({
      action: 'settings.update',
      outcome: 'allowed',
      details: { alertVolume: { from: 'default', to: 'fewer' } },
    });
  });

  it('refuses an empty patch, an unknown setting and a wrong value, naming the problem', async () => {
    const empty = await sys.http.patch('/v1/settings').set('Authorization', admin).send({});
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/at least one setting/);
    const unknown = await sys.http.patch('/v1/settings').set('Authorization', admin).send({ darkMode: true });
    expect(unknown.body.error.message).toMatch(/darkMode/);
    const wrong = await sys.http.patch('/v1/settings').set('Authorization', admin).send({ showAnonymizedNames: 'no' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details[0].field).toBe('body.showAnonymizedNames');
  });
});
