import { asc, eq, getTableColumns, inArray, sql } from 'drizzle-orm';
import type { Region, RegionInput } from '../../domain/regions';
import type { DbOrTx } from '../index';
import { regions, type RegionRow } from '../schema';

export function toRegion(row: RegionRow): Region {
  return {
    code: row.code,
    name: row.name,
    languages: row.languages,
    requireReviewerLanguage: row.requireReviewerLanguage,
    allowDeanonymization: row.allowDeanonymization,
    revealGrantHours: row.revealGrantHours,
    approvalRules: row.approvalRules,
    restricted: row.restricted as Region['restricted'],
    version: row.version,
    updatedAt: row.updatedAt.toISOString(),
  };
}

/** Regions, optionally limited to `codes` (`null` = all). */
export async function listRegions(db: DbOrTx, codes: string[] | null): Promise<Region[]> {
  const rows = await db
    .select()
    .from(regions)
    .where(codes === null ? undefined : inArray(regions.code, codes.length ? codes : ['']))
    .orderBy(asc(regions.code));
  return rows.map(toRegion);
}

export async function getRegion(db: DbOrTx, code: string): Promise<Region | null> {
  const [row] = await db.select().from(regions).where(eq(regions.code, code));
  return row ? toRegion(row) : null;
}

/** Create or replace a region; returns it and whether it was created. */
export async function upsertRegion(
  db: DbOrTx,
  code: string,
  input: RegionInput,
  actor: string,
): Promise<{ region: Region; created: boolean }> {
  const values = { ...input, code, updatedBy: actor, updatedAt: new Date() };
  const [row] = await db
    .insert(regions)
    .values(values)
    .onConflictDoUpdate({
      target: regions.code,
      set: { ...values, version: sql`${regions.version} + 1` },
    })
    .returning({ ...getTableColumns(regions), created: sql<boolean>`(xmax = 0)` });
  const { created, ...region } = row!;
  return { region: toRegion(region), created };
}
