import { and, asc, eq, sql, type SQL } from 'drizzle-orm';
import {
  defaultIndicators,
  type Boosters,
  missingPrerequisites,
  type PolicyInput,
  type PolicyPatch,
  type PolicyStatus,
  type Prerequisite,
} from '../../domain/policies';
import { cursorTime } from '../cursor';
import type { DbOrTx } from '../index';
import { connectorData, policies, type PolicyRow } from '../schema';

export interface Policy extends Omit<PolicyRow, 'createdAt' | 'updatedAt' | 'activatedAt' | 'description'> {
  description: string | null;
  activatedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export function toPolicy(row: PolicyRow): Policy {
  return {
    ...row,
    activatedAt: row.activatedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export async function createPolicy(db: DbOrTx, input: PolicyInput, actor: string): Promise<PolicyRow> {
  const [row] = await db
    .insert(policies)
    .values({
      name: input.name,
      description: input.description ?? null,
      template: input.template,
      scope: input.scope,
      priorityGroups: input.priorityGroups,
      indicators: input.indicators ?? defaultIndicators(input.template),
      thresholds: input.thresholds,
      boosters: input.boosters,
      activationWindowDays: input.activationWindowDays,
      dailyAlertCap: input.dailyAlertCap,
      createdBy: actor,
      updatedBy: actor,
    })
    .returning();
  return row!;
}

export async function getPolicy(db: DbOrTx, id: string, forUpdate = false): Promise<PolicyRow | null> {
  const q = db.select().from(policies).where(eq(policies.id, id));
  const [row] = forUpdate ? await q.for('update') : await q;
  return row ?? null;
}

export async function listPolicies(
  db: DbOrTx,
  f: { after: [string, string] | null; limit: number; status?: PolicyStatus; where?: SQL },
) {
  return db
    .select({ policy: policies, cursorAt: cursorTime(policies.createdAt) })
    .from(policies)
    .where(
      and(
        f.status ? eq(policies.status, f.status) : undefined,
        f.after ? sql`(${policies.createdAt}, ${policies.id}) > (${f.after[0]}::timestamptz, ${f.after[1]}::uuid)` : undefined,
        f.where,
      ),
    )
    .orderBy(asc(policies.createdAt), asc(policies.id))
    .limit(f.limit + 1);
}

/** The stored fields a PATCH sets: boosters whole (the route merges a partial change into the current ones). */
export type PolicyUpdate = Omit<PolicyPatch, 'boosters'> & { boosters?: Boosters };

export async function updatePolicy(db: DbOrTx, id: string, patch: PolicyUpdate, actor: string): Promise<PolicyRow> {
  const [row] = await db
    .update(policies)
    .set({ ...patch, version: sql`${policies.version} + 1`, updatedBy: actor, updatedAt: new Date() })
    .where(eq(policies.id, id))
    .returning();
  return row!;
}

export async function setPolicyStatus(db: DbOrTx, id: string, status: PolicyStatus, actor: string): Promise<PolicyRow> {
  const [row] = await db
    .update(policies)
    .set({
      status,
      updatedBy: actor,
      updatedAt: new Date(),
      ...(status === 'active' ? { activatedAt: new Date() } : {}),
    })
    .where(eq(policies.id, id))
    .returning();
  return row!;
}

/** The (source, type) kinds of connector data received so far. */
export async function receivedConnectorData(db: DbOrTx): Promise<Array<{ source: string; type: string; firstReceivedAt: Date }>> {
  return db.select().from(connectorData);
}

export async function prerequisiteStatus(
  db: DbOrTx,
  template: PolicyRow['template'],
): Promise<{ met: boolean; missing: Prerequisite[] }> {
  const missing = missingPrerequisites(template, await receivedConnectorData(db));
  return { met: missing.length === 0, missing };
}
