import { appendTouchpoints, describeWithServer, PostgresServer, tempDir } from '@clientele/testing';
import type { StoredEvent } from '../event-store.port';
import { canonicalJson } from '../hash-chain';
import { ImportRefusedError } from '../import-stored';
import { eventsOfLog } from '../read-in-batches';
import { SqliteEventStore } from '../sqlite/sqlite.event-store';
import { verifyChain } from '../verify-chain';
import { openFreshStore } from './postgres.test-support';

describeWithServer(PostgresServer, 'importStored on PostgreSQL', (url) => {
  const tmp = tempDir('clientele-pg-import-');
  let log: StoredEvent[];

  beforeAll(async () => {
    const source = new SqliteEventStore({ file: tmp.file('source.db'), durability: 'normal' });
    await appendTouchpoints(source, 60, 5);
    log = await source.readAll();
    await source.close();
  });

  afterAll(() => tmp.remove());

  it('stores events verbatim, and appends (from this and from another process) continue the chain', async () => {
    // given a fresh schema and a second store instance on it, as another process would have
    const { store, schema, cleanup } = await openFreshStore(url);
    const { store: other, cleanup: closeOther } = await openFreshStore(url, { schema });
    try {
      // when the log is imported in two batches and both instances append afterwards
      await store.importStored(log.slice(0, 35));
      await store.importStored(log.slice(35));
      const meta = { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 };
      await Promise.all([
        store.appendToStream('customer-c001', [{ id: 'after-1', type: 'TouchpointRecorded', data: { n: 1 }, metadata: meta }]),
        other.appendToStream('customer-c002', [{ id: 'after-2', type: 'TouchpointRecorded', data: { n: 2 }, metadata: meta }]),
      ]);

      // then the first 60 events read back byte for byte, and the whole chain verifies
      const stored = await store.readAll();
      expect(stored.slice(0, 60).map((e) => canonicalJson(e))).toEqual(log.map((e) => canonicalJson(e)));
      expect(stored.map((e) => e.position)).toEqual(Array.from({ length: 62 }, (_, i) => i + 1));
      expect((await verifyChain(eventsOfLog(store))).ok).toBe(true);
    } finally {
      await closeOther();
      await cleanup();
    }
  });

  it('refuses a batch that does not continue the log, or whose record time PostgreSQL would respell, and writes none of it', async () => {
    // given a schema holding the first ten events
    const { store, cleanup } = await openFreshStore(url);
    try {
      await store.importStored(log.slice(0, 10));

      // when batches that would break the chain are imported
      const again = store.importStored(log.slice(0, 10));
      const broken = store.importStored(log.slice(10, 20).map((e, i) => (i === 5 ? { ...e, prevHash: '0'.repeat(64) } : e)));
      const respelled = store.importStored(log.slice(10, 20).map((e, i) => (i === 2 ? { ...e, recordedAt: e.recordedAt.replace('Z', '+00:00') } : e)));

      // then each is refused with the position named, and the head has not moved
      await expect(again).rejects.toThrow(/position 1: expected position 11/);
      await expect(broken).rejects.toThrow(ImportRefusedError);
      await expect(respelled).rejects.toThrow(/position 13: recordedAt/);
      expect(await store.headPosition()).toBe(10);
    } finally {
      await cleanup();
    }
  });
});
