import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NewEvent, StoredEvent } from '../event-store.port';
import { UpcasterRegistry } from '../serialization';
import { SqliteReadAhead } from './sqlite-read-ahead';
import { SqliteEventStore } from './sqlite.event-store';

/** The embedded store's read-ahead: a worker thread reads the pages of a range of the global log. */
describe('SQLite event store: readPagesAhead', () => {
  let dir: string;
  let file: string;
  const open: SqliteEventStore[] = [];
  const openStore = (options: { upcasters?: UpcasterRegistry } = {}): SqliteEventStore => {
    const store = new SqliteEventStore({ file, durability: 'normal', ...options });
    open.push(store);
    return store;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-read-ahead-'));
    file = join(dir, 'events.db');
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** `count` events over five streams, in appends of one to three, some with text no ASCII holds */
  async function logOf(store: SqliteEventStore, count: number): Promise<void> {
    let n = 0;
    while (n < count) {
      const size = Math.min(count - n, 1 + (n % 3));
      const events: NewEvent[] = [];
      for (let i = 0; i < size; i++, n++) {
        events.push({
          id: `e-${n}`,
          type: n % 4 === 0 ? 'PurchaseRecorded' : 'TouchpointRecorded',
          data: { n, note: n % 5 === 0 ? 'Grüße, 東京 🎉 "quoted" \\ back' : `plain ${n}`, lines: [{ sku: `s-${n % 7}`, quantity: n % 3 }] },
          metadata: { occurredAt: `2026-01-01T00:00:${String(n % 60).padStart(2, '0')}.000Z`, schemaVersion: 1 },
        });
      }
      await store.appendToStream(`customer-${n % 5}`, events);
    }
  }

  async function pagesOf(store: SqliteEventStore, afterPosition: number, upTo: number, pageSize: number): Promise<StoredEvent[][]> {
    const pages: StoredEvent[][] = [];
    for await (const page of store.readPagesAhead({ afterPosition, upTo, pageSize, depth: 2 })) pages.push(page);
    return pages;
  }

  it('yields exactly the events readAll answers for the range, in full pages, whatever the page size', async () => {
    const store = openStore();
    await logOf(store, 237);
    const ranges: Array<[number, number]> = [
      [0, 237], // the whole log
      [0, 230], // ending mid-page
      [15, 101],
      [236, 237], // one event
      [0, 500], // past the head: up to the head
    ];
    for (const pageSize of [1, 7, 50, 1000]) {
      for (const [after, upTo] of ranges) {
        const expected = (await store.readAll({ afterPosition: after })).filter((e) => e.position <= upTo);
        const pages = await pagesOf(store, after, upTo, pageSize);
        expect(pages.flat()).toEqual(expected);
        // every page full but the last
        expect(pages.slice(0, -1).every((p) => p.length === pageSize)).toBe(true);
        expect(pages.at(-1)!.length).toBeLessThanOrEqual(pageSize);
      }
    }
  });

  it('yields nothing for an empty log or an empty range', async () => {
    const empty = openStore();
    expect(await pagesOf(empty, 0, 0, 10)).toEqual([]);
    expect(await pagesOf(empty, 0, 100, 10)).toEqual([]);
    await logOf(empty, 20);
    expect(await pagesOf(empty, 20, 20, 10)).toEqual([]);
    expect(await pagesOf(empty, 20, 40, 10)).toEqual([]);
  });

  it('stops at upTo while appends go on past it', async () => {
    const store = openStore();
    await logOf(store, 40);
    const pages: StoredEvent[][] = [];
    for await (const page of store.readPagesAhead({ afterPosition: 0, upTo: 40, pageSize: 10, depth: 1 })) {
      pages.push(page);
      await logOf(store, 10);
    }
    expect(pages.flat().map((e) => e.position)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('applies the store’s upcasters as readAll does', async () => {
    const writer = openStore();
    await logOf(writer, 30);
    const upcasters = new UpcasterRegistry([
      {
        type: 'PurchaseRecorded',
        fromVersion: 1,
        upcast: (e: StoredEvent): StoredEvent => ({ ...e, data: { ...e.data, currency: 'EUR' }, metadata: { ...e.metadata, schemaVersion: 2 } }),
      },
    ]);
    const reader = openStore({ upcasters });
    const pages = await pagesOf(reader, 0, 30, 8);
    expect(pages.flat()).toEqual(await reader.readAll());
    expect(pages.flat().filter((e) => e.data.currency === 'EUR')).toHaveLength(8);
  });

  it('fails where readAll fails: a row whose data is not JSON ends the iteration with an error after the pages before it', async () => {
    const store = openStore();
    await logOf(store, 50);
    const db = new Database(file);
    db.prepare('UPDATE events SET data = ? WHERE position = 23').run('{"n": 22,');
    db.close();
    await expect(store.readAll({ afterPosition: 20, maxCount: 5 })).rejects.toThrow(SyntaxError);

    const positions: number[] = [];
    const reading = (async () => {
      for await (const page of store.readPagesAhead({ afterPosition: 0, upTo: 50, pageSize: 10 })) positions.push(...page.map((e) => e.position));
    })();
    await expect(reading).rejects.toThrow(SyntaxError);
    expect(positions).toEqual(Array.from({ length: 10 }, (_, i) => i + 1).concat(Array.from({ length: 10 }, (_, i) => i + 11)));
  });

  it('a thread that dies ends the iteration with an error, and closing after it is harmless', async () => {
    const store = openStore();
    await logOf(store, 100);
    const pages = new SqliteReadAhead(file, { afterPosition: 0, upTo: 100, pageSize: 10, depth: 1 }, (events) => events);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const page of pages) {
        seen.push(page.length);
        if (seen.length === 2) await pages.terminateThread();
      }
    })();
    await expect(reading).rejects.toThrow(/read-ahead thread stopped/);
    // a page the thread posted before it was ended may still arrive, never the rest of the range
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.length).toBeLessThanOrEqual(3);
    expect(seen.every((n) => n === 10)).toBe(true);
    await pages.close();
  });

  it('ends its thread when the consumer stops early or the store closes', async () => {
    const store = openStore();
    await logOf(store, 100);
    let taken = 0;
    for await (const page of store.readPagesAhead({ afterPosition: 0, upTo: 100, pageSize: 10 })) {
      taken += page.length;
      if (taken >= 20) break;
    }
    expect(taken).toBe(20);

    // never iterated: closing the store ends it, and the pages then read as an error, not as an end
    const left = store.readPagesAhead({ afterPosition: 0, upTo: 100, pageSize: 10 });
    await store.close();
    await expect((async () => {
      for await (const page of left) void page;
    })()).rejects.toThrow(/closed/);
  });

  it('reads a :memory: store through readAll, with the same pages', async () => {
    const store = new SqliteEventStore({ file: ':memory:' });
    open.push(store);
    await logOf(store, 33);
    const pages = await pagesOf(store, 4, 30, 5);
    expect(pages.map((p) => p.length)).toEqual([5, 5, 5, 5, 5, 1]);
    expect(pages.flat()).toEqual((await store.readAll({ afterPosition: 4 })).filter((e) => e.position <= 30));
  });
});
