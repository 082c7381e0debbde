import type { EventStore, StoredEvent } from './event-store.port';

export interface ReadAheadOptions {
  /** the first page starts after this position */
  afterPosition: number;
  /** the last position read: a known range, e.g. the head when a rebuild started */
  upTo: number;
  /** events per page (the last one may hold fewer) */
  pageSize: number;
  /** how many pages may wait, read but not yet taken; default 4 */
  depth?: number;
}

/**
 * The events of a range of the global log, page after page, in position order, exactly as
 * `readAll` answers them. Pages are read ahead of the consumer, at most `depth` of them waiting.
 * Iteration ends after the page holding `upTo` (or the log's last event, if the log ends before).
 */
export interface LogPages extends AsyncIterable<StoredEvent[]> {
  /** stops reading and frees what reads; may be called any time, more than once */
  close(): Promise<void>;
}

/**
 * A store that can read a known range of its global log ahead of the consumer, off the event loop
 * (the embedded store: on a worker thread with its own read-only connection). Only for rebuilds and
 * replays: the live projector reads through `readAll` and `subscribeToAll`.
 */
export interface LogReadAhead {
  readPagesAhead(options: ReadAheadOptions): LogPages;
}

export function canReadAhead<T extends object>(store: T): store is T & LogReadAhead {
  return typeof (store as Partial<LogReadAhead>).readPagesAhead === 'function';
}

/**
 * The pages of a range read through `readAll` on the caller's thread, one when asked: what a store
 * that cannot read ahead answers to `readPagesAhead` (and the reference the read-ahead must match).
 */
export function pagesThroughReadAll(store: Pick<EventStore, 'readAll'>, options: ReadAheadOptions): LogPages {
  let closed = false;
  return {
    async *[Symbol.asyncIterator]() {
      let after = options.afterPosition;
      while (!closed && after < options.upTo) {
        const page = await store.readAll({ afterPosition: after, maxCount: options.pageSize });
        const mine = page.filter((e) => e.position <= options.upTo);
        const last = mine[mine.length - 1];
        if (!last) return;
        yield mine;
        if (mine.length < page.length) return;
        after = last.position;
      }
    },
    close: async () => {
      closed = true;
    },
  };
}
