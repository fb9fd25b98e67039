/**
 * CSV as HR systems export it: a header row, one record per line. Headers are matched
 * case-insensitively ignoring spaces and punctuation (`Employee ID`, `employee_id`, `EmployeeId`),
 * with the usual synonyms. Columns we do not know are ignored (and listed in the response), so
 * extra personal data in an export is never stored.
 */
import { createHmac } from 'node:crypto';
import { TextDecoder } from 'node:util';
import iconv from 'iconv-lite';
import { parse as parseContentType } from 'content-type';
import { parse } from 'csv-parse/sync';
import type { RequestHandler } from 'express';
import { ErrorType } from '../domain/errors';
import { HttpError } from './errors';

/**
 * Decodes a `text/csv` body (read raw) by its declared charset; without one it must be UTF-8.
 * Files Excel saves as plain "CSV" on Windows are windows-1252 and declare nothing: decoding them
 * as UTF-8 would store names with replacement characters, so they are refused, naming the remedy.
 * Other charsets are decoded by iconv-lite (Node's own TextDecoder reads windows-1252 as ISO-8859-1).
 */
export const decodeCsvBody: RequestHandler = (req, _res, next) => {
  if (!Buffer.isBuffer(req.body) || !req.is('text/csv')) return next();
  let charset: string;
  try {
    charset = (parseContentType(req.headers['content-type'] ?? '').parameters.charset ?? 'utf-8').toLowerCase();
  } catch {
    return next(new HttpError(ErrorType.UnsupportedMediaType, 'Malformed Content-Type header'));
  }
  if (charset === 'utf-8' || charset === 'utf8') {
    try {
      req.body = utf8.decode(req.body);
    } catch {
      return next(
        new HttpError(
          ErrorType.Validation,
          "Invalid CSV: the body is not valid UTF-8; send it as UTF-8, or declare the file's charset (e.g. text/csv; charset=windows-1252)",
        ),
      );
    }
    return next();
  }
  if (!iconv.encodingExists(charset)) {
    return next(
      new HttpError(ErrorType.UnsupportedMediaType, 'Unsupported charset: use utf-8, or one such as windows-1252 or iso-8859-2'),
    );
  }
  req.body = iconv.decode(req.body, charset);
  next();
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A row that cannot be a record (its cell count differs from the header's): rejected by its index. */
export class CsvRowError {
  constructor(readonly reason: string) {}
}

/** The header row's delimiter: comma, semicolon (European Excel) or tab, whichever it has most of outside quotes. */
function sniffDelimiter(text: string): string {
  const counts: Record<string, number> = { ',': 0, ';': 0, '\t': 0 };
  let quoted = false;
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '\n' || c === '\r')) break;
    else if (!quoted && c in counts) counts[c]!++;
  }
  return [';', '\t'].reduce((best, d) => (counts[d]! > counts[best]! ? d : best), ',');
}

const norm = (h: string) => h.toLowerCase().replace(/[^a-z0-9]/g, '');

function aliasMap(aliases: Record<string, string[]>): Map<string, string> {
  const m = new Map<string, string>();
  for (const [field, names] of Object.entries(aliases)) for (const n of [field, ...names]) m.set(norm(n), field);
  return m;
}

export interface CsvTable {
  /** Records keyed by canonical field name (empty cells left out), or why a row is none. */
  rows: Array<Record<string, string> | CsvRowError>;
  ignoredColumns: string[];
}

/** Parse a CSV body with a header row into records keyed by canonical field names. */
export function parseCsv(
  text: string,
  aliases: Record<string, string[]>,
  opts: { required: string[]; maxRows: number },
): CsvTable {
  const map = aliasMap(aliases);
  let records: string[][];
  try {
    records = parse(text, {
      bom: true,
      delimiter: sniffDelimiter(text),
      skip_empty_lines: true,
      trim: true,
      // A ragged row is rejected by its index below, not the whole file.
      relax_column_count: true,
    }) as string[][];
  } catch (err) {
    const e = err as { lines?: number; code?: string };
    throw new HttpError(ErrorType.Validation, `Invalid CSV${e.lines ? ` near line ${e.lines}` : ''}: ${e.code ?? 'malformed'}`);
  }
  const header = records[0];
  if (!header || header.length === 0) throw new HttpError(ErrorType.Validation, 'Invalid CSV: a header row is required');
  const fields = header.map((h) => map.get(norm(h)) ?? null);
  const seen = new Set<string>();
  fields.forEach((f, i) => {
    if (!f) return;
    if (seen.has(f)) throw new HttpError(ErrorType.Validation, `Invalid CSV: column "${header[i]}" repeats field ${f}`);
    seen.add(f);
  });
  const missing = opts.required.filter((r) => !seen.has(r));
  if (missing.length) {
    throw new HttpError(ErrorType.Validation, `Invalid CSV: the header row lacks ${missing.join(', ')}`, {
      missingColumns: missing,
      accepted: Object.fromEntries(missing.map((m) => [m, [m, ...(aliases[m] ?? [])]])),
    });
  }
  const body = records.slice(1);
  if (body.length > opts.maxRows)
    throw new HttpError(ErrorType.PayloadTooLarge, `At most ${opts.maxRows} rows per request (got ${body.length})`);
  const rows = body.map((cells) => {
    if (cells.length !== header.length)
      return new CsvRowError(`record: ${cells.length} cells where the header row has ${header.length}`);
    const r: Record<string, string> = {};
    cells.forEach((v, i) => {
      const f = fields[i];
      if (f && v !== '') r[f] = v;
    });
    return r;
  });
  return { rows, ignoredColumns: header.filter((_, i) => !fields[i]) };
}

