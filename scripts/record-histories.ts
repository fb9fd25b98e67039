/**
 * `npm run histories:record`: run representative cases end to end against a throwaway system and
 * write their workflow histories (case and step workflows, incl. a continue-as-new chain; scoring
 * and policy backfill; notice delivery) to test/fixtures/histories/*.json. The replay test runs the
 * current workflow code over them, so a change that would break running workflows fails CI.
 * Re-record only for a deliberate, versioned change (and keep the old files while such workflows
 * may still be running).
 *
 * `npm run histories:record -- detection notice-delivery` records only the named scenarios (file
 * names without .json) and leaves the other files as they are. Before a file is written, every
 * payload of every history in it is decrypted and searched for the personal data the scenario
 * sent (names, addresses, HR remarks): the script refuses to write a file that holds any.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type proto from '@temporalio/proto';
import { DEFAULT_REGIONS } from '../domain/regions';
import { EncryptionCodec } from '../infra/codec';
import { startSmtpSink } from '../infra/smtp';
import { subjectWithAlerts } from '../test/helpers/fixtures';
import { detectionWorkflowIds, workflowIds } from '../workflows/definitions';
import { apiClient, startStandalone, type Standalone } from './standalone';

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'histories');
const log = (m: string) => process.stdout.write(`${m}\n`);

const analyst = { sub: 'analyst-1', roles: ['analyst' as const] };
const investigator = { sub: 'investigator-1', roles: ['investigator' as const] };
const admin = { sub: 'admin-1', roles: ['admin' as const] };
const connector = { sub: 'connector-1', roles: ['connector' as const] };
const approver = (sub: string, stakeholder: 'legal' | 'hr' | 'privacy' | 'compliance') => ({
  sub,
  roles: ['approver' as const],
  stakeholder,
});

const SCENARIOS = [
  'eu-lifecycle',
  'us-veto-benign',
  'sla-expiry-escalation',
  'reveal-grants',
  'continue-as-new',
  'detection',
  'notice-delivery',
  'opening-confirm-start',
];

type History = proto.temporal.api.history.v1.IHistory;

/** Every payload of a history decrypted, as text, to search for personal data before it is written. */
async function payloadText(history: History, codec: EncryptionCodec): Promise<string> {
  const out: string[] = [];
  const walk = async (v: unknown): Promise<void> => {
    if (v instanceof Uint8Array) {
      out.push(Buffer.from(v).toString('utf8'));
      return;
    }
    if (typeof v === 'string') {
      out.push(v);
      return;
    }
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.metadata && o.data instanceof Uint8Array) {
      const [plain] = await codec.decode([o as never]);
      out.push(Buffer.from((plain as { data?: Uint8Array }).data ?? new Uint8Array()).toString('utf8'));
    }
    for (const x of Object.values(o)) await walk(x);
  };
  await walk(history);
  return out.join('\n');
}

