import { describe, expect, it } from 'vitest';
import {
  Boosters,
  defaultIndicators,
  inScope,
  missingPrerequisites,
  PolicyScope,
  TEMPLATES,
  type PolicyTemplate,
  type ScoringPolicy,
} from '../../domain/policies';
import {
  DAY_MS,
  decideAlert,
  percentOf,
  scoreSubject,
  severityFor,
  usualDailyActivity,
  type ScoringSignal,
} from '../../domain/scoring';
import { ACTIVITY_TYPES, isDemotion, parseSignalEvent, parseWithSchema } from '../../domain/signals';
import { sig } from '../helpers/scoring';

const T0 = Date.parse('2026-11-01T00:00:00Z');

function policy(over: Partial<ScoringPolicy> = {}): ScoringPolicy {
  const template = over.template ?? 'data_theft_departing_users';
  return {
    id: 'p1',
    version: 1,
    template,
    scope: PolicyScope.parse({}),
    priorityGroups: [],
    indicators: { file_copied_to_usb: 3 },
    thresholds: { minRiskScore: 40, severity: { medium: 60, high: 80 } },
    boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 0 }),
    activationWindowDays: 30,
    dailyAlertCap: 100,
    ...over,
  };
}

const resignation = (at = T0) => sig('resignation', at, { attributes: { lastWorkingDate: '2026-11-30' } });
const usb = (at: number, count: number) => sig('file_copied_to_usb', at, { count });
const subject = { id: 's1', groups: ['sales'], hasConfirmedViolation: false };

describe('template triggers', () => {
  const cases: Array<[PolicyTemplate, ScoringSignal, boolean]> = [
    ['data_theft_departing_users', resignation(), true],
    ['data_theft_departing_users', sig('termination', T0), true],
    ['data_theft_departing_users', sig('performance_review', T0), false],
    ['data_leaks', sig('dlp_alert', T0, { severity: 'high' }), true],
    ['data_leaks', sig('dlp_alert', T0, { severity: 'medium' }), false],
    ['data_leaks', sig('dlp_alert', T0, { severity: 'low' }), false],
    ['security_policy_violations', sig('endpoint_alert', T0, { attributes: { alertType: 'malware', status: 'new' } }), true],
    ['security_policy_violations', sig('dlp_alert', T0, { severity: 'high' }), false],
    ['risky_users', sig('performance_review', T0), true],
    ['risky_users', sig('performance_improvement_plan', T0), true],
    ['risky_users', sig('job_level_change', T0, { attributes: { oldLevel: 'L5', newLevel: 'L4' } }), true],
    ['risky_users', sig('job_level_change', T0, { attributes: { oldLevel: 'L4', newLevel: 'L5' } }), false],
    ['risky_users', resignation(), false],
  ];
  for (const [template, s, expected] of cases) {
    const label = `${s.type}${s.severity ? `/${s.severity}` : ''}${s.attributes.newLevel ? ` ${s.attributes.oldLevel}→${s.attributes.newLevel}` : ''}`;
    it(`${template}: ${label} ${expected ? 'triggers' : 'does not trigger'}`, () => {
      expect(TEMPLATES[template].isTrigger(s)).toBe(expected);
    });
  }

  it('an untriggered subject has no score at all, whatever its activity', () => {
    expect(scoreSubject(policy(), subject, [usb(T0, 100)])).toBeNull();
  });

  it('a demotion is read from the HR flag when the levels are not numbers', () => {
    expect(isDemotion({ oldLevel: 'Senior', newLevel: 'Junior', demotion: true })).toBe(true);
    expect(isDemotion({ oldLevel: 'Senior', newLevel: 'Junior' })).toBe(false);
  });
});

describe('prerequisites', () => {
  it('each template names the connector data it still needs', () => {
    expect(missingPrerequisites('data_theft_departing_users', []).map((m) => m.id)).toEqual(['hr_departures']);
    expect(missingPrerequisites('data_leaks', []).map((m) => m.id)).toEqual(['dlp_alerts']);
    expect(missingPrerequisites('security_policy_violations', []).map((m) => m.id)).toEqual(['endpoint_alerts']);
    expect(missingPrerequisites('risky_users', []).map((m) => m.id)).toEqual(['hr_performance']);
  });
  it('are met by the right kind of data only', () => {
    const received = [{ source: 'hr', type: 'performance_review' }];
    expect(missingPrerequisites('risky_users', received)).toEqual([]);
    expect(missingPrerequisites('data_theft_departing_users', received)).toHaveLength(1);
    expect(missingPrerequisites('data_theft_departing_users', [{ source: 'hr', type: 'termination' }])).toEqual([]);
  });
});

