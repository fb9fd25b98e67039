/**
 * Scoring's per-process cache of subjects' signals, kept exact against database snapshots.
 *
 * An entry holds what scoring read about one subject in one REPEATABLE READ snapshot (its trigger
 * candidates, and the signals of a time range) together with that snapshot
 * (`pg_current_snapshot()`). A later scoring, in its own snapshot, reads only the subject's rows
 * whose inserting transaction (`signals.xid`) the entry's snapshot did not see, and adds them: the
 * result is exactly what a full read in the later snapshot returns, because signals are
 * append-only (never updated or deleted) and a row is visible to a snapshot iff its transaction
 * is. An entry is only used by a scoring whose snapshot sees everything the entry's snapshot saw
 * (`sees`); any other case reads the subject in full. Entries are immutable (a scoring in flight
 * may hold one), bounded in number and size, and evicted least recently used first.
 */
import type { ScoringSignal } from '../../domain/scoring';

/** A stored signal with its time in microseconds (the exact value range bounds compare with). */
export interface CachedSignal extends ScoringSignal {
  us: number;
}

/** `pg_current_snapshot()` as text and parsed. */
export interface Snapshot {
  text: string;
  xmin: bigint;
  xmax: bigint;
  xip: Set<bigint>;
}

export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip] = text.split(':') as [string, string, string];
  return {
    text,
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    xip: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []),
  };
}

/**
 * Whether every transaction `earlier` sees as committed, `later` sees too. A transaction `later`
 * still sees in progress and that `earlier` counted as finished would break it; every other one
 * below `earlier.xmax` and not in progress for `earlier` is finished for `later` as well.
 */
export function sees(later: Snapshot, earlier: Snapshot): boolean {
  if (earlier.xmax > later.xmax) return false;
  for (const x of later.xip) if (x < earlier.xmax && !earlier.xip.has(x)) return false;
  return true;
}

export interface CachedSubject {
  snap: Snapshot;
  /** The trigger filter the candidates were read with (a change of active templates re-reads). */
  filter: string;
  /** Every trigger candidate of the subject (signals of the filter's types and severities), with attributes. */
  triggers: CachedSignal[];
  /** Every signal of the subject with `from ≤ time ≤ to` (ms, inclusive), attributes left out. */
  window: { from: number; to: number; signals: CachedSignal[] } | null;
}

const MAX_SUBJECTS = 200_000;
const MAX_SIGNALS = 400_000;

export class SubjectCache {
  private entries = new Map<string, CachedSubject>();
  private signals = 0;

  /** An entry usable in `snap` (sees everything the entry saw) and read with the same filter. */
  usable(subjectId: string, snap: Snapshot, filter: string): CachedSubject | null {
    const e = this.entries.get(subjectId);
    if (!e || e.filter !== filter || !sees(snap, e.snap)) return null;
    // Most recently used last.
    this.entries.delete(subjectId);
    this.entries.set(subjectId, e);
    return e;
  }

  /** Keep an entry, unless the one in place already saw at least as much. */
  put(subjectId: string, entry: CachedSubject): void {
    const old = this.entries.get(subjectId);
    if (old) {
      if (old.filter === entry.filter && sees(old.snap, entry.snap)) return;
      this.entries.delete(subjectId);
      this.signals -= size(old);
    }
    this.entries.set(subjectId, entry);
    this.signals += size(entry);
    for (const [id, e] of this.entries) {
      if (this.entries.size <= MAX_SUBJECTS && this.signals <= MAX_SIGNALS) break;
      this.entries.delete(id);
      this.signals -= size(e);
    }
  }

  clear(): void {
    this.entries.clear();
    this.signals = 0;
  }
}

const size = (e: CachedSubject) => e.triggers.length + (e.window?.signals.length ?? 0);

const caches = new WeakMap<object, SubjectCache>();

/** The cache of one database (each test system has its own). */
export function subjectCache(db: object): SubjectCache {
  let c = caches.get(db);
  if (!c) caches.set(db, (c = new SubjectCache()));
  return c;
}
