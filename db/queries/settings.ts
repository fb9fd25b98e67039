import { eq } from 'drizzle-orm';
import type { Db, DbOrTx } from '../index';
import { settings, type SettingsRow } from '../schema';

export interface Settings {
  showAnonymizedNames: boolean;
  alertVolume: SettingsRow['alertVolume'];
  updatedAt: string;
}

function toSettings(row: SettingsRow): Settings {
  return { showAnonymizedNames: row.showAnonymizedNames, alertVolume: row.alertVolume, updatedAt: row.updatedAt.toISOString() };
}

export async function getSettings(db: DbOrTx, opts: { forUpdate?: boolean } = {}): Promise<Settings> {
  const query = db.select().from(settings).where(eq(settings.id, 1));
  const [row] = opts.forUpdate ? await query.for('update') : await query;
  if (!row) throw new Error('settings row missing: migrations not applied');
  return toSettings(row);
}

/** Whether lists show pseudonyms only: read on every list response, so one prepared statement. */
export async function showsAnonymizedNames(db: Db): Promise<boolean> {
  const r = await db.$client.query<{ v: boolean }>({
    name: 'warden_settings_anonymized',
    text: 'select show_anonymized_names as v from settings where id = 1',
  });
  if (!r.rows[0]) throw new Error('settings row missing: migrations not applied');
  return r.rows[0].v;
}

export async function updateSettings(
  db: DbOrTx,
  patch: Partial<Pick<SettingsRow, 'showAnonymizedNames' | 'alertVolume'>>,
  actor: string,
): Promise<Settings> {
  const [row] = await db
    .update(settings)
    .set({ ...patch, updatedAt: new Date(), updatedBy: actor })
    .where(eq(settings.id, 1))
    .returning();
  return toSettings(row!);
}
