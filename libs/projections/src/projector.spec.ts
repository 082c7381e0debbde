import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '@clientele/event-store';
import { inMemoryStoreOf, StoredEventLog, generateCustomerLog } from '@clientele/testing';
import { allProjections } from './all-projections';
import { ProfilesProjection } from './profiles.projection';
import { ReferralsProjection } from './referrals.projection';
import { StatisticsProjection } from './statistics.projection';
import { Projector, microBatches } from './projector';
import { ReadModelsOfAnotherLogError } from './log-anchor';
import { digest } from './read-model-digest';
import type { Projection, ReadModelStore, ReadModelTransaction } from './read-model-store';
import { ReadModels } from './read-models';
import { SqliteReadModelStore } from './sqlite-read-model.store';

/** A small fold for exercising the projector: orders and revenue per customer. */
function ordersProjection(options: { version?: number; failOn?: (e: StoredEvent) => boolean } = {}): Projection {
  return {
    name: 'orders',
    version: options.version ?? 1,
    tables: ['orders_per_customer'],
    async migrate(tx) {
      await tx.exec(
        'CREATE TABLE IF NOT EXISTS orders_per_customer (customer_id TEXT PRIMARY KEY, orders BIGINT NOT NULL, revenue BIGINT NOT NULL)',
      );
    },
    async apply(events, tx) {
      for (const e of events) {
        if (options.failOn?.(e)) throw new Error(`projection failed on ${e.id}`);
        if (e.type !== 'PurchaseRecorded') continue;
        await tx.run(
          `INSERT INTO orders_per_customer (customer_id, orders, revenue) VALUES (?, 1, ?)
           ON CONFLICT (customer_id) DO UPDATE SET orders = orders_per_customer.orders + 1,
             revenue = orders_per_customer.revenue + excluded.revenue`,
          [String(e.data.customerId), Number(e.data.totalMinor)],
        );
      }
    },
  };
}

/**
 * A fold with deferred work: every event it folds leaves one unit pending, and each settle step
 * finishes one. `journal` records what ran, in order, as the store committed it.
 */
function deferringProjection(hooks: { onStep?: (step: number) => Promise<void> } = {}): Projection {
  let steps = 0;
  return {
    name: 'deferring',
    version: 1,
    tables: ['deferred_journal', 'deferred_pending'],
    async migrate(tx) {
      await tx.exec(`CREATE TABLE IF NOT EXISTS deferred_journal (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS deferred_pending (id INTEGER PRIMARY KEY, units BIGINT NOT NULL);
        INSERT INTO deferred_pending (id, units) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;`);
    },
    async apply(events, tx) {
      for (const e of events) await tx.run('INSERT INTO deferred_journal (entry) VALUES (?)', [`fold ${e.position}`]);
      await tx.run('UPDATE deferred_pending SET units = units + ? WHERE id = 1', [events.length]);
    },
    async settle(tx) {
      const row = await tx.get<{ units: number }>('SELECT units FROM deferred_pending WHERE id = 1');
      const units = Number(row?.units ?? 0);
      if (units === 0) return false;
      steps += 1;
      await tx.run('UPDATE deferred_pending SET units = units - 1 WHERE id = 1');
      await tx.run('INSERT INTO deferred_journal (entry) VALUES (?)', ['step']);
      await hooks.onStep?.(steps);
      return units > 1;
    },
  };
}

const journal = async (store: { all: ReadModelStore['all'] }): Promise<string[]> =>
  (await store.all<{ entry: string }>('SELECT entry FROM deferred_journal ORDER BY seq')).map((r) => r.entry);

function purchases(count: number, log = new StoredEventLog()): StoredEventLog {
  for (let i = 0; i < count; i += 1) {
    log.append('PurchaseRecorded', { customerId: `c${i % 7}`, orderId: `o${log.head}`, lines: [], totalMinor: 100 + i, costMinor: 0 });
  }
  return log;
}

function expectedOrders(events: readonly StoredEvent[]): Array<{ customer_id: string; orders: number; revenue: number }> {
  const acc = new Map<string, { orders: number; revenue: number }>();
  for (const e of events) {
    if (e.type !== 'PurchaseRecorded') continue;
    const row = acc.get(String(e.data.customerId)) ?? { orders: 0, revenue: 0 };
    row.orders += 1;
    row.revenue += Number(e.data.totalMinor);
    acc.set(String(e.data.customerId), row);
  }
  return [...acc.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([customer_id, r]) => ({ customer_id, ...r }));
}

