/**
 * Edges of the scoring math (domain/scoring.ts) and of the template rules it relies on
 * (domain/policies.ts, isDemotion): window bounds, several triggers, the usual daily level, boosters,
 * cap and bands, DLP weights, job-level changes, huge counts, determinism and traceability.
 * Complements test/unit/scoring.test.ts (which holds the basic cases); pure, no system needed.
 */
import { describe, expect, it } from 'vitest';
import {
  Boosters,
  defaultIndicators,
  PolicyScope,
  TEMPLATES,
  triggerFilter,
  POLICY_TEMPLATES,
  type ScoringPolicy,
} from '../../domain/policies';
import {
  DAY_MS,
  MAX_LISTED_SIGNALS,
  scoreSubject,
  severityFor,
  usualDailyActivity,
  type RiskFactor,
  type ScoreResult,
} from '../../domain/scoring';
import { isDemotion, SEVERITIES, SIGNAL_TYPES, type Severity } from '../../domain/signals';
import { sig } from '../helpers/scoring';

// Noon UTC, so that "the same UTC day" and "the next UTC day" are both a few hours away.
const T0 = Date.parse('2026-11-02T12:00:00Z');
const HOUR = 3_600_000;
const OFF = Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 0 });

function policy(over: Partial<ScoringPolicy> = {}): ScoringPolicy {
  return {
    id: 'p1',
    version: 1,
    template: 'data_theft_departing_users',
    scope: PolicyScope.parse({}),
    priorityGroups: [],
    indicators: { file_copied_to_usb: 3, resignation: 10, termination: 10 },
    thresholds: { minRiskScore: 40, severity: { medium: 60, high: 80 } },
    boosters: OFF,
    activationWindowDays: 30,
    dailyAlertCap: 100,
    ...over,
  };
}

const resignation = (at = T0) => sig('resignation', at, { attributes: { lastWorkingDate: '2026-11-30' } });
const termination = (at: number) => sig('termination', at);
const usb = (at: number, count = 1) => sig('file_copied_to_usb', at, { count });
const dlp = (at: number, severity: Severity) => sig('dlp_alert', at, { severity });
const review = (at: number, rating: unknown = 2) =>
  sig('performance_review', at, { attributes: { rating, effectiveDate: '2026-11-02' } });
const levelChange = (at: number, attributes: Record<string, unknown>) => sig('job_level_change', at, { attributes });
const subject = { id: 's1', groups: ['sales'], hasConfirmedViolation: false };

const factor = (r: ScoreResult, name: string): RiskFactor | undefined => r.riskFactors.find((f) => f.name === name);
const sumOfFactors = (r: ScoreResult) => r.riskFactors.reduce((s, f) => s + f.points, 0);

/** A deterministic shuffle (no Math.random: a failure must replay). */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const j = x % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('the activation window [trigger, trigger + N days]', () => {
  it('holds a non-activity indicator exactly N days after the trigger, not one millisecond later', () => {
    const p = policy({ template: 'data_leaks', indicators: defaultIndicators('data_leaks'), activationWindowDays: 1 });
    const trigger = dlp(T0, 'high');
    const atEnd = dlp(T0 + DAY_MS, 'medium');
    const after = dlp(T0 + DAY_MS + 1, 'medium');
    const before = dlp(T0 - 1, 'medium');
    const r = scoreSubject(p, subject, [before, trigger, atEnd, after])!;
    expect(r.windowEnd).toBe(T0 + DAY_MS);
    expect(factor(r, 'dlp_alert_medium')).toMatchObject({ points: 10, signalIds: [atEnd.id] });
    expect(r.score).toBe(30);
  });

  it('a signal in the trigger’s own millisecond counts in the window and not in the usual level before it', () => {
    const p = policy({ boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 100, previousViolation: 0 }) });
    const sameInstant = usb(T0, 7);
    expect(usualDailyActivity([sameInstant], T0)).toBeNull();
    const r = scoreSubject(p, subject, [sameInstant, resignation(T0)])!;
    expect(factor(r, 'file_copied_to_usb')).toMatchObject({ points: 21, signalIds: [sameInstant.id] });
  });
});

