import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  eventTypeFilter,
  jsonEvent,
  type AllStreamSubscription,
  type AppendExpectedRevision,
  type Position,
  type ReadPosition,
  type ReadRevision,
  type RecordedEvent,
} from '@eventstore/db-client';
import { classifyReplay, revisionMatches } from '../append-rules';
import { validateAppend, validateReadAll, validateReadStream } from '../append-validation';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventSubscription,
  type JsonObject,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type SubscribeOptions,
} from '../event-store.port';
import { chainHash, GENESIS_HASH, type HashedFields } from '../hash-chain';
import { LogChangeSignal, PolledSubscription } from '../polled-subscription';
import {
  eventTypeRegex,
  fromEsdbMetadata,
  fromEsdbStreamName,
  toEsdbExpectedRevision,
  toEsdbMetadata,
  toEsdbStreamName,
  translateError,
} from './eventstoredb.mapping';

export interface EventStoreDbEventStoreOptions {
  /** e.g. esdb://localhost:2113?tls=false */
  connectionString: string;
  /** how many of a stream's latest events are searched for a retried event id; default 1,000 */
  idempotencyWindow?: number;
  /** how often a waiting subscription reads without a wake-up; default 1,000 ms */
  pollIntervalMs?: number;
  /**
   * Keeps several logs apart on one server: stream names get `<namespace>.` in front and reads
   * see only that namespace's streams (the contract suite uses one per test). Default: none.
   */
  namespace?: string;
  now?: () => Date;
}

/**
 * The port on EventStoreDB, kept thin: EventStoreDB owns ordering, revisions and the global log.
 *
 * Positions are EventStoreDB `$all` commit positions: they only grow, but they are byte offsets,
 * not 1, 2, 3… . Events written by one append may share one commit position, so `readAll` never
 * ends a page inside a commit position, and a consumer should checkpoint after the last event of
 * a position. `readStream` answers the commit position when the server supplies it and 0 when it
 * does not (the stream index does not carry it).
 *
 * The hash chain is per stream, not global: the order of `$all` is decided by the server after we
 * hash, so a global predecessor cannot be known at append time. Each event's `prevHash` is the hash
 * of the previous event of its stream (genesis for revision 0), and its hash is computed with
 * `position` 0 (see `esdbHashedFields`). Appends are pinned to the revision whose hash they chained
 * on; `any` and `stream_exists` retry a few times when another writer got in between.
 *
 * Idempotency is EventStoreDB's: an event id is recognised in the stream's latest
 * `idempotencyWindow` events, not globally.
 */
export class EventStoreDbEventStore implements EventStore {
  private readonly signal = new LogChangeSignal();
  private readonly subscriptions = new Set<PolledSubscription>();
  private wakeUps: AllStreamSubscription | undefined;
  private readonly idempotencyWindow: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => Date;
  private readonly prefix: string;

  constructor(
    private readonly client: EventStoreDBClient,
    options: Omit<EventStoreDbEventStoreOptions, 'connectionString'> = {},
  ) {
    this.idempotencyWindow = options.idempotencyWindow ?? 1_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.now = options.now ?? (() => new Date());
    if (options.namespace !== undefined && !/^[A-Za-z0-9_]+$/.test(options.namespace)) {
      throw new Error(`namespace: expected letters, digits or underscores, got ${JSON.stringify(options.namespace)}`);
    }
    this.prefix = options.namespace === undefined ? '' : `${options.namespace}.`;
  }

  static open(options: EventStoreDbEventStoreOptions): EventStoreDbEventStore {
    return new EventStoreDbEventStore(EventStoreDBClient.connectionString(options.connectionString), options);
  }

