/**
 * Activities: every side effect of the workflows (Postgres projections, vault, scoring, SMTP).
 * Each is idempotent — keyed by a business or workflow/activity id — because Temporal runs them at
 * least once. Imported by the worker; workflows import only the `Activities` type.
 */
import type { Logger } from 'pino';
import type { Config } from '../infra/config';
import type { Db } from '../db';
import { createArchiveActivities } from './archive';
import { createAuditActivities } from './audit';
import { createCaseActivities } from './cases';
import { createNoticeActivities } from './notices';
import { createRevealActivities } from './reveal';
import { createScoringActivities } from './scoring';
import { createSystemActivities } from './system';

export interface ActivityDeps {
  db: Db;
  logger: Logger;
  config: Config;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createSystemActivities(deps),
    ...createAuditActivities(deps),
    ...createArchiveActivities(deps),
    ...createScoringActivities(deps),
    ...createCaseActivities(deps),
    ...createRevealActivities(deps),
    ...createNoticeActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