describe('several triggers', () => {
  it('overlapping windows: each signal counts once, in the best window; windows are never added up', () => {
    const first = resignation(T0);
    const second = termination(T0 + DAY_MS);
    const copies = usb(T0 + 2 * DAY_MS, 10);
    const r = scoreSubject(policy(), subject, [first, second, copies])!;
    // First window: its trigger 10 + the termination inside it 10 + 30 = 50; second: 10 + 30 = 40.
    expect(r.triggerSignalId).toBe(first.id);
    expect(r.rawScore).toBe(50);
    expect(r.score).toBe(50);
    expect(factor(r, 'file_copied_to_usb')).toMatchObject({ points: 30, signalIds: [copies.id] });
    const listed = r.riskFactors.flatMap((f) => f.signalIds ?? []);
    expect(new Set(listed).size).toBe(listed.length);
  });

  it('a later trigger of another type wins when its window scores higher; the earlier activity is not carried over', () => {
    const p = policy({ activationWindowDays: 5 });
    const first = resignation(T0);
    const early = usb(T0 + DAY_MS, 2);
    const later = termination(T0 + 20 * DAY_MS);
    const late = usb(T0 + 21 * DAY_MS, 5);
    const r = scoreSubject(p, subject, [late, later, early, first])!;
    expect(r.triggerSignalId).toBe(later.id);
    expect(r.riskFactors.map((f) => [f.kind, f.name, f.points])).toEqual([
      ['trigger', 'termination', 10],
      ['indicator', 'file_copied_to_usb', 15],
    ]);
    expect(r.triggeredAt).toBe(later.occurredAt);
    expect(r.windowEnd).toBe(later.occurredAt + 5 * DAY_MS);
  });

  it('equal windows: the earliest trigger is kept, whatever the order the signals come in', () => {
    const p = policy({ activationWindowDays: 2 });
    const a = resignation(T0);
    const b = resignation(T0 + 10 * DAY_MS);
    const signals = [a, usb(T0 + HOUR, 4), b, usb(b.occurredAt + HOUR, 4)];
    for (const order of [signals, [...signals].reverse()]) {
      const r = scoreSubject(p, subject, order)!;
      expect(r.triggerSignalId).toBe(a.id);
      expect(r.score).toBe(22);
    }
  });

  it('data leaks: Medium and Low DLP alerts neither trigger nor open a window, even with activity after them', () => {
    const p = policy({ template: 'data_leaks', indicators: defaultIndicators('data_leaks') });
    expect(scoreSubject(p, subject, [dlp(T0, 'medium'), dlp(T0, 'low'), usb(T0 + HOUR, 50)])).toBeNull();
  });
});

