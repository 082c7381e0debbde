import Database from 'better-sqlite3';
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { idFrom, runCommand, tempDir } from '@clientele/testing';
import type { NewEvent, StoredEvent } from '../event-store.port';
import { exportNdjson, type NdjsonSink } from '../export-ndjson';
import { eventsOfLog } from '../read-in-batches';
import { readSqliteLogRaw } from '../sqlite/sqlite-raw-log';
import { SqliteEventStore } from '../sqlite/sqlite.event-store';
import { verifyChain } from '../verify-chain';
import { ERASURE_CHECK_MS, SqliteCustomerKeyStore } from './customer-keys';
import { CustomerKeyMissingError, PersonalDataEventStore } from './encrypting.event-store';

const ADA = { name: 'Ada Lovelace', email: 'ada.lovelace@example.org', phone: '+44 20 7946 0000', birthday: '1815-12-10' };
const BOB_EMAIL = 'bob.babbage@example.org';

class TextSink implements NdjsonSink {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  once(): this {
    return this;
  }
}

/** Every byte SQLite keeps for the store: the file and, when present, its write-ahead log. */
function storeBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f)));
}

function keyRow(file: string, customerId: string): { wrapped_key: Buffer | null; erased_at: string | null } | undefined {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?').get(customerId) as
      | { wrapped_key: Buffer | null; erased_at: string | null }
      | undefined;
  } finally {
    db.close();
  }
}

