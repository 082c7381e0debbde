import { hash } from 'node:crypto';
import type { StoredEvent } from './event-store.port';

export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted, so the same content always hashes the same in every store.
 * Written in one pass (no sorted copy of the value): it runs for every appended event.
 */
export function canonicalJson(value: unknown): string {
  return write(value) as string;
}

/** `undefined` where JSON.stringify would leave the value out. */
function write(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      // JSON.stringify writes a finite number as String() does (-0 as '0'), and null for the others.
      return Number.isFinite(value) ? `${value}` : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += write(value[i]) ?? 'null';
        }
        return out + ']';
      }
      const record = value as Record<string, unknown>;
      const keys = orderedKeys(record);
      let out = '{';
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const v = write(record[key]);
        if (v === undefined) continue;
        out += (first ? '' : ',') + quote(key) + ':' + v;
        first = false;
      }
      return out + '}';
    }
    default:
      return JSON.stringify(value);
  }
}

/**
 * What JSON.stringify escapes in a string: the quote, the backslash, control characters and lone
 * surrogates (any surrogate is sent to JSON.stringify, which keeps the paired ones as they are).
 */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * JSON.stringify of a string, without the call for the usual case of nothing to escape: this runs
 * for every key and string value of every appended event, and the call cost more than the test.
 */
function quote(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * The order the first definition produced (a sorted copy, then JSON.stringify): integer-like keys
 * first in numeric order, as JavaScript enumerates them, then the other keys sorted.
 */
function orderedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  let indexKeys = 0;
  while (indexKeys < keys.length && isArrayIndex(keys[indexKeys]!)) indexKeys++;
  if (indexKeys === 0) return keys.sort();
  return [...keys.slice(0, indexKeys), ...keys.slice(indexKeys).sort()];
}

function isArrayIndex(key: string): boolean {
  // Most keys start with a letter: skip the pattern for them (this runs for every key of every event).
  const first = key.charCodeAt(0);
  if (!(first >= 48 && first <= 57)) return false;
  return /^(0|[1-9]\d*)$/.test(key) && Number(key) < 4294967295;
}

/** The fields the chain protects: content, identity, place in the log, record time. */
export type HashedFields = Pick<
  StoredEvent,
  'id' | 'streamId' | 'revision' | 'position' | 'type' | 'data' | 'metadata' | 'recordedAt'
>;

/** sha256(prevHash + canonical content). Changing one byte, the order, or the predecessor changes it. */
export function chainHash(prevHash: string, e: HashedFields): string {
  return chainHashOfCanonical(prevHash, e, canonicalJson(e.data), canonicalJson(e.metadata));
}

/**
 * The same hash for a store that already holds the canonical JSON of `data` and `metadata` (it
 * serialises them once, for the row and the hash). The envelope is written here with its keys in
 * sorted order, exactly as canonicalJson would write it.
 */
export function chainHashOfCanonical(
  prevHash: string,
  e: Omit<HashedFields, 'data' | 'metadata'>,
  canonicalData: string,
  canonicalMetadata: string,
): string {
  return hash('sha256', `${prevHash}\n${envelopeBefore(e, canonicalData, canonicalMetadata)}${write(e.position)}${envelopeAfter(e)}`, 'hex');
}

/** The envelope's keys in sorted order, as canonicalJson would write it: up to the position... */
function envelopeBefore(e: Pick<HashedFields, 'id'>, canonicalData: string, canonicalMetadata: string): string {
  return `{"data":${canonicalData},"id":${write(e.id)},"metadata":${canonicalMetadata},"position":`;
}

/** ...and after it. */
function envelopeAfter(e: Pick<HashedFields, 'recordedAt' | 'revision' | 'streamId' | 'type'>): string {
  return `,"recordedAt":${write(e.recordedAt)},"revision":${write(e.revision)},"streamId":${write(e.streamId)},"type":${write(e.type)}}`;
}

/**
 * The hashed text of chainHashOfCanonical around the position, for a store that learns the
 * position (and the predecessor's hash) only where it writes: the hash is then
 * sha256(`${prevHash}\n${before}${position}${after}`), position written as a decimal integer.
 */
export function chainEnvelopeAroundPosition(
  e: Omit<HashedFields, 'data' | 'metadata' | 'position'>,
  canonicalData: string,
  canonicalMetadata: string,
): { before: string; after: string } {
  return { before: envelopeBefore(e, canonicalData, canonicalMetadata), after: envelopeAfter(e) };
}
