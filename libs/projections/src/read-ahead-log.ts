import { canReadAhead, type EventStore, type LogPages, type ReadAllOptions, type StoredEvent } from '@clientele/event-store';

/** `readAll` for a rebuild or a replay, with a `close` that ends whatever reads ahead */
export interface RebuildLog extends Pick<EventStore, 'readAll'> {
  close(): Promise<void>;
}

/**
 * The log as a rebuild reads it, forwards from `after`: up to `upTo` (the head when the rebuild
 * started) from pages the store reads ahead (`readPagesAhead`, the embedded store's worker thread),
 * past it, or from a store that cannot read ahead, through `readAll`. The rebuild reads on from
 * where the previous read ended, as `foldBatchInPages` does; a read from anywhere else is refused,
 * since the pages read ahead could not answer it. `close()` must be called however the rebuild
 * ends: it ends the reading thread.
 */
export function rebuildLog(events: Pick<EventStore, 'readAll'>, after: number, upTo: number, pageSize: number, readAhead = true): RebuildLog {
  if (!readAhead || upTo <= after || !canReadAhead(events)) return { readAll: (options) => events.readAll(options), close: async () => undefined };
  return new ReadAheadLog(events, events.readPagesAhead({ afterPosition: after, upTo, pageSize }), after, upTo);
}

class ReadAheadLog implements RebuildLog {
  private pages: AsyncIterator<StoredEvent[]> | undefined;
  private page: StoredEvent[] = [];
  /** how much of `page` was handed out */
  private taken = 0;
  /** the position of the last event handed out */
  private cursor: number;

  constructor(
    private readonly events: Pick<EventStore, 'readAll'>,
    private readonly source: LogPages,
    after: number,
    private readonly upTo: number,
  ) {
    this.pages = source[Symbol.asyncIterator]();
    this.cursor = after;
  }

  /** as the store's `readAll`: up to `maxCount` events after `afterPosition`, a page's rest and the next page's start if need be */
  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    const after = options.afterPosition ?? 0;
    if (after >= this.upTo && this.pages) await this.close();
    if (after >= this.upTo || (!this.pages && this.taken === this.page.length)) return this.events.readAll(options);
    if (after !== this.cursor) throw new Error(`rebuild read-ahead: asked for the events after ${after}, but it is at ${this.cursor}`);
    const max = options.maxCount ?? Number.MAX_SAFE_INTEGER;
    let out: StoredEvent[] = [];
    while (out.length < max) {
      if (this.taken === this.page.length) {
        const next = await this.pages?.next();
        if (!next || next.done) {
          // the range is read (or the log ended before it): what follows comes from `readAll`
          this.pages = undefined;
          await this.source.close();
          break;
        }
        this.page = next.value;
        this.taken = 0;
        continue;
      }
      const want = max - out.length;
      const piece = this.taken === 0 && want >= this.page.length ? this.page : this.page.slice(this.taken, this.taken + want);
      this.taken += piece.length;
      out = out.length === 0 ? piece : out.concat(piece);
    }
    if (out.length === 0) return this.events.readAll(options);
    this.cursor = out[out.length - 1]!.position;
    return out;
  }

  close(): Promise<void> {
    this.pages = undefined;
    this.page = [];
    return this.source.close();
  }
}
