import type { EventStore, StoredEvent } from './event-store.port';

export interface BatchReadOptions {
  /** events fetched per read; bounds the memory an export or a verification holds; default 1000 */
  batchSize?: number;
  /** exclusive; default 0 */
  afterPosition?: number;
}

function batchSizeOf(options: BatchReadOptions): number {
  const size = options.batchSize ?? 1000;
  if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`batchSize must be a positive integer, got ${String(size)}`);
  return size;
}

/** The global log in position order, one page at a time, so a log of any length reads in constant memory. */
export async function* eventsOfLog(store: Pick<EventStore, 'readAll'>, options: BatchReadOptions = {}): AsyncGenerator<StoredEvent> {
  const maxCount = batchSizeOf(options);
  let after = options.afterPosition ?? 0;
  for (;;) {
    const page = await store.readAll({ afterPosition: after, maxCount });
    yield* page;
    const last = page[page.length - 1];
    if (!last || page.length < maxCount) return;
    after = last.position;
  }
}

/** One stream in revision order, one page at a time. */
export async function* eventsOfStream(
  store: Pick<EventStore, 'readStream'>,
  streamId: string,
  options: Pick<BatchReadOptions, 'batchSize'> = {},
): AsyncGenerator<StoredEvent> {
  const maxCount = batchSizeOf(options);
  let from = 0;
  for (;;) {
    const page = await store.readStream(streamId, { direction: 'forwards', fromRevision: from, maxCount });
    yield* page;
    const last = page[page.length - 1];
    if (!last || page.length < maxCount) return;
    from = last.revision + 1;
  }
}

/** How many events a stream holds (its last revision + 1), 0 for an unknown stream. */
export async function streamLength(store: Pick<EventStore, 'readStream'>, streamId: string): Promise<number> {
  const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
  return last ? last.revision + 1 : 0;
}
