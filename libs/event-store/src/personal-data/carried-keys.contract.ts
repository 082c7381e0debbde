import { randomBytes } from 'node:crypto';
import { WrongExpectedRevisionError, type EventStore, type NewEvent } from '../event-store.port';
import { CustomerKeyTakenError, wrapKey, type CustomerKeyCarrier, type CustomerKeyStore } from './customer-keys';
import { PersonalDataEventStore } from './encrypting.event-store';
import { isEncryptedField } from './personal-data.cipher';

/** What the carried-keys specs need of a storage: run once per carrier (SQLite file, PostgreSQL schema, its write paths). */
export interface CarriedKeysFixture {
  /** the event store (a carrier) and a key store whose new keys it carries, on the fixture's storage; a fresh pair each call */
  open(): Promise<{ carrier: EventStore & CustomerKeyCarrier; keys: CustomerKeyStore }>;
  /** a key store on the same keys table that writes its own keys (another process, or an older release) */
  openKeyWriter(): Promise<CustomerKeyStore>;
  /** how many rows the keys table holds for the customer */
  keyRows(customerId: string): Promise<number>;
  master: Buffer;
  cleanup(): Promise<void>;
}

const PERSONAL = { name: 'Cara Clark', email: 'cara@example.org' };

function registration(id: string, personal: object = PERSONAL): NewEvent {
  return {
    id,
    type: 'ProspectRegistered',
    data: { source: 'web', personal: personal as never, occurredAt: '2026-11-01T09:00:00.000Z' },
    metadata: { occurredAt: '2026-11-01T09:00:00.000Z', schemaVersion: 1 },
  };
}

/**
 * A new customer's key written in the transaction of their registration (CustomerKeyCarrier), the
 * same for every carrier: one commit and no write of the key store's own, a key stored earlier
 * winning, and nothing of a refused append kept.
 */
