export * from './audit-log';
export * from './regions';
export * from './settings';
export * from './system-checks';
export * from './subjects';
export * from './alerts';