  async appendToStream(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const expected = validateAppend(streamId, events, options);
    const streamName = this.prefix + toEsdbStreamName(streamId);
    const pinnedByUs = expected === 'any' || expected === 'stream_exists';
    for (let attempt = 1; ; attempt++) {
      const recent = await this.readEsdbStream(streamName, BACKWARDS, END, this.idempotencyWindow);
      const byId = new Map(recent.map((e) => [e.id, e]));
      const replay = classifyReplay(streamId, events, (id) => byId.get(id));
      if (replay.kind === 'clash') throw new DuplicateEventIdError(replay.eventId);
      if (replay.kind === 'duplicate') {
        const last = replay.events[replay.events.length - 1]!;
        return { duplicate: true, events: replay.events, nextExpectedRevision: last.revision, position: last.position };
      }

      const tail = recent[0];
      if (!revisionMatches(expected, tail?.revision)) {
        throw new WrongExpectedRevisionError(streamId, expected, tail?.revision ?? 'no_stream');
      }
      const recordedAt = this.now().toISOString();
      let prevHash = tail?.hash ?? GENESIS_HASH;
      let revision = tail?.revision ?? -1;
      const stored = events.map((e) => {
        revision += 1;
        const fields: HashedFields = { id: e.id, streamId, revision, position: 0, type: e.type, data: e.data, metadata: e.metadata, recordedAt };
        const event: StoredEvent = { ...fields, hash: chainHash(prevHash, esdbHashedFields(fields)), prevHash };
        prevHash = event.hash;
        return event;
      });
      // pinned to the tail we chained on, so a concurrent append cannot slip between two links
      const pinned: AppendExpectedRevision = tail === undefined ? NO_STREAM : BigInt(tail.revision);
      try {
        const result = await this.client.appendToStream(
          streamName,
          stored.map((e) =>
            jsonEvent({
              id: e.id,
              type: e.type,
              data: e.data,
              metadata: toEsdbMetadata(e.metadata, { recordedAt, hash: e.hash, prevHash: e.prevHash }),
            }),
          ),
          { expectedRevision: pinned },
        );
        this.signal.notify();
        const positions = await this.positionsOf(stored.map((e) => e.id), result.position);
        const appended = stored.map((e) => ({ ...e, position: positions.get(e.id) ?? 0 }));
        return {
          duplicate: false,
          events: appended,
          nextExpectedRevision: Number(result.nextExpectedRevision),
          position: result.position ? Number(result.position.commit) : appended[appended.length - 1]!.position,
        };
      } catch (err) {
        if (err instanceof WrongExpectedVersionError && pinnedByUs && attempt < 5) continue;
        throw translateError(err, streamId, expected);
      }
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    validateReadStream(streamId, options);
    const backwards = options.direction === 'backwards';
    const from: ReadRevision = options.fromRevision !== undefined ? BigInt(options.fromRevision) : backwards ? END : START;
    return this.readEsdbStream(this.prefix + toEsdbStreamName(streamId), backwards ? BACKWARDS : FORWARDS, from, options.maxCount);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    validateReadAll(options);
    const after = options.afterPosition ?? 0;
    const from: ReadPosition = after === 0 ? START : { commit: BigInt(after), prepare: BigInt(after) };
    const read = this.client.readAll({ fromPosition: from, direction: FORWARDS });
    const out: StoredEvent[] = [];
    try {
      for await (const resolved of read) {
        const event = resolved.event;
        if (!event) continue;
        const position = Number(event.position.commit);
        if (position <= after) continue;
        const mapped = this.toStoredEvent(event, position);
        if (!mapped) continue;
        // a full page still takes the rest of its commit position, so no reader splits one
        if (options.maxCount !== undefined && out.length >= options.maxCount && out[out.length - 1]!.position !== position) break;
        out.push(mapped);
      }
    } finally {
      await read.cancel().catch(() => undefined);
    }
    return out;
  }

  subscribeToAll(options: SubscribeOptions = {}): EventSubscription {
    const subscription: PolledSubscription = new PolledSubscription(
      {
        readAll: (o) => this.readAll(o),
        signal: this.signal,
        pollIntervalMs: this.pollIntervalMs,
        onClose: () => {
          this.subscriptions.delete(subscription);
          if (this.subscriptions.size === 0) this.stopWakeUps();
        },
      },
      options,
    );
    this.subscriptions.add(subscription);
    this.startWakeUps();
    return subscription;
  }

  async headPosition(): Promise<number> {
    const read = this.client.readAll({ fromPosition: END, direction: BACKWARDS });
    try {
      for await (const resolved of read) {
        const event = resolved.event;
        if (event && this.toStoredEvent(event, 0)) return Number(event.position.commit);
      }
    } finally {
      await read.cancel().catch(() => undefined);
    }
    return 0;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.stopWakeUps();
    await this.client.dispose();
  }

  /**
   * Catch-up goes through `readAll` pages (pull-based, so back-pressure is ours); a server-filtered
   * `$all` subscription from the end only wakes waiting readers when something new lands.
   */
  private startWakeUps(): void {
    if (this.wakeUps) return;
    // one feed serves every subscription, so it wakes on any non-system type; each subscription filters its own
    const feed = this.client.subscribeToAll({ fromPosition: END, filter: eventTypeFilter({ regex: eventTypeRegex(undefined) }) });
    feed.on('data', () => this.signal.notify());
    feed.on('error', () => {
      if (this.wakeUps === feed) this.wakeUps = undefined;
    });
    this.wakeUps = feed;
  }

  private stopWakeUps(): void {
    const feed = this.wakeUps;
    this.wakeUps = undefined;
    void feed?.unsubscribe().catch(() => undefined);
  }

  /**
   * EventStoreDB answers an append with the last event's commit position only; each event's own
   * position is found by reading `$all` backwards from the end until every id was seen (usually
   * just the appended events, plus whatever other writers added since).
   */
  private async positionsOf(ids: string[], last: Position | undefined): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    if (!last) return found;
    const wanted = new Set(ids);
    const read = this.client.readAll({ fromPosition: END, direction: BACKWARDS });
    try {
      let scanned = 0;
      for await (const resolved of read) {
        const event = resolved.event;
        if (!event) continue;
        if (wanted.has(event.id)) found.set(event.id, Number(event.position.commit));
        // bounded: below our last position only our own events are of interest, and they are adjacent
        scanned += event.position.commit <= last.commit ? 1 : 0;
        if (found.size === wanted.size || scanned > wanted.size + 1_000) break;
      }
    } finally {
      await read.cancel().catch(() => undefined);
    }
    return found;
  }

