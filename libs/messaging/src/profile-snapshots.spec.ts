import type { StoredEvent } from '@clientele/event-store';
import { InMemoryEventStore } from '@clientele/testing';
import { InMemoryCheckpointStore } from './checkpoint.store';
import { newEvent } from './kafka-test-helpers';
import { ProfileSnapshotFeed, type ProfileSnapshot, type ProfileSource } from './profile-snapshots';

/** the feed's clock: each snapshot says the moment its profile was read as of */
const AS_OF = new Date('2026-07-01T12:00:00.000Z');

/** A read model stand-in: profiles by id, a projected position, and batch listeners. */
class FakeProfiles implements ProfileSource {
  readonly profiles = new Map<string, Record<string, unknown> | null>();
  projected = 0;
  /** the moment each load was asked as of */
  readonly loadedAsOf: string[] = [];
  private listeners: Array<(events: readonly StoredEvent[]) => void> = [];
  async load(id: string, asOf: Date) {
    this.loadedAsOf.push(asOf.toISOString());
    return this.profiles.get(id);
  }
  async position() {
    return this.projected;
  }
  onBatchApplied(listener: (events: readonly StoredEvent[]) => void) {
    this.listeners.push(listener);
    return () => (this.listeners = this.listeners.filter((l) => l !== listener));
  }
  /** what the projector does: fold, commit, then tell */
  apply(events: readonly StoredEvent[], change: (profiles: Map<string, Record<string, unknown> | null>) => void) {
    change(this.profiles);
    this.projected = Math.max(this.projected, ...events.map((e) => e.position));
    for (const l of this.listeners) l(events);
  }
}

async function append(store: InMemoryEventStore, customerId: string, type = 'PurchaseRecorded'): Promise<StoredEvent[]> {
  await store.appendToStream(`customer-${customerId}`, [newEvent(type, customerId)]);
  const all = await store.readAll();
  return all.slice(-1);
}

describe('ProfileSnapshotFeed', () => {
  it('given projected batches, then it publishes each touched customer’s current profile, a tombstone when erased, and moves its checkpoint', async () => {
    const store = new InMemoryEventStore();
    const source = new FakeProfiles();
    const checkpoints = new InMemoryCheckpointStore();
    const sent: ProfileSnapshot[][] = [];
    const feed = new ProfileSnapshotFeed({ source, store, checkpoints, now: () => AS_OF, publish: async (s) => void sent.push([...s]) });
    await feed.start();

    // when c1 buys, then c2 buys, then c1 is erased
    const buy1 = await append(store, 'c1');
    source.apply(buy1, (p) => p.set('c1', { revenueMinor: 100 }));
    await feed.waitForPosition(1);
    const buy2 = await append(store, 'c2');
    source.apply(buy2, (p) => p.set('c2', { revenueMinor: 250 }));
    await feed.waitForPosition(2);
    const erased = await append(store, 'c1', 'PersonalDataErased');
    source.apply(erased, (p) => p.set('c1', null));
    await feed.waitForPosition(3);
    await feed.stop();

    // then each customer's profile went out as it was after its batch, and c1 ends with a tombstone
    expect(sent.flat()).toEqual([
      { customerId: 'c1', profile: { revenueMinor: 100 }, position: 1, asOf: AS_OF.toISOString() },
      { customerId: 'c2', profile: { revenueMinor: 250 }, position: 2, asOf: AS_OF.toISOString() },
      { customerId: 'c1', profile: null },
    ]);
    // each profile was read as of the moment its snapshot names
    expect(new Set(source.loadedAsOf)).toEqual(new Set([AS_OF.toISOString()]));
    expect(await checkpoints.load('kafka-profile-snapshots')).toBe(3);
    expect(feed.stats()).toMatchObject({ position: 3, pending: 0, publishedSnapshots: 3, failedSends: 0 });
  });

  it('given sends that fail, then the checkpoint stays put and the snapshots go out once sending works again', async () => {
    const store = new InMemoryEventStore();
    const source = new FakeProfiles();
    const checkpoints = new InMemoryCheckpointStore();
    let failing = true;
    const sent: ProfileSnapshot[] = [];
    const feed = new ProfileSnapshotFeed({
      now: () => AS_OF,
      source,
      store,
      checkpoints,
      retryBackoffMs: 5,
      publish: async (s) => {
        // a send that takes a while to fail, as a broker timeout does
        if (failing) await new Promise((r) => setTimeout(r, 20)).then(() => Promise.reject(new Error('broker unreachable')));
        sent.push(...s);
      },
    });
    await feed.start();

    const buy = await append(store, 'c1');
    source.apply(buy, (p) => p.set('c1', { revenueMinor: 100 }));
    // the customer counts as pending at every moment of the outage, the send in progress included
    const seen = new Set<number>();
    while (feed.stats().failedSends < 2) {
      seen.add(feed.stats().pending);
      await new Promise((r) => setImmediate(r));
    }
    expect([...seen]).toEqual([1]);
    expect(await checkpoints.load('kafka-profile-snapshots')).toBe(0);

    failing = false;
    await feed.waitForPosition(1);
    await feed.stop();
    expect(sent).toEqual([{ customerId: 'c1', profile: { revenueMinor: 100 }, position: 1, asOf: AS_OF.toISOString() }]);
  });

  it('given a crash after the read model committed but before the snapshot was sent, then a restarted feed sends it', async () => {
    // given a log whose first two events were sent and whose last two were projected but not sent
    const store = new InMemoryEventStore();
    const source = new FakeProfiles();
    const checkpoints = new InMemoryCheckpointStore();
    for (const id of ['c1', 'c2', 'c3', 'c1']) await append(store, id);
    source.profiles.set('c1', { orders: 2 }).set('c2', { orders: 1 }).set('c3', { orders: 1 });
    source.projected = 4;
    await checkpoints.save('kafka-profile-snapshots', 2);

    // when the feed starts
    const sent: ProfileSnapshot[] = [];
    const feed = new ProfileSnapshotFeed({ source, store, checkpoints, now: () => AS_OF, publish: async (s) => void sent.push(...s) });
    await feed.start();
    await feed.waitForPosition(4);
    await feed.stop();

    // then the customers of positions 3 and 4 are published again, and c2 (only at 2) is not
    expect(sent.sort((a, b) => a.customerId.localeCompare(b.customerId))).toEqual([
      { customerId: 'c1', profile: { orders: 2 }, position: 4, asOf: AS_OF.toISOString() },
      { customerId: 'c3', profile: { orders: 1 }, position: 3, asOf: AS_OF.toISOString() },
    ]);
  });
});
