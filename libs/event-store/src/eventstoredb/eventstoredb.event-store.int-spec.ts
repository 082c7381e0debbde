import { randomUUID } from 'node:crypto';
import { runEventStoreContract } from '@clientele/testing';
import { EventStoreDbEventStore } from './eventstoredb.event-store';

/**
 * No EventStoreDB server runs on these machines or in CI: the contract runs against one only when
 * EVENTSTOREDB_URL is set. Each test writes to streams of its own (a unique suffix) on a shared
 * server, since EventStoreDB has no cheap "fresh database".
 */
const url = process.env.EVENTSTOREDB_URL;

if (url) {
  runEventStoreContract(
    'EventStoreDB',
    async () => {
      const store = EventStoreDbEventStore.open({ connectionString: url, pollIntervalMs: 100, namespace: `t${randomUUID().slice(0, 8)}` });
      return { store, cleanup: () => store.close() };
    },
  );
} else {
  describe('event store contract: EventStoreDB', () => {
    it.todo('not run: set EVENTSTOREDB_URL, e.g. EVENTSTOREDB_URL=esdb://localhost:2113?tls=false npx jest eventstoredb');
  });
}
