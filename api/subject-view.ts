/**
 * How a subject appears in API responses: always by pseudonym; with a real display name only when
 * the tenant setting "show anonymized names" is off, the subject's region allows
 * de-anonymization, and the caller is an analyst or investigator. Every such display is audited
 * (category `identity`). This is the only module besides the reveal and notice paths that opens
 * the identity vault.
 */
import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../db';
import { appendAudit } from '../db/audit';
import { showsAnonymizedNames } from '../db/queries/settings';
import { identityVault, regions, subjects as subjectsTable } from '../db/schema';
import type { Principal } from '../domain/authz';
import type { Config } from '../infra/config';
import { openSubjectIdentity } from '../infra/identity';
import { z } from 'zod';

export const SubjectRef = z
  .object({
    id: z.string().uuid(),
    pseudonym: z.string(),
    displayName: z.string().optional().describe('Only when anonymization is off and the region allows it'),
  })
  .openapi('SubjectRef');
export type SubjectRef = z.infer<typeof SubjectRef>;

export interface SubjectInput {
  id: string;
  pseudonym: string;
  region: string;
}

const MAY_SEE_NAMES = new Set(['analyst', 'investigator']);

/** Labels for the subjects of one response, keyed by subject id. */
export async function subjectRefs(
  deps: { db: Db; config: Config },
  principal: Principal,
  subjects: SubjectInput[],
  requestId?: string,
): Promise<Map<string, SubjectRef>> {
  const refs = new Map<string, SubjectRef>(subjects.map((s) => [s.id, { id: s.id, pseudonym: s.pseudonym }]));
  if (subjects.length === 0 || !principal.roles.some((r) => MAY_SEE_NAMES.has(r))) return refs;
  if (await showsAnonymizedNames(deps.db)) return refs;
  const codes = [...new Set(subjects.map((s) => s.region))];
  const allowed = new Set(
    (
      await deps.db
        .select({ code: regions.code, allow: regions.allowDeanonymization })
        .from(regions)
        .where(inArray(regions.code, codes))
    )
      .filter((r) => r.allow)
      .map((r) => r.code),
  );
  const visible = subjects.filter((s) => allowed.has(s.region));
  if (visible.length === 0) return refs;
  const rows = await deps.db
    .select({
      subjectId: identityVault.subjectId,
      keyId: identityVault.keyId,
      ciphertext: identityVault.ciphertext,
      externalKey: subjectsTable.externalKey,
    })
    .from(identityVault)
    .innerJoin(subjectsTable, eq(subjectsTable.id, identityVault.subjectId))
    .where(
      inArray(
        identityVault.subjectId,
        visible.map((s) => s.id),
      ),
    );
  for (const row of rows) {
    const identity = openSubjectIdentity(deps.config.keys, row, row);
    refs.set(row.subjectId, { ...refs.get(row.subjectId)!, displayName: identity.displayName });
  }
  await appendAudit(deps.db, {
    actor: principal.sub,
    actorRoles: principal.roles,
    action: 'identity.display_names',
    category: 'identity',
    targetType: 'subject',
    targetId: rows.length === 1 ? rows[0]!.subjectId : null,
    outcome: 'allowed',
    requestId,
    details: { subjectIds: rows.map((r) => r.subjectId) },
  });
  return refs;
}
