import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { workflowIds } from '../../workflows/definitions';
import type { systemCheckWorkflow } from '../../workflows/system-check';
import { route } from '../http';

const SystemCheckResponse = z
  .object({ checkId: z.string().uuid(), attempt: z.number().int(), completedAt: z.string().datetime(), workflowId: z.string() })
  .openapi('SystemCheck');

export const systemRoutes = [
  route({
    method: 'post',
    path: '/v1/system/check',
    tag: 'System',
    summary: 'Run an end-to-end check: API → Temporal workflow → worker activity → Postgres',
    description: 'Starts a small workflow whose activity writes a row to Postgres, waits for it, and returns the row.',
    permission: 'system:check',
    category: 'system',
    responses: { 200: { description: 'The check completed', schema: SystemCheckResponse } },
    async handler({ deps, principal, actor, requestId }) {
      const checkId = randomUUID();
      const workflowId = workflowIds.systemCheck(checkId);
      const result = await deps.temporal.workflow.execute<typeof systemCheckWorkflow>('systemCheckWorkflow', {
        taskQueue: deps.taskQueue,
        workflowId,
        args: [{ checkId, requestedBy: { sub: principal.sub, roles: principal.roles, requestId } }],
        workflowExecutionTimeout: '30 seconds',
      });
      await appendAudit(deps.db, {
        ...actor,
        action: 'system.check',
        category: 'system',
        targetType: 'workflow',
        targetId: workflowId,
        outcome: 'allowed',
      });
      return { body: { ...result, workflowId } };
    },
  }),
];
