import { sql } from 'drizzle-orm';
import { boolean, check, pgEnum, pgTable, smallint, text, timestamp } from 'drizzle-orm/pg-core';

export const alertVolume = pgEnum('alert_volume', ['fewer', 'default', 'more']);

/** Tenant settings: a single row (id = 1). */
export const settings = pgTable(
  'settings',
  {
    id: smallint('id').primaryKey().default(1),
    showAnonymizedNames: boolean('show_anonymized_names').notNull().default(true),
    alertVolume: alertVolume('alert_volume').notNull().default('default'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    updatedBy: text('updated_by').notNull().default('system'),
  },
  (t) => [check('settings_single_row', sql`${t.id} = 1`)],
);

export type SettingsRow = typeof settings.$inferSelect;
