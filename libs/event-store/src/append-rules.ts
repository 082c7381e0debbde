import {
  DuplicateEventIdError,
  type ExpectedRevision,
  type NewEvent,
  type StoredEvent,
} from './event-store.port';
import { canonicalJson } from './hash-chain';

/** Rules every adapter applies the same way before it writes. */

/** Bad input is refused before anything is written, naming the field. */
export function validateAppend(streamId: string, events: NewEvent[], expected: ExpectedRevision): void {
  if (typeof streamId !== 'string' || streamId.length === 0) {
    throw new Error(`streamId: expected a non-empty string, got ${JSON.stringify(streamId)}`);
  }
  if (!Array.isArray(events) || events.length === 0) {
    throw new Error(`events: expected at least one event to append to ${streamId}`);
  }
  if (!(expected === 'any' || expected === 'no_stream' || expected === 'stream_exists' || (Number.isInteger(expected) && expected >= 0))) {
    throw new Error(`expectedRevision: expected 'any', 'no_stream', 'stream_exists' or a revision >= 0, got ${JSON.stringify(expected)}`);
  }
  const ids = new Set<string>();
  events.forEach((e, i) => {
    if (typeof e?.id !== 'string' || e.id.length === 0) throw new Error(`events[${i}].id: expected a non-empty string`);
    if (typeof e.type !== 'string' || e.type.length === 0) throw new Error(`events[${i}].type: expected a non-empty string`);
    if (!isObject(e.data)) throw new Error(`events[${i}].data: expected a JSON object`);
    if (!isObject(e.metadata)) throw new Error(`events[${i}].metadata: expected a JSON object`);
    if (ids.has(e.id)) throw new DuplicateEventIdError(e.id);
    ids.add(e.id);
  });
}

/** Does a stream whose last revision is `current` (undefined: no stream) meet the expectation? */
export function revisionMatches(expected: ExpectedRevision, current: number | undefined): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return current === undefined;
    case 'stream_exists':
      return current !== undefined;
    default:
      return current === expected;
  }
}

export type Replay =
  | { kind: 'new' }
  /** every id is stored with the same content: answer the first result */
  | { kind: 'duplicate'; events: StoredEvent[] }
  /** an id is stored with other content or in another stream, or only some ids are stored */
  | { kind: 'clash'; eventId: string };

/**
 * Tells an idempotent retry from a reused id. Checked before the expected revision, so a retry
 * answers its first result even after the stream moved on.
 */
export function classifyReplay(streamId: string, events: NewEvent[], stored: (id: string) => StoredEvent | undefined): Replay {
  const known = events.map((e) => stored(e.id));
  if (known.every((k) => k === undefined)) return { kind: 'new' };
  const differs = (i: number): boolean => {
    const k = known[i];
    return k === undefined || !sameContent(k, streamId, events[i]!);
  };
  const clash = events.findIndex((_, i) => known[i] !== undefined && differs(i));
  if (clash >= 0) return { kind: 'clash', eventId: events[clash]!.id };
  const missing = events.findIndex((_, i) => known[i] === undefined);
  if (missing >= 0) return { kind: 'clash', eventId: events.find((_, i) => known[i] !== undefined)!.id };
  return { kind: 'duplicate', events: known as StoredEvent[] };
}

function sameContent(stored: StoredEvent, streamId: string, e: NewEvent): boolean {
  return (
    stored.streamId === streamId &&
    stored.type === e.type &&
    canonicalJson(stored.data) === canonicalJson(e.data) &&
    canonicalJson(stored.metadata) === canonicalJson(e.metadata)
  );
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
