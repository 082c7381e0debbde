import { DomainError } from './errors';
import { businessTime, withoutUndefined } from './guards';

// The general rule, as businessTime had it before its fast path: the fast path must agree with it.
const ZONED = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;
function generalRule(value: string): number | 'refused' {
  const m = ZONED.exec(value);
  const ms = m ? Date.parse(value) : Number.NaN;
  if (!m || Number.isNaN(ms)) return 'refused';
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  return probe.getUTCFullYear() === y && probe.getUTCMonth() === mo - 1 && probe.getUTCDate() === d ? ms : 'refused';
}

function outcome(value: string): number | 'refused' {
  try {
    return businessTime(value);
  } catch (error) {
    if (error instanceof DomainError) return 'refused';
    throw error;
  }
}

const BASES = [
  '2026-01-31T10:00:00.000Z',
  '2024-02-29T23:59:59.999Z',
  '2100-02-28T00:00:00.000Z',
  '2000-02-29T12:30:45.123Z',
  '1999-12-31T23:59:59.000Z',
  '0999-06-15T08:00:00.000Z',
];
const REPLACEMENTS = ['0', '1', '2', '3', '4', '5', '6', '9', '-', ':', 'T', 'Z', '.', '+', ' ', 'a'];

/** Every one-character change of each base: valid times, impossible dates, wrong separators. */
function variants(): string[] {
  const out = new Set<string>(BASES);
  for (const base of BASES) {
    for (let i = 0; i < base.length; i++) {
      for (const r of REPLACEMENTS) out.add(base.slice(0, i) + r + base.slice(i + 1));
    }
    out.add(base.slice(0, -1));
    out.add(`${base}Z`);
  }
  return [...out];
}

describe('businessTime', () => {
  it('given times in toISOString form and every one-character change of them, then it answers exactly as the general rule', () => {
    const strings = variants();
    let accepted = 0;
    for (const value of strings) {
      expect({ value, outcome: outcome(value) }).toEqual({ value, outcome: generalRule(value) });
      if (generalRule(value) !== 'refused') accepted += 1;
    }
    // Both answers were exercised, including impossible calendar days and hours.
    expect(accepted).toBeGreaterThan(300);
    expect(strings.length - accepted).toBeGreaterThan(300);
  });

  it('given impossible days and times in toISOString form, then it refuses them', () => {
    for (const value of ['2026-02-29T10:00:00.000Z', '2100-02-29T10:00:00.000Z', '2026-04-31T10:00:00.000Z', '2026-13-01T10:00:00.000Z', '2026-01-31T10:60:00.000Z']) {
      expect(() => businessTime(value)).toThrow(DomainError);
    }
  });

  it('given a leap day and other forms, then it reads them as the same instant', () => {
    expect(businessTime('2024-02-29T00:00:00.000Z')).toBe(Date.UTC(2024, 1, 29));
    expect(businessTime('2026-01-31T11:00:00+01:00')).toBe(businessTime('2026-01-31T10:00:00.000Z'));
    expect(businessTime('2026-01-31')).toBe(Date.UTC(2026, 0, 31));
  });
});

describe('withoutUndefined', () => {
  it('given a payload with undefined fields, then they are gone, null and falsy values stay, and the order is kept', () => {
    const input = { b: 1, a: undefined, c: null, d: 0, e: '', f: false, g: undefined };
    const result = withoutUndefined(input);
    expect(Object.keys(result)).toEqual(['b', 'c', 'd', 'e', 'f']);
    expect(result).toEqual({ b: 1, c: null, d: 0, e: '', f: false });
    expect(result).not.toBe(input);
    expect(Object.keys(input)).toHaveLength(7);
  });
});
