import { describe, expect, it } from 'vitest';
import { checkTemplatePlaceholders } from '../../domain/notice-templates';
import {
  caseReference,
  classifySmtpError,
  formatDeadline,
  noticeMessageId,
  redactSmtpReply,
  renderNotice,
  scanPlaceholders,
  type PlaceholderValues,
} from '../../domain/notices';
import { loadConfig } from '../../infra/config';
import { sanitizeNoticeHtml } from '../../infra/html-sanitizer';

const values: PlaceholderValues = {
  'subject.displayName': 'Ann <b>"Bold"</b> & Co',
  'case.reference': 'CASE-1A2B3C4D',
  'policy.name': 'Data leaks',
  'response.deadline': 'December 7, 2026',
};

describe('notice placeholders', () => {
  it('finds whitelisted placeholders, tolerating spaces inside the braces, and names unknown ones', () => {
    expect(scanPlaceholders('Hi {{ subject.displayName }} re {{case.reference}} {{case.reference}} {{subject.email}}')).toEqual({
      used: ['subject.displayName', 'case.reference'],
      unknown: ['subject.email'],
      unbalanced: false,
    });
  });

  it('flags an unclosed or stray brace pair', () => {
    expect(scanPlaceholders('Dear {{subject.displayName').unbalanced).toBe(true);
    expect(scanPlaceholders('Dear subject.displayName}}').unbalanced).toBe(true);
    expect(scanPlaceholders('Plain text { not a placeholder }').unbalanced).toBe(false);
  });

  it('reports problems per field and the used placeholders in whitelist order', () => {
    const r = checkTemplatePlaceholders({
      subject: '{{case.reference}}',
      htmlBody: '{{foo}} {{bar}}',
      textBody: '{{subject.displayName}}',
    });
    expect(r.used).toEqual(['subject.displayName', 'case.reference']);
    expect(r.problems).toEqual([expect.objectContaining({ field: 'htmlBody', unknown: ['foo', 'bar'] })]);
    expect(r.problems[0]!.message).toContain('{{foo}}, {{bar}}');
  });
});

describe('rendering a notice', () => {
  it('escapes values in HTML, keeps them as written in text, and folds line breaks out of the subject', () => {
    const r = renderNotice(
      {
        subject: 'Case {{case.reference}} for {{subject.displayName}}',
        htmlBody: '<p>{{subject.displayName}}</p>',
        textBody: '{{subject.displayName}}',
      },
      { ...values, 'subject.displayName': 'Ann <b>"Bold"</b> & Co\r\nBcc: evil@example.org' },
    );
    expect(r.htmlBody).toBe('<p>Ann &lt;b&gt;&quot;Bold&quot;&lt;/b&gt; &amp; Co\r\nBcc: evil@example.org</p>');
    expect(r.textBody).toBe('Ann <b>"Bold"</b> & Co\r\nBcc: evil@example.org');
    expect(r.subject).toBe('Case CASE-1A2B3C4D for Ann <b>"Bold"</b> & Co Bcc: evil@example.org');
    expect(r.subject).not.toMatch(/[\r\n]/);
  });

  it('derives the case reference, the Message-ID and the deadline deterministically', () => {
    expect(caseReference('1a2b3c4d-0000-4000-8000-000000000000')).toBe('CASE-1A2B3C4D');
    expect(noticeMessageId('5f0c', 'Team@Example.ORG')).toBe('<notice.5f0c@example.org>');
    const d = new Date('2026-12-07T23:30:00Z');
    expect(formatDeadline(d, 'en')).toBe('December 7, 2026');
    expect(formatDeadline(d, 'de')).toBe('7. Dezember 2026');
  });
});

describe('SMTP replies', () => {
  it('4xx and connection errors are temporary; 5xx and refused envelopes are permanent', () => {
    expect(classifySmtpError({ responseCode: 451 })).toBe('temporary');
    expect(classifySmtpError({ responseCode: 421 })).toBe('temporary');
    expect(classifySmtpError({ code: 'ECONNREFUSED' })).toBe('temporary');
    expect(classifySmtpError({ code: 'ETIMEDOUT' })).toBe('temporary');
    expect(classifySmtpError({ responseCode: 550 })).toBe('permanent');
    expect(classifySmtpError({ responseCode: 554, code: 'EMESSAGE' })).toBe('permanent');
    expect(classifySmtpError({ code: 'EENVELOPE' })).toBe('permanent');
  });

  it('a reply is stored without the recipient’s address or name, nor any other address', () => {
    const r = redactSmtpReply('550 5.1.1 <Jane.Doe@Corp.example>: mailbox of JANE DOE unknown; see postmaster@corp.example\r\n', {
      email: 'jane.doe@corp.example',
      displayName: 'Jane Doe',
    });
    expect(r).toBe('550 5.1.1 <[recipient]>: mailbox of [recipient] unknown; see [address] ');
  });

  it('redacts a short name as a whole word only', () => {
    expect(redactSmtpReply('550 Al: mailbox unavailable (Temporal failure)', { displayName: 'Al' })).toBe(
      '550 [recipient]: mailbox unavailable (Temporal failure)',
    );
  });
});

describe('HTML sanitizing', () => {
  it('removes scripts, event handlers, javascript: and data: URLs, forms and frames; keeps email formatting', () => {
    const { html, changed } = sanitizeNoticeHtml(
      '<table width="100%" cellpadding="4"><tr><td align="center" style="color:#333;font-size:14px;position:fixed">Hi</td></tr></table>' +
        '<a href="data:text/html,x">d</a><a href="mailto:irm@example.org">mail</a><form><input></form><object></object>' +
        '<svg onload="x()"></svg><img src="javascript:alert(1)">',
    );
    expect(changed).toBe(true);
    expect(html).toContain('<td align="center" style="color:#333;font-size:14px">Hi</td>');
    expect(html).toContain('<a href="mailto:irm@example.org">mail</a>');
    expect(html).toContain('<a>d</a>');
    expect(html).not.toMatch(/onload|javascript:|<form|<input|<object|<svg|position/);
  });

  it('leaves clean HTML unchanged', () => {
    const clean = '<p>Dear {{subject.displayName}},</p><p><a href="https://example.org/x?c={{case.reference}}">respond</a></p>';
    expect(sanitizeNoticeHtml(clean)).toEqual({ html: clean, changed: false });
  });
});

describe('SMTP_URL', () => {
  it('must be an smtp:// or smtps:// URL; the error names the variable', () => {
    expect(loadConfig({ SMTP_URL: 'smtps://user:pw@mail.example.org:465' }).smtpUrl).toBe('smtps://user:pw@mail.example.org:465');
    expect(() => loadConfig({ SMTP_URL: 'https://mail.example.org' })).toThrow(
      /SMTP_URL: expected an smtp:\/\/ or smtps:\/\/ URL/,
    );
    expect(() => loadConfig({ SMTP_URL: 'not a url' })).toThrow(/SMTP_URL/);
  });
});
