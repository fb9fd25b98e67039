/**
 * Notice delivery against a real SMTP server (smtp-server, started here) through Temporal: the
 * delivery workflow and its activities run on a real worker against the test database.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditLog, caseEvents, caseNotes, noticeOutbox, notices } from '../../db/schema';
import { caseReference, formatDeadline } from '../../domain/notices';
import { startSmtpSink, type SmtpSink } from '../../infra/smtp';
import { workflowIds } from '../../workflows/definitions';
import { canaryIdentity, injectWriteFault, putTemplate, runNotice, seedNoticeCase } from '../helpers/notices';
import { startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
let sink: SmtpSink;

beforeAll(async () => {
  sink = await startSmtpSink();
  sys = await startTestSystem({ env: { SMTP_URL: sink.url } });
  await putTemplate(sys, 'first-en');
});
afterAll(async () => {
  await sys?.close();
  await sink?.stop();
});
beforeEach(() => {
  sink.clear();
  sink.setReply(undefined);
});

const noticeRow = async (id: string) => (await sys.db.select().from(notices).where(eq(notices.id, id)))[0]!;
const outboxRow = async (id: string) => (await sys.db.select().from(noticeOutbox).where(eq(noticeOutbox.noticeId, id)))[0]!;
const notesOf = async (caseId: string) =>
  (await sys.db.select().from(caseNotes).where(eq(caseNotes.caseId, caseId))).map((n) => n.body);

/** Attempts of the sending activity, as Temporal recorded them. */
async function sendAttempts(caseId: string, noticeId: string): Promise<number[]> {
  const history = await sys.client.workflow.getHandle(workflowIds.notice(caseId, noticeId)).fetchHistory();
  const scheduled = new Set(
    history
      .events!.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'sendNotice')
      .map((e) => String(e.eventId)),
  );
  return history
    .events!.filter(
      (e) => e.activityTaskStartedEventAttributes && scheduled.has(String(e.activityTaskStartedEventAttributes.scheduledEventId)),
    )
    .map((e) => e.activityTaskStartedEventAttributes!.attempt!);
}

describe('sending an approved notice', () => {
  it('renders the template, reads the address from the vault and sends one message whose headers and bodies are as rendered', async () => {
    const identity = { ...canaryIdentity(), displayName: 'Zoë O’Brien <& Co>' };
    const ids = await seedNoticeCase(sys, { identity, templateId: 'first-en' });
    const result = await runNotice(sys, ids);
    expect(result).toEqual({ noticeId: ids.noticeId, status: 'sent' });

    expect(sink.messages).toHaveLength(1);
    const m = sink.messages[0]!;
    const n = await noticeRow(ids.noticeId);
    const deadline = formatDeadline(n.responseDeadline, 'en');
    expect(m.messageId).toBe(`<notice.${ids.noticeId}@example.org>`);
    expect(n.messageId).toBe(m.messageId);
    expect(m.subject).toBe(`Notice about case ${caseReference(ids.caseId)}`);
    expect(m.from).toBe('"Insider Risk Team" <insider-risk@example.org>');
    expect(m.to).toContain(identity.email);
    expect(m.cc).toBe('hr-notices@example.org');
    expect(m.headers['bcc']).toBeUndefined();
    expect(m.envelope.mailFrom).toBe('insider-risk@example.org');
    expect(m.envelope.rcptTo.sort()).toEqual([identity.email, 'archive@example.org', 'hr-notices@example.org'].sort());
    // HTML: the name is escaped; text: as written.
    expect(m.html).toContain('<p>Dear Zoë O’Brien &lt;&amp; Co&gt;,</p>');
    expect(m.html).toContain(`<b>Insider risk policy</b> we ask you to respond by ${deadline}.</p>`);
    expect(m.text).toContain(
      `Dear Zoë O’Brien <& Co>,\n\nUnder the policy Insider risk policy we ask you to respond by ${deadline}.`,
    );
    // The deadline is the notice date plus the template's responseDays.
    expect(n.responseDeadline.getTime() - n.queuedAt.getTime()).toBe(10 * 86_400_000);

    expect(n).toMatchObject({ status: 'sent', templateId: 'first-en', templateVersion: 1, language: 'en', failureReason: null });
    expect(n.sentAt).toBeInstanceOf(Date);
    const o = await outboxRow(ids.noticeId);
    expect(o).toMatchObject({ status: 'accepted', transmissions: 1, smtpCode: 250 });
    expect(o.smtpResponse).toMatch(/^250 /);
    expect(await notesOf(ids.caseId)).toEqual([
      `Notice sent to the subject (template first-en v1, Message-ID <notice.${ids.noticeId}@example.org>).`,
    ]);
    const events = await sys.db.select().from(caseEvents).where(eq(caseEvents.caseId, ids.caseId));
    expect(events.map((e) => e.type)).toEqual(['notice_sent']);
    const audit = await sys.db
      .select({ action: auditLog.action })
      .from(auditLog)
      .where(and(eq(auditLog.targetId, ids.noticeId), eq(auditLog.category, 'notices')))
      .orderBy(auditLog.seq);
    expect(audit.map((a) => a.action)).toEqual(['notice.queued', 'notice.sent']);
  });

  it('uses the template version current when the step was requested, even if a newer one exists at approval', async () => {
    await putTemplate(sys, 'pinned', { subject: 'Old wording {{case.reference}}' });
    const ids = await seedNoticeCase(sys, { templateId: 'pinned' });
    await new Promise((r) => setTimeout(r, 20));
    await putTemplate(sys, 'pinned', { subject: 'New wording {{case.reference}}' });
    await runNotice(sys, ids);
    expect((await noticeRow(ids.noticeId)).templateVersion).toBe(1);
    expect(sink.messages[0]!.subject).toBe(`Old wording ${caseReference(ids.caseId)}`);
  });

  it('running the delivery again for the same step sends nothing more', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    await runNotice(sys, ids);
    // The same step once more (say, a replayed request): the notice exists and is sent.
    const again = await runNotice(sys, { ...ids, noticeId: crypto.randomUUID() });
    expect(again).toEqual({ noticeId: ids.noticeId, status: 'sent' });
    expect(sink.transactions).toHaveLength(1);
  });

  it('refuses a step that is not approved: nothing is queued or sent', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en', stepStatus: 'pending' });
    await expect(runNotice(sys, ids)).rejects.toBeInstanceOf(WorkflowFailedError);
    expect(await sys.db.select().from(notices).where(eq(notices.caseId, ids.caseId))).toEqual([]);
    expect(sink.transactions).toEqual([]);
  });
});

