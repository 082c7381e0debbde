import { randomBytes } from 'node:crypto';
import { describeWithServer, PostgresServer } from '@clientele/testing';
import { dropSchema, uniqueSchema } from '../postgres/postgres.test-support';
import { ERASURE_CHECK_MS, WrongMasterKeyError } from './customer-keys';
import { PostgresCustomerKeyStore } from './postgres-customer-keys';

describeWithServer(PostgresServer, 'customer keys on PostgreSQL', (url) => {
  it('creates a turn\'s new keys together, one key per customer, and the key stored first wins across processes', async () => {
    // given two key stores on one schema, as two engine processes would have
    const schema = uniqueSchema('keys');
    const masterKey = randomBytes(32);
    const one = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
    const two = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
    try {
      // when one asks for fifty new customers' keys in one turn, one of them twice
      const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
      const [twice, ...keys] = await Promise.all([one.keyFor('c7'), ...ids.map((id) => one.keyFor(id))]);

      // then each customer has one key, and the other process reads the same ones
      expect(twice).toEqual(keys[7]);
      expect(new Set(keys.map((k) => (k as Buffer).toString('hex'))).size).toBe(50);
      for (const [i, id] of ids.entries()) expect(await two.existingKey(id)).toEqual(keys[i]);

      // and when both create a key for the same new customer at once, both use the one stored
      const [mine, theirs] = await Promise.all([one.keyFor('zoe'), two.keyFor('zoe')]);
      expect(mine).toEqual(theirs);

      // and an erased customer's key reads as erased, also for a new request
      await one.destroyKey('c3', '2026-11-30T00:00:00.000Z');
      const fresh = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
      try {
        expect(await fresh.keyFor('c3')).toBe('erased');
      } finally {
        await fresh.close();
      }
    } finally {
      await one.close();
      await two.close();
      await dropSchema(url, schema);
    }
  });

  it('a key another process destroyed is not opened from this one\'s memory once the erased keys were counted again', async () => {
    // given two processes that both keep Ann's key
    const schema = uniqueSchema('keys_erased_elsewhere');
    const masterKey = randomBytes(32);
    const here = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
    const there = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
    try {
      const key = await here.keyFor('ann');
      expect(await there.existingKey('ann')).toEqual(key);
      expect(await here.existingKey('ann')).toEqual(key);

      // when the other one destroys it
      await there.destroyKey('ann', '2026-11-30T00:00:00.000Z');

      // then, within ERASURE_CHECK_MS, this one answers erased instead of the key it kept
      await new Promise((resolve) => setTimeout(resolve, ERASURE_CHECK_MS + 100));
      expect(await here.existingKey('ann')).toBe('erased');
    } finally {
      await here.close();
      await there.close();
      await dropSchema(url, schema);
    }
  });

  it('checkMasterKey refuses a master key that did not wrap the stored keys, and passes the right one', async () => {
    const schema = uniqueSchema('keys_master');
    const masterKey = randomBytes(32);
    const writer = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey });
    try {
      await writer.checkMasterKey(); // no key yet: nothing to tell by
      await writer.keyFor('ann');
      await writer.checkMasterKey();
      const wrong = await PostgresCustomerKeyStore.open({ connectionString: url, schema, masterKey: randomBytes(32) });
      try {
        await expect(wrong.checkMasterKey()).rejects.toThrow(WrongMasterKeyError);
      } finally {
        await wrong.close();
      }
    } finally {
      await writer.close();
      await dropSchema(url, schema);
    }
  });
});
