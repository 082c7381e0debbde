import type { Worker } from 'node:worker_threads';
import type { StoredEvent } from '../event-store.port';
import type { LogPages, ReadAheadOptions } from '../read-ahead';
import { startStoreWorker } from './store-worker';

/** the events table's columns in the order `EventColumns` reads them */
export const EVENT_COLUMNS = 'position, stream_id, revision, id, type, data, metadata, recorded_at, hash, prev_hash';
export type EventColumns = [number, string, number, string, string, string, string, string, string, string];

/** how many columns a row of EVENT_COLUMNS has */
export const EVENT_COLUMN_COUNT = 10;

/**
 * The event `readAll` answers for the row at `at` in `c`: one row read with `raw` (columns
 * `EVENT_COLUMNS`) at 0, or rows laid end to end.
 */
export function fromColumns(c: ArrayLike<EventColumns[number]>, at = 0): StoredEvent {
  return {
    id: c[at + 3] as string,
    type: c[at + 4] as string,
    data: storedJson(c[at + 5] as string, 'data', c[at] as number, c[at + 3] as string) as StoredEvent['data'],
    metadata: storedJson(c[at + 6] as string, 'metadata', c[at] as number, c[at + 3] as string) as StoredEvent['metadata'],
    streamId: c[at + 1] as string,
    revision: c[at + 2] as number,
    position: c[at] as number,
    recordedAt: c[at + 7] as string,
    hash: c[at + 8] as string,
    prevHash: c[at + 9] as string,
  };
}

/**
 * A stored event's `data` or `metadata` parsed; a row no longer JSON (the file edited by hand, or
 * damaged) is named by its position and id instead of a bare SyntaxError from somewhere in a read.
 */
export function storedJson(text: string, column: 'data' | 'metadata', position: number, id: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(
      `the event at position ${position} (id ${id}) holds ${column} that is not JSON (${(error as Error).message}): ` +
        'the store was altered there; clientele audit verify reports it',
    );
  }
}

/** What the read-ahead thread is started with. */
export interface ReadAheadThreadData {
  file: string;
  afterPosition: number;
  upTo: number;
  pageSize: number;
  /** pages the thread may read before it is told that one was taken */
  depth: number;
}

/**
 * What the thread posts, in order: pages, then `end` (or `error`, after which it posts nothing).
 * A page is its rows' columns laid end to end (EVENT_COLUMN_COUNT a row), which the event loop
 * turns into events as `readAll` does, data and metadata parsed there. Posting parsed events
 * instead saves the event loop little more (taking them from the structured clone costs nearly
 * what parsing does) and costs the thread twice as much CPU, which a busy machine pays in wall
 * clock (see docs/projections.md). The main thread answers each page it takes with a number: how
 * many more pages the thread may read.
 */
export type ReadAheadReply =
  | { t: 'page'; columns: EventColumns[number][] }
  | { t: 'end' }
  | { t: 'error'; name: string; message: string };

/**
 * The event loop's end of a read-ahead thread over an embedded store file: a worker thread with
 * its own read-only connection reads the pages of `(afterPosition, upTo]` (WAL lets it read beside
 * the writer and the store's own connection) while the consumer folds the previous ones, at most `depth` pages ahead. Each page is checked on arrival (not empty, positions rising
 * from the last page's, none past `upTo`), so a fault stops the iteration with an error rather
 * than repeat an event or go past the range. The thread is ended when the iteration ends, fails or is left, and by `close()`.
 */
export class SqliteReadAhead implements LogPages {
  private readonly worker: Worker;
  private readonly arrived: ReadAheadReply[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  private iterated = false;
  private last: number;
  private readonly upTo: number;
  private readonly exited: Promise<void>;

  constructor(
    file: string,
    options: ReadAheadOptions,
    private readonly present: (events: StoredEvent[]) => StoredEvent[],
  ) {
    const { afterPosition, upTo, pageSize } = options;
    const depth = options.depth ?? 4;
    for (const [name, value, min] of [['afterPosition', afterPosition, 0], ['upTo', upTo, 0], ['pageSize', pageSize, 1], ['depth', depth, 1]] as const) {
      if (!Number.isSafeInteger(value) || value < min) throw new Error(`readPagesAhead ${name}: expected an integer ≥ ${min}, got ${String(value)}`);
    }
    this.last = afterPosition;
    this.upTo = upTo;
    this.worker = startStoreWorker<ReadAheadThreadData>('sqlite-read-ahead.worker', { file, afterPosition, upTo, pageSize, depth });
    this.worker.on('message', (reply: ReadAheadReply) => {
      this.arrived.push(reply);
      this.signal();
    });
    this.worker.on('error', (error) => {
      this.failure ??= new Error(`the SQLite read-ahead thread failed: ${error.message}`);
      this.signal();
    });
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        this.failure ??= new Error(`the SQLite read-ahead thread stopped (exit code ${code})`);
        this.signal();
        resolve();
      });
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<StoredEvent[]> {
    if (this.iterated) throw new Error('the pages of a read-ahead are read once');
    this.iterated = true;
    try {
      for (;;) {
        const reply = await this.next();
        if (reply.t === 'end') return;
        if (reply.t === 'error') throw Object.assign(new Error(reply.message), { name: reply.name });
        // the page leaves the queue: the thread may read one more
        this.worker.postMessage(1);
        yield this.present(this.events(reply.columns));
      }
    } finally {
      await this.close();
    }
  }

  close(): Promise<void> {
    this.closing ??= this.worker.terminate().then(() => this.exited);
    return this.closing;
  }

  /** Test seam: ends the thread abruptly, as a crash in it would. */
  terminateThread(): Promise<number> {
    return this.worker.terminate();
  }

  private async next(): Promise<ReadAheadReply> {
    for (;;) {
      if (this.closing) throw new Error('the read-ahead is closed');
      const reply = this.arrived.shift();
      if (reply) return reply;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** the page's events, once their positions are known to follow the last page's, rising, none past `upTo` */
  private events(columns: EventColumns[number][]): StoredEvent[] {
    const events: StoredEvent[] = [];
    let last = this.last;
    for (let at = 0; at < columns.length; at += EVENT_COLUMN_COUNT) {
      const e = fromColumns(columns, at);
      if (!(e.position > last)) throw new Error(`read-ahead: position ${e.position} came after ${last}`);
      last = e.position;
      events.push(e);
    }
    if (events.length === 0 || last > this.upTo) throw new Error(`read-ahead: a page of ${events.length} events ending at ${last}, past ${this.upTo}`);
    this.last = last;
    return events;
  }
}
