import type { ExpectedRevision, NewEvent, StoredEvent } from './event-store.port';
import { canonicalJson } from './hash-chain';

/** Rules the server adapters apply the same way before they write (input checks: append-validation.ts). */

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
