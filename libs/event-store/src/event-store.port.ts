/**
 * The event store port. Every adapter (SQLite, PostgreSQL, EventStoreDB) implements it and passes
 * the same contract suite (`libs/testing/src/event-store.contract.ts`).
 *
 * Revisions are per stream and start at 0 (the first event of a stream has revision 0).
 * Positions are global, start at 1 and only grow; checkpoint 0 means "nothing read yet".
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface EventMetadata {
  /** business time of the fact, ISO-8601 UTC */
  occurredAt: string;
  schemaVersion: number;
  commandId?: string;
  correlationId?: string;
  /** id of the event (or command) that caused this one */
  causationId?: string;
  [key: string]: JsonValue | undefined;
}

/** An event to append. `id` is chosen by the caller (a UUID); a retried append with the same ids is a no-op. */
export interface NewEvent {
  id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
}

export interface StoredEvent extends NewEvent {
  streamId: string;
  revision: number;
  position: number;
  /** record time, ISO-8601 UTC, set by the store */
  recordedAt: string;
  /** sha256 hex over this event's content and `prevHash` */
  hash: string;
  /** hash of the event at `position - 1` in the global log (64 zeros for the first) */
  prevHash: string;
}

/** `no_stream`: the stream must not exist; `stream_exists`: it must; a number: its last revision must be exactly that. */
export type ExpectedRevision = 'any' | 'no_stream' | 'stream_exists' | number;

export interface AppendOptions {
  expectedRevision?: ExpectedRevision; // default 'any'
}

export interface AppendResult {
  /** revision of the last event of the stream after the append */
  nextExpectedRevision: number;
  /** global position of the last appended event */
  position: number;
  /** the events as stored (for an idempotent retry: the events stored the first time) */
  events: StoredEvent[];
  /** true when every event was already stored by an earlier identical append */
  duplicate: boolean;
}

export interface ReadStreamOptions {
  direction?: 'forwards' | 'backwards';
  /** inclusive; default: start (forwards) or end (backwards) */
  fromRevision?: number;
  maxCount?: number;
}

export interface ReadAllOptions {
  /** exclusive: returns events with position > afterPosition; default 0 */
  afterPosition?: number;
  maxCount?: number;
}

export interface SubscribeOptions {
  /** exclusive checkpoint: delivery starts after this position; default 0 */
  afterPosition?: number;
  /** how many events are fetched per read while catching up; also bounds memory */
  batchSize?: number;
  /** only these event types (others are skipped but still advance the checkpoint) */
  eventTypes?: ReadonlySet<string>;
}

/**
 * A catch-up-then-live subscription over the global log. Back-pressure: the store reads the next
 * batch only when the consumer has pulled the previous one. Iterate with `for await`; `close()`
 * ends the iteration.
 */
export interface EventSubscription extends AsyncIterable<StoredEvent> {
  close(): Promise<void>;
}

export interface EventStore {
  appendToStream(streamId: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** events of one stream; an unknown stream reads as [] */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  readAll(options?: ReadAllOptions): Promise<StoredEvent[]>;
  subscribeToAll(options?: SubscribeOptions): EventSubscription;
  /** the position of the last committed event, 0 when empty */
  headPosition(): Promise<number>;
  close(): Promise<void>;
}

/** Raised when the expected revision does not match. Adapters translate their own errors into it. */
export class WrongExpectedRevisionError extends Error {
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: number | 'no_stream',
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${String(actual)}`);
    this.name = 'WrongExpectedRevisionError';
  }
}

/** Raised when a stored event id is reused for different content (not an idempotent retry). */
export class DuplicateEventIdError extends Error {
  constructor(readonly eventId: string) {
    super(`event id ${eventId} is already stored with other content or in another place`);
    this.name = 'DuplicateEventIdError';
  }
}
