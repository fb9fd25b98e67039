/**
 * The privacy canary: a person whose name, email, UPN and manager are unique strings goes through
 * the whole product — roster import, signals, scoring, alert, case, escalation, identity reveal,
 * resolution, auditors' reads and exports. The strings may appear only in the identity endpoint's
 * answer during a valid grant: never in any other API response, log line, table (but the
 * encrypted vault) or Temporal history, raw or decrypted.
 */
import type { Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseDriver, people } from '../helpers/cases';
import { activePolicy, ev, importPeople, ingest, policyBody, subjectIdOf, uniq } from '../helpers/detection';
import { executionsOf, historyText, tablesText } from '../helpers/leaks';
import { principals, startTestSystem, type TestSystem } from '../helpers/system';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(async () => sys?.close());

describe('the privacy canary', () => {
  it('a person’s identity appears only in the identity endpoint’s answer during a valid grant', async () => {
    const tag = uniq('canary').replace('-', '');
    const canary = {
      externalId: uniq('E'),
      displayName: `Zebulon ${tag} Quartermaine`,
      email: `zq.${tag}@canary.example`,
      upn: `zq.${tag}@corp.canary.example`,
      manager: `Manager ${tag} Oakridge`,
      department: 'Sales',
      groups: [uniq('grp')],
      region: 'eu',
    };
    const secrets = [canary.displayName, canary.email, canary.upn, canary.manager, tag];
    const responses: Array<{ what: string; text: string }> = [];
    const call = async (what: string, req: Test) => {
      const res = await req;
      responses.push({ what, text: res.text ?? '' });
      return res;
    };
    const as = (p: Parameters<TestSystem['auth']>[0]) => sys.auth(p);
    const drive = caseDriver(sys);

    // Connector: roster and signals; administrator: a policy for the canary's group.
    await importPeople(sys, [canary]);
    const subjectId = await subjectIdOf(sys, canary.externalId);
    const policy = await activePolicy(sys, policyBody('data_theft_departing_users', canary.groups[0]!));
    const batch = await ingest(sys, [ev.resignation(canary.externalId), ev.usb(canary.externalId, 20)]);
    responses.push({ what: 'signals', text: JSON.stringify(batch.body) });
    expect(batch.scoring).not.toBeNull();

    // Analyst: the alert queue and the alert.
    const list = await call(
      'alerts list',
      sys.http.get(`/v1/alerts?subjectId=${subjectId}`).set('Authorization', await as(people.analyst)),
    );
    expect(list.status).toBe(200);
    const alert = list.body.items.find((a: { policy: { id: string } }) => a.policy.id === policy.id);
    expect(
      alert,
      `the canary crossed the threshold: ${JSON.stringify({ list: list.body, scoring: batch.scoring })}`,
    ).toBeDefined();
    await call('alert read', sys.http.get(`/v1/alerts/${alert.id}`).set('Authorization', await as(people.analyst)));
    await call('subjects view', sys.http.get('/v1/subjects').set('Authorization', await as(principals.admin)));

    // Case, escalation, reveal.
    const confirmed = await drive.confirm(alert.id, 'Copies to USB right after resigning');
    responses.push({ what: 'confirm', text: JSON.stringify(confirmed.body) });
    const caseId = confirmed.body.caseId as string;
    const esc = await drive.requestStep(caseId, 'escalate_investigation');
    responses.push({ what: 'escalate', text: JSON.stringify(esc.body) });
    for (const a of [people.legal, people.privacy]) {
      await call('inbox', sys.http.get('/v1/approvals/inbox').set('Authorization', await as(a)));
      responses.push({ what: 'decide', text: JSON.stringify((await drive.decide(caseId, esc.body.stepId, a)).body) });
    }
    const rev = await drive.requestStep(caseId, 'reveal_identity');
    for (const a of [people.privacy, people.legal])
      responses.push({ what: 'decide', text: JSON.stringify((await drive.decide(caseId, rev.body.stepId, a)).body) });
    await drive.readUntil(caseId, (c) => c.steps.every((s) => s.status === 'approved'));

    // The one place the identity may appear: the grant holder's read.
    let revealed = await sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await as(people.investigator));
    for (let i = 0; i < 50 && revealed.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      revealed = await sys.http.get(`/v1/cases/${caseId}/identity`).set('Authorization', await as(people.investigator));
    }
    expect(revealed.status).toBe(200);
    expect(revealed.body.identity).toMatchObject({
      displayName: canary.displayName,
      email: canary.email,
      upn: canary.upn,
      manager: canary.manager,
    });

    // Everything else: someone without the grant, the case, its grants, resolution, auditors.
    const refused = await call(
      'identity without grant',
      sys.http
        .get(`/v1/cases/${caseId}/identity`)
        .set('Authorization', await as({ ...people.investigator, sub: 'investigator-9' })),
    );
    expect(refused.status).toBe(403);
    await call('case read', sys.http.get(`/v1/cases/${caseId}`).set('Authorization', await as(people.investigator)));
    await call('cases list', sys.http.get('/v1/cases').set('Authorization', await as(people.analyst)));
    await call('grants', sys.http.get(`/v1/cases/${caseId}/grants`).set('Authorization', await as(people.auditor)));
    responses.push({
      what: 'resolve',
      text: JSON.stringify((await drive.resolve(caseId, 'benign', 'Explained by a sanctioned backup')).body),
    });
    await drive.readUntil(caseId, (c) => c.status === 'closed');
    await call('history', sys.http.get(`/v1/cases/${caseId}/history?limit=500`).set('Authorization', await as(people.auditor)));
    await call('audit', sys.http.get('/v1/audit?limit=500').set('Authorization', await as(people.auditor)));
    await call('export ndjson', sys.http.get('/v1/audit/export?format=ndjson').set('Authorization', await as(people.auditor)));
    await call('export csv', sys.http.get('/v1/audit/export?format=csv').set('Authorization', await as(people.auditor)));

    // API responses.
    expect(responses.length).toBeGreaterThan(15);
    for (const r of responses) for (const s of secrets) expect(r.text.includes(s), `${s} in the ${r.what} response`).toBe(false);

    // Logs of the API, the worker and the activities.
    const logs = sys.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) expect(logs.includes(s), `${s} in the logs`).toBe(false);

    // Every table but the vault.
    const tables = await tablesText(sys);
    expect([...tables.keys()]).toEqual(
      expect.arrayContaining(['subjects', 'signals', 'alerts', 'cases', 'case_notes', 'audit_log', 'reveal_grants']),
    );
    for (const [name, text] of tables) for (const s of secrets) expect(text.includes(s), `${s} in table ${name}`).toBe(false);

    // Every Temporal history of the test, raw and decrypted.
    const executions = await executionsOf(sys);
    expect(executions.map((e) => e.type)).toEqual(expect.arrayContaining(['caseWorkflow', 'stepWorkflow']));
    for (const e of executions) {
      for (const s of secrets) expect(e.workflowId.includes(s), `${s} in workflow id ${e.workflowId}`).toBe(false);
      const { raw, decoded } = await historyText(sys, e.workflowId, e.runId);
      for (const s of secrets) {
        expect(raw.includes(s), `${s} in the raw history of ${e.type}`).toBe(false);
        expect(decoded.includes(s), `${s} in the decrypted history of ${e.type}`).toBe(false);
      }
    }
  }, 120_000);
});
