/**
 * Notice delivery: queue a notice for an approved send_notice step, send it by SMTP exactly once,
 * and record a failure. Workflows pass ids only; the recipient's address and name are read from
 * the identity vault here, inside `sendNotice`, and leave this process only in the SMTP message.
 *
 * Exactly once, from the user's point of view:
 * - the notice's outbox row (keyed by the notice id) is claimed by one attempt before the SMTP
 *   transaction, and `accepted` is recorded right after the server's 250 — an attempt that finds
 *   it accepted sends nothing, only finishes the bookkeeping;
 * - every attempt sends the same message with the same Message-ID (derived from the notice id),
 *   so in the one window no database can close — a crash between the server's 250 and our commit —
 *   the resend is a copy the recipient's mail system recognises as the same message;
 * - 4xx replies (and unreachable servers) are retried by Temporal with backoff; 5xx replies fail
 *   the notice with the server's (redacted) reason and tell the case owner in a case note.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { and, eq, inArray, isNotNull, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db, DbOrTx } from '../db';
import { appendAudit } from '../db/audit';
import { defaultNoticeTemplate, getNoticeTemplateVersion, noticeTemplateVersionAt } from '../db/queries/notice-templates';
import {
  alerts,
  caseEvents,
  caseNotes,
  cases,
  identityVault,
  notices,
  noticeOutbox,
  regions,
  steps,
  subjects,
} from '../db/schema';
import { ErrorType } from '../domain/errors';
import {
  caseReference,
  classifySmtpError,
  formatDeadline,
  noticeMessageId,
  redactSmtpReply,
  renderNotice,
  type NoticeStatus,
} from '../domain/notices';
import type { Config } from '../infra/config';
import { sanitizeNoticeHtml } from '../infra/html-sanitizer';
import { openSubjectIdentity, type IdentityRecord } from '../infra/identity';
import { createSmtpTransport, SMTP_TIMEOUTS, type SmtpTransport } from '../infra/smtp';

export interface NoticeActivityDeps {
  db: Db;
  logger: Logger;
  config: Config;
  /** A transport to use instead of one built from `config.smtpUrl` (tests, the dev sink). */
  smtp?: SmtpTransport;
}

export interface QueueNoticeInput {
  noticeId: string;
  caseId: string;
  stepId: string;
}

export interface NoticeOutcome {
  noticeId: string;
  status: NoticeStatus;
  /** True when this attempt found the message already accepted and sent nothing. */
  alreadyAccepted?: boolean;
}

/**
 * How long a claim protects an attempt that may still be talking to the server: longer than one
 * SMTP transaction can last (its timeouts) — the sending activity's start-to-close is longer still.
 */
export const CLAIM_LEASE_MS = SMTP_TIMEOUTS.connectionTimeout + SMTP_TIMEOUTS.greetingTimeout + 3 * SMTP_TIMEOUTS.socketTimeout;

/** A UUID derived from a business key, so a retried write inserts nothing twice. */
export function derivedUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

const fail = (type: ErrorType, message: string, nonRetryable: boolean) =>
  ApplicationFailure.create({ type, message, nonRetryable });

