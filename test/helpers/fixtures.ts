/**
 * Real rows in the test database for the case tests: subjects (pseudonymized exactly as the import
 * does, through infra/identity.ts) and alerts as scoring raises them. No mocks: the API and the
 * workflows read and lock these rows like any others.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db';
import { sql } from 'drizzle-orm';
import type { Severity } from '../../domain/cases';
import type { Config } from '../../infra/config';
import { externalKey, pseudonymFor } from '../../infra/identity';

export async function createSubject(db: Db, config: Config, opts: { region?: string; externalId?: string } = {}) {
  const externalId = opts.externalId ?? `E-${randomUUID()}`;
  const region = opts.region ?? 'eu';
  const result = await db.execute<{ id: string; pseudonym: string }>(sql`
    insert into subjects (external_key, pseudonym, region, department, groups)
    values (${externalKey(config.keys.pseudonym, externalId)}, ${pseudonymFor(config.keys.pseudonym, externalId)}, ${region}, 'Sales', array['sales'])
    returning id, pseudonym`);
  const row = result.rows[0]!;
  return { id: row.id, pseudonym: row.pseudonym, region };
}

export async function createAlert(
  db: Db,
  opts: { subjectId: string; region: string; severity?: Severity; policyId?: string; score?: number },
) {
  // Only the columns this issue relies on, so the fixture keeps working while detection adds its own.
  const result = await db.execute<{ id: string; subject_id: string; region: string; severity: Severity; status: string }>(sql`
    insert into alerts (subject_id, policy_id, region, severity, score, risk_factors, triggered_at)
    values (${opts.subjectId}, ${opts.policyId ?? randomUUID()}, ${opts.region}, ${opts.severity ?? 'medium'}, ${opts.score ?? 70},
            ${JSON.stringify([{ kind: 'indicator', name: 'file_copied_to_usb', points: 70 }])}::jsonb, now())
    returning id, subject_id, region, severity, status`);
  const row = result.rows[0]!;
  return { id: row.id, subjectId: row.subject_id, region: row.region, severity: row.severity, status: row.status };
}

/** A subject in `region` with `n` alerts (distinct policies, as scoring would raise them). */
export async function subjectWithAlerts(db: Db, config: Config, region: string, n = 1, severity: Severity = 'medium') {
  const subject = await createSubject(db, config, { region });
  const list = [];
  for (let i = 0; i < n; i++) list.push(await createAlert(db, { subjectId: subject.id, region, severity }));
  return { subject, alerts: list };
}
