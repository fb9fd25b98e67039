/**
 * The signal vocabulary (pure): the sources, event types and attributes a connector may send, and
 * the zod schema that checks one event. Imported by the API (validation) and by scoring.
 *
 * Attribute schemas are strict on purpose: an event carrying a field we do not know is rejected
 * with its name, so nothing a connector sends by mistake (a file name, a person's name) is stored.
 */
import { isCalendarDay } from './calendar';
import { z } from 'zod';

export const SIGNAL_SOURCES = ['hr', 'dlp', 'endpoint', 'activity'] as const;
export type SignalSource = (typeof SIGNAL_SOURCES)[number];

export const HR_EVENT_TYPES = [
  'resignation',
  'termination',
  'performance_review',
  'performance_improvement_plan',
  'job_level_change',
] as const;
export const ACTIVITY_TYPES = [
  'file_downloaded',
  'file_copied_to_usb',
  'file_uploaded_to_personal_cloud',
  'file_printed',
  'email_to_external_domain',
] as const;
export const SIGNAL_TYPES = [...HR_EVENT_TYPES, 'dlp_alert', 'endpoint_alert', ...ACTIVITY_TYPES] as const;
export type SignalType = (typeof SIGNAL_TYPES)[number];
export type ActivityType = (typeof ACTIVITY_TYPES)[number];
export type HrEventType = (typeof HR_EVENT_TYPES)[number];