describe('delivery exactly once', () => {
  it('a retry after the server accepted the message sends nothing again', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    // The first attempt loses its database connection right after recording the acceptance.
    await injectWriteFault(sys, 'notices', `new.id = '${ids.noticeId}' and new.status = 'sent'`, 1);
    const result = await runNotice(sys, ids);
    expect(result.status).toBe('sent');
    expect(await sendAttempts(ids.caseId, ids.noticeId)).toEqual([2]); // the second attempt completed it
    expect(sink.transactions).toHaveLength(1);
    expect(sink.messages).toHaveLength(1);
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'accepted', transmissions: 1 });
    expect(await noticeRow(ids.noticeId)).toMatchObject({ status: 'sent' });
    expect((await notesOf(ids.caseId)).filter((b) => b.startsWith('Notice sent'))).toHaveLength(1);
  });

  it('a short outage while recording the acceptance is ridden out in place: one transmission', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    await injectWriteFault(sys, 'notice_outbox', `new.notice_id = '${ids.noticeId}' and new.status = 'accepted'`, 2);
    await runNotice(sys, ids);
    expect(sink.messages).toHaveLength(1);
    expect(await sendAttempts(ids.caseId, ids.noticeId)).toEqual([1]);
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'accepted', transmissions: 1 });
  });

  it('if the acceptance could not be recorded at all, the resend carries the same Message-ID', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    await injectWriteFault(sys, 'notice_outbox', `new.notice_id = '${ids.noticeId}' and new.status = 'accepted'`, 5);
    await runNotice(sys, ids);
    expect(sink.messages).toHaveLength(2);
    expect(new Set(sink.messages.map((m) => m.messageId))).toEqual(new Set([`<notice.${ids.noticeId}@example.org>`]));
    expect(sink.messages[0]!.raw).toBe(sink.messages[1]!.raw);
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'accepted', transmissions: 2 });
    expect((await notesOf(ids.caseId)).filter((b) => b.startsWith('Notice sent'))).toHaveLength(1);
  });
});

