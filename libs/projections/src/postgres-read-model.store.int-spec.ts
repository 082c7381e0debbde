import type { StoredEvent } from '@clientele/event-store';
import { inMemoryStoreOf, PostgresServer, describeWithServer, generateCustomerLog } from '@clientele/testing';
import { allProjections } from './all-projections';
import { Projector } from './projector';
import { PostgresReadModelStore } from './postgres-read-model.store';
import { PostgresReadModelGenerations } from './read-model-generations';
import { projectorOptions } from './read-model.config';
import { Client } from 'pg';
import { ProfilesProjection } from './profiles.projection';
import { ProfileQueries } from './profiles.queries';
import { digest } from './read-model-digest';
import type { ReadModelStore } from './read-model-store';
import { ReadModels } from './read-models';
import { ReferralsProjection } from './referrals.projection';
import { ReferralQueries } from './referrals.queries';
import { SqliteReadModelStore } from './sqlite-read-model.store';

const unique = (label: string) => `rm_${label}_${process.pid}_${Date.now().toString(36)}`;

async function fold(store: ReadModelStore, events: readonly StoredEvent[], batchSize: number): Promise<void> {
  const projector = new Projector(await inMemoryStoreOf(events), new ReadModels(store), [new ProfilesProjection(), new ReferralsProjection()], { batchSize });
  await projector.start();
  await projector.catchUp();
}

