import type { ReadModelQueries, ReadModelStore, SqlParam } from './read-model-store';

/**
 * The store queries read from. A rebuild fills a fresh store while this one keeps serving, then
 * `swap` replaces it in one assignment; the old store closes once the queries already running on
 * it have finished.
 */
export class ReadModels implements ReadModelQueries {
  private live: ReadModelStore;
  private readonly inFlight = new Map<ReadModelStore, number>();
  private readonly drained = new Map<ReadModelStore, () => void>();

  constructor(store: ReadModelStore) {
    this.live = store;
  }

  get current(): ReadModelStore {
    return this.live;
  }

  get dialect(): 'sqlite' | 'postgres' {
    return this.live.dialect;
  }

  all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]> {
    return this.track((s) => s.all<T>(sql, params));
  }

  get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined> {
    return this.track((s) => s.get<T>(sql, params));
  }

  /** makes `next` the live store and closes the previous one after its running queries end */
  async swap(next: ReadModelStore): Promise<void> {
    const previous = this.live;
    if (previous === next) return;
    this.live = next;
    if ((this.inFlight.get(previous) ?? 0) > 0) {
      await new Promise<void>((resolve) => this.drained.set(previous, resolve));
    }
    await previous.close();
  }

  async close(): Promise<void> {
    await this.live.close();
  }

  private async track<R>(query: (store: ReadModelStore) => Promise<R>): Promise<R> {
    const store = this.live;
    this.inFlight.set(store, (this.inFlight.get(store) ?? 0) + 1);
    try {
      return await query(store);
    } finally {
      const left = (this.inFlight.get(store) ?? 1) - 1;
      if (left > 0) this.inFlight.set(store, left);
      else {
        this.inFlight.delete(store);
        const resolve = this.drained.get(store);
        this.drained.delete(store);
        resolve?.();
      }
    }
  }
}