describe('the usual daily level', () => {
  const on = (percent = 50) =>
    policy({ boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: percent, previousViolation: 0 }) });

  it('is a mean over active days only: quiet days of the 30 do not dilute it', () => {
    const baseline = [usb(T0 - 20 * DAY_MS, 6)];
    expect(usualDailyActivity(baseline, T0)).toBe(6);
    // 13 > 2 × 6: boosted. With quiet days counted the level would be 0.2 and 12 would also boost.
    const spike = scoreSubject(on(), subject, [...baseline, resignation(), usb(T0 + HOUR, 13)])!;
    expect(factor(spike, 'above_usual_activity')).toMatchObject({ points: 25, detail: { usualDailyLevel: 6, peakCount: 13 } });
  });

  it('exactly twice the usual level is not above it; one more is', () => {
    const baseline = [usb(T0 - 3 * DAY_MS, 5), usb(T0 - 4 * DAY_MS, 7)]; // usual 6
    const twice = scoreSubject(on(), subject, [...baseline, resignation(), usb(T0 + HOUR, 12)])!;
    expect(factor(twice, 'above_usual_activity')).toBeUndefined();
    expect(twice.score).toBe(46);
    const above = scoreSubject(on(), subject, [...baseline, resignation(), usb(T0 + HOUR, 13)])!;
    expect(factor(above, 'above_usual_activity')?.points).toBe(25);
    expect(above.score).toBe(49 + 25);
  });

  it('covers the 30 days before the trigger: exactly 30 days before is in, one millisecond earlier is out', () => {
    expect(usualDailyActivity([usb(T0 - 30 * DAY_MS, 4)], T0)).toBe(4);
    expect(usualDailyActivity([usb(T0 - 30 * DAY_MS - 1, 4)], T0)).toBeNull();
    expect(usualDailyActivity([usb(T0 - 1, 4)], T0)).toBe(4);
  });

  it('days are UTC days: 23:30 and 00:30 UTC are two days, both in the baseline and in the window', () => {
    const midnight = Date.UTC(2026, 9, 20); // 2026-10-20T00:00Z, inside the 30 days before T0
    expect(usualDailyActivity([usb(midnight - HOUR / 2, 2), usb(midnight + HOUR / 2, 4)], T0)).toBe(3);
    expect(usualDailyActivity([usb(midnight + HOUR / 2, 2), usb(midnight + 23 * HOUR, 4)], T0)).toBe(6);

    const baseline = [usb(T0 - 5 * DAY_MS, 3)]; // usual 3: above means more than 6 in one UTC day
    const nextMidnight = Date.UTC(2026, 10, 4);
    const split = [usb(nextMidnight - HOUR / 2, 4), usb(nextMidnight + HOUR / 2, 4)];
    expect(factor(scoreSubject(on(), subject, [...baseline, resignation(), ...split])!, 'above_usual_activity')).toBeUndefined();
    const oneDay = [usb(nextMidnight + HOUR / 2, 4), usb(nextMidnight + 20 * HOUR, 4)];
    expect(factor(scoreSubject(on(), subject, [...baseline, resignation(), ...oneDay])!, 'above_usual_activity')).toMatchObject({
      signalIds: oneDay.map((s) => s.id),
      detail: { peakDay: '2026-11-04', peakCount: 8 },
    });
  });

  it('is the level before each trigger: a later trigger is measured against the activity before it', () => {
    const p = on(10);
    const early = resignation(T0);
    const burst = usb(T0 + DAY_MS, 20); // first window; also the baseline of the later trigger
    const later = termination(T0 + 10 * DAY_MS);
    const r = scoreSubject({ ...p, activationWindowDays: 5 }, subject, [
      usb(T0 - 2 * DAY_MS, 2),
      early,
      burst,
      later,
      usb(later.occurredAt + HOUR, 30),
    ])!;
    // First window: 10 + 60 + 7 = 77. Later: 10 + 90 = 100 points; the usual level before it is
    // (2 + 20) / 2 = 11 (the first window's burst included), and 30 > 22: boosted by 10.
    expect(r.triggerSignalId).toBe(later.id);
    expect(factor(r, 'above_usual_activity')).toMatchObject({ points: 10, detail: { usualDailyLevel: 11, peakCount: 30 } });
  });

  it('the busiest of the days above the usual level is the one named', () => {
    const baseline = [usb(T0 - 2 * DAY_MS, 2)];
    const d1 = usb(T0 + DAY_MS, 5);
    const d2 = usb(T0 + 2 * DAY_MS, 9);
    const d3 = usb(T0 + 3 * DAY_MS, 9);
    const r = scoreSubject(on(), subject, [...baseline, resignation(), d1, d2, d3])!;
    expect(factor(r, 'above_usual_activity')).toMatchObject({
      signalIds: [d2.id],
      detail: { peakCount: 9, peakDay: '2026-11-04' },
    });
  });
});

