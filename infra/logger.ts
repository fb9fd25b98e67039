/**
 * Structured JSON logging with pino. Auth headers and any personal-data field names are redacted
 * wherever they appear in the first levels of a logged object, as a safety net: code should not
 * log such values in the first place.
 */
import { pino, type Logger } from 'pino';

const PERSONAL_FIELDS = ['displayName', 'email', 'upn', 'manager', 'name', 'identity', 'fullName'];

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  ...PERSONAL_FIELDS,
  ...PERSONAL_FIELDS.map((f) => `*.${f}`),
  ...PERSONAL_FIELDS.map((f) => `*.*.${f}`),
];

export type { Logger };

export function createLogger(opts: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: { service: 'warden' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
