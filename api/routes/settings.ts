import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { getSettings, updateSettings } from '../../db/queries/settings';
import { route } from '../http';

export const SettingsSchema = z
  .object({
    showAnonymizedNames: z.boolean().describe('Show pseudonyms instead of names (regions may forbid turning this off)'),
    alertVolume: z.enum(['fewer', 'default', 'more']).describe('How many alerts policies raise'),
    updatedAt: z.string().datetime(),
  })
  .openapi('Settings');

export const SettingsPatch = z
  .object({
    showAnonymizedNames: z.boolean().optional(),
    alertVolume: z.enum(['fewer', 'default', 'more']).optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, { message: 'give at least one setting to change' });

export const settingsRoutes = [
  route({
    method: 'get',
    path: '/v1/settings',
    tag: 'Settings',
    summary: 'Read tenant settings',
    permission: 'settings:read',
    category: 'settings',
    responses: { 200: { description: 'Settings', schema: SettingsSchema } },
    async handler({ deps }) {
      return { body: await getSettings(deps.db) };
    },
  }),
  route({
    method: 'patch',
    path: '/v1/settings',
    tag: 'Settings',
    summary: 'Change tenant settings',
    permission: 'settings:write',
    category: 'settings',
    body: SettingsPatch,
    responses: { 200: { description: 'Settings after the change', schema: SettingsSchema } },
    async handler({ deps, principal, body, actor }) {
      const settings = await deps.db.transaction(async (tx) => {
        // Locked: a concurrent change must not slip in between (the audit entry says from → to).
        const before = await getSettings(tx, { forUpdate: true });
        const after = await updateSettings(tx, body, principal.sub);
        const changed = Object.keys(body).filter((k) => before[k as keyof typeof before] !== after[k as keyof typeof after]);
        await appendAudit(tx, {
          ...actor,
          action: 'settings.update',
          category: 'settings',
          targetType: 'settings',
          targetId: 'tenant',
          outcome: 'allowed',
          details: Object.fromEntries(
            changed.map((k) => [k, { from: before[k as keyof typeof before], to: after[k as keyof typeof after] }]),
          ),
        });
        return after;
      });
      return { body: settings };
    },
  }),
];
