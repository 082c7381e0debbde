import type { JsonObject } from './event-store.port';
import { canonicalJson } from './hash-chain';

/**
 * An event's `data` or `metadata` as a verification must read it: from the text the store holds,
 * parsed only when that text is exactly the canonical JSON the chain hashed (or, given
 * `alsoWritten`, another spelling that function vouches for). Any other text — not JSON, or JSON
 * written another way: a key repeated (SQL's `json_extract`/`->>` and `json_each` read the first or
 * both, JavaScript keeps the last), `3e3` for `3000`, a letter escaped as `\u0041` — comes back as
 * `{ $unreadable: <text> }`, which cannot match its recorded hash, so the verification reports the
 * event as altered at its position: a reader of the stored text could see other values than the
 * hash covers.
 */
export function payloadAsHashed(text: string, alsoWritten?: (value: JsonObject, text: string) => boolean): JsonObject {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const value = parsed as JsonObject;
      if (canonicalJson(value) === text || alsoWritten?.(value, text)) return value;
    }
  } catch {
    // falls through: the damage is reported by the hash check, not by the reader
  }
  return { $unreadable: text };
}

/**
 * The text PostgreSQL writes for a `jsonb` value (`jsonb::text`, and a `jsonb` value cast to `json`):
 * object keys shortest first then bytewise, `": "` and `", "` between items, strings escaped as
 * JSON.stringify escapes them, numbers in plain decimals. Rows stored before the store's data
 * columns became `json` (migration 4) hold this text: it has exactly one reading (no key repeated,
 * no other spelling of a number or a letter), and the chain hashed the values it reads as.
 */
export function jsonbText(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(jsonbText).join(', ')}]`;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort(jsonbKeyOrder);
      return `{${keys.map((k) => `${JSON.stringify(k)}: ${jsonbText(record[k])}`).join(', ')}}`;
    }
    default:
      return 'null';
  }
}

/** jsonb's key order: by length in bytes, then bytewise. */
function jsonbKeyOrder(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length - y.length || Buffer.compare(x, y);
}
