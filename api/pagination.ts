/**
 * Cursor pagination shared by every list: `?limit=&cursor=` → `{ items, nextCursor }`. Cursors are
 * opaque base64url JSON of the keyset of the last item (e.g. `[createdAt, id]`), so lists stay fast
 * over millions of rows and stable while rows are added.
 */
import { z } from 'zod';
import { ErrorType } from '../domain/errors';
import { HttpError } from './errors';

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});
export type PageQuery = z.infer<typeof PageQuery>;

/**
 * `[createdAt, id]`: the keyset of lists ordered by creation, the time as `createdCursorAt` writes
 * it (UTC, microseconds). A tampered time must be a 400 here, not a date Postgres refuses mid-query.
 */
export const CreatedCursor = z.tuple([z.string().datetime({ precision: 6 }), z.string().uuid()]);

export function encodeCursor(key: unknown[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

/** Decode a cursor made by `encodeCursor`; a tampered or foreign cursor is a 400 naming `cursor`. */
export function decodeCursor<T extends unknown[]>(cursor: string | undefined, schema: z.ZodType<T>): T | null {
  if (!cursor) return null;
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new HttpError(ErrorType.Validation, 'Invalid request: query.cursor: not a cursor returned by this list', [
      { field: 'query.cursor', message: 'not a cursor returned by this list' },
    ]);
  }
}

/** Given `limit + 1` rows, the page and its next cursor. */
export function page<T>(rows: T[], limit: number, keyOf: (row: T) => unknown[]): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor(keyOf(last)) : null };
}

export const pageSchema = <T extends z.ZodTypeAny>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });
