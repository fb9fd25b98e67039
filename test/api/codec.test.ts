import { randomUUID } from 'node:crypto';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptionCodec } from '../../infra/codec';
import { connectClient, createDataConverter } from '../../infra/temporal';
import { principals, startTestSystem, testConfig, type TestSystem } from '../helpers/system';
import { inject } from 'vitest';

const key = (id: string, byte: number) => `${id}:${Buffer.alloc(32, byte).toString('base64')}`;
const OLD = key('old', 21);
const NEW = key('new', 22);

let sys: TestSystem;
beforeAll(async () => {
  // This system encrypts with the "old" key: its histories are what a rotation must keep readable.
  sys = await startTestSystem({ env: { PAYLOAD_KEYS: OLD } });
});
afterAll(async () => sys?.close());

const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

async function runCheck(): Promise<{ workflowId: string; input: Payload }> {
  const res = await sys.http.post('/v1/system/check').set('Authorization', await sys.auth(principals.admin));
  expect(res.status).toBe(200);
  const history = await sys.client.workflow.getHandle(res.body.workflowId).fetchHistory();
  const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]! as Payload;
  return { workflowId: res.body.workflowId, input };
}

describe('codec endpoint for auditors', () => {
  it('an auditor decodes a real history payload; the clear text has what the ciphertext hid', async () => {
    const { input } = await runCheck();
    expect(Buffer.from(input.data!).toString('latin1')).not.toContain('checkId');
    const res = await sys.http
      .post('/codec/decode')
      .set('Authorization', await sys.auth(principals.auditor))
      .set('X-Namespace', 'default')
      .send({ payloads: [toJson(input)] });
    expect(res.status).toBe(200);
    const decoded = res.body.payloads[0];
    expect(Buffer.from(decoded.metadata.encoding, 'base64').toString()).toBe('json/plain');
    const value = JSON.parse(Buffer.from(decoded.data, 'base64').toString());
    expect(value).toMatchObject({ checkId: expect.any(String), requestedBy: { sub: principals.admin.sub } });
  });

  it('encode then decode round-trips', async () => {
    const auditor = await sys.auth(principals.auditor);
    const plain = {
      metadata: { encoding: Buffer.from('json/plain').toString('base64') },
      data: Buffer.from('"hello"').toString('base64'),
    };
    const enc = await sys.http
      .post('/codec/encode')
      .set('Authorization', auditor)
      .send({ payloads: [plain] });
    expect(Buffer.from(enc.body.payloads[0].metadata.encoding, 'base64').toString()).toBe('binary/encrypted');
    const dec = await sys.http.post('/codec/decode').set('Authorization', auditor).send({ payloads: enc.body.payloads });
    expect(dec.body.payloads[0]).toEqual(plain);
  });

  it('refuses non-auditors (403) and anonymous callers (401)', async () => {
    const { input } = await runCheck();
    for (const p of [principals.admin, principals.investigator, principals.legal, principals.analyst]) {
      const res = await sys.http
        .post('/codec/decode')
        .set('Authorization', await sys.auth(p))
        .send({ payloads: [toJson(input)] });
      expect(res.status).toBe(403);
      expect(JSON.stringify(res.body)).not.toContain('checkId');
    }
    expect((await sys.http.post('/codec/decode').send({ payloads: [toJson(input)] })).status).toBe(401);
  });

  it('the Web UI session cookie works for auditors only, and CORS admits the UI origin with credentials', async () => {
    const { input } = await runCheck();
    const session = await sys.http.get(`/codec/session?token=${await sys.token(principals.auditor)}`);
    expect(session.status).toBe(204);
    const cookie = session.headers['set-cookie']![0]!;
    expect(cookie).toMatch(/^warden_codec=.*HttpOnly/);
    const res = await sys.http
      .post('/codec/decode')
      .set('Cookie', cookie.split(';')[0]!)
      .set('Origin', 'http://127.0.0.1:8233')
      .send({ payloads: [toJson(input)] });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('http://127.0.0.1:8233');
    expect(res.headers['access-control-allow-credentials']).toBe('true');
    const notAuditor = await sys.http.get(`/codec/session?token=${await sys.token(principals.investigator)}`);
    expect(notAuditor.status).toBe(403);
  });

  it('a session started with the Authorization header keeps that token, not an unverified ?token= beside it', async () => {
    const auditorToken = await sys.token(principals.auditor);
    const investigatorToken = await sys.token(principals.investigator);
    const session = await sys.http
      .get(`/codec/session?token=${investigatorToken}`)
      .set('Authorization', `Bearer ${auditorToken}`);
    expect(session.status).toBe(204);
    const cookie = session.headers['set-cookie']![0]!.split(';')[0]!;
    expect(decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1))).toBe(auditorToken);
  });

  it('an unknown namespace is not served', async () => {
    const res = await sys.http
      .post('/codec/decode')
      .set('Authorization', await sys.auth(principals.auditor))
      .set('X-Namespace', 'other')
      .send({ payloads: [] });
    expect(res.status).toBe(404);
  });
});

describe('payload key rotation', () => {
  it('after rotating to a new key, histories written under the old key stay readable', async () => {
    const { workflowId } = await runCheck();
    const rotated = testConfig({ PAYLOAD_KEYS: `${NEW},${OLD}` });
    const { client, connection } = await connectClient(rotated, inject('temporalAddress'));
    try {
      const result = await client.workflow.getHandle(workflowId).result();
      expect(result).toMatchObject({ attempt: 1 });
      // New payloads are written under the new key id.
      const [encoded] = await new EncryptionCodec(rotated.keys.payload).encode([{ metadata: {}, data: new Uint8Array([1]) }]);
      expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe('new');
    } finally {
      await connection.close();
    }
    // Without the old key in the ring, the old history cannot be read.
    const withoutOld = testConfig({ PAYLOAD_KEYS: NEW });
    const other = await connectClient(withoutOld, inject('temporalAddress'));
    try {
      await expect(other.client.workflow.getHandle(workflowId).result()).rejects.toThrow(/no payload key with id old/);
    } finally {
      await other.connection.close();
    }
  });

  it('failure messages are moved into encrypted attributes, not stored in clear', async () => {
    const converter = loadDataConverter(createDataConverter(testConfig()));
    const failure = converter.failureConverter.errorToFailure(
      ApplicationFailure.create({ message: `canary-${randomUUID()}`, type: 'validation_error' }),
      converter.payloadConverter,
    );
    expect(failure.message).toBe('Encoded failure');
    const [sealed] = await converter.payloadCodecs[0]!.encode([failure.encodedAttributes!]);
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain('canary-');
  });
});
