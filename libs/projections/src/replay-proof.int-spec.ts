import { inMemoryStoreOf, PostgresServer, describeWithServer, generateCustomerLog } from '@clientele/testing';
import { allProjections } from './all-projections';
import { Projector } from './projector';
import { PostgresReadModelGenerations } from './read-model-generations';
import { ReadModels } from './read-models';
import { proveReplay } from './replay-proof';

describeWithServer(PostgresServer, 'replay proof on PostgreSQL read models', (url) => {
  it('given live read models in a PostgreSQL generation, a replay into a scratch schema matches; a tampered row is found by table and key', async () => {
    const base = `rp_${process.pid}_${Date.now().toString(36)}`;
    const generations = new PostgresReadModelGenerations(url, base);
    const log = generateCustomerLog({ seed: 12, customers: 50 }).events;
    const events = await inMemoryStoreOf(log);
    try {
      const readModels = new ReadModels(await generations.openCurrent());
      const projector = new Projector(events, readModels, allProjections(), { batchSize: 23 });
      await projector.start();
      await projector.catchUp();
      await readModels.close();

      const live = await generations.openLive();
      if (!live) throw new Error('the live generation is missing');
      const first = await generations.openScratch();
      const intact = await proveReplay(events, live, first.store, allProjections());
      await first.discard();
      expect(intact.map((r) => [r.name, r.match, r.eventsRead])).toEqual(allProjections().map((p) => [p.name, true, log.length]));

      const target = await live.get<{ customer_id: string }>('SELECT customer_id FROM profiles ORDER BY customer_id COLLATE "C" LIMIT 1 OFFSET 17');
      if (!target) throw new Error('no profile to alter');
      await live.transaction((tx) => tx.run('UPDATE profiles SET source = ? WHERE customer_id = ?', ['forged', target.customer_id]));
      const second = await generations.openScratch();
      const tampered = await proveReplay(events, live, second.store, allProjections());
      await second.discard();
      const profiles = tampered.find((r) => r.name === 'profiles');
      expect(profiles).toMatchObject({ match: false, firstDifference: { table: 'profiles', key: { customer_id: target.customer_id }, live: { source: 'forged' } } });
      expect(profiles?.firstDifference?.replayed?.source).not.toBe('forged');
      await live.close();
    } finally {
      await generations.dropAll();
    }
  });
});
