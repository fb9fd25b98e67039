/**
 * Scoring math (pure, deterministic): from a subject's stored signals and a policy, the score of
 * the (subject, policy) pair, its severity, and the risk factors that make it up. The same inputs
 * always give the same result, whatever order the signals arrive in, which is what makes re-runs
 * and concurrent batches converge.
 *
 * Model:
 * - A subject is *triggered* by each signal matching the template's trigger. Each trigger opens an
 *   activation window `[trigger, trigger + activationWindowDays]`; the pair's score is the highest
 *   over its windows (ties: the earliest trigger).
 * - Points: every signal in the window whose indicator has a weight adds `weight` (activity events:
 *   `weight × count`). The trigger itself adds its indicator's weight as the `trigger` factor.
 * - Boosters add a percentage of those indicator points: priority group; activity above the
 *   subject's usual daily level (see `usualDailyActivity`); a previous confirmed violation.
 * - Score = min(100, points + boosters). An alert is due when score ≥ `minRiskScore`.
 */
import { indicatorOf, TEMPLATES, type Indicator, type ScoringPolicy } from './policies';
import { isActivityType, isDemotion, type Severity, type SignalType } from './signals';

export const DAY_MS = 86_400_000;
export const MAX_SCORE = 100;
/** Days before a trigger that define the subject's usual daily activity. */
export const BASELINE_DAYS = 30;
/** A day is "above usual" when its activity exceeds this multiple of the usual daily level. */
export const ABOVE_USUAL_FACTOR = 2;
/** Signal ids listed per factor; the rest are counted (and found again by indicator + window). */
export const MAX_LISTED_SIGNALS = 50;

/** A stored signal, as scoring reads it. Ids are the signals table's ids, as strings. */
export interface ScoringSignal {
  id: string;
  type: SignalType;
  severity: Severity | null;
  occurredAt: number;
  /** Activity events: how many operations the event stands for (≥ 1); others 1. */
  count: number;
  attributes: Record<string, unknown>;
}

export interface ScoringSubject {
  id: string;
  groups: string[];
  /** A case about this subject was resolved as a confirmed violation. */
  hasConfirmedViolation: boolean;
}

/** A risk factor: which indicator or booster contributed how many points, traced to signals. */
export interface RiskFactor {
  kind: 'trigger' | 'indicator' | 'booster';
  name: string;
  points: number;
  signalIds?: string[];
  detail?: Record<string, unknown>;
}

export interface ScoreResult {
  triggerSignalId: string;
  triggeredAt: number;
  windowEnd: number;
  /** min(100, rawScore). */
  score: number;
  /** Sum of every factor's points. */
  rawScore: number;
  severity: Severity;
  /** score ≥ the policy's minimum risk threshold. */
  alertDue: boolean;
  riskFactors: RiskFactor[];
}

/** Percent of `base`, rounded half up, in integers (no float drift between runs). */
export function percentOf(base: number, percent: number): number {
  return Math.floor((base * percent + 50) / 100);
}

export function severityFor(score: number, bands: { medium: number; high: number }): Severity {
  if (score >= bands.high) return 'high';
  if (score >= bands.medium) return 'medium';
  return 'low';
}

const byTimeThenId = (a: ScoringSignal, b: ScoringSignal) => a.occurredAt - b.occurredAt || compareIds(a.id, b.id);

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

const utcDay = (t: number) => Math.floor(t / DAY_MS);

/**
 * The subject's usual daily activity before `start`: total activity count over the active days of
 * the baseline period, divided by the number of those days. `null` when there was no activity in
 * the baseline (the usual level is unknown, so nothing can be "above" it).
 */
export function usualDailyActivity(signals: ScoringSignal[], start: number): number | null {
  const from = start - BASELINE_DAYS * DAY_MS;
  const perDay = new Map<number, number>();
  for (const s of signals) {
    if (!isActivityType(s.type) || s.occurredAt < from || s.occurredAt >= start) continue;
    perDay.set(utcDay(s.occurredAt), (perDay.get(utcDay(s.occurredAt)) ?? 0) + s.count);
  }
  if (perDay.size === 0) return null;
  let total = 0;
  for (const v of perDay.values()) total += v;
  return total / perDay.size;
}

