/**
 * Applies the committed drizzle migrations, then writes the defaults a fresh installation has
 * (idempotent: existing rows are left as administrators changed them).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { DEFAULT_REGIONS } from '../domain/regions';
import type { Db } from './index';
import { regions } from './schema';

export const MIGRATIONS_FOLDER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export async function migrateDatabase(db: Db): Promise<void> {
  await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
  await ensureDefaults(db);
}

export async function ensureDefaults(db: Db): Promise<void> {
  const rows = Object.entries(DEFAULT_REGIONS).map(([code, r]) => ({
    code,
    name: r.name,
    languages: r.languages,
    requireReviewerLanguage: r.requireReviewerLanguage,
    allowDeanonymization: r.allowDeanonymization,
    revealGrantHours: r.revealGrantHours,
    approvalRules: r.approvalRules,
    restricted: r.restricted,
    updatedBy: 'system',
  }));
  await db.insert(regions).values(rows).onConflictDoNothing();
}
