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
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

// Reached only when a caller skipped the edge's validation; fail loudly rather than decide nothing.
export function unknownCommand(command: never): never {
  throw new TypeError(`unknown command type ${JSON.stringify((command as { type?: unknown }).type)}`);
}