describe('boosters', () => {
  const spikeSignals = () => [usb(T0 - 2 * DAY_MS, 1), resignation(), usb(T0 + HOUR, 10)]; // 10 + 30 = 40 points
  const everything = { id: 's1', groups: ['vip'], hasConfirmedViolation: true };

  it('each booster at 0 is off: no factor and no points, even when its condition holds', () => {
    const p = policy({ priorityGroups: ['vip'], boosters: OFF });
    const r = scoreSubject(p, everything, spikeSignals())!;
    expect(r.riskFactors.filter((f) => f.kind === 'booster')).toEqual([]);
    expect(r.score).toBe(40);
  });

  it('each is a percentage of the points before boosters (trigger included), rounded half up on its own, never of another booster', () => {
    const p = policy({
      priorityGroups: ['vip'],
      boosters: Boosters.parse({ priorityGroup: 50, aboveUsualActivity: 25, previousViolation: 10 }),
    });
    const r = scoreSubject(p, everything, [usb(T0 - 2 * DAY_MS, 1), resignation(), usb(T0 + HOUR, 11)])!; // 43 points
    expect(r.riskFactors.filter((f) => f.kind === 'booster').map((f) => [f.name, f.points])).toEqual([
      ['priority_group', 22], // 21.5
      ['above_usual_activity', 11], // 10.75
      ['previous_confirmed_violation', 4], // 4.3
    ]);
    expect(r.rawScore).toBe(43 + 22 + 11 + 4);
  });

  it('the priority group follows the subject’s current groups, any of them matching', () => {
    const p = policy({
      priorityGroups: ['vip', 'board'],
      boosters: Boosters.parse({ priorityGroup: 50, aboveUsualActivity: 0, previousViolation: 0 }),
    });
    const signals = spikeSignals();
    expect(scoreSubject(p, { ...subject, groups: ['sales'] }, signals)!.score).toBe(40);
    expect(factor(scoreSubject(p, { ...subject, groups: ['vip', 'sales', 'board'] }, signals)!, 'priority_group')).toMatchObject({
      points: 20,
      detail: { groups: ['board', 'vip'] },
    });
  });

  it('a booster takes a score to the minimum risk score: the alert is due exactly there', () => {
    // 12 + 8 × 3 = 36 points; +25 % = 9 → 45, the minimum.
    const p = policy({
      indicators: { resignation: 12, file_copied_to_usb: 3 },
      thresholds: { minRiskScore: 45, severity: { medium: 60, high: 80 } },
      boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 25 }),
    });
    const signals = [resignation(), usb(T0 + HOUR, 8)];
    expect(scoreSubject(p, subject, signals)).toMatchObject({ score: 36, alertDue: false });
    expect(scoreSubject(p, { ...subject, hasConfirmedViolation: true }, signals)).toMatchObject({ score: 45, alertDue: true });
    const higher = { ...p, thresholds: { ...p.thresholds, minRiskScore: 46 } };
    expect(scoreSubject(higher, { ...subject, hasConfirmedViolation: true }, signals)).toMatchObject({
      score: 45,
      alertDue: false,
    });
  });
});

