import { z } from 'zod';
import { appendAudit } from '../../db/audit';
import { getRegion, listRegions, upsertRegion } from '../../db/queries/regions';
import { inRegion, regionScope } from '../../domain/authz';
import { RegionCode, RegionInput } from '../../domain/regions';
import { notFound, outsideRegion } from '../errors';
import { route } from '../http';

export const RegionSchema = RegionInput.extend({
  code: z.string(),
  version: z.number().int(),
  updatedAt: z.string().datetime(),
}).openapi('Region');

const RegionParams = z.object({ code: RegionCode });

export const regionRoutes = [
  route({
    method: 'get',
    path: '/v1/regions',
    tag: 'Regions',
    summary: 'List the regions of the caller’s scope with their approval rules',
    permission: 'regions:read',
    category: 'regions',
    responses: { 200: { description: 'Regions', schema: z.object({ items: z.array(RegionSchema) }) } },
    async handler({ deps, principal }) {
      return { body: { items: await listRegions(deps.db, regionScope(principal)) } };
    },
  }),
  route({
    method: 'get',
    path: '/v1/regions/{code}',
    tag: 'Regions',
    summary: 'Read one region',
    permission: 'regions:read',
    category: 'regions',
    params: RegionParams,
    responses: { 200: { description: 'The region', schema: RegionSchema } },
    async handler({ deps, principal, params }) {
      const region = await getRegion(deps.db, params.code);
      if (!region) throw notFound('Region');
      if (!inRegion(principal, params.code))
        throw outsideRegion('Region', 'region.read', { id: params.code, region: params.code });
      return { body: region };
    },
  }),
  route({
    method: 'put',
    path: '/v1/regions/{code}',
    tag: 'Regions',
    summary: 'Create or replace a region and its approval rules',
    description:
      'Steps already requested keep the rule they were requested under; the new rules apply to steps requested from now on.',
    permission: 'regions:write',
    category: 'regions',
    params: RegionParams,
    body: RegionInput,
    responses: {
      200: { description: 'Replaced', schema: RegionSchema },
      201: { description: 'Created', schema: RegionSchema },
    },
    async handler({ deps, principal, params, body, actor }) {
      // Another region is a 404 whether or not it exists, and a refused write to it is audited either way.
      if (!inRegion(principal, params.code)) {
        const exists = (await getRegion(deps.db, params.code)) !== null;
        throw outsideRegion('Region', exists ? 'region.update' : 'region.create', { id: params.code, region: params.code });
      }
      const { region, created } = await deps.db.transaction(async (tx) => {
        const result = await upsertRegion(tx, params.code, body, principal.sub);
        await appendAudit(tx, {
          ...actor,
          action: result.created ? 'region.create' : 'region.update',
          category: 'regions',
          targetType: 'region',
          targetId: params.code,
          region: params.code,
          outcome: 'allowed',
          details: { version: result.region.version },
        });
        return result;
      });
      return { status: created ? 201 : 200, body: region };
    },
  }),
];
