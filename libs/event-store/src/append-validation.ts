import type { AppendOptions, ExpectedRevision, NewEvent, ReadAllOptions, ReadStreamOptions } from './event-store.port';

/** Bad input to the store: names the field and what was expected. Nothing is written. */
export class InvalidAppendError extends Error {
  constructor(
    readonly field: string,
    readonly expectation: string,
  ) {
    super(`${field}: expected ${expectation}`);
    this.name = 'InvalidAppendError';
  }
}

/** Checks an append before any adapter touches storage; returns the expected revision to apply. */
export function validateAppend(streamId: unknown, events: unknown, options: AppendOptions | undefined): ExpectedRevision {
  if (typeof streamId !== 'string' || streamId.length === 0) {
    throw new InvalidAppendError('streamId', 'a non-empty string');
  }
  if (!Array.isArray(events) || events.length === 0) {
    throw new InvalidAppendError('events', 'a non-empty array');
  }
  const ids = new Set<string>();
  events.forEach((event: Partial<NewEvent> | null, i) => {
    const at = `events[${i}]`;
    if (event === null || typeof event !== 'object') throw new InvalidAppendError(at, 'an object');
    if (typeof event.id !== 'string' || event.id.length === 0) throw new InvalidAppendError(`${at}.id`, 'a non-empty string');
    if (ids.has(event.id)) throw new InvalidAppendError(`${at}.id`, `an id not used earlier in the same append (${event.id})`);
    ids.add(event.id);
    if (typeof event.type !== 'string' || event.type.length === 0) {
      throw new InvalidAppendError(`${at}.type`, 'a non-empty string');
    }
    if (!isPlainObject(event.data)) throw new InvalidAppendError(`${at}.data`, 'a JSON object');
    const metadata: unknown = event.metadata;
    if (!isPlainObject(metadata)) throw new InvalidAppendError(`${at}.metadata`, 'a JSON object');
    if (typeof metadata.occurredAt !== 'string' || Number.isNaN(Date.parse(metadata.occurredAt))) {
      throw new InvalidAppendError(`${at}.metadata.occurredAt`, 'an ISO-8601 date-time');
    }
    if (!isNonNegativeInteger(metadata.schemaVersion) || metadata.schemaVersion < 1) {
      throw new InvalidAppendError(`${at}.metadata.schemaVersion`, 'an integer ≥ 1');
    }
  });
  const expected = options?.expectedRevision ?? 'any';
  if (expected === 'any' || expected === 'no_stream' || expected === 'stream_exists' || isNonNegativeInteger(expected)) {
    return expected;
  }
  throw new InvalidAppendError('expectedRevision', "'any', 'no_stream', 'stream_exists' or an integer ≥ 0");
}

export function validateReadStream(streamId: unknown, options: ReadStreamOptions | undefined): void {
  if (typeof streamId !== 'string' || streamId.length === 0) {
    throw new InvalidAppendError('streamId', 'a non-empty string');
  }
  const direction = options?.direction ?? 'forwards';
  if (direction !== 'forwards' && direction !== 'backwards') {
    throw new InvalidAppendError('direction', "'forwards' or 'backwards'");
  }
  optionalCount('fromRevision', options?.fromRevision);
  optionalCount('maxCount', options?.maxCount);
}

export function validateReadAll(options: ReadAllOptions | undefined): void {
  optionalCount('afterPosition', options?.afterPosition);
  optionalCount('maxCount', options?.maxCount);
}

function optionalCount(field: string, value: unknown): void {
  if (value !== undefined && !isNonNegativeInteger(value)) throw new InvalidAppendError(field, 'an integer ≥ 0');
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
