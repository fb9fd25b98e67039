/**
 * The one authorization policy: which roles may perform which permission, and the region scope
 * rule. Every API route names exactly one permission (or `public`); the authorization matrix test
 * reads the same table.
 */
import { ALL_REGIONS, type Role, type Stakeholder } from './roles';

/** The authenticated caller, as read from a verified token. */
export interface Principal {
  sub: string;
  roles: Role[];
  stakeholder?: Stakeholder;
  regions: string[];
  languages: string[];
}

export const PERMISSIONS = {
  'regions:read': ['admin'],
  'regions:write': ['admin'],
  'settings:read': ['admin'],
  'settings:write': ['admin'],
  'system:check': ['admin'],
  'codec:use': ['auditor'],
  'identity:read': ['investigator'],
  'identity:grants': ['investigator', 'auditor', 'approver'],
  'identity:revoke': ['approver'],
  'alerts:confirm': ['analyst', 'investigator'],
  'cases:read': ['analyst', 'investigator', 'auditor'],
  'cases:assign': ['investigator'],
  'cases:notes': ['investigator'],
  'cases:steps': ['investigator'],
  'cases:resolve': ['investigator'],
  'notice_templates:read': ['admin', 'investigator'],
  'notice_templates:write': ['admin', 'investigator'],
  'dev:outbox': ['admin'],
  'approvals:inbox': ['approver'],
  'approvals:decide': ['approver'],
  'audit:read': ['auditor'],
  'audit:verify': ['auditor'],
  'audit:export': ['auditor'],
  'audit:checkpoint': ['auditor', 'admin'],
  'cases:history': ['auditor'],
  'subjects:import': ['connector'],
  'subjects:read': ['admin', 'analyst'],
  'signals:write': ['connector'],
  'signals:read': ['connector', 'admin'],
  'policies:read': ['admin'],
  'policies:write': ['admin'],
  'alerts:read': ['analyst', 'investigator'],
  'alerts:triage': ['analyst', 'investigator'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function hasPermission(principal: Principal, permission: Permission): boolean {
  const allowed: readonly Role[] = PERMISSIONS[permission];
  return principal.roles.some((r) => allowed.includes(r));
}

/** A principal sees only resources of its regions; outside them a resource does not exist (404). */
export function inRegion(principal: Principal, region: string): boolean {
  return principal.regions.includes(ALL_REGIONS) || principal.regions.includes(region);
}

/** SQL-friendly form of the region scope: `null` means every region. */
export function regionScope(principal: Principal): string[] | null {
  return principal.regions.includes(ALL_REGIONS) ? null : principal.regions;
}