export const SEVERITIES = ['low', 'medium', 'high'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The source each event type must come from. */
export const SOURCE_OF_TYPE: Record<SignalType, SignalSource> = {
  resignation: 'hr',
  termination: 'hr',
  performance_review: 'hr',
  performance_improvement_plan: 'hr',
  job_level_change: 'hr',
  dlp_alert: 'dlp',
  endpoint_alert: 'endpoint',
  file_downloaded: 'activity',
  file_copied_to_usb: 'activity',
  file_uploaded_to_personal_cloud: 'activity',
  file_printed: 'activity',
  email_to_external_domain: 'activity',
};

export const isActivityType = (t: string): t is ActivityType => (ACTIVITY_TYPES as readonly string[]).includes(t);

/** Largest batch `POST /v1/signals` accepts; larger ones are refused whole with 413. */
export const MAX_SIGNAL_BATCH = 5000;

const IsoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD')
  // Not Date.parse: it rolls 2026-02-30 over to 2 March instead of refusing it.
  .refine((s) => isCalendarDay(+s.slice(0, 4), +s.slice(5, 7), +s.slice(8, 10)), 'not a calendar date');
const Remarks = z.string().max(200, 'remarks are at most 200 characters');
const Level = z.string().trim().min(1).max(50);
const Rating = z.union([z.number().finite(), z.string().trim().min(1).max(50)]);

const HrAttributes = {
  resignation: z.object({ lastWorkingDate: IsoDate, resignationDate: IsoDate.optional() }).strict(),
  termination: z.object({ lastWorkingDate: IsoDate.optional(), terminationDate: IsoDate.optional() }).strict(),
  performance_review: z.object({ rating: Rating, effectiveDate: IsoDate, remarks: Remarks.optional() }).strict(),
  performance_improvement_plan: z
    .object({ rating: Rating.optional(), effectiveDate: IsoDate, remarks: Remarks.optional() })
    .strict(),
  job_level_change: z
    .object({
      oldLevel: Level,
      newLevel: Level,
      effectiveDate: IsoDate.optional(),
      remarks: Remarks.optional(),
      /** Set by HR systems whose levels are not numbers; otherwise derived from the levels. */
      demotion: z.boolean().optional(),
    })
    .strict(),
};

const ActivityAttributes = z
  .object({
    count: z.number().int().min(1).max(1_000_000).default(1),
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** For email_to_external_domain: the recipient domain (never an address). */
    domain: z
      .string()
      .max(253)
      .regex(/^[A-Za-z0-9.-]+$/, 'a domain name, not an address')
      .optional(),
  })
  .strict();

const DlpAttributes = z
  .object({
    policy: z.string().trim().min(1).max(100).optional(),
    files: z.number().int().min(0).max(1_000_000).optional(),
    bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

export const ENDPOINT_ALERT_STATUSES = ['new', 'in_progress', 'resolved'] as const;
const EndpointAttributes = z
  .object({
    alertType: z.string().trim().min(1).max(100),
    status: z.enum(ENDPOINT_ALERT_STATUSES),
  })
  .strict();

const base = {
  externalId: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
  subject: z.string().trim().min(1).max(200),
  occurredAt: z.string().datetime({ offset: true }),
};

function event<T extends SignalType, A extends z.ZodTypeAny>(type: T, attributes: A, severity: 'required' | 'optional' | 'none') {
  return z
    .object({
      ...base,
      source: z.literal(SOURCE_OF_TYPE[type]),
      type: z.literal(type),
      severity:
        severity === 'required'
          ? z.enum(SEVERITIES)
          : severity === 'optional'
            ? z.enum(SEVERITIES).optional()
            : z.undefined({ invalid_type_error: `${type} events carry no severity` }),
      attributes,
    })
    .strict();
}

const optionalAttrs = <A extends z.ZodTypeAny>(a: A) => a.default({});

/**
 * One incoming event. `source` + `externalId` is its idempotency key; `subject` is the HR external
 * id of the person, matched through its keyed hash and never stored.
 */
export const SignalEvent = z.discriminatedUnion('type', [
  event('resignation', HrAttributes.resignation, 'none'),
  event('termination', optionalAttrs(HrAttributes.termination), 'none'),
  event('performance_review', HrAttributes.performance_review, 'none'),
  event('performance_improvement_plan', HrAttributes.performance_improvement_plan, 'none'),
  event('job_level_change', HrAttributes.job_level_change, 'none'),
  event('dlp_alert', optionalAttrs(DlpAttributes), 'required'),
  event('endpoint_alert', EndpointAttributes, 'optional'),
  ...ACTIVITY_TYPES.map((t) => event(t, optionalAttrs(ActivityAttributes), 'none')),
] as unknown as [z.ZodDiscriminatedUnionOption<'type'>, ...z.ZodDiscriminatedUnionOption<'type'>[]]);

/** A checked event, in the shape the ingest path uses. */
export interface ValidEvent {
  source: SignalSource;
  externalId: string;
  subject: string;
  type: SignalType;
  occurredAt: string;
  severity?: Severity;
  attributes: Record<string, unknown>;
}

/** Check one event; on failure, a reason naming the field (no value is echoed back). */
export function parseSignalEvent(raw: unknown): { ok: true; event: ValidEvent } | { ok: false; reason: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'an event must be an object' };
  const fast = fastPath(raw as Record<string, unknown>);
  return fast ? { ok: true, event: fast } : parseWithSchema(raw);
}

/** The schema's verdict alone (the reference the fast path is tested against). */
export function parseWithSchema(raw: unknown): { ok: true; event: ValidEvent } | { ok: false; reason: string } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'an event must be an object' };
  const type = (raw as { type?: unknown }).type;
  if (typeof type !== 'string' || !(SIGNAL_TYPES as readonly string[]).includes(type)) {
    return { ok: false, reason: `type: expected one of ${SIGNAL_TYPES.join(', ')}` };
  }
  const source = (raw as { source?: unknown }).source;
  const expectedSource = SOURCE_OF_TYPE[type as SignalType];
  if (source !== expectedSource) {
    return { ok: false, reason: `source: ${type} events come from source "${expectedSource}"` };
  }
  const r = SignalEvent.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { ok: false, reason: `${i.path.join('.') || 'event'}: ${i.message}` };
  }
  return { ok: true, event: r.data as ValidEvent };
}

/** The fields of an HR event's attributes that are free text about a person: stored sealed only. */
export const SEALED_ATTRIBUTES = ['remarks'] as const;

/**
 * Whether a job-level change is a demotion: the HR system's own flag if it sent one, else the
 * numbers in the levels (`L5` → `L4` is a demotion; higher number = more senior).
 */