// ---------------------------------------------------------------------------------------------
// Roster

export const ROSTER_COLUMNS: Record<string, string[]> = {
  externalId: ['employeeId', 'employeeNumber', 'personId', 'personnelNumber', 'hrId', 'workerId'],
  displayName: ['name', 'fullName', 'employeeName'],
  email: ['emailAddress', 'mail', 'workEmail'],
  upn: ['userPrincipalName'],
  manager: ['managerEmail', 'managerUpn', 'managerName', 'managerId'],
  department: ['dept'],
  groups: ['group', 'memberOf'],
  region: [],
};

/** Roster rows as the JSON import's records (groups split on `;` `|` or `,`). */
export function rosterFromCsv(text: string, maxRows: number): { records: unknown[]; ignoredColumns: string[] } {
  const t = parseCsv(text, ROSTER_COLUMNS, { required: ['externalId', 'region'], maxRows });
  return {
    ignoredColumns: t.ignoredColumns,
    records: t.rows.map((row) => {
      if (row instanceof CsvRowError) return row;
      const { groups, ...r } = row;
      return {
        ...r,
        groups: groups
          ? groups
              .split(/[;|,]/)
              .map((g) => g.trim())
              .filter(Boolean)
          : [],
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// HR events

export const HR_EVENT_COLUMNS: Record<string, string[]> = {
  externalId: ['eventId', 'recordId'],
  subject: ['employeeId', 'employeeNumber', 'personId', 'hrId', 'userId', 'workerId'],
  type: ['eventType', 'event', 'recordType'],
  occurredAt: ['eventDate', 'eventTime', 'timestamp', 'date'],
  lastWorkingDate: ['lastWorkDate', 'lastDay'],
  resignationDate: [],
  terminationDate: [],
  rating: ['performanceRating'],
  effectiveDate: [],
  remarks: ['comments', 'comment', 'notes'],
  oldLevel: ['previousLevel', 'fromLevel'],
  newLevel: ['toLevel'],
  demotion: [],
};

const HR_TYPE_ALIASES: Record<string, string> = {
  resignation: 'resignation',
  resigned: 'resignation',
  termination: 'termination',
  terminated: 'termination',
  performancereview: 'performance_review',
  review: 'performance_review',
  performanceimprovementplan: 'performance_improvement_plan',
  pip: 'performance_improvement_plan',
  joblevelchange: 'job_level_change',
  levelchange: 'job_level_change',
};

/** Which columns each HR event type carries in `attributes`. */
const HR_ATTRIBUTES: Record<string, string[]> = {
  resignation: ['lastWorkingDate', 'resignationDate'],
  termination: ['lastWorkingDate', 'terminationDate'],
  performance_review: ['rating', 'effectiveDate', 'remarks'],
  performance_improvement_plan: ['rating', 'effectiveDate', 'remarks'],
  job_level_change: ['oldLevel', 'newLevel', 'effectiveDate', 'remarks', 'demotion'],
};

/** The event's own date column, when the file has no separate event time. */
const DATE_FALLBACK: Record<string, string[]> = {
  resignation: ['resignationDate', 'lastWorkingDate'],
  termination: ['terminationDate', 'lastWorkingDate'],
  performance_review: ['effectiveDate'],
  performance_improvement_plan: ['effectiveDate'],
  job_level_change: ['effectiveDate'],
};

const asInstant = (v: string) => (/^\d{4}-\d{2}-\d{2}$/.test(v) ? `${v}T00:00:00Z` : v);
const asDate = (v: string) => (/^\d{4}-\d{2}-\d{2}T/.test(v) ? v.slice(0, 10) : v);

/**
 * HR rows as JSON events (source `hr`). Files without an event id get a stable one derived, with
 * the keyed hash, from (type, subject, date): re-sending the same file is then idempotent, and no
 * HR external id is stored in clear.
 */
export function hrEventsFromCsv(
  text: string,
  maxRows: number,
  pseudonymKey: string,
): { events: unknown[]; ignoredColumns: string[] } {
  const t = parseCsv(text, HR_EVENT_COLUMNS, { required: ['subject', 'type'], maxRows });
  const events = t.rows.map((r) => {
    if (r instanceof CsvRowError) return r;
    const type = HR_TYPE_ALIASES[norm(r.type ?? '')] ?? r.type;
    const attributes: Record<string, unknown> = {};
    for (const f of HR_ATTRIBUTES[type ?? ''] ?? []) {
      const v = r[f];
      if (v === undefined) continue;
      if (f === 'rating') attributes[f] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
      else if (f === 'demotion') attributes[f] = /^(true|yes|1)$/i.test(v);
      else if (f.endsWith('Date')) attributes[f] = asDate(v);
      else attributes[f] = v;
    }
    const dateField = r.occurredAt ?? (DATE_FALLBACK[type ?? ''] ?? []).map((f) => r[f]).find((v) => v !== undefined);
    const occurredAt = dateField ? asInstant(dateField) : undefined;
    const externalId =
      r.externalId ??
      (type && r.subject && occurredAt
        ? `hrcsv-${createHmac('sha256', pseudonymKey).update(`hr-event:${type}:${r.subject}:${occurredAt}`).digest('hex').slice(0, 32)}`
        : undefined);
    return { source: 'hr', externalId, subject: r.subject, type, occurredAt, attributes };
  });
  return { events, ignoredColumns: t.ignoredColumns };
}
