/**
 * Process configuration, parsed once from the environment with zod.
 *
 * This is the only module that reads `process.env`. Everything else receives a `Config` value.
 * A missing or malformed variable stops the process with a message that names it; production
 * refuses the development keys that make local use convenient.
 */
import { createPrivateKey, createPublicKey, createHash, type KeyObject } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';

/** Development defaults: fine on a laptop, refused when WARDEN_ENV=production. */
export const DEV_AUTH_SECRET = 'warden-development-signing-key-not-for-production-use!';
export const DEV_PAYLOAD_KEY = 'dev1:' + Buffer.alloc(32, 7).toString('base64');
export const DEV_VAULT_KEY = 'vdev1:' + Buffer.alloc(32, 11).toString('base64');
export const DEV_PSEUDONYM_KEY = 'warden-development-pseudonym-key';
/** Ed25519 seed (base64) that signs audit checkpoints in development. */
export const DEV_AUDIT_SIGNING_KEY = Buffer.alloc(32, 13).toString('base64');
/** The audit log is kept at least this long; configuration may only lengthen it. */
export const MIN_AUDIT_RETENTION_DAYS = 180;

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

/** `id:base64key,id:base64key` — the first key encrypts, all of them decrypt (rotation). */
const keyRing = z.string().transform((raw, ctx) => {
  const keys: { id: string; key: Buffer }[] = [];
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const idx = part.indexOf(':');
    const id = part.slice(0, idx);
    const key = Buffer.from(part.slice(idx + 1), 'base64');
    if (idx <= 0 || !/^[A-Za-z0-9_-]{1,32}$/.test(id) || key.length !== 32) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'expected comma-separated "keyId:base64" entries with 32-byte (AES-256) keys',
      });
      return z.NEVER;
    }
    if (keys.some((k) => k.id === id)) {
      // Reads look keys up by id: a second key under one id would never be tried.
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `key id "${id}" appears twice` });
      return z.NEVER;
    }
    keys.push({ id, key });
  }
  if (keys.length === 0) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'at least one key is required' });
    return z.NEVER;
  }
  return keys;
});

/** An Ed25519 private key: a PKCS8 PEM or a base64 32-byte seed. */
const ed25519PrivateKey = z.string().transform((raw, ctx) => {
  try {
    return parseEd25519PrivateKey(raw);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    return z.NEVER;
  }
});

export const EnvSchema = z.object({
  WARDEN_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  PUBLIC_URL: z.string().url().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().default('./data'),

  DATABASE_URL: z.string().url().optional(),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),

  TEMPORAL_ADDRESS: z.string().optional(),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('warden'),
  TEMPORAL_API_KEY: z.string().optional(),
  TEMPORAL_TLS: bool.default('false'),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_CLI_PATH: z.string().optional(),
  TEMPORAL_DEV_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),

  AUTH_DEV_SECRET: z.string().min(32).default(DEV_AUTH_SECRET),
  AUTH_ISSUER: z.string().optional(),
  AUTH_AUDIENCE: z.string().optional(),
  AUTH_JWKS_URL: z.string().url().optional(),
  AUTH_PUBLIC_KEY: z.string().optional(),

  PAYLOAD_KEYS: keyRing.default(DEV_PAYLOAD_KEY),
  VAULT_KEYS: keyRing.default(DEV_VAULT_KEY),
  PSEUDONYM_KEY: z.string().min(16).default(DEV_PSEUDONYM_KEY),

  /** Where notices are sent: smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465. */
  SMTP_URL: z
    .string()
    .url('expected a URL such as smtp://user:password@mail.example.org:587')
    .refine((u) => /^smtps?:\/\//i.test(u), 'expected an smtp:// or smtps:// URL')
    .optional(),
  /** Origins (the Temporal Web UI) allowed to call the codec endpoint with credentials. */
  CODEC_CORS_ORIGINS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ?.split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    ),

  /** Multiplies every approval SLA and reminder (tests and demos: 0.0005 turns 1 h into 1.8 s). */
  SLA_TIME_SCALE: z.coerce.number().positive().max(1000).default(1),
  /** Deadline of every Update the API sends to a workflow. */
  UPDATE_DEADLINE_MS: z.coerce.number().int().min(100).max(120_000).default(10_000),
  /** Test knob: a case workflow continues-as-new at this history length (else when Temporal suggests). */
  CASE_CONTINUE_AS_NEW_AFTER_EVENTS: z.coerce.number().int().min(20).optional(),

  /** Ed25519 private key for audit checkpoints: a PKCS8 PEM, or a base64 32-byte seed. */
  AUDIT_SIGNING_KEY: ed25519PrivateKey.default(DEV_AUDIT_SIGNING_KEY),
  AUDIT_RETENTION_DAYS: z.coerce
    .number()
    .int()
    .min(MIN_AUDIT_RETENTION_DAYS, `audit entries are kept at least ${MIN_AUDIT_RETENTION_DAYS} days`)
    .default(MIN_AUDIT_RETENTION_DAYS),
  /** How often the worker's Temporal schedule writes a signed audit checkpoint. */
  AUDIT_CHECKPOINT_INTERVAL_MINUTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .default(15),
});