export function isDemotion(attributes: Record<string, unknown>): boolean {
  if (typeof attributes.demotion === 'boolean') return attributes.demotion;
  const num = (v: unknown) => {
    const m = typeof v === 'string' ? /(\d+(?:\.\d+)?)/.exec(v) : null;
    return m ? Number(m[1]) : NaN;
  };
  const from = num(attributes.oldLevel);
  const to = num(attributes.newLevel);
  return Number.isFinite(from) && Number.isFinite(to) && to < from;
}

// ---------------------------------------------------------------------------------------------
// Fast path. Connectors send thousands of activity and DLP events per batch; checking each with
// the zod schema costs more than storing it. This accepts only events the schema accepts, with the
// same output; anything it is unsure about (including every invalid event) goes to the schema, so
// rejections keep the schema's reasons. A unit test holds the two to the same verdicts.

const EXTERNAL_ID = /^[\x21-\x7e]{1,200}$/;
const UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;
const DOMAIN = /^[A-Za-z0-9.-]{1,253}$/;
const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function validUtcTime(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const m = UTC_TIME.exec(v);
  if (!m) return false;
  const y = +m[1]!;
  const mo = +m[2]!;
  const d = +m[3]!;
  if (y < 1000 || +m[4]! > 23 || +m[5]! > 59 || +m[6]! > 59) return false;
  return isCalendarDay(y, mo, d);
}

function onlyKeys(o: Record<string, unknown>, allowed: readonly string[]): boolean {
  for (const k in o) if (!allowed.includes(k)) return false;
  return true;
}

const EVENT_KEYS = ['source', 'externalId', 'subject', 'type', 'occurredAt', 'attributes'] as const;
const DLP_EVENT_KEYS = [...EVENT_KEYS, 'severity'] as const;

function fastPath(raw: Record<string, unknown>): ValidEvent | null {
  const type = raw.type;
  const dlp = type === 'dlp_alert';
  if (!dlp && !(typeof type === 'string' && isActivityType(type))) return null;
  if (!onlyKeys(raw, dlp ? DLP_EVENT_KEYS : EVENT_KEYS) || raw.source !== SOURCE_OF_TYPE[type as SignalType]) return null;
  if (typeof raw.externalId !== 'string' || !EXTERNAL_ID.test(raw.externalId)) return null;
  if (typeof raw.subject !== 'string') return null;
  const subject = raw.subject.trim();
  if (subject.length < 1 || subject.length > 200 || !validUtcTime(raw.occurredAt)) return null;
  const a = raw.attributes === undefined ? {} : raw.attributes;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) return null;
  const attrs = a as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (dlp) {
    if (!(SEVERITIES as readonly unknown[]).includes(raw.severity) || !onlyKeys(attrs, ['policy', 'files', 'bytes'])) return null;
    if (attrs.policy !== undefined) {
      if (typeof attrs.policy !== 'string') return null;
      const policy = attrs.policy.trim();
      if (policy.length < 1 || policy.length > 100) return null;
      out.policy = policy;
    }
    if (attrs.files !== undefined && !isInt(attrs.files, 0, 1_000_000)) return null;
    if (attrs.files !== undefined) out.files = attrs.files;
  } else {
    if (!onlyKeys(attrs, ['count', 'bytes', 'domain'])) return null;
    if (attrs.count !== undefined && !isInt(attrs.count, 1, 1_000_000)) return null;
    out.count = attrs.count ?? 1;
    if (attrs.domain !== undefined) {
      if (typeof attrs.domain !== 'string' || !DOMAIN.test(attrs.domain)) return null;
      out.domain = attrs.domain;
    }
  }
  if (attrs.bytes !== undefined) {
    if (!isInt(attrs.bytes, 0, Number.MAX_SAFE_INTEGER)) return null;
    out.bytes = attrs.bytes;
  }
  return {
    source: raw.source as SignalSource,
    externalId: raw.externalId,
    subject,
    type: type as SignalType,
    occurredAt: raw.occurredAt,
    ...(dlp ? { severity: raw.severity as Severity } : {}),
    attributes: out,
  };
}
