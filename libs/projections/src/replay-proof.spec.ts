import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore, type StoredEvent } from '@clientele/event-store';
import { generateCustomerLog } from '@clientele/testing';
import { allProjections } from './all-projections';
import { Projector } from './projector';
import { digest } from './read-model-digest';
import { ReadModels } from './read-models';
import type { Projection } from './read-model-store';
import { logAnchorMismatch, readLogAnchor } from './log-anchor';
import { firstDifference, proveReplay, readCheckpointPositions, replayProjections } from './replay-proof';
import { SqliteReadModelStore } from './sqlite-read-model.store';

describe('replay proof', () => {
  let root: string;
  let dir: string;
  let events: SqliteEventStore;
  let log: readonly StoredEvent[];
  let n = 0;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'clientele-replay-'));
    events = new SqliteEventStore({ file: join(root, 'events.sqlite'), durability: 'normal' });
    log = generateCustomerLog({ seed: 7, customers: 60 }).events;
    for (const e of log) await events.appendToStream(e.streamId, [{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }]);
  });
  beforeEach(() => {
    n += 1;
    dir = join(root, `case-${n}`);
    mkdirSync(dir);
  });
  afterAll(async () => {
    await events.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** the live store as the engine builds it: a projector following the log in small batches */
  async function liveStore(): Promise<SqliteReadModelStore> {
    const store = new SqliteReadModelStore(join(dir, 'live.sqlite'));
    const projector = new Projector(events, new ReadModels(store), allProjections(), { batchSize: 37 });
    await projector.start();
    await projector.catchUp();
    return store;
  }

  it('given live read models built by the projector, when replayed from position 0 into a scratch store, then every digest matches', async () => {
    const live = await liveStore();
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));

    const report = await proveReplay(events, live, scratch, allProjections());

    expect(report.map((r) => [r.name, r.match, r.eventsRead, r.position])).toEqual(
      allProjections().map((p) => [p.name, true, log.length, log.length]),
    );
    for (const r of report) expect(r.liveDigest).toBe(r.replayedDigest);
    expect(report.every((r) => r.firstDifference === undefined)).toBe(true);
    await live.close();
    await scratch.close();
  });

  it('given live statistics the projector stopped before refreshing (a stale snapshot mark), then the replay refuses with what to do instead of reporting a difference', async () => {
    const live = await liveStore();
    await live.transaction((tx) => tx.run(`INSERT INTO stat_meta (key, value) VALUES ('rfm_stale_from', '2025-03')`));
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));

    await expect(proveReplay(events, live, scratch, allProjections())).rejects.toThrow(/statistics still holds work .* let it catch up/);

    // once the projector has caught up again, the proof runs and matches
    await new Projector(events, new ReadModels(live), allProjections()).catchUp();
    const again = new SqliteReadModelStore(join(dir, 'scratch-2.sqlite'));
    const report = await proveReplay(events, live, again, allProjections());
    expect(report.every((r) => r.match)).toBe(true);
    await live.close();
    await scratch.close();
    await again.close();
  });

  it('given one live row altered by hand, then the replay reports that table and key with both rows', async () => {
    const live = await liveStore();
    const target = await live.get<{ customer_id: string; revenue_minor: number }>(
      'SELECT customer_id, revenue_minor FROM profiles WHERE orders > 0 ORDER BY customer_id DESC LIMIT 1',
    );
    if (!target) throw new Error('the generated log has no buyer');
    await live.transaction((tx) => tx.run('UPDATE profiles SET revenue_minor = revenue_minor + 100 WHERE customer_id = ?', [target.customer_id]));
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));

    const report = await proveReplay(events, live, scratch, allProjections());

    const profiles = report.find((r) => r.name === 'profiles');
    expect(profiles?.match).toBe(false);
    expect(profiles?.liveDigest).not.toBe(profiles?.replayedDigest);
    expect(profiles?.firstDifference).toMatchObject({
      table: 'profiles',
      key: { customer_id: target.customer_id },
      live: { revenue_minor: Number(target.revenue_minor) + 100 },
      replayed: { revenue_minor: Number(target.revenue_minor) },
    });
    expect(report.filter((r) => r.name !== 'profiles').every((r) => r.match)).toBe(true);
    await live.close();
    await scratch.close();
  });

  it('given a live row deleted, then the first difference is that row, present only in the replay', async () => {
    const live = await liveStore();
    const target = await live.get<{ customer_id: string; seq: number }>('SELECT customer_id, seq FROM profile_stage_history ORDER BY customer_id, seq LIMIT 1 OFFSET 5');
    if (!target) throw new Error('no stage history');
    await live.transaction((tx) => tx.run('DELETE FROM profile_stage_history WHERE customer_id = ? AND seq = ?', [target.customer_id, target.seq]));
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));
    await replayProjections(events, scratch, allProjections());

    const difference = await firstDifference(live, scratch, allProjections()[0]!);

    expect(difference).toMatchObject({ table: 'profile_stage_history', key: { customer_id: target.customer_id, seq: Number(target.seq) } });
    expect(difference?.live).toBeUndefined();
    expect(difference?.replayed).toMatchObject({ customer_id: target.customer_id });
    await live.close();
    await scratch.close();
  });

  it('given read models folded to different positions, then each is replayed up to its own checkpoint and matches', async () => {
    const profilesAt = Math.floor(log.length / 3);
    const live = new SqliteReadModelStore(join(dir, 'live.sqlite'));
    // pages of 4 in batches of 11: the profiles' limit falls inside a page of a batch
    await replayProjections(events, live, allProjections(), { upTo: new Map([['profiles', profilesAt]]), batchSize: 11, pageSize: 4 });
    expect((await readCheckpointPositions(live)).get('profiles')?.position).toBe(profilesAt);
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));

    const report = await proveReplay(events, live, scratch, allProjections());

    expect(report.map((r) => [r.name, r.eventsRead, r.match])).toEqual(
      allProjections().map((p) => [p.name, p.name === 'profiles' ? profilesAt : log.length, true]),
    );
    expect((await readCheckpointPositions(scratch)).get('profiles')?.position).toBe(profilesAt);
    await live.close();
    await scratch.close();
  });

  it('records in the replayed store the last event it folded, as the projector does, so the store knows which log it was folded from', async () => {
    const store = new SqliteReadModelStore(join(dir, 'replayed.sqlite'));
    // one projection stops early: the anchor is the last event any of them folded
    await replayProjections(events, store, allProjections(), { upTo: new Map([['profiles', 10]]), batchSize: 7, pageSize: 3 });
    const stored = await events.readAll();
    const last = stored[stored.length - 1]!;
    expect(await readLogAnchor(store)).toEqual({ position: last.position, hash: last.hash });
    expect(await logAnchorMismatch({ position: last.position, hash: last.hash }, events)).toBeUndefined();
    // and the digests do not depend on it
    const live = await liveStore();
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));
    expect((await proveReplay(events, live, scratch, allProjections())).every((r) => r.match)).toBe(true);
    await Promise.all([store.close(), live.close(), scratch.close()]);
  });

  it('replaying twice into fresh stores gives the same digests, however the log is cut into batches and pages', async () => {
    const digests: string[][] = [];
    const cuts = [{ batchSize: 1000 }, { batchSize: 13 }, { batchSize: 40, pageSize: 3 }];
    for (const [i, cut] of cuts.entries()) {
      const store = new SqliteReadModelStore(join(dir, `replay-${i}.sqlite`));
      await replayProjections(events, store, allProjections(), cut);
      digests.push(await Promise.all(allProjections().map((p) => digest(store, p))));
      await store.close();
    }
    expect(digests[1]).toEqual(digests[0]);
    expect(digests[2]).toEqual(digests[0]);
  });

  it('hands projections that fold pages the log page by page, up to their own limit, and the others whole batches', async () => {
    const calls: Array<[string, number, number]> = [];
    const recording = (name: string, foldsPages: boolean): Projection => ({
      name, version: 1, tables: [], foldsPages,
      migrate: async () => undefined,
      apply: async (batch) => {
        calls.push([name, batch[0]!.position, batch[batch.length - 1]!.position]);
      },
    });
    const store = new SqliteReadModelStore(join(dir, 'pages.sqlite'));

    await replayProjections(events, store, [recording('paged', true), recording('whole', false)], {
      batchSize: 10, pageSize: 4, upTo: new Map([['paged', 14], ['whole', 21]]),
    });

    expect(calls.filter(([name]) => name === 'paged')).toEqual([
      ['paged', 1, 4], ['paged', 5, 8], ['paged', 9, 10], ['paged', 11, 14],
    ]);
    expect(calls.filter(([name]) => name === 'whole')).toEqual([['whole', 1, 10], ['whole', 11, 20], ['whole', 21, 21]]);
    expect(Object.fromEntries([...(await readCheckpointPositions(store))].map(([name, c]) => [name, c.position]))).toEqual({ paged: 14, whole: 21 });
    await store.close();
  });

  it('refuses a batch or page size that is not a positive integer, naming it, before it writes anything to the scratch store', async () => {
    const scratch = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));

    await expect(replayProjections(events, scratch, allProjections(), { pageSize: 0 })).rejects.toThrow('replay pageSize: expected a positive integer, got 0');
    await expect(replayProjections(events, scratch, allProjections(), { pageSize: 2.5 })).rejects.toThrow('replay pageSize: expected a positive integer, got 2.5');
    await expect(replayProjections(events, scratch, allProjections(), { batchSize: -1 })).rejects.toThrow('replay batchSize: expected a positive integer, got -1');

    expect((await readCheckpointPositions(scratch)).size).toBe(0);
    expect(await scratch.transaction((tx) => tx.all(`SELECT name FROM sqlite_master WHERE type = 'table'`))).toEqual([]);
    await scratch.close();
  });

  it('refuses a scratch store that already holds read models', async () => {
    const live = await liveStore();
    await expect(replayProjections(events, live, allProjections())).rejects.toThrow(/empty store/);
    await live.close();
  });
});
