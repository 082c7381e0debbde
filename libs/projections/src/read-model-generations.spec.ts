import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inMemoryStoreOf, generateCustomerLog } from '@clientele/testing';
import { Projector } from './projector';
import { ProfilesProjection } from './profiles.projection';
import { digest } from './read-model-digest';
import { ReadModels } from './read-models';
import { SqliteReadModelGenerations } from './read-model-generations';
import { projectorOptions } from './read-model.config';

describe('SqliteReadModelGenerations', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-generations-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('given a rebuild that swapped to a new file, when the process restarts, then it opens the rebuilt file and removes the old one', async () => {
    const events = await inMemoryStoreOf(generateCustomerLog({ seed: 2, customers: 30 }).events);
    const generations = new SqliteReadModelGenerations(dir);
    const readModels = new ReadModels(await generations.openCurrent());
    const projector = new Projector(events, readModels, [new ProfilesProjection()], {
      freshStore: () => generations.openFresh(),
      onSwap: (s) => generations.promote(s),
    });
    await projector.start();
    await projector.catchUp();
    await projector.rebuild();
    const rebuilt = await digest(readModels, new ProfilesProjection());
    await readModels.close();

    const restarted = new SqliteReadModelGenerations(dir);
    const store = await restarted.openCurrent();

    expect(await digest(store, new ProfilesProjection())).toBe(rebuilt);
    expect(readdirSync(dir).filter((n) => n.endsWith('.sqlite'))).toEqual(['read-models-2.sqlite']);
    expect((await store.get<{ position: number }>("SELECT position FROM projection_checkpoints WHERE name = 'profiles'"))?.position).toBe(await events.headPosition());
    await store.close();
  });

  it('given the options the engine wires, when a rebuild swapped, then the previous generation is removed at once, not at the next start', async () => {
    const events = await inMemoryStoreOf(generateCustomerLog({ seed: 3, customers: 20 }).events);
    const generations = new SqliteReadModelGenerations(dir);
    const readModels = new ReadModels(await generations.openCurrent());
    const projector = new Projector(events, readModels, [new ProfilesProjection()], projectorOptions({ kind: 'sqlite', dir, batchSize: 500, rebuildBatchSize: 1000, residentLimit: 1_000 }, generations));
    await projector.start();
    await projector.catchUp();
    expect(readdirSync(dir).filter((n) => n.includes('.sqlite')).some((n) => n.startsWith('read-models-1.sqlite'))).toBe(true);

    await projector.rebuild();

    // the old generation held everything it folded (erased personal data in its free pages too): gone now
    expect(readdirSync(dir).filter((n) => n.includes('.sqlite')).every((n) => n.startsWith('read-models-2.sqlite'))).toBe(true);
    expect(await readModels.get("SELECT 1 AS one FROM projection_checkpoints WHERE name = 'profiles'")).toEqual({ one: 1 });
    await projector.stop();
    await readModels.close();
  });
});
