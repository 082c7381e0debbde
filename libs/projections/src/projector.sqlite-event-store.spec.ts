import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEventStore } from '@clientele/event-store';
import type { StoredEvent } from '@clientele/event-store';
import { generateCustomerLog } from '@clientele/testing';
import { Projector } from './projector';
import { ProfilesProjection } from './profiles.projection';
import { digest } from './read-model-digest';
import { ReadModels } from './read-models';
import { ReferralsProjection } from './referrals.projection';
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
    expect(await second.status()).toEqual(projections.map((p) => ({ name: p.name, version: 1, position: log.length, head: log.length, lag: 0 })));
    await second.stop();
    await running;
    await readModels.close();
    await events.close();
  });
});
