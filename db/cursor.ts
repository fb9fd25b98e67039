import { sql, type AnyColumn } from 'drizzle-orm';

/**
 * A `timestamptz` as a list cursor carries it: UTC with microseconds (`2026-11-27T14:00:00.123456Z`),
 * whatever the server's DateStyle and TimeZone; read back with `::timestamptz`, it is the exact value.
 */
export const cursorTime = (column: AnyColumn) =>
  sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
