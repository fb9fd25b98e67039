/**
 * Notices to the person under review (pure): the placeholder whitelist of notice templates, how a
 * template is rendered, the notice statuses, the stable Message-ID, and how an SMTP reply is
 * classified. No I/O and no clock: safe for the API, the activities and the workflow sandbox.
 */

/** Placeholders a template may use. Anything else inside `{{ }}` is refused when it is saved. */
export const PLACEHOLDERS = {
  'subject.displayName': 'The display name of the person the notice is addressed to (read from the identity vault when sending)',
  'case.reference': 'The case reference, e.g. CASE-1F2E3D4C',
  'policy.name': 'The name of the policy (or policies) whose alerts opened the case',
  'response.deadline': 'The date by which the person is asked to respond (the notice date plus the template’s responseDays)',
} as const;
export type Placeholder = keyof typeof PLACEHOLDERS;
export const PLACEHOLDER_NAMES = Object.keys(PLACEHOLDERS) as Placeholder[];

export type PlaceholderValues = Record<Placeholder, string>;

/** `{{ name }}`: letters, digits, dots and underscores, spaces allowed inside the braces. */
const TOKEN = /\{\{\s*([^{}]*?)\s*\}\}/g;

export interface PlaceholderScan {
  /** Whitelisted placeholders used, in order of first use. */
  used: Placeholder[];
  /** Names used that are not on the whitelist, as written. */
  unknown: string[];
  /** `{{` without a matching `}}` (or the reverse): a typo the sender would otherwise mail out. */
  unbalanced: boolean;
}

export function scanPlaceholders(text: string): PlaceholderScan {
  const used: Placeholder[] = [];
  const unknown: string[] = [];
  for (const m of text.matchAll(TOKEN)) {
    const name = m[1]!;
    // Own names only: `in` would also take `constructor`, `toString`, … from Object.prototype.
    if (Object.hasOwn(PLACEHOLDERS, name)) {
      if (!used.includes(name as Placeholder)) used.push(name as Placeholder);
    } else if (!unknown.includes(name)) unknown.push(name);
  }
  const rest = text.replace(TOKEN, '');
  return { used, unknown, unbalanced: rest.includes('{{') || rest.includes('}}') };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * Fill a template text. `html` escapes every value (a name like `<b>` stays text), `header` folds
 * line breaks into spaces (no header injection), `text` inserts values as they are.
 */
export function renderText(template: string, values: PlaceholderValues, mode: 'html' | 'text' | 'header'): string {
  return template.replace(TOKEN, (whole, name: string) => {
    if (!Object.hasOwn(values, name)) return whole;
    const value = values[name as Placeholder];
    if (mode === 'html') return escapeHtml(value);
    if (mode === 'header') return value.replace(/[\r\n\t]+/g, ' ');
    return value;
  });
}

export interface RenderableTemplate {
  subject: string;
  htmlBody: string;
  textBody: string;
}

export function renderNotice(t: RenderableTemplate, values: PlaceholderValues): RenderableTemplate {
  return {
    subject: renderText(t.subject, values, 'header'),
    htmlBody: renderText(t.htmlBody, values, 'html'),
    textBody: renderText(t.textBody, values, 'text'),
  };
}

/** The human case reference shown to the person under review (no personal data, stable). */
export function caseReference(caseId: string): string {
  return `CASE-${caseId.replace(/-/g, '').slice(0, 8).toUpperCase()}`;
}

/** The response deadline as a date in the template's language (UTC, so every retry renders the same). */
export function formatDeadline(deadline: Date, language: string): string {
  try {
    return new Intl.DateTimeFormat(language, { dateStyle: 'long', timeZone: 'UTC' }).format(deadline);
  } catch {
    return deadline.toISOString().slice(0, 10);
  }
}

/**
 * The Message-ID of a notice: derived from the notice id alone, so every attempt (and a resend
 * after an unknown outcome) carries the same id and the recipient's mail system can drop a copy.
 */
export function noticeMessageId(noticeId: string, fromAddress: string): string {
  const domain = fromAddress.includes('@') ? fromAddress.slice(fromAddress.lastIndexOf('@') + 1) : 'warden.invalid';
  return `<notice.${noticeId}@${domain.toLowerCase()}>`;
}

export const NOTICE_STATUSES = ['queued', 'sent', 'failed'] as const;
export type NoticeStatus = (typeof NOTICE_STATUSES)[number];

/**
 * Delivery state of a notice's outbox row: `pending` (not tried yet), `sending` (an attempt holds
 * the claim), `deferred` (the server answered 4xx; retried with backoff), `accepted` (the server
 * answered 250 to the message: never send again), `failed` (5xx or given up).
 */
export const OUTBOX_STATUSES = ['pending', 'sending', 'deferred', 'accepted', 'failed'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

export type SmtpOutcome = 'temporary' | 'permanent';

/**
 * RFC 5321: 4yz replies are transient (try again later), 5yz permanent. A connection-level error
 * without a reply code (refused, reset, timeout) is transient too: the server never said no.
 */
export function classifySmtpError(err: { responseCode?: number; code?: string }): SmtpOutcome {
  const code = err.responseCode;
  if (typeof code === 'number' && code >= 500 && code < 600) return 'permanent';
  // Nodemailer's own refusals of the message (e.g. no recipients) cannot succeed on a retry.
  if (code === undefined && (err.code === 'EENVELOPE' || err.code === 'EMESSAGE')) return 'permanent';
  return 'temporary';
}

/** Anything that looks like an email address, to keep server replies free of personal data. */
const EMAIL_LIKE = /[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

/**
 * A server reply with the recipient's address and name (and any other address) taken out, so it
 * can be stored, shown and put into a failure message.
 */
export function redactSmtpReply(reply: string, identity: { displayName?: string | null; email?: string | null }): string {
  let out = reply;
  // The mailbox name alone too: servers answer `550 jane.doe... User unknown`.
  for (const v of [identity.email, identity.displayName, identity.email?.split('@')[0]]) {
    if (!v || v.trim().length < 2) continue;
    // Whole words only, so a short name does not eat into other words of the reply.
    const escaped = v.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'giu'), '[recipient]');
  }
  out = out.replace(EMAIL_LIKE, '[address]');
  return out.replace(/[\r\n]+/g, ' ').slice(0, 500);
}