describe('cap, bands and threshold', () => {
  it('the cap applies after the boosters; the severity is the capped score’s', () => {
    const p = policy({
      priorityGroups: ['sales'],
      boosters: Boosters.parse({ priorityGroup: 100, aboveUsualActivity: 0, previousViolation: 0 }),
    });
    const r = scoreSubject(p, subject, [resignation(), usb(T0 + HOUR, 20)])!;
    expect(r.rawScore).toBe(140);
    expect(sumOfFactors(r)).toBe(140);
    expect(r).toMatchObject({ score: 100, severity: 'high', alertDue: true });
  });

  it('severity exactly at the medium and high bands, from scored signals', () => {
    const p = policy({ indicators: { resignation: 0, file_copied_to_usb: 1 } });
    const at = (n: number) => scoreSubject(p, subject, [resignation(), usb(T0 + HOUR, n)])!;
    expect([59, 60, 79, 80].map((n) => [at(n).score, at(n).severity])).toEqual([
      [59, 'low'],
      [60, 'medium'],
      [79, 'medium'],
      [80, 'high'],
    ]);
    expect(severityFor(70, { medium: 70, high: 70 })).toBe('high');
    expect(severityFor(69, { medium: 70, high: 70 })).toBe('low');
  });

  it('a minimum risk score of 100 is reached by a capped score', () => {
    const p = policy({ thresholds: { minRiskScore: 100, severity: { medium: 60, high: 80 } } });
    expect(scoreSubject(p, subject, [resignation(), usb(T0 + HOUR, 29)])).toMatchObject({ score: 97, alertDue: false });
    expect(scoreSubject(p, subject, [resignation(), usb(T0 + HOUR, 300)])).toMatchObject({
      score: 100,
      rawScore: 910,
      alertDue: true,
    });
  });
});

describe('weights', () => {
  it('data leaks: DLP alerts weigh by severity (defaults High 20, Medium 10, Low 5), the trigger by its own', () => {
    const p = policy({ template: 'data_leaks', indicators: defaultIndicators('data_leaks') });
    const trigger = dlp(T0, 'high');
    const signals = [
      trigger,
      dlp(T0 + HOUR, 'high'),
      dlp(T0 + 2 * HOUR, 'medium'),
      dlp(T0 + 3 * HOUR, 'low'),
      dlp(T0 + 4 * HOUR, 'low'),
    ];
    const r = scoreSubject(p, subject, signals)!;
    expect(r.riskFactors.map((f) => [f.kind, f.name, f.points])).toEqual([
      ['trigger', 'dlp_alert_high', 20],
      ['indicator', 'dlp_alert_high', 20],
      ['indicator', 'dlp_alert_low', 10],
      ['indicator', 'dlp_alert_medium', 10],
    ]);
    expect(r.score).toBe(60);
  });

  it('activity weighs weight × count, up to the largest count a connector may send, without loss', () => {
    const p = policy({ indicators: { resignation: 100, file_copied_to_usb: 100 } });
    const huge = usb(T0 + HOUR, 1_000_000);
    const r = scoreSubject(p, subject, [resignation(), huge, usb(T0 + 2 * HOUR, 1_000_000)])!;
    expect(factor(r, 'file_copied_to_usb')).toMatchObject({ points: 200_000_000, detail: { events: 2, count: 2_000_000 } });
    expect(r).toMatchObject({ rawScore: 200_000_100, score: 100 });
  });

  it('a signal kind without a weight adds nothing and no factor', () => {
    const r = scoreSubject(policy(), subject, [resignation(), sig('file_printed', T0 + HOUR, { count: 50 })])!;
    expect(r.riskFactors.map((f) => f.name)).toEqual(['resignation']);
    expect(r.score).toBe(10);
  });
});