export function carriedKeysContract(makeFixture: () => Promise<CarriedKeysFixture>): void {
  let fixture: CarriedKeysFixture;
  const opened: { close(): Promise<void> }[] = [];
  const open = async (): Promise<{ carrier: EventStore & CustomerKeyCarrier; keys: CustomerKeyStore; store: PersonalDataEventStore }> => {
    const pair = await fixture.open();
    const store = new PersonalDataEventStore(pair.carrier, pair.keys);
    opened.push(store);
    return { ...pair, store };
  };

  beforeEach(async () => {
    fixture = await makeFixture();
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    await fixture.cleanup();
  });

  it("writes a registration's new key with its events, and nothing else", async () => {
    // given an engine's store with nothing in memory
    const { store, carrier, keys } = await open();
    const carrying = jest.spyOn(carrier, 'appendWithCustomerKey');
    const ownWrites = jest.spyOn(keys, 'keyFor');

    // when a new customer registers with personal data
    const result = await store.appendToStream('customer-cara', [registration('e-cara')], { expectedRevision: 'no_stream' });

    // then the key went with the events, the key store wrote nothing of its own, and the answer reads as given
    expect(carrying).toHaveBeenCalledTimes(1);
    expect(ownWrites).not.toHaveBeenCalled();
    expect(result.events[0]!.data.personal).toEqual(PERSONAL);
    expect(await fixture.keyRows('cara')).toBe(1);
    const [stored] = await carrier.readStream('customer-cara');
    expect(isEncryptedField(stored!.data.personal)).toBe(true);

    // and another process, reading the key from the table, decrypts the registration
    const other = await open();
    expect((await other.store.readStream('customer-cara'))[0]!.data.personal).toEqual(PERSONAL);
  });

  it("encrypts with the key stored first when the customer already has one", async () => {
    // given a key stored for the customer before (another process, or an older release that wrote keys first)
    const writer = await fixture.openKeyWriter();
    opened.push(writer);
    const existing = await writer.keyFor('cara');
    const { store, carrier } = await open();
    const carrying = jest.spyOn(carrier, 'appendWithCustomerKey');

    // when the customer registers through a store that knows nothing of that key
    await store.appendToStream('customer-cara', [registration('e-cara')], { expectedRevision: 'no_stream' });

    // then the carried key was refused, the registration used the stored key, and the table holds one key
    await expect(carrying.mock.results[0]!.value).rejects.toBeInstanceOf(CustomerKeyTakenError);
    expect(await fixture.keyRows('cara')).toBe(1);
    const readByWriter = new PersonalDataEventStore(carrier, writer);
    expect(await writer.existingKey('cara')).toBe(existing);
    expect((await readByWriter.readStream('customer-cara'))[0]!.data.personal).toEqual(PERSONAL);
  });

  it('keeps no key of a registration that is refused', async () => {
    // given a stream that exists already, without personal data
    const { store, carrier } = await open();
    await carrier.appendToStream('customer-dan', [registration('e-dan-0', {})], { expectedRevision: 'no_stream' });

    // when a registration with personal data expects no stream
    const refused = store.appendToStream('customer-dan', [registration('e-dan-1')], { expectedRevision: 'no_stream' });

    // then it is refused and no key was stored for the customer
    await expect(refused).rejects.toBeInstanceOf(WrongExpectedRevisionError);
    expect(await fixture.keyRows('dan')).toBe(0);
  });

  it("refuses an append whose customer has another key, without failing its neighbours", async () => {
    // given a customer with a stored key
    const writer = await fixture.openKeyWriter();
    opened.push(writer);
    await writer.keyFor('dan');
    const { carrier } = await open();
    const before = await carrier.headPosition();

    // when, in one turn, that customer's events come with another key and a neighbour's without one
    const wrongKey = { customerId: 'dan', wrappedKey: wrapKey(fixture.master, randomBytes(32)) };
    const [dan, eve] = await Promise.allSettled([
      carrier.appendWithCustomerKey('customer-dan', [registration('e-dan')], { expectedRevision: 'no_stream' }, wrongKey),
      carrier.appendToStream('customer-eve', [registration('e-eve', {})], { expectedRevision: 'no_stream' }),
    ]);

    // then only the first is refused, with nothing of it written, and the neighbour is stored
    expect(dan.status === 'rejected' && dan.reason).toBeInstanceOf(CustomerKeyTakenError);
    expect(eve.status).toBe('fulfilled');
    expect(await carrier.readStream('customer-dan')).toEqual([]);
    expect(await carrier.headPosition()).toBe(before + 1);
    expect(await fixture.keyRows('dan')).toBe(1);
  });

  it('takes the same key sent again, and a turn of new customers in one go', async () => {
    // given one customer's key carried with their first events
    const { carrier } = await open();
    const key = { customerId: 'fay', wrappedKey: wrapKey(fixture.master, randomBytes(32)) };
    await carrier.appendWithCustomerKey('customer-fay', [registration('e-fay-0')], { expectedRevision: 'no_stream' }, key);

    // when the same key comes again with the stream's next events, and twenty customers register at once
    const again = carrier.appendWithCustomerKey('customer-fay', [registration('e-fay-1')], { expectedRevision: 0 }, key);
    const { store } = await open();
    const many = Array.from({ length: 20 }, (_, i) => store.appendToStream(`customer-g${i}`, [registration(`e-g${i}`)], { expectedRevision: 'no_stream' }));

    // then all are written, one key per customer, each registration readable by another process
    await expect(again).resolves.toMatchObject({ nextExpectedRevision: 1 });
    await Promise.all(many);
    expect(await fixture.keyRows('fay')).toBe(1);
    const other = await open();
    for (let i = 0; i < 20; i++) {
      expect(await fixture.keyRows(`g${i}`)).toBe(1);
      expect((await other.store.readStream(`customer-g${i}`))[0]!.data.personal).toEqual(PERSONAL);
    }
  });
}
