import { InvalidArgumentError } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { asOfDate, calendarDate, fileToRead, fileToWrite, positiveInteger, share } from './option-parsers';

const refusal = (parse: () => unknown): string => {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
};

describe('CLI option parsers', () => {
  it('positiveInteger takes whole numbers from 1 and names the option in a refusal', () => {
    expect(positiveInteger('--batch')('1')).toBe(1);
    expect(positiveInteger('--batch')('5000')).toBe(5000);
    for (const bad of ['0', '-3', '2.5', '1e3', 'ten', '', '99999999999999999999']) {
      expect(refusal(() => positiveInteger('--batch')(bad))).toBe(`--batch: expected a positive integer, got '${bad}'`);
    }
  });

  it('calendarDate takes days of the calendar and refuses days that would roll into the next month', () => {
    expect(calendarDate('--as-of')('2024-02-29')).toBe('2024-02-29');
    expect(calendarDate('--as-of')('2025-12-31')).toBe('2025-12-31');
    expect(refusal(() => calendarDate('--as-of')('2025-02-29'))).toBe("--as-of: expected a date of the calendar (YYYY-MM-DD), got '2025-02-29'");
    expect(refusal(() => calendarDate('--from')('2025-02-30'))).toBe("--from: expected a date of the calendar (YYYY-MM-DD), got '2025-02-30'");
    expect(refusal(() => calendarDate('--to')('2025-13-01'))).toContain("--to: expected a date of the calendar");
    expect(refusal(() => calendarDate('--to')('2025-04-31'))).toContain('--to:');
    for (const bad of ['2025-1-01', '2025-01-01T00:00:00Z', 'yesterday', '']) {
      expect(refusal(() => calendarDate('--from')(bad))).toBe(`--from: expected a date (YYYY-MM-DD), got '${bad}'`);
    }
  });

  it('asOfDate takes a day or a date-time with a zone, as the as-of questions do', () => {
    expect(asOfDate('--date')('2025-02-28')).toBe('2025-02-28');
    expect(asOfDate('--date')('2025-02-28T10:00:00+02:00')).toBe('2025-02-28T10:00:00+02:00');
    for (const bad of ['2025-02-30', '2025-13-01', '2025-02-28T10:00:00', 'now']) {
      expect(refusal(() => asOfDate('--date')(bad))).toBe(
        `--date: expected a date (YYYY-MM-DD) or a date-time with a zone (e.g. 2026-01-31T10:00:00Z), got '${bad}'`,
      );
    }
  });

  it('share takes a number from 0 to 1', () => {
    expect(share('--referral-share')('0')).toBe(0);
    expect(share('--referral-share')('0.25')).toBe(0.25);
    expect(share('--referral-share')('1')).toBe(1);
    for (const bad of ['abc', '', ' ', '1.5', '-0.1', 'NaN', '0.2x']) {
      expect(refusal(() => share('--referral-share')(bad))).toBe(`--referral-share: expected a number from 0 to 1, got '${bad}'`);
    }
  });

  it('fileToWrite takes a path in an existing folder, and refuses a missing folder, a file as folder and a folder as file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-parsers-'));
    try {
      const file = join(dir, 'a.ndjson');
      expect(fileToWrite('--out')(file)).toBe(file);
      expect(fileToWrite('--out')('relative.ndjson')).toBe('relative.ndjson');
      const missing = join(dir, 'nope', 'a.ndjson');
      expect(refusal(() => fileToWrite('--out')(missing))).toBe(`--out: expected a file in an existing folder (${join(dir, 'nope')} does not exist), got '${missing}'`);
      writeFileSync(file, '');
      expect(refusal(() => fileToWrite('--rejects')(join(file, 'b')))).toBe(`--rejects: expected a file in a folder (${file} is a file), got '${join(file, 'b')}'`);
      expect(refusal(() => fileToWrite('--out')(dir))).toBe(`--out: expected a file, not a folder, got '${dir}'`);
      expect(refusal(() => fileToWrite('--out')(''))).toBe("--out: expected a file name, got ''");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fileToRead takes an existing file only', () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-parsers-'));
    try {
      const file = join(dir, 'log.ndjson');
      writeFileSync(file, '');
      expect(fileToRead('--from-export')(file)).toBe(file);
      expect(refusal(() => fileToRead('--from-export')(join(dir, 'nope.ndjson')))).toBe(`--from-export: expected an existing file, got '${join(dir, 'nope.ndjson')}'`);
      expect(refusal(() => fileToRead('--from-export')(dir))).toBe(`--from-export: expected a file, not a folder, got '${dir}'`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
