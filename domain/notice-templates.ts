/**
 * What an administrator or investigator writes as a notice template (pure schema and checks). The
 * HTML body is sanitized on save (infra/html-sanitizer.ts); placeholders are checked against the
 * whitelist of domain/notices.ts, and an unknown one is refused with its name.
 */
import { z } from 'zod';
import { PLACEHOLDER_NAMES, scanPlaceholders, type Placeholder } from './notices';

export const NoticeTemplateId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a template id is 1–64 lowercase letters, digits, dashes or underscores');

export const LanguageTag = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a language is a BCP 47 tag such as en, de or pt-BR');

const Email = z.string().trim().max(254).email('not an email address');
const NoLineBreaks = (s: string) => !/[\r\n]/.test(s);

export const NoticeTemplateInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    language: LanguageTag,
    from: Email.describe('The send-from address'),
    fromName: z.string().trim().max(200).refine(NoLineBreaks, 'must be one line').optional(),
    cc: z.array(Email).max(20).default([]),
    bcc: z.array(Email).max(20).default([]),
    subject: z.string().trim().min(1).max(500).refine(NoLineBreaks, 'must be one line'),
    htmlBody: z.string().min(1).max(200_000).describe('HTML; sanitized when saved (no scripts, no event handlers)'),
    textBody: z.string().min(1).max(100_000).describe('The plain-text alternative'),
    responseDays: z.number().int().min(1).max(365).default(14).describe('Days from the notice date to {{response.deadline}}'),
  })
  .strict();
export type NoticeTemplateInput = z.infer<typeof NoticeTemplateInput>;

/** The fields that may hold placeholders. */
export const PLACEHOLDER_FIELDS = ['subject', 'htmlBody', 'textBody'] as const;

export interface PlaceholderProblem {
  field: (typeof PLACEHOLDER_FIELDS)[number];
  message: string;
  unknown: string[];
}

/** Unknown or unbalanced placeholders per field, and the whitelisted ones used. */
export function checkTemplatePlaceholders(t: Pick<NoticeTemplateInput, (typeof PLACEHOLDER_FIELDS)[number]>): {
  used: Placeholder[];
  problems: PlaceholderProblem[];
} {
  const used: Placeholder[] = [];
  const problems: PlaceholderProblem[] = [];
  for (const field of PLACEHOLDER_FIELDS) {
    const scan = scanPlaceholders(t[field]);
    for (const p of scan.used) if (!used.includes(p)) used.push(p);
    if (scan.unknown.length) {
      problems.push({
        field,
        unknown: scan.unknown,
        message: `unknown placeholder${scan.unknown.length > 1 ? 's' : ''} ${scan.unknown.map((u) => `{{${u}}}`).join(', ')} (allowed: ${PLACEHOLDER_NAMES.map((n) => `{{${n}}}`).join(', ')})`,
      });
    } else if (scan.unbalanced) {
      problems.push({ field, unknown: [], message: 'a placeholder is not closed: write {{name}}' });
    }
  }
  return { used: PLACEHOLDER_NAMES.filter((p) => used.includes(p)), problems };
}