const readOrders = (store: { all: ReadModelStore['all'] }) =>
  store.all('SELECT customer_id, orders, revenue FROM orders_per_customer ORDER BY customer_id');

describe('Projector', () => {
  describe('read models of another log', () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const file = () => {
      const dir = mkdtempSync(join(tmpdir(), 'clientele-anchor-'));
      dirs.push(dir);
      return join(dir, 'read-models.sqlite');
    };

    it('given read models folded from one log, when a projector on another log starts on them, then it refuses, naming the position and both hashes', async () => {
      const where = file();
      const first = await inMemoryStoreOf(purchases(10).events);
      const folded = new ReadModels(new SqliteReadModelStore(where));
      await new Projector(first, folded, [ordersProjection()], { batchSize: 4 }).start();
      await new Projector(first, folded, [ordersProjection()], { batchSize: 4 }).catchUp();
      await folded.close();
      const before = await readOrders(new SqliteReadModelStore(where));

      // another log with as many events: same positions, other content
      const other = await inMemoryStoreOf(purchases(10, new StoredEventLog('2027-06-01T00:00:00.000Z')).events);
      const reopened = new ReadModels(new SqliteReadModelStore(where));
      const refusal = await new Projector(other, reopened, [ordersProjection()], { auditStore: 'sqlite:/srv/clientele/clientele.db' }).start().catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(ReadModelsOfAnotherLogError);
      const lastFolded = (await first.readAll())[9]!;
      const theirs = (await other.readAll())[9]!;
      expect(refusal).toMatchObject({ position: 10, expectedHash: lastFolded.hash, found: `has hash ${theirs.hash} there` });
      // the anchor cannot tell another log from this log rewritten: the message names both, the
      // command that checks the log against it, and that a replay would erase the one witness
      const message = (refusal as Error).message;
      expect(message).toContain(`at position 10, had hash ${lastFolded.hash}, and this log has hash ${theirs.hash} there`);
      expect(message).toContain('Either they were folded from another log, or this log was altered or cut after they folded it');
      expect(message).toContain(`\`clientele audit verify --store sqlite:/srv/clientele/clientele.db --expect 10:${lastFolded.hash}\``);
      expect(message).toContain('Do not replay before that: `clientele replay` replaces these read models, the only witness of the log they folded');
      expect(message).not.toContain('\n');
      // and nothing of the other log was folded in
      expect(await readOrders(reopened)).toEqual(before);
      await reopened.close();
    });

    it('given read models past the end of a shorter log, then it refuses; on the same log it resumes and folds what is new', async () => {
      const where = file();
      const log = purchases(8);
      const events = await inMemoryStoreOf(log.events);
      const readModels = new ReadModels(new SqliteReadModelStore(where));
      const projector = new Projector(events, readModels, [ordersProjection()], { batchSize: 3 });
      await projector.start();
      await projector.catchUp();

      const shorter = await inMemoryStoreOf([]);
      await expect(new Projector(shorter, readModels, [ordersProjection()]).start()).rejects.toThrow(
        /at position 8, had hash [0-9a-f]{64}, and this log has no event at that position \(its head is 0\)/,
      );

      // the same log, restarted with more events: accepted, and only the new ones folded
      await events.appendToStream('customer-c1', [
        { id: 'late-1', type: 'PurchaseRecorded', data: { customerId: 'c1', orderId: 'late', lines: [], totalMinor: 5000, costMinor: 0 }, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 } },
      ]);
      const again = new Projector(events, readModels, [ordersProjection()], { batchSize: 3 });
      await again.start();
      await again.catchUp();
      expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
      await readModels.close();
    });

    it('given read models that folded nothing yet, then any log may start on them; a version change rebuilds from this log into a fresh store', async () => {
      const where = file();
      const empty = new ReadModels(new SqliteReadModelStore(where));
      await new Projector(await inMemoryStoreOf(purchases(3).events), empty, [ordersProjection()]).start();
      const another = await inMemoryStoreOf(purchases(4, new StoredEventLog('2027-06-01T00:00:00.000Z')).events);
      const onAnother = new Projector(another, empty, [ordersProjection()]);
      await onAnother.start();
      await onAnother.catchUp();
      expect(await readOrders(empty)).toEqual(expectedOrders(await another.readAll()));
      await empty.close();

      // folded from one log at version 1, then a new version of the projection on another log
      const first = await inMemoryStoreOf(purchases(5).events);
      const readModels = new ReadModels(new SqliteReadModelStore(file()));
      const v1 = new Projector(first, readModels, [ordersProjection()]);
      await v1.start();
      await v1.catchUp();
      const other = await inMemoryStoreOf(purchases(6, new StoredEventLog('2027-06-01T00:00:00.000Z')).events);
      const v2 = new Projector(other, readModels, [ordersProjection({ version: 2 })], { freshStore: async () => new SqliteReadModelStore(file()) });
      await v2.start();
      expect(await readOrders(readModels)).toEqual(expectedOrders(await other.readAll()));
      await readModels.close();
    });
  });

  it('given stored events, when caught up in batches, then the read model is their fold and the checkpoint is the head', async () => {
    const log = purchases(25);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [ordersProjection()], { batchSize: 4 });

    await projector.start();
    const reached = await projector.catchUp();

    expect(reached).toBe(25);
    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    expect(await projector.status()).toEqual([{ name: 'orders', version: 1, position: 25, head: 25, lag: 0 }]);
    await readModels.close();
  });

  it('given a caught-up read model, when more events arrive and it catches up again, then only the new ones are folded', async () => {
    const log = purchases(10);
    const events = await inMemoryStoreOf(log.events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(events, readModels, [ordersProjection()], { batchSize: 3 });
    await projector.start();
    await projector.catchUp();
    await projector.catchUp();

    await events.appendToStream('customer-c1', [
      { id: 'late-1', type: 'PurchaseRecorded', data: { customerId: 'c1', orderId: 'late', lines: [], totalMinor: 5000, costMinor: 0 }, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 } },
    ]);
    await projector.catchUp();

    expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
    expect((await projector.status())[0]).toMatchObject({ position: 11, lag: 0 });
    await readModels.close();
  });

  it('given a projection that throws mid-batch, then the read model and checkpoint stay as they were before that batch', async () => {
    const log = purchases(12);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const failing = ordersProjection({ failOn: (e) => e.position === 7 });
    const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [failing], { batchSize: 4 });
    await projector.start();

    await expect(projector.catchUp()).rejects.toThrow('projection failed on evt-00000007');

    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events.slice(0, 4)));
    expect((await projector.status())[0]).toMatchObject({ position: 4, lag: 8 });

    // when the fault is gone, the next run resumes after the last committed batch: nothing twice, nothing skipped
    const healed = new Projector(await inMemoryStoreOf(log.events), readModels, [ordersProjection()], { batchSize: 4 });
    await healed.catchUp();
    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    await readModels.close();
  });

  it('given a projection whose code version changed, when started, then it is rebuilt into a fresh store that becomes live', async () => {
    const log = purchases(9);
    const events = await inMemoryStoreOf(log.events);
    const first = new SqliteReadModelStore(':memory:');
    const readModels = new ReadModels(first);
    const v1 = new Projector(events, readModels, [ordersProjection({ version: 1 })]);
    await v1.start();
    await v1.catchUp();
    // a stale row the new version would never write: the rebuild must not carry it over
    await first.transaction((tx) => tx.run("INSERT INTO orders_per_customer VALUES ('ghost', 1, 1)"));

    const fresh: SqliteReadModelStore[] = [];
    const v2 = new Projector(events, readModels, [ordersProjection({ version: 2 })], {
      freshStore: async () => {
        const s = new SqliteReadModelStore(':memory:');
        fresh.push(s);
        return s;
      },
    });
    await v2.start();

    expect(fresh).toHaveLength(1);
    expect(readModels.current).toBe(fresh[0]);
    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    expect(await v2.status()).toEqual([{ name: 'orders', version: 2, position: 9, head: 9, lag: 0 }]);
    await expect(first.all('SELECT 1')).rejects.toThrow(); // the old store was closed after the swap
    await readModels.close();
  });

  it('given no fresh-store factory, when a version changed, then the projection is rebuilt in place', async () => {
    const log = purchases(6);
    const events = await inMemoryStoreOf(log.events);
    const store = new SqliteReadModelStore(':memory:');
    const readModels = new ReadModels(store);
    const v1 = new Projector(events, readModels, [ordersProjection({ version: 1 })]);
    await v1.start();
    await v1.catchUp();
    await store.transaction((tx) => tx.run("INSERT INTO orders_per_customer VALUES ('ghost', 1, 1)"));

    const v2 = new Projector(events, readModels, [ordersProjection({ version: 2 })]);
    await v2.start();
    await v2.catchUp();

    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    await readModels.close();
  });

  it('given a live projector, when events are appended, then it folds them and a rebuild swaps stores without losing any', async () => {
    const events = await inMemoryStoreOf(purchases(30).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(events, readModels, [ordersProjection()], {
      batchSize: 8,
      freshStore: async () => new SqliteReadModelStore(':memory:'),
    });
    const running = projector.run();

    for (let i = 0; i < 5; i += 1) {
      await events.appendToStream(`customer-live${i}`, [
        { id: `live-${i}`, type: 'PurchaseRecorded', data: { customerId: `live${i}`, orderId: `l${i}`, lines: [], totalMinor: 10, costMinor: 0 }, metadata: { occurredAt: '2026-03-01T00:00:00.000Z', schemaVersion: 1 } },
      ]);
    }
    await waitUntilCaughtUp(projector);
    const before = readModels.current;
    const rebuilding = projector.rebuild();
    await events.appendToStream('customer-during', [
      { id: 'during-1', type: 'PurchaseRecorded', data: { customerId: 'during', orderId: 'd1', lines: [], totalMinor: 7, costMinor: 0 }, metadata: { occurredAt: '2026-03-02T00:00:00.000Z', schemaVersion: 1 } },
    ]);
    await rebuilding;
    await waitUntilCaughtUp(projector);

    expect(readModels.current).not.toBe(before);
    expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
    await projector.stop();
    await running;
    await readModels.close();
  });

  it('given a long backlog, when the projector is stopped while catching up, then run ends after the batch in progress and a later run resumes from its checkpoint', async () => {
    const events = await inMemoryStoreOf(purchases(100).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    let projector: Projector | undefined;
    let batches = 0;
    const stopping: Projection = {
      ...ordersProjection(),
      async apply(batch, tx) {
        batches += 1;
        if (batches === 2) void projector!.stop();
        await ordersProjection().apply(batch, tx);
      },
    };
    projector = new Projector(events, readModels, [stopping], { batchSize: 10 });

    await projector.run();

    expect(batches).toBe(2);
    expect((await projector.status()).map((s) => s.position)).toEqual([20]);
    // a stopped projector folds nothing more; the next process resumes from the checkpoint
    expect(await projector.catchUp()).toBe(20);
    expect(await new Projector(events, readModels, [ordersProjection()], { batchSize: 10 }).catchUp()).toBe(100);
    expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
    await readModels.close();
  });

  it('given a live projector, when another process promotes a generation it folded up to an earlier position, then adopt catches it up, swaps it in, closes the old one, and live batches go to it', async () => {
    const events = await inMemoryStoreOf(purchases(30).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    let afterSwap = 0;
    const projector = new Projector(events, readModels, [ordersProjection()], { batchSize: 8, afterSwap: async () => void (afterSwap += 1) });
    const running = projector.run();
    await waitUntilCaughtUp(projector);
    // the other process: its own projector folded the log as it was at position 20 into its own store
    const promoted = new SqliteReadModelStore(':memory:');
    const elsewhere = new Projector(await inMemoryStoreOf((await events.readAll()).slice(0, 20)), new ReadModels(promoted), [ordersProjection()]);
    await elsewhere.start();
    await elsewhere.catchUp();
    const before = readModels.current;
    let closed = false;
    const close = before.close.bind(before);
    before.close = async () => {
      closed = true;
      await close();
    };

    expect(await projector.adopt(promoted)).toBe(true);

    expect(readModels.current).toBe(promoted);
    expect(closed).toBe(true);
    expect(afterSwap).toBe(1);
    expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
    await events.appendToStream('customer-after', [
      { id: 'after-1', type: 'PurchaseRecorded', data: { customerId: 'after', orderId: 'a1', lines: [], totalMinor: 9, costMinor: 0 }, metadata: { occurredAt: '2026-03-03T00:00:00.000Z', schemaVersion: 1 } },
    ]);
    await waitUntilCaughtUp(projector);
    expect(await readOrders(promoted)).toEqual(expectedOrders(await events.readAll()));
    expect((await projector.status()).map((s) => s.lag)).toEqual([0]);
    await projector.stop();
    await running;
    await readModels.close();
  });

  it('given a promoted generation folded by another version of a projection, then adopt declines it and the live store keeps serving; given the same store again, it declines too', async () => {
    const events = await inMemoryStoreOf(purchases(12).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(events, readModels, [ordersProjection()], { batchSize: 8 });
    await projector.start();
    await projector.catchUp();
    const other = new SqliteReadModelStore(':memory:');
    const older = new Projector(events, new ReadModels(other), [ordersProjection({ version: 2 })]);
    await older.start();
    await older.catchUp();
    const live = readModels.current;

    expect(await projector.adopt(other)).toBe(false);
    expect(readModels.current).toBe(live);
    expect(await projector.adopt(live)).toBe(false);
    expect(await readOrders(readModels)).toEqual(expectedOrders(await events.readAll()));
    await other.close();
    await readModels.close();
  });

  it('given a promoted generation folded from another log, then adopt refuses it by name and the live store keeps serving', async () => {
    const events = await inMemoryStoreOf(purchases(12).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(events, readModels, [ordersProjection()], { batchSize: 8 });
    await projector.start();
    await projector.catchUp();
    const foreign = new SqliteReadModelStore(':memory:');
    const otherLog = purchases(12);
    otherLog.append('PurchaseRecorded', { customerId: 'x', orderId: 'ox', lines: [], totalMinor: 1, costMinor: 0 });
    const elsewhere = new Projector(await inMemoryStoreOf(otherLog.events.slice(3)), new ReadModels(foreign), [ordersProjection()]);
    await elsewhere.start();
    await elsewhere.catchUp();
    const live = readModels.current;

    await expect(projector.adopt(foreign)).rejects.toThrow(ReadModelsOfAnotherLogError);
    expect(readModels.current).toBe(live);
    await foreign.close();
    await readModels.close();
  });

  it('given every read model, when rebuilt into a fresh store (rebuild instances, small batches and pages, past their memory limits), then each digest equals the live fold', async () => {
    const log = generateCustomerLog({ seed: 11, customers: 60 });
    const events = await inMemoryStoreOf(log.events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    // limits below the 60 customers, so rebuild instances also drop what they hold and read it back
    const projections = allProjections().map((p) =>
      p.name === 'profiles'
        ? new ProfilesProjection({ residentLimit: 40 })
        : p.name === 'statistics'
          ? new StatisticsProjection({ residentLimit: 40 })
          : new ReferralsProjection({ residentLimit: 40 }),
    );
    const projector = new Projector(events, readModels, projections, {
      batchSize: 50,
      rebuildBatchSize: 23,
      // profiles and referrals take each batch in pages, statistics whole
      rebuildPageSize: 7,
      freshStore: async () => new SqliteReadModelStore(':memory:'),
    });
    await projector.start();
    await projector.catchUp();
    const live = await Promise.all(projections.map((p) => digest(readModels.current, p)));
    const before = readModels.current;

    await projector.rebuild();

    expect(readModels.current).not.toBe(before);
    expect(await Promise.all(projections.map((p) => digest(readModels.current, p)))).toEqual(live);
    await readModels.close();
  });

  it('given a projection that folds pages, when rebuilt, then it takes the log page by page while one transaction still spans each batch', async () => {
    const log = purchases(25);
    const calls: Array<{ name: string; positions: number[]; tx: ReadModelTransaction }> = [];
    const recording = (name: string, foldsPages: boolean): Projection => {
      const inner = ordersProjection();
      return {
        ...inner, name, tables: [], foldsPages,
        async migrate(tx) {
          if (name === 'paged') await inner.migrate(tx);
        },
        async apply(events, tx) {
          calls.push({ name, positions: events.map((e) => e.position), tx });
          if (name === 'paged') await inner.apply(events, tx);
        },
      };
    };
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [recording('paged', true), recording('whole', false)], {
      rebuildBatchSize: 10,
      rebuildPageSize: 4,
      freshStore: async () => new SqliteReadModelStore(':memory:'),
    });
    await projector.start();
    calls.length = 0;

    await projector.rebuild();

    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const of = (name: string) => calls.filter((c) => c.name === name);
    expect(of('paged').map((c) => c.positions)).toEqual([
      range(1, 4), range(5, 8), range(9, 10), range(11, 14), range(15, 18), range(19, 20), range(21, 24), [25],
    ]);
    expect(of('whole').map((c) => c.positions)).toEqual([range(1, 10), range(11, 20), range(21, 25)]);
    // each batch's pages and its whole-batch apply share one transaction; batches do not
    const txOf = (c: { tx: ReadModelTransaction }) => calls.findIndex((x) => x.tx === c.tx);
    expect(of('paged').map(txOf)).toEqual([0, 0, 0, 4, 4, 4, 8, 8]);
    expect(of('whole').map(txOf)).toEqual([0, 4, 8]);
    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    expect((await projector.status()).map((s) => s.position)).toEqual([25, 25]);
    await readModels.close();
  });

  it('given a rebuild whose paged projection fails in a later page of a batch, then the earlier pages of that batch are not in the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-projector-'));
    try {
      const log = purchases(20);
      const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
      let failing = false;
      const inner = ordersProjection({ failOn: (e) => failing && e.position === 15 });
      const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [{ ...inner, foldsPages: true }], {
        rebuildBatchSize: 10,
        rebuildPageSize: 3,
        freshStore: async () => new SqliteReadModelStore(join(dir, 'fresh.sqlite')),
      });
      await projector.start();
      failing = true;

      await expect(projector.rebuild()).rejects.toThrow('projection failed on evt-00000015');

      // the fresh store holds the first batch whole and nothing of the second (positions 11 to 14 were folded, then rolled back)
      const fresh = new SqliteReadModelStore(join(dir, 'fresh.sqlite'));
      expect(await fresh.all('SELECT name, position FROM projection_checkpoints')).toEqual([{ name: 'orders', position: 10 }]);
      expect(await readOrders(fresh)).toEqual(expectedOrders(log.events.slice(0, 10)));
      await fresh.close();
      await readModels.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given a rebuild that fails part-way, then the live store stays current and serving, and the fresh one is closed', async () => {
    const log = purchases(20);
    const events = await inMemoryStoreOf(log.events);
    const live = new SqliteReadModelStore(':memory:');
    const readModels = new ReadModels(live);
    let failing = false;
    const fresh: SqliteReadModelStore[] = [];
    const projector = new Projector(events, readModels, [ordersProjection({ failOn: (e) => failing && e.position === 15 })], {
      rebuildBatchSize: 5,
      freshStore: async () => {
        const s = new SqliteReadModelStore(':memory:');
        fresh.push(s);
        return s;
      },
    });
    await projector.start();
    await projector.catchUp();

    failing = true;
    await expect(projector.rebuild()).rejects.toThrow('projection failed on evt-00000015');

    expect(readModels.current).toBe(live);
    expect(await readOrders(readModels)).toEqual(expectedOrders(log.events));
    await expect(fresh[0]!.all('SELECT 1')).rejects.toThrow();
    await readModels.close();
  });

  it('given an onBatchApplied hook, then it hears each batch of the live store after its commit, and nothing of a rebuild', async () => {
    const log = purchases(10);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const heard: Array<{ positions: number[]; committed: unknown[] }> = [];
    const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [ordersProjection()], {
      batchSize: 4,
      freshStore: async () => new SqliteReadModelStore(':memory:'),
      onBatchApplied: async (events) => {
        // the batch is visible to readers when the hook runs
        heard.push({ positions: events.map((e) => e.position), committed: await readModels.all('SELECT position FROM projection_checkpoints') });
      },
    });
    await projector.start();

    await projector.catchUp();

    expect(heard.map((h) => h.positions)).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
    expect(heard.map((h) => h.committed)).toEqual([[{ position: 4 }], [{ position: 8 }], [{ position: 10 }]]);

    // when rebuilt into a fresh store, the hook stays quiet: that store serves nobody until the swap
    heard.length = 0;
    await projector.rebuild();
    expect(heard).toEqual([]);
    await readModels.close();
  });

  it('digests the same events folded twice identically, and differently when one event differs', async () => {
    const log = purchases(40);
    const altered = purchases(39);
    altered.append('PurchaseRecorded', { customerId: 'c4', orderId: 'x', lines: [], totalMinor: 1, costMinor: 0 });

    const fold = async (events: readonly StoredEvent[]) => {
      const store = new SqliteReadModelStore(':memory:');
      const projector = new Projector(await inMemoryStoreOf(events), new ReadModels(store), [ordersProjection()], { batchSize: 7 });
      await projector.start();
      await projector.catchUp();
      const d = await digest(store, ordersProjection());
      await store.close();
      return d;
    };

    const [a, b, c] = [await fold(log.events), await fold(log.events), await fold(altered.events)];
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('given a projection with deferred work, when caught up, then its steps run after the last event, and an event stored meanwhile is folded before the next step', async () => {
    const events = await inMemoryStoreOf(purchases(3).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const projection = deferringProjection({
      onStep: async (step) => {
        if (step !== 2) return;
        await events.appendToStream('customer-late', [
          { id: 'late-1', type: 'PurchaseRecorded', data: { customerId: 'late', orderId: 'late', lines: [], totalMinor: 1, costMinor: 0 }, metadata: { occurredAt: '2026-03-01T00:00:00.000Z', schemaVersion: 1 } },
        ]);
      },
    });
    const projector = new Projector(events, readModels, [projection], { batchSize: 2 });
    await projector.start();

    expect(await projector.catchUp()).toBe(4);

    expect(await journal(readModels)).toEqual(['fold 1', 'fold 2', 'fold 3', 'step', 'step', 'fold 4', 'step', 'step']);
    expect(await readModels.get('SELECT units FROM deferred_pending')).toEqual({ units: 0 });
    await readModels.close();
  });

  it('given a projection that fails in a deferred step, then the step rolls back whole and the next catch-up finishes the work', async () => {
    const events = await inMemoryStoreOf(purchases(3).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    const failing = deferringProjection({
      onStep: async (step) => {
        if (step === 2) throw new Error('crash in step 2');
      },
    });
    await new Projector(events, readModels, [failing]).start();

    await expect(new Projector(events, readModels, [failing]).catchUp()).rejects.toThrow('crash in step 2');
    expect(await journal(readModels)).toEqual(['fold 1', 'fold 2', 'fold 3', 'step']);
    expect(await readModels.get('SELECT units FROM deferred_pending')).toEqual({ units: 2 });

    await new Projector(events, readModels, [deferringProjection()]).catchUp();
    expect(await journal(readModels)).toEqual(['fold 1', 'fold 2', 'fold 3', 'step', 'step', 'step']);
    await readModels.close();
  });

  it('given a live projector, when appends pause, then deferred steps run; and a rebuilt store has run them all before it goes live', async () => {
    const events = await inMemoryStoreOf(purchases(2).events);
    const readModels = new ReadModels(new SqliteReadModelStore(':memory:'));
    let fresh: SqliteReadModelStore | undefined;
    const projector = new Projector(events, readModels, [deferringProjection()], {
      batchSize: 8,
      freshStore: async () => (fresh = new SqliteReadModelStore(':memory:')),
      onSwap: async (store) => {
        expect(store).toBe(fresh);
        expect(await store.get('SELECT units FROM deferred_pending')).toEqual({ units: 0 });
      },
    });
    const settled = async (): Promise<void> => {
      await waitUntilCaughtUp(projector);
      for (let waited = 0; Number((await readModels.get<{ units: number }>('SELECT units FROM deferred_pending'))?.units) > 0; waited += 1) {
        if (waited > 400) throw new Error('deferred steps never ran');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const running = projector.run();
    await settled();
    // the catch-up is over: these arrive through the live subscription
    for (let i = 0; i < 3; i += 1) {
      await events.appendToStream(`customer-live${i}`, [
        { id: `live-${i}`, type: 'PurchaseRecorded', data: { customerId: `live${i}`, orderId: `l${i}`, lines: [], totalMinor: 10, costMinor: 0 }, metadata: { occurredAt: '2026-03-01T00:00:00.000Z', schemaVersion: 1 } },
      ]);
    }
    await settled();
    const live = await journal(readModels);
    expect(live.filter((e) => e === 'step')).toHaveLength(5);
    expect(live.filter((e) => e.startsWith('fold'))).toEqual(['fold 1', 'fold 2', 'fold 3', 'fold 4', 'fold 5']);

    await projector.rebuild();
    expect(readModels.current).toBe(fresh);
    await projector.stop();
    await running;
    await readModels.close();
  });

  it('groups what a subscription already has into batches of at most the given size', async () => {
    async function* source() {
      for (let i = 0; i < 5; i += 1) yield i;
    }
    const batches: number[][] = [];
    for await (const b of microBatches(source(), 2)) batches.push(b);
    expect(batches.flat()).toEqual([0, 1, 2, 3, 4]);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(2);
  });
});

async function waitUntilCaughtUp(projector: Projector): Promise<void> {
  for (;;) {
    const status = await projector.status();
    if (status.every((s) => s.lag === 0)) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
