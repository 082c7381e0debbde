import { DomainError, DomainErrorCodes } from './errors';
import type { IsoDateTime } from './events';

/**
 * Invariant guards shared by the deciders. The edge validates shapes; these keep the domain honest
 * when a caller (a process manager, an import, a test) skips the edge.
 */

const DAY_MS = 86_400_000;

// A zone is required whenever a time is given: a zoneless time would be read in the machine's
// local zone, and replay on another machine would then decide differently.
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Parses business time (ISO-8601; a date alone means midnight UTC) into epoch milliseconds. */
export function businessTime(value: unknown, field = 'occurredAt'): number {
  if (typeof value === 'string') {
    const fast = utcMillisOf(value);
    if (fast !== undefined) return fast;
  }
  const match = typeof value === 'string' ? ISO_DATE_TIME.exec(value) : null;
  const ms = match ? Date.parse(value as string) : Number.NaN;
  if (!match || Number.isNaN(ms) || !isCalendarDate(Number(match[1]), Number(match[2]), Number(match[3]))) {
    throw new DomainError(
      DomainErrorCodes.InvalidDate,
      `${field} must be an ISO-8601 date or date-time with a zone (e.g. 2026-01-31T10:00:00Z), got ${JSON.stringify(value)}`,
      field,
    );
  }
  return ms;
}

/**
 * Epoch milliseconds of a string in `toISOString` form (`2026-01-31T10:00:00.000Z`), the form
 * validated commands and stored events carry; undefined for any other form or an impossible date,
 * which then takes the general parse above. Every command is checked here at least once, and the
 * regex, Date.parse and the calendar probe cost more than the whole decision.
 */
export function utcMillisOf(s: string): number | undefined {
  if (
    s.length !== 24 ||
    s.charCodeAt(4) !== 45 /* - */ ||
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 /* T */ ||
    s.charCodeAt(13) !== 58 /* : */ ||
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 /* . */ ||
    s.charCodeAt(23) !== 90 /* Z */
  ) {
    return undefined;
  }
  const year = digitsAt(s, 0, 4);
  const month = digitsAt(s, 5, 2);
  const day = digitsAt(s, 8, 2);
  const hour = digitsAt(s, 11, 2);
  const minute = digitsAt(s, 14, 2);
  const second = digitsAt(s, 17, 2);
  const millis = digitsAt(s, 20, 3);
  // Date.UTC reads years 0-99 as 1900-1999: leave those to Date.parse.
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

/** The number written with `length` decimal digits at `start`; -1 when any of them is not a digit. */
function digitsAt(s: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

// Date.parse rolls 2026-02-30 over into March instead of rejecting it.
function isCalendarDate(year: number, month: number, day: number): boolean {
  const probe = new Date(Date.UTC(year, month - 1, day));
  return probe.getUTCFullYear() === year && probe.getUTCMonth() === month - 1 && probe.getUTCDate() === day;
}

/** The UTC calendar day number of an instant: churn counts whole calendar days, not 24-hour spans. */
export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/** Whole UTC calendar days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: IsoDateTime, to: IsoDateTime): number {
  return utcDay(businessTime(to)) - utcDay(businessTime(from));
}

export function assertMinorUnits(value: unknown, field: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new DomainError(
      DomainErrorCodes.InvalidAmount,
      `${field} must be a non-negative integer amount in minor units, got ${JSON.stringify(value)}`,
      field,
    );
  }
}

/** Drops keys whose value is undefined, so stored payloads and deep-equal comparisons see the same shape. */
export function withoutUndefined<T extends object>(value: T): T {
  // A plain loop: entries/filter/fromEntries allocated three arrays per event payload.
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) copy[key] = v;
  }
  return copy as T;
}

// Reached only when a caller skipped the edge's validation; fail loudly rather than decide nothing.
export function unknownCommand(command: never): never {
  throw new TypeError(`unknown command type ${JSON.stringify((command as { type?: unknown }).type)}`);
}