export type Config = ReturnType<typeof loadConfig>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse and check the environment. Throws `ConfigError` naming every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.WARDEN_ENV === 'production') {
    if (!e.AUTH_JWKS_URL && !e.AUTH_PUBLIC_KEY) {
      problems.push('AUTH_JWKS_URL or AUTH_PUBLIC_KEY: production verifies tokens from a configured issuer');
    }
    if (!e.AUTH_ISSUER) problems.push('AUTH_ISSUER: required in production');
    if (e.AUTH_DEV_SECRET === DEV_AUTH_SECRET && !e.AUTH_JWKS_URL && !e.AUTH_PUBLIC_KEY) {
      problems.push('AUTH_DEV_SECRET: the development key is refused in production');
    }
    if (e.PAYLOAD_KEYS.some((k) => k.key.equals(parseKey(DEV_PAYLOAD_KEY)))) {
      problems.push('PAYLOAD_KEYS: the development payload key is refused in production');
    }
    if (e.VAULT_KEYS.some((k) => k.key.equals(parseKey(DEV_VAULT_KEY)))) {
      problems.push('VAULT_KEYS: the development vault key is refused in production');
    }
    if (e.PSEUDONYM_KEY === DEV_PSEUDONYM_KEY) {
      problems.push('PSEUDONYM_KEY: the development pseudonym key is refused in production');
    }
    if (e.AUDIT_SIGNING_KEY.keyId === parseEd25519PrivateKey(DEV_AUDIT_SIGNING_KEY).keyId) {
      problems.push('AUDIT_SIGNING_KEY: the development audit signing key is refused in production');
    }
    if (!e.DATABASE_URL) problems.push('DATABASE_URL: production needs an external PostgreSQL');
    if (!e.TEMPORAL_ADDRESS) problems.push('TEMPORAL_ADDRESS: production needs an external Temporal');
  }
  if (e.PAYLOAD_KEYS.some((p) => e.VAULT_KEYS.some((v) => v.key.equals(p.key)))) {
    problems.push('VAULT_KEYS: the identity vault must use a key separate from PAYLOAD_KEYS');
  }
  if (problems.length) {
    throw new ConfigError(`Invalid configuration:\n${problems.map((p) => '  ' + p).join('\n')}`);
  }
  const dataDir = path.resolve(e.DATA_DIR);
  return {
    env: e.WARDEN_ENV,
    isDevelopmentDefaults: e.WARDEN_ENV !== 'production',
    http: {
      host: e.HOST,
      port: e.PORT,
      publicUrl: e.PUBLIC_URL,
    },
    logLevel: e.LOG_LEVEL,
    dataDir,
    database: {
      url: e.DATABASE_URL,
      embeddedPort: e.EMBEDDED_POSTGRES_PORT,
      poolSize: e.DATABASE_POOL_SIZE,
    },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      apiKey: e.TEMPORAL_API_KEY,
      tls: e.TEMPORAL_TLS,
      tlsCertPath: e.TEMPORAL_TLS_CERT_PATH,
      tlsKeyPath: e.TEMPORAL_TLS_KEY_PATH,
      cliPath: e.TEMPORAL_CLI_PATH,
      devPort: e.TEMPORAL_DEV_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
    },
    auth: {
      devSecret: e.AUTH_DEV_SECRET,
      issuer: e.AUTH_ISSUER,
      audience: e.AUTH_AUDIENCE,
      jwksUrl: e.AUTH_JWKS_URL,
      publicKeyPem: e.AUTH_PUBLIC_KEY,
    },
    keys: {
      payload: e.PAYLOAD_KEYS,
      vault: e.VAULT_KEYS,
      pseudonym: e.PSEUDONYM_KEY,
    },
    smtpUrl: e.SMTP_URL,
    // Default: the embedded Temporal Web UI, however its host is typed.
    codecCorsOrigins: e.CODEC_CORS_ORIGINS ?? [
      `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`,
      `http://localhost:${e.TEMPORAL_UI_PORT}`,
    ],
    cases: {
      slaTimeScale: e.SLA_TIME_SCALE,
      updateDeadlineMs: e.UPDATE_DEADLINE_MS,
      continueAsNewAfterEvents: e.CASE_CONTINUE_AS_NEW_AFTER_EVENTS,
    },
    audit: {
      signingKey: e.AUDIT_SIGNING_KEY,
      retentionDays: e.AUDIT_RETENTION_DAYS,
      checkpointIntervalMinutes: e.AUDIT_CHECKPOINT_INTERVAL_MINUTES,
    },
  };
}