describe('SMTP failures', () => {
  it('a temporary failure (451) is retried with backoff, then the notice is sent once', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    sink.setReply(({ attempt }) => (attempt <= 2 ? { code: 451, message: '4.3.0 Try again later' } : { accept: true }));
    const result = await runNotice(sys, ids);
    expect(result.status).toBe('sent');
    expect(sink.transactions.map((t) => ('code' in t.reply ? t.reply.code : 250))).toEqual([451, 451, 250]);
    expect(sink.messages).toHaveLength(1);
    expect(await sendAttempts(ids.caseId, ids.noticeId)).toEqual([3]);
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'accepted', transmissions: 3 });
  });

  it('a permanent failure (550) fails the notice with the server’s reason (without the address), once, and tells the case owner', async () => {
    const identity = canaryIdentity();
    const ids = await seedNoticeCase(sys, { identity, templateId: 'first-en' });
    sink.setReply(() => ({
      code: 550,
      message: `5.1.1 <${identity.email}>: Recipient address rejected: ${identity.displayName} unknown`,
      at: 'rcpt',
    }));
    const result = await runNotice(sys, ids);
    expect(result).toEqual({ noticeId: ids.noticeId, status: 'failed' });
    expect(sink.transactions).toHaveLength(1);
    expect(sink.messages).toHaveLength(0);
    const n = await noticeRow(ids.noticeId);
    expect(n.status).toBe('failed');
    expect(n.failureReason).toContain('550 5.1.1');
    expect(n.failureReason).toContain('Recipient address rejected');
    expect(n.failureReason).not.toContain(identity.email);
    expect(n.failureReason).not.toContain(identity.displayName);
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'failed', smtpCode: 550 });
    const notes = await notesOf(ids.caseId);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^Notice could not be delivered: .*550 5\.1\.1/);
    expect(notes[0]).not.toContain(identity.email);
    expect(await sendAttempts(ids.caseId, ids.noticeId)).toEqual([1]);
  });

  it('a temporary failure followed by a permanent one fails the notice after two attempts', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    sink.setReply(({ attempt }) =>
      attempt === 1
        ? { code: 451, message: '4.7.1 Greylisted, come back later' }
        : { code: 554, message: '5.7.1 Message refused by policy' },
    );
    const result = await runNotice(sys, ids);
    expect(result.status).toBe('failed');
    expect(sink.transactions.map((t) => ('code' in t.reply ? t.reply.code : 250))).toEqual([451, 554]);
    expect((await noticeRow(ids.noticeId)).failureReason).toContain('554 5.7.1 Message refused by policy');
  });

  it('when temporary failures outlast the retries, the notice fails with the last reply', async () => {
    const ids = await seedNoticeCase(sys, { templateId: 'first-en' });
    sink.setReply(() => ({ code: 421, message: '4.3.2 Service shutting down' }));
    const result = await runNotice(sys, ids, { initialIntervalMs: 100, maximumAttempts: 3 });
    expect(result.status).toBe('failed');
    expect(sink.transactions).toHaveLength(3);
    const n = await noticeRow(ids.noticeId);
    expect(n.failureReason).toMatch(/^delivery gave up after repeated temporary failures; last server reply: .*421/);
    expect((await notesOf(ids.caseId))[0]).toMatch(/^Notice could not be delivered/);
  });

  it('when only the subject’s address is refused, the Cc/Bcc copies go out once and the notice fails with the reason', async () => {
    const identity = canaryIdentity();
    const ids = await seedNoticeCase(sys, { identity, templateId: 'first-en' });
    sink.setReply(() => ({
      code: 550,
      message: `5.1.1 <${identity.email}>: mailbox unavailable`,
      at: 'rcpt',
      only: [identity.email.toLowerCase()],
    }));
    const result = await runNotice(sys, ids);
    expect(result.status).toBe('failed');
    expect(sink.messages).toHaveLength(1);
    expect(sink.messages[0]!.envelope.rcptTo.sort()).toEqual(['archive@example.org', 'hr-notices@example.org']);
    const n = await noticeRow(ids.noticeId);
    expect(n.failureReason).toBe(
      '550 5.1.1 <[recipient]>: mailbox unavailable (the server refused the subject’s address; the Cc/Bcc recipients received the notice)',
    );
    // Never resent: the others would get it twice.
    expect(await outboxRow(ids.noticeId)).toMatchObject({ status: 'accepted', transmissions: 1 });
    expect(await sendAttempts(ids.caseId, ids.noticeId)).toEqual([1]);
  });

  it('a subject without an email address in the vault fails the notice without talking to the server', async () => {
    const ids = await seedNoticeCase(sys, { identity: { ...canaryIdentity(), email: null }, templateId: 'first-en' });
    const result = await runNotice(sys, ids);
    expect(result.status).toBe('failed');
    expect(sink.transactions).toHaveLength(0);
    expect((await noticeRow(ids.noticeId)).failureReason).toBe('the identity vault holds no email address for the subject');
  });
});