/** Score one trigger's window. */
function scoreWindow(
  policy: ScoringPolicy,
  subject: ScoringSubject,
  trigger: ScoringSignal,
  signals: ScoringSignal[],
): ScoreResult {
  const start = trigger.occurredAt;
  const end = start + policy.activationWindowDays * DAY_MS;
  const weight = (i: Indicator) => policy.indicators[i] ?? 0;
  const factors: RiskFactor[] = [];

  const triggerIndicator = indicatorOf(trigger.type, trigger.severity);
  const triggerPoints = weight(triggerIndicator);
  factors.push({
    kind: 'trigger',
    name: triggerIndicator,
    points: triggerPoints,
    signalIds: [trigger.id],
    detail: { occurredAt: new Date(start).toISOString(), windowEnd: new Date(end).toISOString() },
  });

  const groups = new Map<Indicator, { points: number; events: number; count: number; ids: string[] }>();
  const activityPerDay = new Map<number, { count: number; events: number; ids: string[] }>();
  for (const s of signals) {
    if (s.id === trigger.id || s.occurredAt < start || s.occurredAt > end) continue;
    // A job-level change is a risk indicator when it is a demotion, not a promotion (its attributes
    // are read with the trigger candidates; without them, as before, it counts).
    if (s.type === 'job_level_change' && Object.keys(s.attributes).length > 0 && !isDemotion(s.attributes)) continue;
    if (isActivityType(s.type)) {
      const d = activityPerDay.get(utcDay(s.occurredAt)) ?? { count: 0, events: 0, ids: [] };
      d.count += s.count;
      d.events += 1;
      if (d.ids.length < MAX_LISTED_SIGNALS) d.ids.push(s.id);
      activityPerDay.set(utcDay(s.occurredAt), d);
    }
    const ind = indicatorOf(s.type, s.severity);
    const w = weight(ind);
    if (w === 0) continue;
    const units = isActivityType(s.type) ? s.count : 1;
    const g = groups.get(ind) ?? { points: 0, events: 0, count: 0, ids: [] };
    g.points += w * units;
    g.events += 1;
    g.count += units;
    if (g.ids.length < MAX_LISTED_SIGNALS) g.ids.push(s.id);
    groups.set(ind, g);
  }
  // Stable order for stored factors: by indicator name.
  for (const ind of [...groups.keys()].sort()) {
    const g = groups.get(ind)!;
    factors.push({
      kind: 'indicator',
      name: ind,
      points: g.points,
      signalIds: g.ids,
      detail: {
        weight: weight(ind),
        events: g.events,
        count: g.count,
        ...(g.events > g.ids.length ? { signalIdsTruncated: true } : {}),
      },
    });
  }

  const base = factors.reduce((sum, f) => sum + f.points, 0);
  // A booster is a share of those points: the signals behind it are theirs.
  const baseIds = [...new Set(factors.flatMap((f) => f.signalIds ?? []))];
  const behindBase = {
    signalIds: baseIds.slice(0, MAX_LISTED_SIGNALS),
    truncated: baseIds.length > MAX_LISTED_SIGNALS || factors.some((f) => f.detail?.signalIdsTruncated === true),
  };
  const b = policy.boosters;
  if (b.priorityGroup > 0) {
    const matched = subject.groups.filter((g) => policy.priorityGroups.includes(g)).sort();
    if (matched.length) {
      factors.push({
        kind: 'booster',
        name: 'priority_group',
        points: percentOf(base, b.priorityGroup),
        signalIds: behindBase.signalIds,
        detail: {
          percent: b.priorityGroup,
          groups: matched,
          ...(behindBase.truncated ? { signalIdsTruncated: true } : {}),
        },
      });
    }
  }
  if (b.aboveUsualActivity > 0) {
    const usual = usualDailyActivity(signals, start);
    if (usual !== null) {
      let peak: { day: number; count: number; events: number; ids: string[] } | null = null;
      for (const [day, d] of [...activityPerDay.entries()].sort((x, y) => x[0] - y[0])) {
        if (d.count > usual * ABOVE_USUAL_FACTOR && (!peak || d.count > peak.count)) peak = { day, ...d };
      }
      if (peak) {
        factors.push({
          kind: 'booster',
          name: 'above_usual_activity',
          points: percentOf(base, b.aboveUsualActivity),
          signalIds: peak.ids,
          detail: {
            percent: b.aboveUsualActivity,
            usualDailyLevel: Math.round(usual * 100) / 100,
            peakDay: new Date(peak.day * DAY_MS).toISOString().slice(0, 10),
            peakCount: peak.count,
            ...(peak.events > peak.ids.length ? { signalIdsTruncated: true } : {}),
          },
        });
      }
    }
  }
  if (b.previousViolation > 0 && subject.hasConfirmedViolation) {
    factors.push({
      kind: 'booster',
      name: 'previous_confirmed_violation',
      points: percentOf(base, b.previousViolation),
      signalIds: behindBase.signalIds,
      detail: { percent: b.previousViolation, ...(behindBase.truncated ? { signalIdsTruncated: true } : {}) },
    });
  }

  const rawScore = factors.reduce((sum, f) => sum + f.points, 0);
  const score = Math.min(MAX_SCORE, rawScore);
  return {
    triggerSignalId: trigger.id,
    triggeredAt: start,
    windowEnd: end,
    score,
    rawScore,
    severity: severityFor(score, policy.thresholds.severity),
    alertDue: score >= policy.thresholds.minRiskScore,
    riskFactors: factors,
  };
}