describe('threshold and severity', () => {
  // 13 copies × 3 points = 39: one point below the threshold of 40; 40 needs one more point.
  it('one point below the minimum risk score raises no alert; at it, an alert is due', () => {
    const below = scoreSubject(policy(), subject, [resignation(), usb(T0 + 1000, 13)])!;
    expect(below.score).toBe(39);
    expect(below.alertDue).toBe(false);
    const at = scoreSubject(policy({ indicators: { file_copied_to_usb: 3, resignation: 1 } }), subject, [
      resignation(),
      usb(T0 + 1000, 13),
    ])!;
    expect(at.score).toBe(40);
    expect(at.alertDue).toBe(true);
    expect(at.severity).toBe('low');
  });

  it('severity bands: low below medium, medium from it, high from high', () => {
    const bands = { medium: 60, high: 80 };
    expect([59, 60, 79, 80, 100].map((s) => severityFor(s, bands))).toEqual(['low', 'medium', 'medium', 'high', 'high']);
  });

  it('the score is capped at 100 while the factors keep every point', () => {
    const r = scoreSubject(policy(), subject, [resignation(), usb(T0 + 1000, 50)])!;
    expect(r.score).toBe(100);
    expect(r.rawScore).toBe(150);
    expect(r.riskFactors.reduce((s, f) => s + f.points, 0)).toBe(150);
  });
});

describe('activation window', () => {
  it('counts activity from the trigger to the end of the window, inclusive, and nothing outside', () => {
    const p = policy({ activationWindowDays: 2 });
    const signals = [resignation(), usb(T0 - 1, 10), usb(T0, 1), usb(T0 + 2 * DAY_MS, 2), usb(T0 + 2 * DAY_MS + 1, 100)];
    const r = scoreSubject(p, subject, signals)!;
    expect(r.score).toBe(9);
    const factor = r.riskFactors.find((f) => f.name === 'file_copied_to_usb')!;
    expect(factor.signalIds).toEqual([signals[2]!.id, signals[3]!.id]);
  });

  it('with several triggers, the highest window wins', () => {
    const later = resignation(T0 + 60 * DAY_MS);
    const r = scoreSubject(policy(), subject, [resignation(), usb(T0 + DAY_MS, 2), later, usb(later.occurredAt + DAY_MS, 5)])!;
    expect(r.triggerSignalId).toBe(later.id);
    expect(r.score).toBe(15);
  });
});

describe('boosters', () => {
  const base = [resignation(), usb(T0 + DAY_MS, 10)]; // 30 points

  it('priority group adds its percentage of the indicator points', () => {
    const p = policy({
      priorityGroups: ['sales'],
      boosters: Boosters.parse({ priorityGroup: 50, aboveUsualActivity: 0, previousViolation: 0 }),
    });
    const r = scoreSubject(p, subject, base)!;
    expect(r.score).toBe(45);
    expect(r.riskFactors.find((f) => f.name === 'priority_group')).toMatchObject({
      kind: 'booster',
      points: 15,
      detail: { groups: ['sales'] },
    });
    expect(scoreSubject(p, { ...subject, groups: ['it'] }, base)!.score).toBe(30);
  });

  it('a previous confirmed violation adds its percentage', () => {
    const p = policy({ boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 0, previousViolation: 50 }) });
    expect(scoreSubject(p, { ...subject, hasConfirmedViolation: true }, base)!.score).toBe(45);
    expect(scoreSubject(p, subject, base)!.score).toBe(30);
  });

  it('activity above the subject’s own usual daily level adds its percentage, traced to that day’s signals', () => {
    const p = policy({ boosters: Boosters.parse({ priorityGroup: 0, aboveUsualActivity: 50, previousViolation: 0 }) });
    // Usual: 4 a day on the active days of the 30 days before the trigger.
    const baseline = [usb(T0 - 3 * DAY_MS, 4), usb(T0 - 10 * DAY_MS, 4)];
    expect(usualDailyActivity(baseline, T0)).toBe(4);
    const spike = usb(T0 + DAY_MS, 10); // 10 > 2 × 4
    const r = scoreSubject(p, subject, [...baseline, resignation(), spike])!;
    expect(r.score).toBe(45);
    expect(r.riskFactors.find((f) => f.name === 'above_usual_activity')).toMatchObject({
      points: 15,
      signalIds: [spike.id],
      detail: { usualDailyLevel: 4, peakCount: 10 },
    });
    // At or under twice the usual level: no boost.
    expect(
      scoreSubject(p, subject, [...baseline, resignation(), usb(T0 + DAY_MS, 8)])!.riskFactors.some(
        (f) => f.name === 'above_usual_activity',
      ),
    ).toBe(false);
    // No baseline at all: the usual level is unknown, no boost.
    expect(scoreSubject(p, subject, [resignation(), usb(T0 + DAY_MS, 10)])!.score).toBe(30);
  });

  it('percentages round half up in integers', () => {
    expect(percentOf(33, 50)).toBe(17);
    expect(percentOf(30, 25)).toBe(8);
  });
});