describe('job-level changes (risky users)', () => {
  it('levels are compared as numbers, not as strings: L10 → L9 is a demotion, L9 → L10 a promotion', () => {
    expect(isDemotion({ oldLevel: 'L10', newLevel: 'L9' })).toBe(true);
    expect(isDemotion({ oldLevel: 'L9', newLevel: 'L10' })).toBe(false);
    expect(isDemotion({ oldLevel: '3.5', newLevel: '3' })).toBe(true);
    expect(isDemotion({ oldLevel: 'L5', newLevel: 'L5' })).toBe(false);
  });

  it('the HR system’s own flag decides over the levels', () => {
    expect(isDemotion({ oldLevel: 'L5', newLevel: 'L4', demotion: false })).toBe(false);
    expect(isDemotion({ oldLevel: 'L4', newLevel: 'L5', demotion: true })).toBe(true);
  });

  it('a demotion triggers with its weight; a promotion does not trigger', () => {
    const p = policy({ template: 'risky_users', indicators: defaultIndicators('risky_users') });
    const demotion = levelChange(T0, { oldLevel: 'L10', newLevel: 'L9' });
    expect(scoreSubject(p, subject, [demotion])).toMatchObject({ triggerSignalId: demotion.id, score: 10 });
    expect(scoreSubject(p, subject, [levelChange(T0, { oldLevel: 'L9', newLevel: 'L10' })])).toBeNull();
  });

  it('performance reviews trigger whether the rating is a number or a label', () => {
    const p = policy({ template: 'risky_users', indicators: defaultIndicators('risky_users') });
    for (const rating of [1, 4.5, 'Below expectations', 'Exceeds']) {
      expect(scoreSubject(p, subject, [review(T0, rating)]), String(rating)).toMatchObject({ score: 5 });
    }
  });

  // The docs say a promotion does not trigger risky users; they are silent on a promotion inside
  // the window of another trigger. A risk analyst expects a promotion never to add risk: the
  // `job_level_change` weight (10 by default) is there for demotions.
  it('a promotion inside a risky-users window adds no risk points; a demotion there does', () => {
    const p = policy({ template: 'risky_users', indicators: defaultIndicators('risky_users') });
    const trigger = review(T0);
    const promotion = levelChange(T0 + DAY_MS, { oldLevel: 'L4', newLevel: 'L5' });
    const r = scoreSubject(p, subject, [trigger, promotion])!;
    expect(r.riskFactors.map((f) => [f.name, f.points])).toEqual([['performance_review', 5]]);
    expect(r.score).toBe(5);

    const demotion = levelChange(T0 + DAY_MS, { oldLevel: 'L5', newLevel: 'L4' });
    expect(scoreSubject(p, subject, [trigger, demotion])!.score).toBe(15);
  });
});