/** The triggers of a template among the signals, oldest first. */
export function triggersOf(policy: Pick<ScoringPolicy, 'template'>, signals: ScoringSignal[]): ScoringSignal[] {
  const t = TEMPLATES[policy.template];
  return signals.filter((s) => t.isTrigger(s)).sort(byTimeThenId);
}

/**
 * The score of a (subject, policy) pair from the subject's signals (triggers, the windows and the
 * baseline before them), or `null` when the subject was never triggered for this policy.
 */
export function scoreSubject(policy: ScoringPolicy, subject: ScoringSubject, unordered: ScoringSignal[]): ScoreResult | null {
  const t = TEMPLATES[policy.template];
  if (!unordered.some((s) => t.isTrigger(s))) return null;
  // Databases return rows in no particular order: fix one, so listed ids and ties never depend on it.
  const signals = [...unordered].sort(byTimeThenId);
  const triggers = triggersOf(policy, signals);
  let best: ScoreResult | null = null;
  for (const t of triggers) {
    const r = scoreWindow(policy, subject, t, signals);
    if (!best || r.score > best.score || (r.score === best.score && r.rawScore > best.rawScore)) best = r;
  }
  return best;
}

/** The alert of a pair as the decision needs it. */
export interface AlertState {
  score: number;
  severity: Severity;
  triggerSignalId: string | null;
}

export type AlertDecision = { action: 'none' } | { action: 'create' } | { action: 'raise' };

const SEVERITY_RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2 };
export const maxSeverity = (a: Severity, b: Severity): Severity => (SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b);

/**
 * What to do with a pair's alert given its new score:
 * - below the threshold: nothing (alerts never go down);
 * - an open alert: raise it when the score is higher, else nothing;
 * - no open alert: create one, unless a closed (dismissed/resolved) alert already covered the same
 *   trigger with at least this score — re-running old evidence must not re-raise a dismissed alert.
 */
export function decideAlert(result: ScoreResult, open: AlertState | null, lastClosed: AlertState | null): AlertDecision {
  if (!result.alertDue) return { action: 'none' };
  if (open) return result.score > open.score ? { action: 'raise' } : { action: 'none' };
  if (lastClosed && lastClosed.triggerSignalId === result.triggerSignalId && lastClosed.score >= result.score)
    return { action: 'none' };
  return { action: 'create' };
}
