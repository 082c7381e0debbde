import type { EventSubscription, ReadAllOptions, StoredEvent, SubscribeOptions } from './event-store.port';

/**
 * Wakes waiting subscriptions when the log may have grown. A counter, not a flag: a reader notes
 * the version before it reads, so a change that lands between its read and its wait is not lost.
 */
export class LogChangeSignal {
  private current = 0;
  private waiters = new Set<() => void>();

  get version(): number {
    return this.current;
  }

  notify(): void {
    this.current += 1;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /** Resolves on the next change after `seenVersion`, or after `timeoutMs` (the poll fallback). */
  wait(seenVersion: number, timeoutMs: number, stop: Promise<void>): Promise<void> {
    if (this.current !== seenVersion) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      this.waiters.add(wake);
      void stop.then(wake);
    });
  }
}

export interface PolledSubscriptionSource {
  /** Called on every fetch (not captured once), so the store's own `readAll` is what is used. */
  readAll(options: ReadAllOptions): Promise<StoredEvent[]>;
  signal: LogChangeSignal;
  pollIntervalMs: number;
  /** called once the subscription is closed, so the store can forget it */
  onClose?: () => void;
}

/**
 * Catch-up then live over a log that readers can page by position. Pull-based: the next page is
 * read only when the consumer has taken every event of the previous one, so at most one page is
 * held in memory. When a page comes back empty the subscription waits for a change signal or the
 * poll interval, whichever comes first. One consumer per subscription.
 */
export class PolledSubscription implements EventSubscription {
  private checkpoint: number;
  private readonly batchSize: number;
  private readonly eventTypes: ReadonlySet<string> | undefined;
  private page: StoredEvent[] = [];
  private index = 0;
  private closed = false;
  private stopResolve!: () => void;
  private readonly stopped = new Promise<void>((resolve) => (this.stopResolve = resolve));

  constructor(
    private readonly source: PolledSubscriptionSource,
    options: SubscribeOptions = {},
  ) {
    this.checkpoint = options.afterPosition ?? 0;
    this.batchSize = options.batchSize ?? 500;
    this.eventTypes = options.eventTypes;
    if (!Number.isInteger(this.checkpoint) || this.checkpoint < 0) {
      throw new Error(`afterPosition: expected a non-negative integer, got ${String(options.afterPosition)}`);
    }
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new Error(`batchSize: expected a positive integer, got ${String(options.batchSize)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.page = [];
    this.stopResolve();
    this.source.onClose?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<StoredEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private async next(): Promise<IteratorResult<StoredEvent>> {
    for (;;) {
      if (this.closed) return { done: true, value: undefined };
      while (this.index < this.page.length) {
        const event = this.page[this.index++]!;
        if (!this.eventTypes || this.eventTypes.has(event.type)) return { done: false, value: event };
      }
      const seen = this.source.signal.version;
      const page = await this.source.readAll({ afterPosition: this.checkpoint, maxCount: this.batchSize });
      if (this.closed) return { done: true, value: undefined };
      if (page.length > 0) {
        // skipped types advance the checkpoint too, so a filtered subscription never rereads them
        this.checkpoint = page[page.length - 1]!.position;
        this.page = page;
        this.index = 0;
        continue;
      }
      await this.source.signal.wait(seen, this.source.pollIntervalMs, this.stopped);
    }
  }
}
