import type { ScoringSignal } from '../../domain/scoring';

let nextId = 1;

/** A signal as scoring sees it, with a fresh id (unit tests of domain/scoring.ts). */
export function sig(type: ScoringSignal['type'], at: number, over: Partial<ScoringSignal> = {}): ScoringSignal {
  return { id: String(nextId++), type, severity: null, occurredAt: at, count: 1, attributes: {}, ...over };
}