function parseKey(entry: string): Buffer {
  return Buffer.from(entry.slice(entry.indexOf(':') + 1), 'base64');
}

/** An Ed25519 key pair for audit checkpoints; `keyId` names the public key (sha256, 16 hex). */
export interface AuditSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

/** PKCS8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function parseEd25519PrivateKey(raw: string): AuditSigningKey {
  let privateKey: KeyObject;
  const text = raw.trim();
  if (text.includes('-----BEGIN')) {
    privateKey = createPrivateKey({ key: text.replace(/\\n/g, '\n'), format: 'pem' });
  } else {
    const seed = Buffer.from(text, 'base64');
    if (seed.length !== 32) throw new Error('expected a PKCS8 PEM or a base64 32-byte Ed25519 seed');
    privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`expected an Ed25519 key, got ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    privateKey,
    publicKey,
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    keyId: createHash('sha256').update(der).digest('hex').slice(0, 16),
  };
}

/**
 * The offline verifier's configuration (`npm run audit:verify`): only what it needs, so it runs
 * on an auditor's machine without the service's secrets. The public key may come from
 * `AUDIT_PUBLIC_KEY` (SPKI PEM, as published at `GET /v1/audit/public-key`) or be derived from
 * `AUDIT_SIGNING_KEY`.
 */
export function loadAuditVerifyConfig(env: NodeJS.ProcessEnv = process.env): {
  databaseUrl?: string;
  publicKeyPem?: string;
  signingKey?: AuditSigningKey;
} {
  const parsed = z
    .object({
      DATABASE_URL: z.string().url().optional(),
      AUDIT_PUBLIC_KEY: z.string().includes('BEGIN PUBLIC KEY', { message: 'expected an SPKI PEM public key' }).optional(),
      AUDIT_SIGNING_KEY: ed25519PrivateKey.optional(),
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid configuration:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`,
    );
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    publicKeyPem: e.AUDIT_PUBLIC_KEY?.replace(/\\n/g, '\n'),
    signingKey: e.AUDIT_SIGNING_KEY,
  };
}
