/**
 * `npm run token -- --sub alice --roles investigator --regions eu,us [--stakeholder legal]
 * [--languages en,de] [--ttl 12h]`: prints a development JWT on stdout and nothing else.
 */
import { parseArgs } from 'node:util';
import { Claims, mintDevToken } from '../api/middleware/auth';
import { ConfigError, loadConfig } from '../infra/config';

const list = (v: string | undefined) =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

try {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      roles: { type: 'string' },
      regions: { type: 'string' },
      stakeholder: { type: 'string' },
      languages: { type: 'string' },
      ttl: { type: 'string', default: '12h' },
    },
    strict: true,
  });
  const config = loadConfig();
  if (config.env === 'production') throw new ConfigError('development tokens are not minted in production');
  const claims = Claims.safeParse({
    sub: values.sub,
    roles: list(values.roles),
    regions: list(values.regions),
    languages: list(values.languages),
    stakeholder: values.stakeholder,
  });
  if (!claims.success) {
    const i = claims.error.issues[0]!;
    throw new Error(`--${String(i.path[0])}: ${i.message}`);
  }
  process.stdout.write((await mintDevToken(config.auth.devSecret, claims.data, values.ttl)) + '\n');
} catch (err) {
  process.stderr.write(`token: ${(err as Error).message}\n`);
  process.exit(2);
}
