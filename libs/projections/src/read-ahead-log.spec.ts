import { pagesThroughReadAll, type LogPages, type ReadAheadOptions, type StoredEvent } from '@clientele/event-store';
import { InMemoryEventStore } from '@clientele/testing';
import { foldBatchInPages } from './projector';
import type { Projection } from './read-model-store';
import { rebuildLog } from './read-ahead-log';

/** A store whose read-ahead is its own readAll, page by page, recording what it was asked and whether it was closed. */
async function storeOf(count: number) {
  const store = new InMemoryEventStore();
  for (let i = 1; i <= count; i++) await store.appendToStream(`s-${i % 3}`, [{ id: `e-${i}`, type: 'T', data: { i }, metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 } }]);
  const asked: ReadAheadOptions[] = [];
  let closed = 0;
  const readAhead = Object.assign(store, {
    readPagesAhead: (options: ReadAheadOptions): LogPages => {
      asked.push(options);
      const pages = pagesThroughReadAll(store, options);
      return { [Symbol.asyncIterator]: () => pages[Symbol.asyncIterator](), close: async () => void (closed += 1) };
    },
  });
  return { store: readAhead, asked, closed: () => closed };
}

describe('rebuildLog', () => {
  it('answers readAll as the store does, batch and page boundaries included, up to the range and past it', async () => {
    const { store, asked, closed } = await storeOf(47);
    // read ahead up to 40; 41..47 come from readAll
    const log = rebuildLog(store, 0, 40, 4);
    const plain = rebuildLog(store, 0, 40, 4, false);
    // a projection that takes the log page by page, as the rebuild hands it over
    const pageTaker = { foldsPages: true } as unknown as Projection;
    const pagesOf = async (from: typeof log) => {
      const pages: number[][] = [];
      for (let after = 0; ; ) {
        const last = await foldBatchInPages(from, after, 10, 4, [pageTaker], async (_p, page) => void pages.push(page.map((e: StoredEvent) => e.position)));
        if (last === after) return pages;
        after = last;
      }
    };
    const read = await pagesOf(log);
    expect(read).toEqual(await pagesOf(plain));
    expect(read.flat()).toEqual(Array.from({ length: 47 }, (_, i) => i + 1));
    expect(read.slice(0, 4)).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10], [11, 12, 13, 14]]);
    expect(asked).toEqual([{ afterPosition: 0, upTo: 40, pageSize: 4 }]);
    // the range was read to its end: the read-ahead is closed already, and closing again is harmless
    expect(closed()).toBe(1);
    await log.close();
  });

  it('refuses a read from anywhere but where the last one ended, and is closed however the reader stops', async () => {
    const { store, closed } = await storeOf(30);
    const log = rebuildLog(store, 0, 30, 5);
    expect((await log.readAll({ afterPosition: 0, maxCount: 5 })).map((e) => e.position)).toEqual([1, 2, 3, 4, 5]);
    await expect(log.readAll({ afterPosition: 3, maxCount: 5 })).rejects.toThrow(/after 3, but it is at 5/);
    await log.close();
    expect(closed()).toBe(1);
  });

  it('reads through readAll when told not to read ahead, when the range is empty, or when the store cannot', async () => {
    const { store, asked } = await storeOf(10);
    for (const log of [rebuildLog(store, 0, 10, 4, false), rebuildLog(store, 10, 10, 4), rebuildLog(new InMemoryEventStore(), 0, 10, 4)]) {
      await log.readAll({ afterPosition: 0, maxCount: 4 });
      await log.close();
    }
    expect(asked).toEqual([]);
  });
});