async function main() {
  const selected = process.argv.slice(2);
  const unknown = selected.filter((s) => !SCENARIOS.includes(s));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.join(', ')}`);
  const want = (...names: string[]) => selected.length === 0 || names.some((n) => selected.includes(n));

  // The notices go to a real SMTP peer in this process (what it receives stays in memory).
  const sink = await startSmtpSink();
  // 1 h of SLA lasts 3 s: the SLA scenarios expire quickly, the 48–72 h default rules last minutes.
  const sys = await startStandalone({
    env: { SLA_TIME_SCALE: String(3 / 3600), CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40', SMTP_URL: sink.url },
    log,
  }).catch(async (err: unknown) => {
    await sink.stop();
    throw err;
  });
  /** Personal data sent by the scenarios, none of which may appear in a recorded history. */
  const secrets: string[] = [];
  try {
    const call = apiClient(sys.url);
    const as = (p: Parameters<Standalone['auth']>[0]) => sys.auth(p);
    const ok = <T>(r: { status: number; body: T }, expected: number[] = [200, 201, 202]) => {
      if (!expected.includes(r.status)) throw new Error(`unexpected ${r.status}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const openCase = async (region: string, n = 1) => {
      const { alerts } = await subjectWithAlerts(sys.database.db, sys.config, region, n);
      const first = ok(
        await call('POST', `/v1/alerts/${alerts[0]!.id}/confirm`, await as(analyst), { comment: 'Confirmed' }),
      ) as { caseId: string };
      for (const a of alerts.slice(1))
        ok(await call('POST', `/v1/alerts/${a.id}/confirm`, await as(analyst), { comment: 'Another alert' }));
      return first.caseId;
    };
    const step = async (caseId: string, kind: string) =>
      (
        ok(await call('POST', `/v1/cases/${caseId}/steps`, await as(investigator), { kind, reason: `${kind} needed` })) as {
          stepId: string;
        }
      ).stepId;
    const decide = async (caseId: string, stepId: string, who: ReturnType<typeof approver>, decision = 'approve') =>
      ok(await call('POST', `/v1/cases/${caseId}/steps/${stepId}/decision`, await as(who), { decision, comment: 'Decided' }));
    const waitClosed = async (workflowId: string) => sys.client.workflow.getHandle(workflowId).result();
    const waitCase = async (
      caseId: string,
      pred: (c: { status: string; history: Array<{ type: string; details: Record<string, unknown> }> }) => boolean,
    ) => {
      for (let i = 0; i < 200; i++) {
        const c = ok(await call('GET', `/v1/cases/${caseId}`, await as(investigator))) as never;
        if (pred(c)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`case ${caseId} did not reach the expected state`);
    };
    const legal = approver('legal-1', 'legal');
    const privacy = approver('privacy-1', 'privacy');
    const hr = approver('hr-1', 'hr');
    const compliance = approver('compliance-1', 'compliance');

    ok(
      await call('PUT', '/v1/regions/sl', await as(admin), {
        ...DEFAULT_REGIONS.us,
        name: 'SLA region',
        approvalRules: {
          escalate_investigation: {
            require: [
              { stakeholder: 'legal', count: 1 },
              { stakeholder: 'privacy', count: 1 },
            ],
            slaHours: 1,
            remindAtPercent: [30, 60],
            onExpiry: 'reject',
          },
          escalate_hr_action: {
            require: [{ stakeholder: 'legal', count: 1 }],
            slaHours: 1,
            remindAtPercent: [],
            onExpiry: 'escalate',
            escalateTo: 'compliance',
          },
        },
      }),
    );

    const scenarios: Record<string, string[]> = {};

    if (want('eu-lifecycle')) {
      log('scenario eu-lifecycle');
      const caseId = await openCase('eu', 2);
      ok(await call('POST', `/v1/cases/${caseId}/assign`, await as(investigator), { owner: 'investigator-1' }));
      ok(await call('POST', `/v1/cases/${caseId}/notes`, await as(investigator), { body: 'Manager interviewed' }));
      const s1 = await step(caseId, 'escalate_investigation');
      await decide(caseId, s1, legal);
      await decide(caseId, s1, privacy);
      await waitCase(caseId, (c) => c.status === 'under_investigation');
      const s2 = await step(caseId, 'escalate_hr_action');
      for (const who of [hr, legal, privacy]) await decide(caseId, s2, who);
      await waitCase(caseId, (c) => c.status === 'hr_action');
      const s3 = await step(caseId, 'resolve_confirmed_violation');
      await decide(caseId, s3, legal);
      await decide(caseId, s3, hr);
      await waitCase(caseId, (c) => c.history.some((h) => h.type === 'step_approved' && h.details.stepId === s3));
      ok(
        await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), {
          outcome: 'confirmed_violation',
          actionTaken: 'Terminated',
        }),
      );
      await waitClosed(workflowIds.case(caseId));
      scenarios['eu-lifecycle'] = [workflowIds.case(caseId), ...[s1, s2, s3].map((s) => workflowIds.step(caseId, s))];
    }

    if (want('opening-confirm-start')) {
      // Since the confirm that opens a case starts its workflow with the alert (firstAlert, eager
      // start) instead of signalWithStart: the opening alert in the start input, a second one signalled.
      log('scenario opening-confirm-start');
      const caseId = await openCase('us', 2);
      const s1 = await step(caseId, 'escalate_investigation');
      await decide(caseId, s1, legal);
      await waitCase(caseId, (c) => c.status === 'under_investigation');
      ok(await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'None' }));
      await waitClosed(workflowIds.case(caseId));
      scenarios['opening-confirm-start'] = [workflowIds.case(caseId), workflowIds.step(caseId, s1)];
    }

    if (want('us-veto-benign')) {
      log('scenario us-veto-benign');
      const caseId = await openCase('us');
      const s1 = await step(caseId, 'escalate_investigation');
      await decide(caseId, s1, legal, 'reject');
      await waitCase(caseId, (c) => c.history.some((h) => h.type === 'step_rejected'));
      const s2 = await step(caseId, 'escalate_hr_action');
      await decide(caseId, s2, hr);
      ok(await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'None' }));
      await waitClosed(workflowIds.case(caseId));
      await waitClosed(workflowIds.step(caseId, s2));
      scenarios['us-veto-benign'] = [workflowIds.case(caseId), workflowIds.step(caseId, s1), workflowIds.step(caseId, s2)];
    }

    if (want('sla-expiry-escalation')) {
      log('scenario sla-expiry-escalation');
      const caseId = await openCase('sl');
      const s1 = await step(caseId, 'escalate_investigation');
      await decide(caseId, s1, legal);
      await waitClosed(workflowIds.step(caseId, s1)); // expires after two reminders
      const s2 = await step(caseId, 'escalate_hr_action');
      await new Promise((r) => setTimeout(r, 3_500)); // escalates to compliance
      await decide(caseId, s2, legal);
      await decide(caseId, s2, compliance);
      await waitCase(caseId, (c) => c.status === 'hr_action');
      ok(
        await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'Coached' }),
      );
      await waitClosed(workflowIds.case(caseId));
      scenarios['sla-expiry-escalation'] = [workflowIds.case(caseId), workflowIds.step(caseId, s1), workflowIds.step(caseId, s2)];
    }

    if (want('reveal-grants')) {
      log('scenario reveal-grants');
      // A region whose reveal grants last 1 h (3 s here): one grant ends by its durable timer,
      // the next is revoked by an approver, and the case closes.
      ok(
        await call('PUT', '/v1/regions/rv', await as(admin), {
          ...DEFAULT_REGIONS.us,
          name: 'Reveal region',
          revealGrantHours: 1,
        }),
      );
      const caseId = await openCase('rv');
      const s1 = await step(caseId, 'reveal_identity');
      await decide(caseId, s1, legal);
      await waitCase(caseId, (c) => c.history.some((h) => h.type === 'grant_expired'));
      const s2 = await step(caseId, 'reveal_identity');
      await decide(caseId, s2, legal);
      await waitCase(caseId, (c) => c.history.some((h) => h.type === 'grant_created' && h.details.grantId === s2));
      ok(await call('POST', `/v1/cases/${caseId}/grants/${s2}/revoke`, await as(legal), { comment: 'Not needed any more' }));
      ok(await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'None' }));
      await waitClosed(workflowIds.case(caseId));
      scenarios['reveal-grants'] = [workflowIds.case(caseId), workflowIds.step(caseId, s1), workflowIds.step(caseId, s2)];
    }

    /** Runs of a workflow that continued as new, first to last (fetchHistory without a run id reads only the last). */
    const runs: Record<string, Array<{ workflowId: string; runId: string }>> = {};
    const chain = async (workflowId: string) => {
      const out: Array<{ workflowId: string; runId: string }> = [];
      let runId: string | undefined = (await sys.client.workflow.getHandle(workflowId).describe()).runId;
      while (runId) {
        out.unshift({ workflowId, runId });
        const h = await sys.client.workflow.getHandle(workflowId, runId).fetchHistory();
        runId = h.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
      }
      return out;
    };
    if (want('continue-as-new')) {
      log('scenario continue-as-new');
      const caseId = await openCase('eu');
      const s1 = await step(caseId, 'escalate_investigation');
      await decide(caseId, s1, legal);
      for (let i = 0; i < 25; i++)
        ok(await call('POST', `/v1/cases/${caseId}/notes`, await as(investigator), { body: `note ${i}` }));
      await decide(caseId, s1, privacy);
      await waitCase(caseId, (c) => c.status === 'under_investigation');
      ok(await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'None' }));
      const wf = workflowIds.case(caseId);
      await waitClosed(wf);
      runs['continue-as-new'] = await chain(wf);
      if (runs['continue-as-new'].length < 2) throw new Error('the continue-as-new scenario did not continue as new');
      scenarios['continue-as-new'] = [workflowIds.step(caseId, s1)];
    }

    if (want('detection', 'notice-delivery')) {
      log('scenario detection and notice-delivery');
      // Detection through the API: a roster import (identities go to the vault), a batch of HR
      // signals scored with no policy active yet, a policy activated over 502 triggered subjects
      // (its backfill scores them in two pages of at most 500 and raises one alert), and a later
      // batch that raises that alert's severity. Then notices on the alert's case: one accepted by
      // the SMTP peer, one refused by it (5xx).
      const tag = randomBytes(4).toString('hex');
      const group = `replay-${tag}`;
      const canary = {
        externalId: `REPLAY-CANARY-${tag}`,
        displayName: `Quillon Farthingale-${tag}`,
        email: `quillon.farthingale.${tag}@canary.example.net`,
        upn: `qfarthingale-${tag}@corp.example.net`,
        manager: `Maris Underhollow-${tag}`,
        department: 'Sales',
        groups: [group],
        region: 'eu',
      };
      const others = Array.from({ length: 501 }, (_, i) => ({
        externalId: `REPLAY-${tag}-${i}`,
        displayName: `Replay Person ${tag}-${i}`,
        email: `replay.person.${tag}.${i}@corp.example.net`,
        groups: [group],
        region: 'eu',
      }));
      const remarks = `Remark about attendance ${tag}, discussed with the manager`;
      secrets.push(canary.displayName, canary.email, canary.upn, canary.manager, remarks);
      secrets.push(others[0]!.displayName, others[0]!.email, others[500]!.displayName, others[500]!.email);

      ok(
        await call('PUT', '/v1/notice-templates/replay-notice', await as(admin), {
          name: 'Replay notice (EN)',
          language: 'en',
          from: 'insider-risk@example.org',
          fromName: 'Insider Risk Team',
          cc: ['hr-notices@example.org'],
          bcc: [],
          subject: 'Notice about case {{case.reference}}',
          htmlBody:
            '<p>Dear {{subject.displayName}},</p><p>Under the policy <b>{{policy.name}}</b> please respond by {{response.deadline}}.</p>',
          textBody:
            'Dear {{subject.displayName}},\n\nUnder the policy {{policy.name}} please respond by {{response.deadline}}.\n',
          responseDays: 10,
        }),
      );
      const imported = ok(await call('POST', '/v1/subjects/import', await as(connector), { subjects: [canary, ...others] })) as {
        created: number;
        rejected: unknown[];
      };
      if (imported.created !== 502 || imported.rejected.length) throw new Error(`import: ${JSON.stringify(imported)}`);

      const now = Date.now();
      const iso = (msAgo: number) => new Date(now - msAgo).toISOString();
      const signal = (subject: string, type: string, msAgo: number, attributes: Record<string, unknown>, source = 'hr') => ({
        source,
        externalId: `${type}-${subject}-${msAgo}`,
        subject,
        type,
        occurredAt: iso(msAgo),
        attributes,
      });
      const ingest = async (events: unknown[]) => {
        const r = ok(await call('POST', '/v1/signals', await as(connector), { events })) as {
          rejected: unknown[];
          scoringWorkflowId: string | null;
        };
        if (r.rejected.length || !r.scoringWorkflowId) throw new Error(`ingest: ${JSON.stringify(r)}`);
        await waitClosed(r.scoringWorkflowId);
        return r.scoringWorkflowId;
      };
      const day = 86_400_000;
      const scoring1 = await ingest([
        ...[canary, ...others].map((p) =>
          signal(p.externalId, 'resignation', 2 * day, { lastWorkingDate: iso(-14 * day).slice(0, 10) }),
        ),
        signal(canary.externalId, 'performance_review', 3 * day, {
          rating: 1,
          effectiveDate: iso(3 * day).slice(0, 10),
          remarks,
        }),
        signal(canary.externalId, 'file_copied_to_usb', day, { count: 20 }, 'activity'),
      ]);

      const policy = ok(
        await call('POST', '/v1/policies', await as(admin), {
          name: `Departing staff ${group}`,
          template: 'data_theft_departing_users',
          scope: { include: { groups: [group] } },
          indicators: { file_copied_to_usb: 3 },
          thresholds: { minRiskScore: 40, severity: { medium: 60, high: 80 } },
          boosters: { priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 0 },
          activationWindowDays: 30,
          dailyAlertCap: 100,
        }),
      ) as { id: string; version: number };
      const activated = ok(await call('POST', `/v1/policies/${policy.id}/activate`, await as(admin))) as {
        backfillWorkflowId: string | null;
      };
      const backfillId = activated.backfillWorkflowId;
      if (backfillId !== detectionWorkflowIds.policyBackfill(policy.id, policy.version))
        throw new Error(`activation started no backfill: ${JSON.stringify(activated)}`);
      const backfill = (await waitClosed(backfillId)) as { subjects: number; alertsCreated: number };
      if (backfill.subjects !== 502 || backfill.alertsCreated !== 1) throw new Error(`backfill: ${JSON.stringify(backfill)}`);

      const scoring2 = await ingest([signal(canary.externalId, 'file_copied_to_usb', 3_600_000, { count: 10 }, 'activity')]);
      const alerts = ok(await call('GET', `/v1/alerts?policyId=${policy.id}`, await as(analyst))) as {
        items: Array<{ id: string; severity: string }>;
      };
      if (alerts.items.length !== 1 || alerts.items[0]!.severity !== 'high')
        throw new Error(`alerts: ${JSON.stringify(alerts.items)}`);
      scenarios['detection'] = [scoring1, backfillId, scoring2];

      const confirmed = ok(
        await call('POST', `/v1/alerts/${alerts.items[0]!.id}/confirm`, await as(analyst), { comment: 'Confirmed' }),
      ) as { caseId: string };
      const caseId = confirmed.caseId;
      const noticeStep = async () =>
        (
          ok(
            await call('POST', `/v1/cases/${caseId}/steps`, await as(investigator), {
              kind: 'send_notice',
              reason: 'Inform the employee of the investigation',
              templateId: 'replay-notice',
            }),
          ) as { stepId: string }
        ).stepId;
      const noticeOf = async (stepId: string, status: string) => {
        for (let i = 0; i < 300; i++) {
          const c = ok(await call('GET', `/v1/cases/${caseId}`, await as(investigator))) as {
            notices: Array<{ noticeId: string; stepId: string; status: string }>;
          };
          const n = c.notices.find((x) => x.stepId === stepId);
          if (n && n.status !== 'queued') {
            if (n.status !== status) throw new Error(`notice of step ${stepId} is ${n.status}, expected ${status}`);
            return n.noticeId;
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`the notice of step ${stepId} was not delivered`);
      };

      // EU: one HR and one Legal approval; the SMTP peer accepts the message.
      const s1 = await noticeStep();
      await decide(caseId, s1, hr);
      await decide(caseId, s1, legal);
      const n1 = await noticeOf(s1, 'sent');
      if (sink.messages.length !== 1) throw new Error(`the SMTP peer received ${sink.messages.length} messages`);

      // The next one is refused for good (5xx after DATA): the notice fails without retries.
      sink.setReply(() => ({ code: 550, message: '5.7.1 Message rejected by policy', at: 'data' }));
      const s2 = await noticeStep();
      await decide(caseId, s2, hr);
      await decide(caseId, s2, legal);
      const n2 = await noticeOf(s2, 'failed');
      sink.setReply(undefined);

      ok(
        await call('POST', `/v1/cases/${caseId}/resolve`, await as(investigator), { outcome: 'benign', actionTaken: 'Notified' }),
      );
      const noticeIds = [workflowIds.notice(caseId, n1), workflowIds.notice(caseId, n2)];
      for (const id of [workflowIds.case(caseId), ...noticeIds]) await waitClosed(id);
      // The case continues as new on the way (every 40 events here): record each of its runs.
      scenarios['notice-delivery'] = [workflowIds.step(caseId, s1), workflowIds.step(caseId, s2), ...noticeIds];
      runs['notice-delivery'] = await chain(workflowIds.case(caseId));
    }

    mkdirSync(OUT, { recursive: true });
    const codec = new EncryptionCodec(sys.config.keys.payload);
    const entry = async (workflowId: string, runId?: string) => {
      const history = await sys.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const json = historyToJSON(history);
      const text = `${json}\n${await payloadText(history, codec)}`;
      const leaked = secrets.filter((s) => text.includes(s));
      if (leaked.length) throw new Error(`the history of ${workflowId} holds personal data; nothing written`);
      return { workflowId, ...(runId ? { runId } : {}), history: JSON.parse(json) as unknown };
    };
    for (const [name, ids] of Object.entries(scenarios)) {
      const entries = [];
      for (const workflowId of ids) entries.push(await entry(workflowId));
      for (const r of runs[name] ?? []) entries.push(await entry(r.workflowId, r.runId));
      const file = path.join(OUT, `${name}.json`);
      writeFileSync(file, JSON.stringify({ recordedWith: 'npm run histories:record', workflows: entries }, null, 1) + '\n');
      log(`wrote ${path.relative(process.cwd(), file)} (${entries.length} histories)`);
    }
  } finally {
    await sys.close();
    await sink.stop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
