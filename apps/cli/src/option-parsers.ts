import { InvalidArgumentError } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { businessTimeOutOfRange } from '@clientele/contracts';
import { businessTime, DomainError } from '@clientele/domain';

/**
 * Parsers for the CLI's option values. Each refusal names the option as the operator typed it
 * (`--batch`, `--as-of`) and what it expected, and quotes the value given; commander prints it
 * and the CLI exits 1 before anything is opened or written.
 */

const refuse = (option: string, expected: string, value: string): never => {
  throw new InvalidArgumentError(`${option}: expected ${expected}, got '${value}'`);
};

export const positiveInteger =
  (option: string) =>
  (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) refuse(option, 'a positive integer', value);
    return Number(value);
  };

/**
 * The prefix of generated ids: ids become `<prefix>-c000001`, `<prefix>-e0001`…, so the prefix must
 * itself be the start of an id the commands accept (a letter or digit, then letters, digits and
 * `. _ : @ + -`, room left for the rest).
 */
export const idPrefix =
  (option: string) =>
  (value: string): string => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}$/.test(value)) {
      refuse(option, 'a letter or digit, then up to 99 letters, digits or . _ : @ + - (the start of every generated id)', value);
    }
    return value;
  };

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/** A day of the calendar, YYYY-MM-DD: Feb 30 and month 13 are refused, not rolled into the next month. */
export const calendarDate =
  (option: string) =>
  (value: string): string => {
    if (!DATE_ONLY.test(value)) return refuse(option, 'a date (YYYY-MM-DD)', value);
    // the domain's own reading of business dates, which holds them to the calendar
    if (!isBusinessTime(value, option)) refuse(option, 'a date of the calendar (YYYY-MM-DD)', value);
    return value;
  };

function isBusinessTime(value: string, option: string): boolean {
  try {
    businessTime(value, option);
    return true;
  } catch (error) {
    if (error instanceof DomainError) return false;
    throw error;
  }
}

/**
 * A day a fact can be dated on (a sweep's date, the last day of generated facts): a calendar day
 * within the range every business time is held to (1900-01-01 up to one day after now), checked
 * here so the refusal names the option before any store is opened.
 */
export const factDay =
  (option: string) =>
  (value: string): string => {
    const day = calendarDate(option)(value);
    const outOfRange = businessTimeOutOfRange(Date.parse(`${day}T00:00:00.000Z`));
    if (outOfRange !== undefined) refuse(option, outOfRange, value);
    return day;
  };

/** An as-of date: a day (its end, UTC) or a date-time with a zone, as the as-of questions take them. */
export const asOfDate =
  (option: string) =>
  (value: string): string => {
    if (!isBusinessTime(value, option)) refuse(option, 'a date (YYYY-MM-DD) or a date-time with a zone (e.g. 2026-01-31T10:00:00Z)', value);
    return value;
  };

/** A share: a number from 0 to 1. */
export const share =
  (option: string) =>
  (value: string): number => {
    const n = /^\s*$/.test(value) ? Number.NaN : Number(value);
    if (!(n >= 0 && n <= 1)) refuse(option, 'a number from 0 to 1', value);
    return n;
  };

/** A file the command writes: its folder must exist and the path must not be a folder, checked before any work starts. */
export const fileToWrite =
  (option: string) =>
  (value: string): string => {
    const folder = dirname(value) || '.';
    if (value === '') refuse(option, 'a file name', value);
    if (!existsSync(folder)) refuse(option, `a file in an existing folder (${folder} does not exist)`, value);
    if (!statSync(folder).isDirectory()) refuse(option, `a file in a folder (${folder} is a file)`, value);
    if (existsSync(value) && statSync(value).isDirectory()) refuse(option, 'a file, not a folder', value);
    return value;
  };

/** A file the command reads: it must be there, and be a file. */
export const fileToRead =
  (option: string) =>
  (value: string): string => {
    if (!existsSync(value)) refuse(option, 'an existing file', value);
    if (statSync(value).isDirectory()) refuse(option, 'a file, not a folder', value);
    return value;
  };
