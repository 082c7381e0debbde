import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteEventStore, SqliteReadAhead } from '@clientele/event-store';
import type { StoredEvent } from '@clientele/event-store';
import { generateCustomerLog } from '@clientele/testing';
import { allProjections } from './all-projections';
import { Projector } from './projector';
import { ProfilesProjection } from './profiles.projection';
import { digest } from './read-model-digest';
import { ReadModels } from './read-models';
import { ReferralsProjection } from './referrals.projection';
import { replayProjections } from './replay-proof';
import { SqliteReadModelStore } from './sqlite-read-model.store';

/** End to end on the embedded stack: the SQLite event store feeding read models in SQLite files. */
describe('Projector on the SQLite event store', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-projector-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const append = async (store: SqliteEventStore, events: readonly StoredEvent[]) => {
    for (const e of events) await store.appendToStream(e.streamId, [{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }]);
  };

  it('given a live projector following appends, then its read models equal a rebuild from position 0, and a restart resumes', async () => {
    const log = generateCustomerLog({ seed: 21, customers: 80 }).events;
    const half = Math.floor(log.length / 2);
    const events = new SqliteEventStore({ file: join(dir, 'events.sqlite'), durability: 'normal', pollIntervalMs: 5 });
    await append(events, log.slice(0, half));
    const projections = [new ProfilesProjection(), new ReferralsProjection()];
    const readModels = new ReadModels(new SqliteReadModelStore(join(dir, 'live.sqlite')));

    // first run: catch up, then stop as if the process ended
    const first = new Projector(events, readModels, projections, { batchSize: 50 });
    await first.start();
    await first.catchUp();
    // second run: resumes from the checkpoint and follows new appends live
    const second = new Projector(events, readModels, projections, {
      batchSize: 50,
      freshStore: async () => new SqliteReadModelStore(join(dir, 'rebuilt.sqlite')),
    });
    const running = second.run();
    await append(events, log.slice(half));
    for (;;) {
      const status = await second.status();
      if (status.every((s) => s.position === log.length)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const live = await Promise.all(projections.map((p) => digest(readModels, p)));

    await second.rebuild();

    expect(await Promise.all(projections.map((p) => digest(readModels, p)))).toEqual(live);
    expect(await second.status()).toEqual(projections.map((p) => ({ name: p.name, version: p.version, position: log.length, head: log.length, lag: 0 })));
    await second.stop();
    await running;
    await readModels.close();
    await events.close();
  });

  describe('reading the log ahead on a worker thread', () => {
    const digests = async (readModels: ReadModels | SqliteReadModelStore, projections = allProjections()) =>
      Promise.all(projections.map((p) => digest(readModels, p)));

    /** live read models caught up with `events` by a projector that rebuilds in batches of 100, pages of 10 */
    const caughtUp = async (events: SqliteEventStore) => {
      const readModels = new ReadModels(new SqliteReadModelStore(join(dir, 'live.sqlite')));
      const projector = new Projector(events, readModels, allProjections(), {
        rebuildBatchSize: 100,
        rebuildPageSize: 10,
        freshStore: async () => new SqliteReadModelStore(join(dir, 'rebuilt.sqlite')),
      });
      await projector.start();
      await projector.catchUp();
      return { readModels, projector, live: readModels.current, before: await digests(readModels) };
    };

    it('a rebuild and a replay fold the same read models with and without read-ahead, at several batch and page sizes', async () => {
      const log = generateCustomerLog({ seed: 33, customers: 60 }).events;
      const events = new SqliteEventStore({ file: join(dir, 'events.sqlite'), durability: 'normal' });
      await append(events, log);
      const results: string[][] = [];
      let n = 0;
      for (const [rebuildBatchSize, rebuildPageSize] of [[25_000, 1_000], [50, 7], [100, 100], [90, 40]] as const) {
        for (const rebuildReadAhead of [false, true]) {
          n += 1;
          const readModels = new ReadModels(new SqliteReadModelStore(join(dir, `live-${n}.sqlite`)));
          const projector = new Projector(events, readModels, allProjections(), {
            rebuildBatchSize,
            rebuildPageSize,
            rebuildReadAhead,
            freshStore: async () => new SqliteReadModelStore(join(dir, `rebuilt-${n}.sqlite`)),
          });
          await projector.start();
          await projector.rebuild();
          expect((await projector.status()).every((s) => s.position === log.length)).toBe(true);
          results.push(await digests(readModels));
          await readModels.close();

          const scratch = new SqliteReadModelStore(join(dir, `replayed-${n}.sqlite`));
          await replayProjections(events, scratch, allProjections(), { batchSize: rebuildBatchSize, pageSize: rebuildPageSize, readAhead: rebuildReadAhead });
          results.push(await digests(scratch));
          await scratch.close();
        }
      }
      // the events folded one by one into the live store give the same read models
      const readModels = new ReadModels(new SqliteReadModelStore(join(dir, 'one-by-one.sqlite')));
      const live = new Projector(events, readModels, allProjections(), { batchSize: 1 });
      await live.start();
      await live.catchUp();
      const expected = await digests(readModels);
      await readModels.close();
      for (const result of results) expect(result).toEqual(expected);
      await events.close();
    });

    it('a read-ahead that fails fails the rebuild, and the live read models stay as they were', async () => {
      const log = generateCustomerLog({ seed: 34, customers: 40 }).events;
      const file = join(dir, 'events.sqlite');
      const events = new SqliteEventStore({ file, durability: 'normal' });
      await append(events, log);
      const { readModels, projector, live, before } = await caughtUp(events);
      const status = await projector.status();

      // a row past the first pages no longer parses: the pages read ahead fail on it
      const db = new Database(file);
      db.prepare('UPDATE events SET data = ? WHERE position = ?').run('not json', Math.floor(log.length / 2));
      db.close();
      await expect(projector.rebuild()).rejects.toThrow(/JSON/);

      expect(readModels.current).toBe(live);
      expect(await digests(readModels)).toEqual(before);
      expect(await projector.status()).toEqual(status);
      await readModels.close();
      await events.close();
    });

    it('a read-ahead thread that dies fails the rebuild, ends, and the live read models stay as they were', async () => {
      const log = generateCustomerLog({ seed: 35, customers: 40 }).events;
      const store = new SqliteEventStore({ file: join(dir, 'events.sqlite'), durability: 'normal' });
      await append(store, log);
      // the store's read-ahead, but the thread is ended abruptly after the third page
      let closed = 0;
      const events = Object.assign(Object.create(store) as SqliteEventStore, {
        readPagesAhead: (options: Parameters<SqliteEventStore['readPagesAhead']>[0]) => {
          const pages = new SqliteReadAhead(join(dir, 'events.sqlite'), options, (e) => e);
          return {
            close: async () => {
              closed += 1;
              await pages.close();
            },
            async *[Symbol.asyncIterator]() {
              let n = 0;
              for await (const page of pages) {
                if (++n === 3) await pages.terminateThread();
                yield page;
              }
            },
          };
        },
      });
      const { readModels, projector, live, before } = await caughtUp(events);

      await expect(projector.rebuild()).rejects.toThrow(/read-ahead thread stopped/);

      expect(closed).toBe(1);
      expect(readModels.current).toBe(live);
      expect(await digests(readModels)).toEqual(before);
      // and the projector goes on: a rebuild without read-ahead succeeds and folds the same
      const plain = new Projector(store, readModels, allProjections(), {
        rebuildReadAhead: false,
        freshStore: async () => new SqliteReadModelStore(join(dir, 'rebuilt-again.sqlite')),
      });
      await plain.rebuild();
      expect(readModels.current).not.toBe(live);
      expect(await digests(readModels)).toEqual(before);
      await readModels.close();
      await store.close();
    });
  });
});