describe('determinism and traceability', () => {
  const p = policy({
    indicators: { ...defaultIndicators('data_theft_departing_users') },
    priorityGroups: ['sales'],
    boosters: Boosters.parse({ priorityGroup: 30, aboveUsualActivity: 40, previousViolation: 20 }),
    activationWindowDays: 7,
  });
  const who = { ...subject, hasConfirmedViolation: true };
  const signals = [
    usb(T0 - 9 * DAY_MS, 2),
    sig('file_downloaded', T0 - 8 * DAY_MS, { count: 3 }),
    resignation(T0),
    usb(T0 + HOUR, 4),
    sig('email_to_external_domain', T0 + DAY_MS, { count: 6 }),
    sig('file_printed', T0 + DAY_MS, { count: 2 }),
    termination(T0 + 3 * DAY_MS),
    usb(T0 + 3 * DAY_MS + HOUR, 9),
    sig('file_uploaded_to_personal_cloud', T0 + 7 * DAY_MS, { count: 1 }),
    usb(T0 + 7 * DAY_MS + 1, 50),
    // Two signals in the same millisecond: their order must not depend on the input's.
    usb(T0 + 2 * DAY_MS, 1),
    usb(T0 + 2 * DAY_MS, 1),
  ];

  it('the same signals in any order give an identical result (score, trigger, factors, listed ids)', () => {
    const expected = scoreSubject(p, who, signals);
    expect(expected).not.toBeNull();
    for (let seed = 1; seed <= 25; seed++)
      expect(scoreSubject(p, who, shuffled(signals, seed)), `seed ${seed}`).toEqual(expected);
  });

  it('factors sum to the raw score; each trigger or indicator factor names signals of its kind inside the window', () => {
    const r = scoreSubject(p, who, signals)!;
    expect(sumOfFactors(r)).toBe(r.rawScore);
    expect(r.score).toBe(Math.min(100, r.rawScore));
    const byId = new Map(signals.map((s) => [s.id, s]));
    for (const f of r.riskFactors.filter((x) => x.kind !== 'booster')) {
      expect(f.signalIds?.length, f.name).toBeGreaterThan(0);
      let points = 0;
      for (const id of f.signalIds!) {
        const s = byId.get(id)!;
        expect(s.type === f.name || `${s.type}_${s.severity}` === f.name, f.name).toBe(true);
        expect(s.occurredAt).toBeGreaterThanOrEqual(r.triggeredAt);
        expect(s.occurredAt).toBeLessThanOrEqual(r.windowEnd);
        points += (p.indicators[f.name as keyof typeof p.indicators] ?? 0) * (f.kind === 'indicator' ? s.count : 1);
      }
      expect(points, f.name).toBe(f.points);
    }
  });

  // docs/detection.md: "The alert's riskFactors list every factor with its points and the signal ids
  // behind it." A booster's points are a percentage of the window's points, so the signals behind it
  // are those; the priority-group and previous-violation boosters list none.
  it('every factor with points lists the signal ids behind it, boosters included', () => {
    const r = scoreSubject(p, who, signals)!;
    const boosters = r.riskFactors.filter((f) => f.kind === 'booster');
    expect(boosters.map((f) => f.name)).toEqual(['priority_group', 'above_usual_activity', 'previous_confirmed_violation']);
    for (const f of r.riskFactors.filter((x) => x.points > 0)) expect(f.signalIds?.length ?? 0, f.name).toBeGreaterThan(0);
  });

  // Indicator factors say when their list of ids was cut at MAX_LISTED_SIGNALS; a reader of the
  // above-usual booster must be told the same, or it looks as if the day had only those signals.
  it('a peak day with more signals than are listed says its list is truncated, as indicator factors do', () => {
    const q = policy({ boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 25, previousViolation: 0 }) });
    const many = Array.from({ length: MAX_LISTED_SIGNALS + 10 }, (_, i) => usb(T0 + HOUR + i, 1));
    const r = scoreSubject(q, subject, [usb(T0 - DAY_MS, 1), resignation(), ...many])!;
    expect(factor(r, 'file_copied_to_usb')).toMatchObject({ detail: { events: 60, signalIdsTruncated: true } });
    const peak = factor(r, 'above_usual_activity')!;
    expect(peak.signalIds).toHaveLength(MAX_LISTED_SIGNALS);
    expect(peak.detail).toMatchObject({ peakCount: 60, signalIdsTruncated: true });
  });
});

describe('trigger pre-filter (policies.triggerFilter)', () => {
  it('never leaves out a signal that some active template’s isTrigger accepts', () => {
    const subsets = POLICY_TEMPLATES.flatMap((a, i) => POLICY_TEMPLATES.slice(i).map((b) => [...new Set([a, b])]));
    const attributes = [{}, { oldLevel: 'L5', newLevel: 'L4' }, { oldLevel: 'L4', newLevel: 'L5' }];
    for (const templates of subsets) {
      const f = triggerFilter(templates);
      for (const type of SIGNAL_TYPES)
        for (const severity of [null, ...SEVERITIES])
          for (const attrs of attributes) {
            const s = { type, severity, attributes: attrs };
            if (!templates.some((t) => TEMPLATES[t].isTrigger(s))) continue;
            const passes =
              f.types.includes(type) &&
              (!f.restrictedTypes.includes(type) || (severity !== null && f.severities.includes(severity)));
            expect(passes, `${templates.join('+')}: ${type}/${severity}`).toBe(true);
          }
    }
  });

  it('restricts DLP alerts to High only while data leaks is the only template reading them', () => {
    expect(triggerFilter(['data_leaks', 'data_theft_departing_users'])).toEqual({
      types: ['dlp_alert', 'resignation', 'termination'],
      restrictedTypes: ['dlp_alert'],
      severities: ['high'],
    });
  });
});
