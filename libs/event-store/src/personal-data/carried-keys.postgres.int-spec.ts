import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { describeWithServer, PostgresServer } from '@clientele/testing';
import type { JsonObject, NewEvent } from '../event-store.port';
import { PostgresEventStore, type PostgresEventStoreOptions } from '../postgres/postgres.event-store';
import { dropSchema, uniqueSchema } from '../postgres/postgres.test-support';
import { carriedKeysContract, type CarriedKeysFixture } from './carried-keys.contract';
import { PersonalDataEventStore } from './encrypting.event-store';
import { PostgresCustomerKeyStore } from './postgres-customer-keys';

async function fixture(url: string, options: Partial<PostgresEventStoreOptions>): Promise<CarriedKeysFixture> {
  const schema = uniqueSchema('carried');
  const master = randomBytes(32);
  const pool = new Pool({ connectionString: url, max: 1 });
  return {
    master,
    open: async () => {
      const carrier = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, ...options });
      return { carrier, keys: await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey: master, carrier }) };
    },
    openKeyWriter: () => PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey: master }),
    keyRows: async (customerId) =>
      Number((await pool.query<{ n: string }>(`select count(*) as n from ${schema}.customer_keys where customer_id = $1`, [customerId])).rows[0]!.n),
    cleanup: async () => {
      await pool.end();
      await dropSchema(url, schema);
    },
  };
}

describeWithServer(PostgresServer, 'customer keys carried by the PostgreSQL store', (url) => {
  describe('checked appends (one statement)', () => carriedKeysContract(() => fixture(url, {})));
  describe('appends sealed by the server', () => carriedKeysContract(() => fixture(url, { sealOnServer: 'always' })));
  describe('groups written by COPY', () => carriedKeysContract(() => fixture(url, { rowsPerStatement: 1 })));

  it('writes the key when another process moved the head and the group is decided under the lock', async () => {
    // given a store whose first attempt finds the head moved by another process
    const schema = uniqueSchema('carried');
    const master = randomBytes(32);
    const other = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 1 });
    let hookCalls = 0;
    const carrier = await PostgresEventStore.open({
      connectionString: url,
      schema,
      poolSize: 2,
      sealOnServer: 'never',
      beforeWrite: async () => {
        hookCalls += 1;
        if (hookCalls === 1) await other.appendToStream('customer-someone', [anEvent('e-other')]);
      },
    });
    const store = new PersonalDataEventStore(carrier, await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey: master, carrier }));
    const reader = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey: master });
    try {
      // when a new customer registers with personal data
      await store.appendToStream('customer-hal', [anEvent('e-hal', { email: 'hal@example.org' })], { expectedRevision: 'no_stream' });

      // then the second attempt (under the lock) wrote the events and the key, which another process reads
      expect(hookCalls).toBe(2);
      const read = await new PersonalDataEventStore(other, reader).readStream('customer-hal');
      expect(read[0]!.data.personal).toEqual({ email: 'hal@example.org' });
    } finally {
      await store.close();
      await reader.close();
      await other.close();
      await dropSchema(url, schema);
    }
  });
});

function anEvent(id: string, personal?: JsonObject): NewEvent {
  const data: JsonObject = { source: 'web', occurredAt: '2026-11-01T09:00:00.000Z' };
  if (personal) data.personal = personal;
  return {
    id,
    type: 'ProspectRegistered',
    data,
    metadata: { occurredAt: '2026-11-01T09:00:00.000Z', schemaVersion: 1 },
  };
}