export function createNoticeActivities(deps: NoticeActivityDeps) {
  const { db, config } = deps;
  let transport: SmtpTransport | undefined = deps.smtp;
  const smtp = (): SmtpTransport | null => {
    if (!transport && config.smtpUrl) transport = createSmtpTransport(config.smtpUrl);
    return transport ?? null;
  };
  const logger = deps.logger.child({ component: 'notices' });
  const log = () => logger;

  /** Notice sent or failed: the case's note and event, written once per outcome. */
  async function recordOutcome(tx: DbOrTx, n: typeof notices.$inferSelect, outcome: 'sent' | 'failed', body: string) {
    const at = new Date();
    await tx
      .insert(caseNotes)
      .values({
        id: derivedUuid('notice-note', n.id, outcome),
        caseId: n.caseId,
        author: 'system',
        kind: 'system',
        body,
        createdAt: at,
      })
      .onConflictDoNothing();
    await tx
      .insert(caseEvents)
      .values({
        id: derivedUuid('notice-event', n.id, outcome),
        caseId: n.caseId,
        type: `notice_${outcome}`,
        actor: 'system',
        details: { noticeId: n.id, stepId: n.stepId, templateId: n.templateId, templateVersion: n.templateVersion },
        at,
      })
      .onConflictDoNothing();
    await appendAudit(tx, {
      actor: 'system',
      action: `notice.${outcome}`,
      category: 'notices',
      targetType: 'notice',
      targetId: n.id,
      region: n.region,
      outcome: 'allowed',
      details: {
        caseId: n.caseId,
        stepId: n.stepId,
        templateId: n.templateId,
        templateVersion: n.templateVersion,
        messageId: n.messageId,
        ...(outcome === 'failed' ? { reason: n.failureReason } : {}),
      },
    });
  }

  /** Mark the notice failed (once) with a reason free of personal data, and tell the case owner. */
  async function markFailed(noticeId: string, reason: string, smtpCode: number | null) {
    await db.transaction(async (tx) => {
      await tx
        .update(noticeOutbox)
        .set({ status: 'failed', lastError: reason, smtpCode, updatedAt: new Date() })
        .where(and(eq(noticeOutbox.noticeId, noticeId), sql`${noticeOutbox.status} <> 'accepted'`));
      const [n] = await tx
        .update(notices)
        .set({ status: 'failed', failureReason: reason, failedAt: new Date(), updatedAt: new Date() })
        .where(and(eq(notices.id, noticeId), eq(notices.status, 'queued')))
        .returning();
      if (n) {
        await recordOutcome(
          tx,
          n,
          'failed',
          `Notice could not be delivered: ${reason}. Nothing was sent to the subject. Check the template (${n.templateId} v${n.templateVersion}) and the subject's HR record, then request a new notice.`,
        );
      }
    });
  }

  /** The message was accepted: the notice is sent (once), with its note for the case. */
  async function markSent(noticeId: string) {
    await db.transaction(async (tx) => {
      const [n] = await tx
        .update(notices)
        .set({
          status: 'sent',
          sentAt: sql`(select accepted_at from notice_outbox where notice_id = ${noticeId})`,
          updatedAt: new Date(),
        })
        .where(and(eq(notices.id, noticeId), eq(notices.status, 'queued')))
        .returning();
      if (n) {
        await recordOutcome(
          tx,
          n,
          'sent',
          `Notice sent to the subject (template ${n.templateId} v${n.templateVersion}, Message-ID ${n.messageId}).`,
        );
      }
    });
  }

  return {
    /**
     * Create the notice and its outbox row for an approved send_notice step (idempotent by notice
     * id and by step). Freezes the template version current when the step was requested (what the
     * approvers approved) and the non-personal placeholder values.
     */
    async queueNotice(input: QueueNoticeInput): Promise<NoticeOutcome> {
      const [existing] = await db.select().from(notices).where(eq(notices.stepId, input.stepId));
      if (existing) return { noticeId: existing.id, status: existing.status };

      const [step] = await db
        .select()
        .from(steps)
        .where(and(eq(steps.id, input.stepId), eq(steps.caseId, input.caseId)));
      if (!step) throw fail(ErrorType.NotFound, `Step ${input.stepId} of case ${input.caseId} not found`, true);
      if (step.kind !== 'send_notice')
        throw fail(ErrorType.PreconditionFailed, `Step ${step.id} is not a send_notice step`, true);
      if (step.status !== 'approved') {
        throw fail(
          ErrorType.PreconditionFailed,
          `Step ${step.id} is ${step.status}: a notice needs an approved send_notice step`,
          true,
        );
      }
      const [c] = await db.select().from(cases).where(eq(cases.id, input.caseId));
      if (!c) throw fail(ErrorType.NotFound, `Case ${input.caseId} not found`, true);

      let templateId = step.templateId;
      if (!templateId) {
        const [region] = await db.select({ languages: regions.languages }).from(regions).where(eq(regions.code, c.region));
        templateId = (await defaultNoticeTemplate(db, region?.languages ?? []))?.id ?? null;
      }
      const version = templateId ? await noticeTemplateVersionAt(db, templateId, step.requestedAt) : null;
      if (!templateId || !version) {
        throw fail(ErrorType.PreconditionFailed, `No notice template ${templateId ?? 'in the region’s languages'} exists`, true);
      }

      const policyIds = (
        await db
          .selectDistinct({ policyId: alerts.policyId })
          .from(alerts)
          .where(and(eq(alerts.caseId, c.id), isNotNull(alerts.policyId)))
      ).map((r) => r.policyId);
      let policyName = 'Insider risk policy';
      if (policyIds.length) {
        const names = await db.execute<{ name: string }>(
          sql`select name from policies where id in (${sql.join(
            policyIds.map((id) => sql`${id}::uuid`),
            sql`, `,
          )}) order by name`,
        );
        if (names.rows.length) policyName = names.rows.map((r) => r.name).join(', ');
      }

      const queuedAt = new Date();
      const messageId = noticeMessageId(input.noticeId, version.fromAddress);
      await db.transaction(async (tx) => {
        const [n] = await tx
          .insert(notices)
          .values({
            id: input.noticeId,
            caseId: c.id,
            stepId: step.id,
            region: c.region,
            templateId: templateId!,
            templateVersion: version.version,
            language: version.language,
            status: 'queued',
            messageId,
            caseReference: caseReference(c.id),
            policyName,
            responseDeadline: new Date(queuedAt.getTime() + version.responseDays * 86_400_000),
            requestedBy: step.requestedBy,
            queuedAt,
          })
          .onConflictDoNothing()
          .returning();
        if (!n) return;
        await tx.insert(noticeOutbox).values({ noticeId: n.id, messageId }).onConflictDoNothing();
        await appendAudit(tx, {
          actor: 'system',
          action: 'notice.queued',
          category: 'notices',
          targetType: 'notice',
          targetId: n.id,
          region: n.region,
          outcome: 'allowed',
          details: {
            caseId: n.caseId,
            stepId: n.stepId,
            templateId: n.templateId,
            templateVersion: n.templateVersion,
            messageId,
          },
        });
      });
      const [row] = await db.select().from(notices).where(eq(notices.stepId, input.stepId));
      return { noticeId: row!.id, status: row!.status };
    },

    /** Render and send a queued notice, exactly once (see the header of this file). */
    async sendNotice(input: { noticeId: string }): Promise<NoticeOutcome> {
      const { noticeId } = input;
      const info = Context.current().info;
      const claimant = `${info.workflowExecution?.workflowId ?? '-'}/${info.workflowExecution?.runId ?? '-'}/${info.activityId}`;
      const attempt = info.attempt;

      // 1. Claim the outbox row, unless the message was already accepted (or failed for good).
      const claim = await db.transaction(async (tx) => {
        const [row] = await tx.select().from(noticeOutbox).where(eq(noticeOutbox.noticeId, noticeId)).for('update');
        if (!row) return { kind: 'missing' as const };
        if (row.status === 'accepted') return { kind: 'accepted' as const };
        if (row.status === 'failed') return { kind: 'failed' as const, reason: row.lastError ?? 'delivery failed' };
        if (row.status === 'sending') {
          const sameActivityLater = row.claimedBy === claimant && (row.claimAttempt ?? 0) < attempt;
          const leaseOver = !row.claimedAt || Date.now() - row.claimedAt.getTime() > CLAIM_LEASE_MS;
          if (!sameActivityLater && !leaseOver) return { kind: 'busy' as const };
        }
        await tx
          .update(noticeOutbox)
          .set({
            status: 'sending',
            claimedBy: claimant,
            claimAttempt: attempt,
            claimedAt: new Date(),
            transmissions: sql`${noticeOutbox.transmissions} + 1`,
            updatedAt: new Date(),
          })
          .where(eq(noticeOutbox.noticeId, noticeId));
        return { kind: 'claimed' as const, outcomeUnknown: row.status === 'sending' };
      });
      if (claim.kind === 'missing') throw fail(ErrorType.NotFound, `Notice ${noticeId} has no outbox row`, true);
      if (claim.kind === 'accepted') {
        await markSent(noticeId);
        log().info({ noticeId, attempt }, 'notice already accepted by the SMTP server; nothing sent again');
        return { noticeId, status: 'sent', alreadyAccepted: true };
      }
      if (claim.kind === 'failed') throw fail(ErrorType.DeliveryRejected, `Notice delivery failed: ${claim.reason}`, true);
      if (claim.kind === 'busy') {
        throw fail(ErrorType.DeliveryDeferred, 'Another attempt is delivering this notice; trying again later', false);
      }
      if (claim.outcomeUnknown) {
        log().warn({ noticeId, attempt }, 'a previous attempt stopped mid-delivery; resending with the same Message-ID');
      }

      // 2. Render: template version, frozen values, and the identity from the vault (here only).
      const [n] = await db.select().from(notices).where(eq(notices.id, noticeId));
      if (!n) throw fail(ErrorType.NotFound, `Notice ${noticeId} not found`, true);
      const version = await getNoticeTemplateVersion(db, n.templateId, n.templateVersion);
      if (!version) throw fail(ErrorType.NotFound, `Template ${n.templateId} v${n.templateVersion} not found`, true);
      const [c] = await db
        .select({ subjectId: cases.subjectId, externalKey: subjects.externalKey })
        .from(cases)
        .innerJoin(subjects, eq(subjects.id, cases.subjectId))
        .where(eq(cases.id, n.caseId));
      const [vault] = c ? await db.select().from(identityVault).where(eq(identityVault.subjectId, c.subjectId)) : [];
      let identity: IdentityRecord | null = null;
      // Checked to be this subject's: a row copied from another subject must not be mailed to.
      if (vault && c) identity = openSubjectIdentity(config.keys, vault, c);
      if (!identity?.email) {
        await markFailed(noticeId, 'the identity vault holds no email address for the subject', null);
        throw fail(ErrorType.DeliveryRejected, 'The identity vault holds no email address for the subject', true);
      }
      const transport = smtp();
      if (!transport) {
        await markFailed(noticeId, 'no SMTP server is configured (SMTP_URL)', null);
        throw fail(ErrorType.DeliveryRejected, 'No SMTP server is configured (SMTP_URL)', true);
      }
      const rendered = renderNotice(version, {
        'subject.displayName': identity.displayName,
        'case.reference': n.caseReference,
        'policy.name': n.policyName,
        'response.deadline': formatDeadline(n.responseDeadline, n.language),
      });

      // 3. One SMTP transaction.
      let response: string;
      try {
        const sent = await transport.sendMail({
          messageId: n.messageId,
          date: n.queuedAt,
          from: version.fromName ? { name: version.fromName, address: version.fromAddress } : version.fromAddress,
          to: { name: identity.displayName, address: identity.email },
          cc: version.cc,
          bcc: version.bcc,
          subject: rendered.subject,
          // Sanitized again once filled: a value in an address (`<a href="{{…}}">`) must not become a javascript: URL.
          html: sanitizeNoticeHtml(rendered.htmlBody).html,
          text: rendered.textBody,
          headers: { 'Auto-Submitted': 'auto-generated', 'X-Warden-Notice': n.id },
          disableFileAccess: true,
          disableUrlAccess: true,
          // A fixed MIME boundary too, so a resend is byte-for-byte the same message.
          baseBoundary: n.id.replace(/-/g, '').slice(0, 16),
        } as Parameters<SmtpTransport['sendMail']>[0]);
        const refused = (sent.rejected ?? []).some(
          (r) => (typeof r === 'string' ? r : r.address).toLowerCase() === identity.email!.toLowerCase(),
        );
        response = redactSmtpReply(String(sent.response ?? '250'), identity);
        if (refused) {
          // Others (Cc/Bcc) got it, the subject did not: never resend (they would get it twice).
          await db
            .update(noticeOutbox)
            .set({ status: 'accepted', smtpResponse: response, smtpCode: 250, acceptedAt: new Date(), updatedAt: new Date() })
            .where(eq(noticeOutbox.noticeId, noticeId));
          const why = (
            sent as { rejectedErrors?: Array<{ recipient?: string; response?: string; responseCode?: number }> }
          ).rejectedErrors?.find((e) => e.recipient?.toLowerCase() === identity.email!.toLowerCase());
          const reason = redactSmtpReply(why?.response ?? 'recipient refused', identity);
          await markFailed(
            noticeId,
            `${reason} (the server refused the subject’s address; the Cc/Bcc recipients received the notice)`,
            why?.responseCode ?? null,
          );
          throw fail(ErrorType.DeliveryRejected, 'The server refused the subject’s address', true);
        }
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
        const reason = redactSmtpReply(e.response ?? e.message ?? 'SMTP error', identity);
        const code = typeof e.responseCode === 'number' ? e.responseCode : null;
        if (classifySmtpError(e) === 'permanent') {
          await markFailed(noticeId, reason, code);
          log().warn({ noticeId, smtpCode: code, attempt }, 'notice refused by the SMTP server; failed');
          throw fail(ErrorType.DeliveryRejected, `The SMTP server refused the notice: ${reason}`, true);
        }
        await db
          .update(noticeOutbox)
          .set({ status: 'deferred', lastError: reason, smtpCode: code, updatedAt: new Date() })
          .where(and(eq(noticeOutbox.noticeId, noticeId), inArray(noticeOutbox.status, ['sending', 'pending', 'deferred'])));
        log().info({ noticeId, smtpCode: code, attempt }, 'notice deferred by the SMTP server; retrying with backoff');
        throw fail(ErrorType.DeliveryDeferred, `The SMTP server deferred the notice: ${reason}`, false);
      }

      // 4. Accepted: record it before anything else can fail, retrying the write in-process so the
      //    window in which a crash would lead to a resend stays as short as one database round trip.
      for (let i = 0; ; i++) {
        try {
          await db
            .update(noticeOutbox)
            .set({
              status: 'accepted',
              smtpResponse: response,
              smtpCode: 250,
              acceptedAt: new Date(),
              lastError: null,
              updatedAt: new Date(),
            })
            .where(eq(noticeOutbox.noticeId, noticeId));
          break;
        } catch (err) {
          if (i >= 4) throw err;
          await new Promise((r) => setTimeout(r, 100 * 2 ** i));
        }
      }
      log().info({ noticeId, attempt }, 'notice accepted by the SMTP server');
      await markSent(noticeId);
      return { noticeId, status: 'sent' };
    },

    /** Retries are exhausted (or the workflow gave up): fail the notice if it is still queued. */
    async failNotice(input: { noticeId: string; reason: string }): Promise<NoticeOutcome> {
      const [o] = await db.select().from(noticeOutbox).where(eq(noticeOutbox.noticeId, input.noticeId));
      if (o?.status === 'accepted') {
        await markSent(input.noticeId);
        return { noticeId: input.noticeId, status: 'sent' };
      }
      const reason = o?.lastError ? `${input.reason}; last server reply: ${o.lastError}` : input.reason;
      await markFailed(input.noticeId, reason, o?.smtpCode ?? null);
      const [n] = await db.select({ status: notices.status }).from(notices).where(eq(notices.id, input.noticeId));
      return { noticeId: input.noticeId, status: n?.status ?? 'failed' };
    },
  };
}
