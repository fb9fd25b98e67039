export * from './audit-log';
export * from './regions';
export * from './settings';
export * from './system-checks';
