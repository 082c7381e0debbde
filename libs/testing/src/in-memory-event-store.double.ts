import {
  GENESIS_HASH,
  WrongExpectedRevisionError,
  chainHash,
} from '@clientele/event-store';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventSubscription,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StoredEvent,
  SubscribeOptions,
} from '@clientele/event-store';

/**
 * A test double of the event-store port held in memory: enough behaviour (revisions, positions,
 * catch-up-then-live subscriptions with back-pressure) to drive projectors and relays in unit
 * specs. Not an adapter: it does not pass the full contract suite and keeps nothing on close.
 */
export class InMemoryEventStoreDouble implements EventStore {
  private readonly log: StoredEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private clock = Date.parse('2026-01-01T00:00:00.000Z');

  /** loads already stored events (e.g. from `StoredEventLog`) as they are */
  static from(events: readonly StoredEvent[]): InMemoryEventStoreDouble {
    const store = new InMemoryEventStoreDouble();
    store.log.push(...events);
    return store;
  }

  async appendToStream(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const current = this.lastRevision(streamId);
    const expected = options.expectedRevision ?? 'any';
    const ok =
      expected === 'any' ||
      (expected === 'no_stream' && current === undefined) ||
      (expected === 'stream_exists' && current !== undefined) ||
      (typeof expected === 'number' && current === expected);
    if (!ok) throw new WrongExpectedRevisionError(streamId, expected, current ?? 'no_stream');
    const appended: StoredEvent[] = [];
    let revision = current ?? -1;
    for (const e of events) {
      revision += 1;
      const position = this.log.length + 1;
      const prevHash = this.log[this.log.length - 1]?.hash ?? GENESIS_HASH;
      const recordedAt = new Date((this.clock += 1000)).toISOString();
      const fields = { id: e.id, streamId, revision, position, type: e.type, data: e.data, metadata: e.metadata, recordedAt };
      const stored: StoredEvent = { ...fields, hash: chainHash(prevHash, fields), prevHash };
      this.log.push(stored);
      appended.push(stored);
    }
    for (const wake of [...this.waiters]) wake();
    return { nextExpectedRevision: revision, position: this.log.length, events: appended, duplicate: false };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    let events = this.log.filter((e) => e.streamId === streamId);
    if (options.direction === 'backwards') {
      events = events.reverse();
      if (options.fromRevision !== undefined) events = events.filter((e) => e.revision <= options.fromRevision!);
    } else if (options.fromRevision !== undefined) {
      events = events.filter((e) => e.revision >= options.fromRevision!);
    }
    return options.maxCount === undefined ? events : events.slice(0, options.maxCount);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const after = options.afterPosition ?? 0;
    // positions are 1..n without gaps here, so the index is position - 1
    return this.log.slice(after, options.maxCount === undefined ? undefined : after + options.maxCount);
  }

  subscribeToAll(options: SubscribeOptions = {}): EventSubscription {
    let position = options.afterPosition ?? 0;
    let closed = false;
    let wake: (() => void) | undefined;
    const batchSize = options.batchSize ?? 500;
    const store = this;
    async function* iterate(): AsyncGenerator<StoredEvent> {
      while (!closed) {
        const batch = await store.readAll({ afterPosition: position, maxCount: batchSize });
        if (batch.length === 0) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            store.waiters.add(resolve);
          });
          if (wake) store.waiters.delete(wake);
          continue;
        }
        for (const e of batch) {
          if (closed) return;
          position = e.position;
          if (!options.eventTypes || options.eventTypes.has(e.type)) yield e;
        }
      }
    }
    const generator = iterate();
    return {
      [Symbol.asyncIterator]: () => generator,
      close: async () => {
        closed = true;
        if (wake) {
          store.waiters.delete(wake);
          wake();
        }
      },
    };
  }

  async headPosition(): Promise<number> {
    return this.log.length;
  }

  async close(): Promise<void> {
    for (const wake of [...this.waiters]) wake();
    this.waiters.clear();
  }

  private lastRevision(streamId: string): number | undefined {
    for (let i = this.log.length - 1; i >= 0; i -= 1) {
      const e = this.log[i];
      if (e && e.streamId === streamId) return e.revision;
    }
    return undefined;
  }
}