describe('determinism and explainability', () => {
  it('the same signals in any order give the same score and factors', () => {
    const p = policy({
      indicators: defaultIndicators('data_theft_departing_users'),
      priorityGroups: ['sales'],
      boosters: Boosters.parse({}),
    });
    const signals = [
      usb(T0 - DAY_MS, 2),
      resignation(),
      usb(T0 + DAY_MS, 9),
      sig('file_printed', T0 + 2 * DAY_MS, { count: 3 }),
      usb(T0 + 3 * DAY_MS, 1),
    ];
    const a = scoreSubject(p, subject, signals);
    const b = scoreSubject(p, subject, [...signals].reverse());
    expect(b).toEqual(a);
  });

  it('every point of the score is a factor traced to signals or to a booster', () => {
    const p = policy({ indicators: { file_copied_to_usb: 3, file_printed: 2, resignation: 10 } });
    const r = scoreSubject(p, subject, [resignation(), usb(T0 + 1, 5), sig('file_printed', T0 + 2, { count: 2 })])!;
    expect(r.riskFactors.map((f) => [f.kind, f.name, f.points])).toEqual([
      ['trigger', 'resignation', 10],
      ['indicator', 'file_copied_to_usb', 15],
      ['indicator', 'file_printed', 4],
    ]);
    expect(r.score).toBe(29);
    for (const f of r.riskFactors) expect(f.signalIds!.length).toBeGreaterThan(0);
  });
});

describe('alert decisions', () => {
  const r = (score: number, trigger = '1') => ({
    triggerSignalId: trigger,
    triggeredAt: T0,
    windowEnd: T0,
    score,
    rawScore: score,
    severity: severityFor(score, { medium: 60, high: 80 }),
    alertDue: score >= 40,
    riskFactors: [],
  });
  it('below the threshold: nothing', () => expect(decideAlert(r(39), null, null)).toEqual({ action: 'none' }));
  it('no open alert: create', () => expect(decideAlert(r(40), null, null)).toEqual({ action: 'create' }));
  it('an open alert with a lower score: raise', () =>
    expect(decideAlert(r(70), { score: 50, severity: 'low', triggerSignalId: '1' }, null)).toEqual({ action: 'raise' }));
  it('an open alert with the same or a higher score: nothing (alerts never go down)', () => {
    expect(decideAlert(r(50), { score: 50, severity: 'low', triggerSignalId: '1' }, null)).toEqual({ action: 'none' });
    expect(decideAlert(r(45), { score: 50, severity: 'low', triggerSignalId: '1' }, null)).toEqual({ action: 'none' });
  });
  it('a dismissed alert is not raised again for the same evidence; new evidence raises a new one', () => {
    const dismissed = { score: 50, severity: 'low' as const, triggerSignalId: '1' };
    expect(decideAlert(r(50), null, dismissed)).toEqual({ action: 'none' });
    expect(decideAlert(r(55), null, dismissed)).toEqual({ action: 'create' });
    expect(decideAlert(r(50, '2'), null, dismissed)).toEqual({ action: 'create' });
  });
});

describe('scope', () => {
  const s = (id: string, region: string, groups: string[]) => ({ id, region, groups });
  const a = s('00000000-0000-4000-8000-000000000001', 'eu', ['sales']);
  const b = s('00000000-0000-4000-8000-000000000002', 'us', ['sales']);
  const c = s('00000000-0000-4000-8000-000000000003', 'eu', ['it']);
  it('no include means everyone', () =>
    expect([a, b, c].map((x) => inScope(PolicyScope.parse({}), x))).toEqual([true, true, true]));
  it('regions narrow it', () =>
    expect([a, b, c].map((x) => inScope(PolicyScope.parse({ regions: ['eu'] }), x))).toEqual([true, false, true]));
  it('included groups or subjects, minus the excluded', () => {
    const scope = PolicyScope.parse({ include: { groups: ['sales'], subjects: [c.id] }, exclude: { subjects: [b.id] } });
    expect([a, b, c].map((x) => inScope(scope, x))).toEqual([true, false, true]);
    expect(inScope(PolicyScope.parse({ exclude: { groups: ['it'] } }), c)).toBe(false);
  });
});

