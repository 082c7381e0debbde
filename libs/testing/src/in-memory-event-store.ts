import {
  chainHash,
  GENESIS_HASH,
  WrongExpectedRevisionError,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventSubscription,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type SubscribeOptions,
} from '@clientele/event-store';

/**
 * A test double of the event store port, in memory: enough for specs of consumers of the store
 * (relay, projections) without a database. Not an adapter: it does not run the contract suite.
 */
export class InMemoryEventStore implements EventStore {
  private readonly log: StoredEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private clock = Date.parse('2026-01-01T00:00:00.000Z');

  async appendToStream(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    const stream = this.log.filter((e) => e.streamId === streamId);
    const current = stream.length - 1;
    const expected = options.expectedRevision ?? 'any';
    const actual = current < 0 ? 'no_stream' : current;
    if (
      (expected === 'no_stream' && current >= 0) ||
      (expected === 'stream_exists' && current < 0) ||
      (typeof expected === 'number' && expected !== current)
    ) {
      throw new WrongExpectedRevisionError(streamId, expected, actual);
    }
    const stored: StoredEvent[] = [];
    for (const [i, e] of events.entries()) {
      const prev = this.log[this.log.length - 1];
      this.clock += 1;
      const base = {
        ...e,
        streamId,
        revision: current + 1 + i,
        position: this.log.length + 1,
        recordedAt: new Date(this.clock).toISOString(),
      };
      const prevHash = prev?.hash ?? GENESIS_HASH;
      const event: StoredEvent = { ...base, prevHash, hash: chainHash(prevHash, base) };
      this.log.push(event);
      stored.push(event);
    }
    for (const wake of [...this.waiters]) wake();
    const last = stored[stored.length - 1] ?? this.log[this.log.length - 1];
    return { nextExpectedRevision: current + events.length, position: last?.position ?? 0, events: stored, duplicate: false };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    let events = this.log.filter((e) => e.streamId === streamId);
    if (options.direction === 'backwards') {
      events = events.reverse();
      if (options.fromRevision !== undefined) events = events.filter((e) => e.revision <= (options.fromRevision as number));
    } else if (options.fromRevision !== undefined) {
      events = events.filter((e) => e.revision >= (options.fromRevision as number));
    }
    return events.slice(0, options.maxCount ?? events.length);
  }

  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const from = options.afterPosition ?? 0;
    return this.log.slice(from, from + (options.maxCount ?? this.log.length));
  }

  subscribeToAll(options: SubscribeOptions = {}): EventSubscription {
    let after = options.afterPosition ?? 0;
    let closed = false;
    let wakeMe: (() => void) | undefined;
    const store = this;
    return {
      async close() {
        closed = true;
        wakeMe?.();
      },
      async *[Symbol.asyncIterator]() {
        while (!closed) {
          const next = store.log[after];
          if (next) {
            after = next.position;
            if (!options.eventTypes || options.eventTypes.has(next.type)) yield next;
            continue;
          }
          await new Promise<void>((resolve) => {
            wakeMe = () => {
              store.waiters.delete(wake);
              resolve();
            };
            const wake = wakeMe;
            store.waiters.add(wake);
          });
        }
      },
    };
  }

  async headPosition(): Promise<number> {
    return this.log.length;
  }

  async close(): Promise<void> {
    for (const wake of [...this.waiters]) wake();
  }
}
