import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../infra/config';

const run = promisify(execFile);
const root = path.resolve(__dirname, '../..');
const key = (id: string, byte: number) => `${id}:${Buffer.alloc(32, byte).toString('base64')}`;

describe('configuration is parsed once and fails fast, naming the variable', () => {
  it('defaults give a working development configuration', () => {
    const c = loadConfig({});
    expect(c.env).toBe('development');
    expect(c.http.port).toBe(8080);
    expect(c.keys.payload[0]!.id).toBe('dev1');
  });

  it('a malformed variable is named', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT: Expected number/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ PAYLOAD_KEYS: 'k1:c2hvcnQ=' })).toThrow(/PAYLOAD_KEYS: expected comma-separated/);
    expect(() => loadConfig({ WARDEN_ENV: 'staging' })).toThrow(/WARDEN_ENV/);
  });

  it('production refuses the development keys and embedded components', () => {
    let err: unknown;
    try {
      loadConfig({ WARDEN_ENV: 'production' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    for (const v of [
      'AUTH_JWKS_URL',
      'AUTH_ISSUER',
      'PAYLOAD_KEYS',
      'VAULT_KEYS',
      'PSEUDONYM_KEY',
      'DATABASE_URL',
      'TEMPORAL_ADDRESS',
      'AUDIT_SIGNING_KEY',
    ]) {
      expect(msg).toContain(v);
    }
  });

  it('a complete production configuration is accepted', () => {
    const c = loadConfig({
      WARDEN_ENV: 'production',
      AUTH_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
      AUTH_ISSUER: 'https://idp.example.com/',
      PAYLOAD_KEYS: key('p2', 1),
      VAULT_KEYS: key('v1', 2),
      PSEUDONYM_KEY: 'a-long-production-pseudonym-key',
      DATABASE_URL: 'postgres://u:p@db.internal:5432/warden',
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      AUDIT_SIGNING_KEY: Buffer.alloc(32, 5).toString('base64'),
    });
    expect(c.env).toBe('production');
  });

  it('the vault key must differ from the payload key', () => {
    expect(() => loadConfig({ PAYLOAD_KEYS: key('a', 3), VAULT_KEYS: key('b', 3) })).toThrow(
      /VAULT_KEYS: the identity vault must use a key separate/,
    );
  });

  it('a process started with a bad variable exits with a message naming it', async () => {
    const result = await run(path.join(root, 'node_modules/.bin/tsx'), ['api/server.ts'], {
      cwd: root,
      env: { ...process.env, PORT: 'eighty', LOG_LEVEL: 'silent' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(78);
    expect(result.stderr).toMatch(/warden api: Invalid configuration:\s+PORT: Expected number/);
  });
});