describe('event validation', () => {
  const ok = {
    source: 'hr',
    externalId: 'hr-1',
    subject: 'E1',
    type: 'resignation',
    occurredAt: '2026-11-01T00:00:00Z',
    attributes: { lastWorkingDate: '2026-11-30' },
  };
  it('accepts a well-formed event', () => expect(parseSignalEvent(ok).ok).toBe(true));
  it('names the field of a bad event without echoing its value', () => {
    const r = parseSignalEvent({ ...ok, attributes: { lastWorkingDate: 'Alice Smith' } });
    expect(r).toEqual({ ok: false, reason: 'attributes.lastWorkingDate: expected a date YYYY-MM-DD' });
  });
  it('refuses an event from the wrong source, unknown attributes, and remarks over 200 characters', () => {
    expect(parseSignalEvent({ ...ok, source: 'dlp' })).toMatchObject({ ok: false, reason: expect.stringContaining('source') });
    expect(parseSignalEvent({ ...ok, attributes: { lastWorkingDate: '2026-11-30', fileName: 'x' } })).toMatchObject({
      ok: false,
    });
    const pr = {
      ...ok,
      type: 'performance_review',
      attributes: { rating: 2, effectiveDate: '2026-11-01', remarks: 'x'.repeat(201) },
    };
    expect(parseSignalEvent(pr)).toMatchObject({ ok: false, reason: expect.stringContaining('remarks') });
  });
  it('HR dates are calendar days: no 30 February, 29 February only in leap years', () => {
    const at = (lastWorkingDate: string) => parseSignalEvent({ ...ok, attributes: { lastWorkingDate } });
    for (const d of ['2026-02-28', '2028-02-29', '2000-02-29', '2026-04-30', '2026-12-31']) expect(at(d).ok, d).toBe(true);
    for (const d of ['2026-02-29', '2100-02-29', '2026-02-30', '2026-04-31', '2026-00-10', '2026-13-01', '2026-01-00']) {
      expect(at(d), d).toEqual({ ok: false, reason: 'attributes.lastWorkingDate: not a calendar date' });
    }
  });
  it('a DLP alert needs its severity', () => {
    const dlp = { source: 'dlp', externalId: 'd', subject: 'E1', type: 'dlp_alert', occurredAt: '2026-11-01T00:00:00Z' };
    expect(parseSignalEvent(dlp)).toMatchObject({ ok: false, reason: expect.stringContaining('severity') });
    expect(parseSignalEvent({ ...dlp, severity: 'high' }).ok).toBe(true);
  });
});

describe('the validation fast path', () => {
  const bases: Record<string, unknown>[] = [
    ...ACTIVITY_TYPES.map((type) => ({
      source: 'activity',
      externalId: 'a-1',
      subject: 'E1',
      type,
      occurredAt: '2026-11-02T09:00:00Z',
      attributes: { count: 2, bytes: 10 },
    })),
    {
      source: 'activity',
      externalId: 'a-2',
      subject: ' E2 ',
      type: 'email_to_external_domain',
      occurredAt: '2024-02-29T23:59:59.123Z',
      attributes: { domain: 'gmail.com' },
    },
    { source: 'activity', externalId: 'a-3', subject: 'E3', type: 'file_printed', occurredAt: '2026-11-02T09:00:00Z' },
    {
      source: 'dlp',
      externalId: 'd-1',
      subject: 'E1',
      type: 'dlp_alert',
      severity: 'medium',
      occurredAt: '2026-11-02T09:00:00Z',
      attributes: { policy: ' PCI ', files: 3, bytes: 5 },
    },
    { source: 'dlp', externalId: 'd-2', subject: 'E1', type: 'dlp_alert', severity: 'high', occurredAt: '2026-11-02T09:00:00Z' },
  ];
  const odd: unknown[] = [
    undefined,
    null,
    '',
    ' ',
    'x'.repeat(201),
    -1,
    0,
    1,
    1.5,
    1e7,
    true,
    [],
    {},
    'Z',
    'high',
    'activity',
    'dlp',
    '2026-02-30T00:00:00Z',
    '2026-11-02T24:00:00Z',
    '2026-11-02T09:00:00.123456Z',
    '2026-11-02T09:00:00+01:00',
    '2026-11-02',
    'bad id',
  ];
  const variants: unknown[] = [];
  for (const base of bases) {
    variants.push(base, { ...base, extra: 1 });
    for (const key of [...Object.keys(base), 'severity']) {
      const { [key]: _omit, ...without } = base;
      variants.push(without);
      for (const v of odd) variants.push({ ...base, [key]: v });
    }
    const attrs = (base.attributes as Record<string, unknown> | undefined) ?? {};
    for (const key of ['count', 'bytes', 'domain', 'policy', 'files', 'fileName']) {
      for (const v of odd) variants.push({ ...base, attributes: { ...attrs, [key]: v } });
    }
  }

  it(`gives the schema’s verdict and output on ${'many'} valid and invalid variants`, () => {
    let fastAccepted = 0;
    for (const v of variants) {
      const got = parseSignalEvent(v);
      expect(got, JSON.stringify(v)).toEqual(parseWithSchema(v));
      if (got.ok) fastAccepted++;
    }
    expect(fastAccepted).toBeGreaterThan(bases.length);
  });
});