describe('personal data on the embedded store', () => {
  const master = randomBytes(32);
  let tmp: ReturnType<typeof tempDir>;
  let file: string;

  const open = (): PersonalDataEventStore =>
    new PersonalDataEventStore(new SqliteEventStore({ file, durability: 'normal' }), new SqliteCustomerKeyStore(file, master));

  beforeEach(async () => {
    tmp = tempDir('clientele-personal-');
    file = tmp.file('clientele.db');
    // given two customers with personal data, and Ada's purchase and a note on a touchpoint
    const store = open();
    await runCommand(store, 'reg-ada', { type: 'RegisterProspect', data: { customerId: 'ada', source: 'web', personal: ADA, occurredAt: '2025-01-10T09:00:00Z' } });
    await runCommand(store, 'reg-bob', { type: 'RegisterProspect', data: { customerId: 'bob', source: 'store', personal: { email: BOB_EMAIL }, occurredAt: '2025-01-11T09:00:00Z' } });
    await runCommand(store, 'buy-ada', {
      type: 'RecordPurchase',
      data: { customerId: 'ada', orderId: 'o-1', lines: [{ sku: 's', category: 'c', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 700 }], occurredAt: '2025-02-01T10:00:00Z' },
    });
    await runCommand(store, 'call-ada', {
      type: 'RecordTouchpoint',
      data: { customerId: 'ada', channel: 'phone', direction: 'inbound', kind: 'support', note: 'called from +44 20 7946 0000 about delivery', occurredAt: '2025-02-03T10:00:00Z' },
    });
    await store.close();
  });

  afterEach(() => tmp.remove());

  it('personal fields are not in the file, but read back through the decorator', async () => {
    // when the raw file is searched, and the stream is read through the decorator and raw
    const bytes = storeBytes(file);
    const store = open();
    try {
      const decrypted = await store.readStream('customer-ada');
      const raw = await store.inner.readStream('customer-ada');

      // then no personal value appears in the bytes on disk
      for (const secret of [ADA.email, ADA.name, ADA.phone, BOB_EMAIL, 'about delivery']) {
        expect(bytes.includes(secret)).toBe(false);
      }
      // and the decorator gives them back, while the raw event holds only ciphertext
      expect(decrypted[0]!.data.personal).toEqual(ADA);
      expect(decrypted.find((e) => e.type === 'TouchpointRecorded')!.data.note).toBe('called from +44 20 7946 0000 about delivery');
      expect(raw[0]!.data.personal).toEqual({ $personal: expect.stringMatching(/^enc:v1:/) });
      // and amounts stay readable without any key
      expect(raw.find((e) => e.type === 'PurchaseRecorded')!.data.totalMinor).toBe(2500);
    } finally {
      await store.close();
    }
  });

  it('pages read ahead through the decorator are decrypted as readAll is', async () => {
    const store = open();
    try {
      const head = await store.headPosition();
      const pages: StoredEvent[][] = [];
      for await (const page of store.readPagesAhead({ afterPosition: 0, upTo: head, pageSize: 2 })) pages.push(page);
      expect(pages.flat()).toEqual(await store.readAll());
      expect(pages.flat()[0]!.data.personal).toEqual(ADA);
    } finally {
      await store.close();
    }
  });

  it('after erasure the person is gone from reads, exports, the key table and the file; history and chain survive', async () => {
    // given the wrapped key as stored and the log before the erasure
    const wrapped = keyRow(file, 'ada')?.wrapped_key;
    expect(wrapped).toBeInstanceOf(Buffer);
    // (the search below can find it: before erasure it is there)
    expect(storeBytes(file).includes(wrapped!)).toBe(true);
    const store = open();
    let before: StoredEvent[];
    let after: StoredEvent[];
    let personalExport: TextSink;
    let rawExport: TextSink;
    try {
      before = await store.inner.readAll();

      // when Ada's personal data is erased
      const erased = await runCommand(store, 'erase-ada', { type: 'EraseCustomerPersonalData', data: { customerId: 'ada', requestedBy: 'dpo', occurredAt: '2025-06-01T00:00:00Z' } });
      expect(erased?.events.map((e) => e.type)).toEqual(['PersonalDataErased']);

      after = await store.inner.readAll();
      const adaNow = await store.readStream('customer-ada');
      personalExport = new TextSink();
      await exportNdjson(store, personalExport, { scope: { kind: 'stream', streamId: 'customer-ada' } });
      rawExport = new TextSink();
      await exportNdjson(store.inner, rawExport);

      // then reads through the decorator no longer hold any personal field, and say so
      const registered = adaNow[0]!;
      expect(registered.data.personal).toBeUndefined();
      expect(registered.data.personalDataErased).toBe(true);
      expect(adaNow.find((e) => e.type === 'TouchpointRecorded')!.data.note).toBeUndefined();
      expect(await store.isErased('ada')).toBe(true);
      // and Bob is untouched
      expect((await store.readStream('customer-bob'))[0]!.data.personal).toEqual({ email: BOB_EMAIL });
    } finally {
      await store.close();
    }

    // and neither the person's own export nor the audit export carries their data
    for (const text of [personalExport.text, rawExport.text]) {
      expect(text).not.toContain(ADA.email);
      expect(text).not.toContain(ADA.name);
    }
    expect(personalExport.text).toContain('"personalDataErased":true');
    // and every event is still there: one more (the erasure), none removed, none changed
    expect(after.length).toBe(before.length + 1);
    expect(after.slice(0, before.length)).toEqual(before);
    // and the chain verifies over the raw file
    expect(await verifyChain(readSqliteLogRaw(file))).toMatchObject({ ok: true, eventsChecked: before.length + 1 });
    // and the key row keeps no key, and the old wrapped key is nowhere in the file's bytes
    expect(keyRow(file, 'ada')).toEqual({ wrapped_key: null, erased_at: '2025-06-01T00:00:00Z' });
    expect(storeBytes(file).includes(wrapped!)).toBe(false);
    expect(keyRow(file, 'bob')?.wrapped_key).toBeInstanceOf(Buffer);
  });

  it('an erasure made by another process hides the person from this one too, though it kept the key: at once in reads holding the erasure, within ERASURE_CHECK_MS in any other', async () => {
    // given two engine processes on the file, both of which have read (and kept) Ada's key
    const here = open();
    const there = open();
    try {
      const registration = async (store: PersonalDataEventStore) => (await store.readStream('customer-ada', { maxCount: 1 }))[0]!.data;
      expect(await registration(here)).toMatchObject({ personal: { name: ADA.name } });
      expect(await registration(there)).toMatchObject({ personal: { name: ADA.name } });

      // when the other process erases her
      await runCommand(there, 'erase-ada', { type: 'EraseCustomerPersonalData', data: { customerId: 'ada', requestedBy: 'dpo', occurredAt: '2025-06-01T00:00:00Z' } });

      // then a read here that holds the erasure shows nothing of her, earlier events included
      const stream = await here.readStream('customer-ada');
      expect(stream.at(-1)?.type).toBe('PersonalDataErased');
      expect(JSON.stringify(stream)).not.toMatch(/Ada Lovelace|ada\.lovelace|7946/);
      expect(stream[0]!.data).toMatchObject({ personalDataErased: true });

      // and so does a read without it, once the erased keys were counted again
      const other = open();
      try {
        expect((await other.readStream('customer-bob', { maxCount: 1 }))[0]!.data).toMatchObject({ personal: { email: BOB_EMAIL } });
        await runCommand(there, 'erase-bob', { type: 'EraseCustomerPersonalData', data: { customerId: 'bob', occurredAt: '2025-06-02T00:00:00Z' } });
        await new Promise((resolve) => setTimeout(resolve, ERASURE_CHECK_MS + 100));
        const bob = (await other.readStream('customer-bob', { maxCount: 1 }))[0]!.data;
        expect(JSON.stringify(bob)).not.toContain(BOB_EMAIL);
        expect(bob).toMatchObject({ personalDataErased: true });
      } finally {
        await other.close();
      }
    } finally {
      await here.close();
      await there.close();
    }
  });

  it("a key row deleted by hand reads as a missing key, never as an erasure: reads mark it so, and the customer's state says which", async () => {
    // given Bob's key row deleted from the file (no erasure recorded), and Ada erased the engine's way
    let store = open();
    await runCommand(store, 'erase-ada', { type: 'EraseCustomerPersonalData', data: { customerId: 'ada', requestedBy: 'dpo', occurredAt: '2025-06-01T00:00:00Z' } });
    await runCommand(store, 'reg-cy', { type: 'RegisterProspect', data: { customerId: 'cy', source: 'web', occurredAt: '2025-01-12T09:00:00Z' } });
    await store.close();
    const db = new Database(file);
    db.prepare("DELETE FROM customer_keys WHERE customer_id = 'bob'").run();
    db.close();

    store = open();
    try {
      // when their streams are read through the decorator
      const [bob] = await store.readStream('customer-bob');
      const [ada] = await store.readStream('customer-ada');

      // then Bob's personal fields are absent as unreadable, not erased; Ada's as erased
      expect(bob!.data).toMatchObject({ personalDataKeyMissing: true });
      expect(bob!.data).not.toHaveProperty('personalDataErased');
      expect(bob!.data).not.toHaveProperty('personal');
      expect(ada!.data).toMatchObject({ personalDataErased: true });
      expect(ada!.data).not.toHaveProperty('personalDataKeyMissing');

      // and the state of each customer's personal data says which it is
      expect(await store.personalDataState('bob')).toEqual({ kind: 'key_missing', encryptedEvents: 1, firstPosition: 2, firstEventId: bob!.id });
      expect(await store.isErased('bob')).toBe(false);
      expect(await store.personalDataState('ada')).toEqual({ kind: 'erased' });
      // a customer who never gave personal data has no key, and nothing is missing
      expect(await store.personalDataState('cy')).toEqual({ kind: 'readable' });
    } finally {
      await store.close();
    }

    // when Ada's key row is deleted too: her stream records the erasure, so she still reads as erased
    const again = new Database(file);
    again.prepare("DELETE FROM customer_keys WHERE customer_id = 'ada'").run();
    again.close();
    store = open();
    try {
      expect(await store.personalDataState('ada')).toEqual({ kind: 'erased' });
      const [registration] = await store.readStream('customer-ada', { maxCount: 1 });
      expect(registration!.data).toMatchObject({ personalDataErased: true });
      expect(registration!.data).not.toHaveProperty('personalDataKeyMissing');
    } finally {
      await store.close();
    }
  });

  it("new personal data for a customer whose key row was deleted is refused, writing nothing and making no key: their earlier data would stay unreadable under a new one", async () => {
    // given Bob's key row deleted from the file, no erasure recorded
    const db = new Database(file);
    db.prepare("DELETE FROM customer_keys WHERE customer_id = 'bob'").run();
    db.close();
    const store = open();
    try {
      const head = await store.headPosition();

      // when new personal data of Bob's is appended
      const update = runCommand(store, 'update-bob', { type: 'UpdateProfile', data: { customerId: 'bob', personal: { email: 'new.bob@example.org' }, occurredAt: '2025-07-01T00:00:00Z' } });

      // then it is refused, naming the customer and what to do, and nothing is written: no event, no key
      await expect(update).rejects.toThrow(CustomerKeyMissingError);
      await expect(update).rejects.toThrow(/customer bob: 1 of their events hold personal data encrypted with a key that is missing .*restore the store's customer keys/);
      expect(await store.headPosition()).toBe(head);
      expect(keyRow(file, 'bob')).toBeUndefined();
      expect(await store.personalDataState('bob')).toMatchObject({ kind: 'key_missing' });

      // and facts without personal data still go through, as does personal data of a customer with a key
      await runCommand(store, 'call-bob', { type: 'RecordTouchpoint', data: { customerId: 'bob', channel: 'email', direction: 'outbound', kind: 'newsletter', occurredAt: '2025-07-02T00:00:00Z' } });
      await runCommand(store, 'update-ada', { type: 'UpdateProfile', data: { customerId: 'ada', personal: { email: 'ada@example.org' }, occurredAt: '2025-07-03T00:00:00Z' } });
      expect(await store.headPosition()).toBe(head + 2);
    } finally {
      await store.close();
    }
  });

  it('a retried identical append of personal data through the decorator is stored once', async () => {
    // given a registration with personal data, appended once
    const store = open();
    try {
      const event: NewEvent = {
        id: idFrom('reg-cleo'),
        type: 'ProspectRegistered',
        data: { customerId: 'cleo', source: 'web', implicit: false, personal: { email: 'cleo@example.org' }, occurredAt: '2025-03-01T00:00:00Z' },
        metadata: { occurredAt: '2025-03-01T00:00:00Z', schemaVersion: 1, commandId: 'reg-cleo' },
      };
      const first = await store.appendToStream('customer-cleo', [event], { expectedRevision: 'no_stream' });
      const head = await store.headPosition();

      // when the very same append is sent again (a client retry), with either expectation
      const again = await store.appendToStream('customer-cleo', [event], { expectedRevision: 'no_stream' });
      const anyAgain = await store.appendToStream('customer-cleo', [event]);

      // then it answers as the first time, and nothing new is stored
      expect(again).toMatchObject({ duplicate: true, position: first.position });
      expect(anyAgain).toMatchObject({ duplicate: true, position: first.position });
      expect(again.events[0]!.data.personal).toEqual({ email: 'cleo@example.org' });
      expect(await store.headPosition()).toBe(head);
      let count = 0;
      for await (const _ of eventsOfLog(store.inner)) count += 1;
      expect(count).toBe(head);
    } finally {
      await store.close();
    }
  });
});

describe('customer keys written by the embedded store\'s writer', () => {
  const master = randomBytes(32);
  let tmp: ReturnType<typeof tempDir>;
  let file: string;

  beforeEach(() => {
    tmp = tempDir('clientele-keys-');
    file = tmp.file('clientele.db');
  });
  afterEach(() => tmp.remove());

  it('stores the new keys of one turn in one write, one key per customer, and the key stored first wins', async () => {
    // given the engine's wiring: the key store hands new keys to the event store's writer thread
    const events = new SqliteEventStore({ file, durability: 'full' });
    const writes = jest.spyOn(events, 'storeCustomerKeys');
    const keys = new SqliteCustomerKeyStore(file, master, events);
    const other = new SqliteCustomerKeyStore(file, master);
    try {
      // when fifty new customers ask for a key in one turn, one of them twice
      const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
      const [twice, ...all] = await Promise.all([keys.keyFor('c7'), ...ids.map((id) => keys.keyFor(id))]);

      // then one write stored them, each customer has one key, and it is the stored one
      expect(writes).toHaveBeenCalledTimes(1);
      expect(writes.mock.calls[0]![0].map((r) => r.customerId).sort()).toEqual([...ids].sort());
      expect(twice).toEqual(all[7]);
      expect(new Set(all.map((k) => (k as Buffer).toString('hex'))).size).toBe(50);
      for (const [i, id] of ids.entries()) expect(await other.existingKey(id)).toEqual(all[i]);

      // and when another writer and this one create a key for the same customer at once, both use the one stored
      const [mine, theirs] = await Promise.all([keys.keyFor('zoe'), other.keyFor('zoe')]);
      expect(mine).toEqual(theirs);
      expect(keyRow(file, 'zoe')?.wrapped_key).toBeInstanceOf(Buffer);
    } finally {
      await other.close();
      await keys.close();
      await events.close();
    }
  });

  it('encrypts through the writer-stored keys and reads back after a reopen', async () => {
    const open = () => {
      const events = new SqliteEventStore({ file, durability: 'full' });
      return new PersonalDataEventStore(events, new SqliteCustomerKeyStore(file, master, events));
    };
    const store = open();
    await Promise.all(
      ['ada', 'bob', 'cy'].map((id) =>
        runCommand(store, `reg-${id}`, { type: 'RegisterProspect', data: { customerId: id, source: 'web', personal: { email: `${id}@example.org` }, occurredAt: '2025-01-10T09:00:00Z' } }),
      ),
    );
    await store.close();
    expect(storeBytes(file).includes(Buffer.from('ada@example.org'))).toBe(false);

    const reopened = open();
    try {
      const personal = (await reopened.readAll()).map((e) => (e.data.personal as { email: string }).email);
      expect(personal.sort()).toEqual(['ada@example.org', 'bob@example.org', 'cy@example.org']);
    } finally {
      await reopened.close();
    }
  });
});
