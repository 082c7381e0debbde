import {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  WrongExpectedVersionError,
  type AppendExpectedRevision,
  type CurrentRevision,
} from '@eventstore/db-client';
import {
  WrongExpectedRevisionError,
  type EventMetadata,
  type ExpectedRevision,
  type JsonObject,
  type JsonValue,
} from '../event-store.port';

/**
 * Pure translations between our port and EventStoreDB's vocabulary, kept apart from I/O so they
 * can be tested without a server.
 */

/** Our lower-case categories and EventStoreDB's conventional capitalised ones (the `$ce-` projections group by them). */
const CATEGORIES = ['customer', 'employee', 'campaign'] as const;

/** `customer-x` → `Customer-x`; streams of other categories keep their name. */
export function toEsdbStreamName(streamId: string): string {
  for (const category of CATEGORIES) {
    if (streamId.startsWith(`${category}-`)) return capitalise(category) + streamId.slice(category.length);
  }
  const upper = CATEGORIES.find((c) => streamId.startsWith(`${capitalise(c)}-`));
  if (upper) {
    // would read back as `${upper}-…`, a different stream: refuse rather than alias two names
    throw new Error(`streamId: expected the lower-case category '${upper}-', got ${JSON.stringify(streamId)}`);
  }
  return streamId;
}

/** `Customer-x` → `customer-x`; the inverse of toEsdbStreamName. */
export function fromEsdbStreamName(streamName: string): string {
  for (const category of CATEGORIES) {
    const esdb = `${capitalise(category)}-`;
    if (streamName.startsWith(esdb)) return category + streamName.slice(category.length);
  }
  return streamName;
}

export function toEsdbExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  switch (expected) {
    case 'any':
      return ANY;
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    default:
      return BigInt(expected);
  }
}

export function fromEsdbCurrentRevision(current: CurrentRevision): number | 'no_stream' {
  return current === NO_STREAM ? 'no_stream' : Number(current);
}

/** EventStoreDB's conflict becomes ours; anything else passes through unchanged. */
export function translateError(err: unknown, streamId: string, expected: ExpectedRevision): unknown {
  if (err instanceof WrongExpectedVersionError) {
    return new WrongExpectedRevisionError(streamId, expected, fromEsdbCurrentRevision(err.actualVersion));
  }
  return err;
}

/** What the chain needs from each stored event; kept in EventStoreDB's metadata under one key. */
export interface ChainFields {
  recordedAt: string;
  hash: string;
  prevHash: string;
}

const CHAIN_KEY = '$clientele';

/**
 * Our metadata in EventStoreDB's shape: correlation and causation under the `$correlationId` /
 * `$causationId` keys its projections understand, everything else as is, and the chain fields
 * under `$clientele`.
 */
export function toEsdbMetadata(metadata: EventMetadata, chain: ChainFields): JsonObject {
  const { correlationId, causationId, ...rest } = metadata;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(rest)) if (value !== undefined) out[key] = value;
  if (correlationId !== undefined) out.$correlationId = correlationId;
  if (causationId !== undefined) out.$causationId = causationId;
  out[CHAIN_KEY] = { recordedAt: chain.recordedAt, hash: chain.hash, prevHash: chain.prevHash };
  return out;
}

/** The inverse of toEsdbMetadata; `chain` is undefined for events not written by Clientele. */
export function fromEsdbMetadata(raw: unknown): { metadata: EventMetadata; chain: ChainFields | undefined } {
  const source = isObject(raw) ? raw : {};
  const { $correlationId, $causationId, [CHAIN_KEY]: chainRaw, ...rest } = source;
  const metadata = { ...rest } as EventMetadata;
  if (typeof $correlationId === 'string') metadata.correlationId = $correlationId;
  if (typeof $causationId === 'string') metadata.causationId = $causationId;
  const chain =
    isObject(chainRaw) &&
    typeof chainRaw.recordedAt === 'string' &&
    typeof chainRaw.hash === 'string' &&
    typeof chainRaw.prevHash === 'string'
      ? { recordedAt: chainRaw.recordedAt, hash: chainRaw.hash, prevHash: chainRaw.prevHash }
      : undefined;
  return { metadata, chain };
}

/** A server-side `$all` filter regex: the given types, or every type that is not a system type. */
export function eventTypeRegex(types: ReadonlySet<string> | undefined): string {
  if (!types || types.size === 0) return '^[^$]';
  return `^(${[...types].map(escapeRegex).join('|')})$`;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function capitalise(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function isObject(value: unknown): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
