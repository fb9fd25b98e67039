/**
 * `npm run histories:record`: run representative cases end to end against a throwaway system and
 * write their workflow histories (case and step workflows, incl. a continue-as-new chain) to
 * test/fixtures/histories/*.json. The replay test runs the current workflow code over them, so a
 * change that would break running cases fails CI. Re-record only for a deliberate, versioned change
 * (and keep the old files while such cases may still be running).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DEFAULT_REGIONS } from '../domain/regions';
import { subjectWithAlerts } from '../test/helpers/fixtures';
import { workflowIds } from '../workflows/definitions';
import { apiClient, startStandalone, type Standalone } from './standalone';

const OUT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'histories');
const log = (m: string) => process.stdout.write(`${m}\n`);

const analyst = { sub: 'analyst-1', roles: ['analyst' as const] };
const investigator = { sub: 'investigator-1', roles: ['investigator' as const] };
const admin = { sub: 'admin-1', roles: ['admin' as const] };
const approver = (sub: string, stakeholder: 'legal' | 'hr' | 'privacy' | 'compliance') => ({
  sub,
  roles: ['approver' as const],
  stakeholder,
});

async function main() {
  // 1 h of SLA lasts 3 s: the SLA scenarios expire quickly, the 48–72 h default rules last minutes.
  const sys = await startStandalone({ env: { SLA_TIME_SCALE: String(3 / 3600), CASE_CONTINUE_AS_NEW_AFTER_EVENTS: '40' }, log });
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

    log('scenario eu-lifecycle');
    {
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

    log('scenario us-veto-benign');
    {
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

    log('scenario sla-expiry-escalation');
    {
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

    log('scenario reveal-grants');
    {
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

    log('scenario continue-as-new');
    const canRuns: Array<{ workflowId: string; runId: string }> = [];
    {
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
      // Walk the chain back from the last run.
      let runId: string | undefined = (await sys.client.workflow.getHandle(wf).describe()).runId;
      while (runId) {
        canRuns.unshift({ workflowId: wf, runId });
        const h = await sys.client.workflow.getHandle(wf, runId).fetchHistory();
        runId = h.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
      }
      if (canRuns.length < 2) throw new Error('the continue-as-new scenario did not continue as new');
      scenarios['continue-as-new'] = [workflowIds.step(caseId, s1)];
    }

    mkdirSync(OUT, { recursive: true });
    for (const [name, ids] of Object.entries(scenarios)) {
      const entries = [];
      for (const workflowId of ids) {
        const history = await sys.client.workflow.getHandle(workflowId).fetchHistory();
        entries.push({ workflowId, history: JSON.parse(historyToJSON(history)) });
      }
      if (name === 'continue-as-new') {
        for (const r of canRuns) {
          const history = await sys.client.workflow.getHandle(r.workflowId, r.runId).fetchHistory();
          entries.push({ workflowId: r.workflowId, runId: r.runId, history: JSON.parse(historyToJSON(history)) });
        }
      }
      const file = path.join(OUT, `${name}.json`);
      writeFileSync(file, JSON.stringify({ recordedWith: 'npm run histories:record', workflows: entries }, null, 1) + '\n');
      log(`wrote ${path.relative(process.cwd(), file)} (${entries.length} histories)`);
    }
  } finally {
    await sys.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