describeWithServer(PostgresServer, 'PostgresReadModelStore', (url) => {
  const opened: PostgresReadModelStore[] = [];
  const open = async (label: string) => {
    const store = await PostgresReadModelStore.open({ connectionString: url, schema: unique(label) });
    opened.push(store);
    return store;
  };
  afterAll(async () => {
    for (const store of opened) {
      // a store closed by a swap needs a fresh connection to drop its schema
      const dropper = await PostgresReadModelStore.open({ connectionString: url, schema: store.schema });
      await dropper.dropSchema();
      await dropper.close();
      await store.close().catch(() => undefined);
    }
  });

  it('commits a transaction whole and rolls it back whole, with BIGINT read back as numbers', async () => {
    const store = await open('tx');
    await store.transaction(async (tx) => {
      await tx.exec('CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL)');
      await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['a', 9_007_199_254_740_991]);
    });
    await expect(
      store.transaction(async (tx) => {
        await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['b', 2]);
        throw new Error('crash mid-batch');
      }),
    ).rejects.toThrow('crash mid-batch');
    expect(await store.all('SELECT k, n, SUM(n) OVER () AS total FROM t')).toEqual([{ k: 'a', n: 9_007_199_254_740_991, total: 9_007_199_254_740_991 }]);
  });

  it('given the same events, then SQLite and PostgreSQL answer every profile and referral query alike, with equal digests', async () => {
    const log = generateCustomerLog({ seed: 3, customers: 150 });
    const sqlite = new SqliteReadModelStore(':memory:');
    const pg = await open('same');
    await fold(sqlite, log.events, 200);
    await fold(pg, log.events, 200);
    const ids = [...new Set(log.events.map((e) => e.data.customerId).filter((c): c is string => typeof c === 'string'))];
    const [ps, pp] = [new ProfileQueries(sqlite), new ProfileQueries(pg)];
    for (const id of ids) expect(await pp.getProfile(id, '2026-01-10')).toEqual(await ps.getProfile(id, '2026-01-10'));
    for (const sort of ['customerId', 'revenue', 'orders', 'lastPurchase'] as const) {
      let cursor: string | undefined;
      do {
        const options = { sort, direction: 'desc' as const, limit: 40, ...(cursor ? { cursor } : {}) };
        const [a, b] = [await ps.listProfiles(options), await pp.listProfiles(options)];
        expect(b).toEqual(a);
        cursor = a.nextCursor;
      } while (cursor);
    }
    expect(await pp.listProfiles({ stage: 'customer', source: 'web', limit: 1000 })).toEqual(await ps.listProfiles({ stage: 'customer', source: 'web', limit: 1000 }));
    for (let [cursorP, cursorS, pages] = [undefined as string | undefined, undefined as string | undefined, 0]; pages === 0 || cursorS; pages += 1) {
      const [a, b] = [
        await ps.upcomingBirthdays({ asOf: '2025-12-15', withinDays: 60, limit: 7, ...(cursorS ? { cursor: cursorS } : {}) }),
        await pp.upcomingBirthdays({ asOf: '2025-12-15', withinDays: 60, limit: 7, ...(cursorP ? { cursor: cursorP } : {}) }),
      ];
      expect(b).toEqual(a);
      [cursorS, cursorP] = [a.nextCursor, b.nextCursor];
    }
    const [rs, rp] = [new ReferralQueries(sqlite), new ReferralQueries(pg)];
    let [advocatesS, advocatesP]: (string | undefined)[] = [undefined, undefined];
    do {
      const a = await rs.topAdvocates({ limit: 7, ...(advocatesS ? { cursor: advocatesS } : {}) });
      const b = await rp.topAdvocates({ limit: 7, ...(advocatesP ? { cursor: advocatesP } : {}) });
      expect(b).toEqual(a);
      [advocatesS, advocatesP] = [a.nextCursor, b.nextCursor];
    } while (advocatesS !== undefined);
    expect(await rp.viralCoefficient()).toEqual(await rs.viralCoefficient());
    expect(await rp.toDot()).toEqual(await rs.toDot());
    const top = (await rs.topAdvocates({ limit: 1 })).items[0]!;
    expect(await rp.treeBelow(top.customerId, 5)).toEqual(await rs.treeBelow(top.customerId, 5));
    for (const projection of [new ProfilesProjection(), new ReferralsProjection()]) {
      expect(await digest(pg, projection)).toBe(await digest(sqlite, projection));
    }
    await sqlite.close();
  });

  it('rebuilds every read model into a fresh schema while the live one serves, then swaps to it with the same digests', async () => {
    const log = generateCustomerLog({ seed: 5, customers: 60 });
    const live = await open('live');
    const readModels = new ReadModels(live);
    const events = await inMemoryStoreOf(log.events);
    const projections = allProjections();
    const projector = new Projector(events, readModels, projections, {
      freshStore: () => open('fresh'),
      rebuildBatchSize: 97,
    });
    await projector.start();
    await projector.catchUp();
    const before = await Promise.all(projections.map((p) => digest(readModels, p)));

    await projector.rebuild();

    expect(readModels.current).not.toBe(live);
    expect(await Promise.all(projections.map((p) => digest(readModels, p)))).toEqual(before);
    expect((await projector.status()).map((s) => s.lag)).toEqual([0, 0, 0]);
  });

  it('given generations, when a rebuild is promoted and the process restarts, then the rebuilt schema is the one opened', async () => {
    const generations = new PostgresReadModelGenerations(url, unique('gen'));
    try {
      const readModels = new ReadModels(await generations.openCurrent());
      const projector = new Projector(await inMemoryStoreOf(generateCustomerLog({ seed: 8, customers: 40 }).events), readModels, [new ReferralsProjection()], {
        freshStore: () => generations.openFresh(),
        onSwap: (s) => generations.promote(s),
      });
      await projector.start();
      await projector.catchUp();
      await projector.rebuild();
      const rebuilt = readModels.current as PostgresReadModelStore;
      const expected = await digest(readModels, new ReferralsProjection());
      await readModels.close();

      const reopened = (await generations.openCurrent()) as PostgresReadModelStore;
      expect(reopened.schema).toBe(rebuilt.schema);
      expect(reopened.schema.endsWith('_g2')).toBe(true);
      expect(await digest(reopened, new ReferralsProjection())).toBe(expected);
      await reopened.close();
    } finally {
      await generations.dropAll();
    }
  });

  it('given a rebuild promoted while the engine runs, then the generation it replaced is dropped after the grace period, without a restart', async () => {
    const base = unique('stale');
    const generations = new PostgresReadModelGenerations(url, base, 300);
    const schemaExists = async (schema: string): Promise<boolean> => {
      const client = new Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 1;
      } finally {
        await client.end();
      }
    };
    try {
      const readModels = new ReadModels(await generations.openCurrent());
      const projector = new Projector(await inMemoryStoreOf(generateCustomerLog({ seed: 9, customers: 20 }).events), readModels, [new ReferralsProjection()], projectorOptions(
        { kind: 'postgres', connectionString: url, schema: base, batchSize: 500, rebuildBatchSize: 500, residentLimit: 1_000 },
        generations,
      ));
      await projector.start();
      await projector.catchUp();
      await projector.rebuild();
      expect(generations.nameOf(readModels.current)).toBe(`${base}_g2`);
      // kept for the processes still reading it until they follow the pointer
      expect(await schemaExists(`${base}_g1`)).toBe(true);

      for (const deadline = Date.now() + 10_000; await schemaExists(`${base}_g1`); ) {
        if (Date.now() > deadline) throw new Error(`${base}_g1 was not dropped`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await schemaExists(`${base}_g2`)).toBe(true);
      await readModels.close();
    } finally {
      await generations.dropAll();
    }
  });

  it('given a generation another process promoted, then the one still serving reads its name from the pointer, opens it and a projector adopts it caught up', async () => {
    const base = unique('follow');
    const mine = new PostgresReadModelGenerations(url, base);
    const theirs = new PostgresReadModelGenerations(url, base);
    const log = generateCustomerLog({ seed: 12, customers: 30 }).events;
    try {
      const readModels = new ReadModels(await mine.openCurrent());
      const events = await inMemoryStoreOf(log);
      const projector = new Projector(events, readModels, [new ReferralsProjection()]);
      await projector.start();
      await projector.catchUp();
      expect(await mine.currentName(readModels)).toBe(`${base}_g1`);
      expect(mine.nameOf(readModels.current)).toBe(`${base}_g1`);

      // the other process folds the first half of the log into a fresh generation and promotes it
      const fresh = await theirs.openFresh();
      await fold(fresh, log.slice(0, Math.floor(log.length / 2)), 50);
      await theirs.promote(fresh);
      await fresh.close();

      expect(await mine.currentName(readModels)).toBe(`${base}_g2`);
      const next = await mine.openLive();
      expect(next && mine.nameOf(next)).toBe(`${base}_g2`);
      expect(await projector.adopt(next!)).toBe(true);
      expect(mine.nameOf(readModels.current)).toBe(`${base}_g2`);
      expect((await projector.status()).map((s) => s.lag)).toEqual([0]);
      await readModels.close();
    } finally {
      await mine.dropAll();
    }
  });

  it('given engines starting at the same moment on one base schema, then all open the same generation and prepare its tables without failing', async () => {
    const base = unique('start');
    const starters = Array.from({ length: 4 }, () => new PostgresReadModelGenerations(url, base));
    const events = await inMemoryStoreOf(generateCustomerLog({ seed: 9, customers: 10 }).events);
    try {
      const stores = await Promise.all(
        starters.map(async (generations) => {
          const store = (await generations.openCurrent()) as PostgresReadModelStore;
          await new Projector(events, new ReadModels(store), allProjections()).start();
          return store;
        }),
      );
      expect(new Set(stores.map((s) => s.schema)).size).toBe(1);
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await starters[0]!.dropAll();
    }
  });

  it('given a newer generation another engine is still building, when an engine opens the current one, then the newer one is left alone', async () => {
    const base = unique('inflight');
    const generations = new PostgresReadModelGenerations(url, base);
    try {
      const current = (await generations.openCurrent()) as PostgresReadModelStore;
      const building = (await generations.openFresh()) as PostgresReadModelStore;
      await building.transaction((tx) => tx.exec('CREATE TABLE marker (k INT)'));
      const again = (await new PostgresReadModelGenerations(url, base).openCurrent()) as PostgresReadModelStore;
      expect(again.schema).toBe(current.schema);
      expect(await building.get<{ n: number }>('SELECT count(*) AS n FROM marker')).toEqual({ n: 0 });
      await Promise.all([current.close(), building.close(), again.close()]);
    } finally {
      await generations.dropAll();
    }
  });
});