  private async readEsdbStream(streamName: string, direction: typeof FORWARDS | typeof BACKWARDS, from: ReadRevision, maxCount: number | undefined): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    try {
      const read = this.client.readStream(streamName, { direction, fromRevision: from, ...(maxCount !== undefined ? { maxCount } : {}) });
      for await (const resolved of read) {
        if (!resolved.event) continue;
        const mapped = this.toStoredEvent(resolved.event, positionOf(resolved.event.position));
        if (mapped) out.push(mapped);
      }
    } catch (err) {
      if (err instanceof StreamNotFoundError) return [];
      throw err;
    }
    return out;
  }

  /** Our events only: system events, other namespaces and events written by others (no chain fields) are skipped. */
  private toStoredEvent(event: RecordedEvent, position: number): StoredEvent | undefined {
    if (event.type.startsWith('$') || event.streamId.startsWith('$') || !event.isJson) return undefined;
    if (!event.streamId.startsWith(this.prefix)) return undefined;
    const { metadata, chain } = fromEsdbMetadata(event.metadata);
    if (!chain) return undefined;
    return {
      id: event.id,
      streamId: fromEsdbStreamName(event.streamId.slice(this.prefix.length)),
      revision: Number(event.revision),
      position,
      type: event.type,
      data: event.data as JsonObject,
      metadata,
      recordedAt: chain.recordedAt,
      hash: chain.hash,
      prevHash: chain.prevHash,
    };
  }
}

/** The fields hashed on EventStoreDB: position is 0, since the server assigns it after we hash. */
export function esdbHashedFields(e: HashedFields): HashedFields {
  return { ...e, position: 0 };
}

/** Stream reads carry no commit position on some servers (they answer 2^64-1); 0 says "unknown". */
function positionOf(position: Position | undefined): number {
  if (!position || position.commit >= BigInt(Number.MAX_SAFE_INTEGER)) return 0;
  return Number(position.commit);
}
