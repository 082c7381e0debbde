import { randomUUID } from 'node:crypto';
import {
  chainHash,
  DuplicateEventIdError,
  GENESIS_HASH,
  WrongExpectedRevisionError,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type StoredEvent,
} from '@clientele/event-store';

export interface EventStoreUnderTest {
  store: EventStore;
  cleanup(): Promise<void>;
}

/**
 * The behaviour every event store adapter promises. An adapter's spec calls this with a factory
 * that opens a fresh, empty store per test.
 *
 * One requirement reaches past the port: a subscription fetches the log through the store's own
 * `readAll` (called on the same object), so the back-pressure test can count what was fetched
 * without looking inside the adapter.
 */
export function runEventStoreContract(
  name: string,
  factory: () => Promise<EventStoreUnderTest>,
  capabilities: ContractCapabilities = {},
): void {
  const contiguous = capabilities.contiguousPositions ?? true;
  const verifyChain = capabilities.expectValidChain ?? expectValidChain;

  describe(`event store contract: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;

    /** A position as the suite counts it: itself, or its rank 1..N in the log when positions have holes. */
    const rank = async (position: number): Promise<number> => {
      if (contiguous || position === 0) return position;
      const index = (await store.readAll()).findIndex((e) => e.position === position);
      if (index < 0) throw new Error(`position ${position} is not in the log`);
      return index + 1;
    };
    const ranks = (positions: number[]): Promise<number[]> => Promise.all(positions.map(rank));
    /** The position of the n-th event of the log (n itself when positions are contiguous). */
    const positionAt = async (n: number): Promise<number> => {
      if (contiguous || n === 0) return n;
      const all = await store.readAll();
      return n <= all.length ? all[n - 1]!.position : all[all.length - 1]!.position + 1;
    };

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
    });

    afterEach(async () => {
      await cleanup();
    });

    describe('appending', () => {
      it('appends many events atomically with revisions from 0 and positions from 1', async () => {
        // given an empty store
        // when three events are appended to a new stream
        const events = [anEvent('A'), anEvent('B'), anEvent('C')];
        const result = await store.appendToStream('customer-1', events, { expectedRevision: 'no_stream' });

        // then they are stored in order, with revisions 0..2 and positions 1..3
        expect(result.duplicate).toBe(false);
        expect(result.nextExpectedRevision).toBe(2);
        expect(await rank(result.position)).toBe(3);
        expect(await Promise.all(result.events.map(async (e) => [e.id, e.revision, await rank(e.position)]))).toEqual([
          [events[0]!.id, 0, 1],
          [events[1]!.id, 1, 2],
          [events[2]!.id, 2, 3],
        ]);
        const read = await store.readStream('customer-1');
        expect(read).toEqual(result.events);
        expect(read.map((e) => ({ id: e.id, type: e.type, data: e.data, metadata: e.metadata }))).toEqual(events);
        expect(await rank(await store.headPosition())).toBe(3);
      });

      it('answers headPosition 0 for an empty store', async () => {
        expect(await store.headPosition()).toBe(0);
        expect(await store.readAll()).toEqual([]);
      });

      it('rejects an empty append and one that repeats an id, writing nothing', async () => {
        // given an empty store
        const twice = anEvent('A');
        // when the appends are invalid
        await expect(store.appendToStream('s', [])).rejects.toThrow();
        await expect(store.appendToStream('s', [twice, { ...twice }])).rejects.toThrow();
        // then nothing was stored
        expect(await store.headPosition()).toBe(0);
      });

      it('records an ISO-8601 UTC record time on every event', async () => {
        const { events } = await store.appendToStream('s', [anEvent('A'), anEvent('B')]);
        for (const e of events) {
          expect(e.recordedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
          expect(Number.isNaN(Date.parse(e.recordedAt))).toBe(false);
        }
      });
    });

    describe('expected revision', () => {
      type Case = { expected: ExpectedRevision; existing: number; allowed: boolean };
      // existing: how many events the stream holds before the append (0 = no stream)
      const cases: Case[] = [
        { expected: 'any', existing: 0, allowed: true },
        { expected: 'any', existing: 2, allowed: true },
        { expected: 'no_stream', existing: 0, allowed: true },
        { expected: 'no_stream', existing: 2, allowed: false },
        { expected: 'stream_exists', existing: 2, allowed: true },
        { expected: 'stream_exists', existing: 0, allowed: false },
        { expected: 1, existing: 2, allowed: true },
        { expected: 0, existing: 2, allowed: false },
        { expected: 2, existing: 2, allowed: false },
        { expected: 0, existing: 0, allowed: false },
      ];

      it.each(cases)(
        'expected $expected with $existing events stored: allowed=$allowed',
        async ({ expected, existing, allowed }) => {
          // given a stream with `existing` events (and another stream, so positions are shared)
          await store.appendToStream('other', [anEvent('O')]);
          if (existing > 0) {
            await store.appendToStream('s', Array.from({ length: existing }, () => anEvent('E')));
          }
          const before = await store.readAll();

          // when appending with that expectation
          const attempt = store.appendToStream('s', [anEvent('N1'), anEvent('N2')], { expectedRevision: expected });

          if (allowed) {
            // then the events land after the existing ones
            const result = await attempt;
            expect(result.nextExpectedRevision).toBe(existing + 1);
            expect((await store.readStream('s')).map((e) => e.revision)).toEqual(
              Array.from({ length: existing + 2 }, (_, i) => i),
            );
          } else {
            // then it fails with the actual revision and writes nothing
            const error = await attempt.catch((e: unknown) => e);
            expect(error).toBeInstanceOf(WrongExpectedRevisionError);
            expect(error).toMatchObject({
              streamId: 's',
              expected,
              actual: existing === 0 ? 'no_stream' : existing - 1,
            });
            expect(await store.readAll()).toEqual(before);
          }
        },
      );
    });

    describe('idempotency', () => {
      it.each<ExpectedRevision>(['no_stream', 'any'])(
        'a retried identical append (expected %s) answers the first result and stores nothing new',
        async (expectedRevision) => {
          // given an append that succeeded
          const events = [anEvent('A'), anEvent('B')];
          const first = await store.appendToStream('s', events, { expectedRevision });
          await store.appendToStream('other', [anEvent('O')]);

          // when the same append is sent again
          const retry = await store.appendToStream('s', events.map(copy), { expectedRevision });

          // then it is a duplicate with the same positions, and the log did not grow
          expect(retry.duplicate).toBe(true);
          expect(retry.position).toBe(first.position);
          expect(retry.nextExpectedRevision).toBe(first.nextExpectedRevision);
          expect(retry.events).toEqual(first.events);
          expect(await rank(await store.headPosition())).toBe(3);
        },
      );

      it('a retry with an exact expected revision is idempotent after the stream moved on', async () => {
        // given a stream at revision 0, an append at expected 0, then another append
        await store.appendToStream('s', [anEvent('A')]);
        const events = [anEvent('B')];
        const first = await store.appendToStream('s', events, { expectedRevision: 0 });
        await store.appendToStream('s', [anEvent('C')], { expectedRevision: 1 });

        // when the append at expected 0 is retried
        const retry = await store.appendToStream('s', events.map(copy), { expectedRevision: 0 });

        // then it answers the first result
        expect(retry).toMatchObject({ duplicate: true, position: first.position, nextExpectedRevision: 1 });
        expect((await store.readStream('s')).length).toBe(3);
      });

      it.each<ExpectedRevision>(['no_stream', 'any'])(
        'reusing an event id for other content is a DuplicateEventIdError (expected %s)',
        async (expectedRevision) => {
          // given a stored event
          const original = anEvent('A');
          await store.appendToStream('s', [original], { expectedRevision });
          const before = await store.readAll();

          // when its id is appended again with other data
          const error = await store
            .appendToStream('s', [{ ...original, data: { other: true } }], { expectedRevision })
            .catch((e: unknown) => e);

          // then it is refused and nothing is written
          expect(error).toBeInstanceOf(DuplicateEventIdError);
          expect(error).toMatchObject({ eventId: original.id });
          expect(await store.readAll()).toEqual(before);
        },
      );
    });

    describe('reading', () => {
      beforeEach(async () => {
        await store.appendToStream('s', [anEvent('E0'), anEvent('E1'), anEvent('E2')]);
        await store.appendToStream('t', [anEvent('T0')]);
        await store.appendToStream('s', [anEvent('E3'), anEvent('E4')]);
      });

      it('reads a stream forwards from a revision with a maximum count', async () => {
        const read = await store.readStream('s', { fromRevision: 1, maxCount: 3 });
        expect(read.map((e) => e.type)).toEqual(['E1', 'E2', 'E3']);
      });

      it('reads a stream backwards from a revision with a maximum count', async () => {
        const read = await store.readStream('s', { direction: 'backwards', fromRevision: 3, maxCount: 2 });
        expect(read.map((e) => e.type)).toEqual(['E3', 'E2']);
        const fromEnd = await store.readStream('s', { direction: 'backwards' });
        expect(fromEnd.map((e) => e.type)).toEqual(['E4', 'E3', 'E2', 'E1', 'E0']);
      });

      it('reads an unknown stream as empty', async () => {
        expect(await store.readStream('nobody')).toEqual([]);
        expect(await store.readStream('nobody', { direction: 'backwards' })).toEqual([]);
      });

      it('reads the log after a position with a maximum count', async () => {
        const read = await store.readAll({ afterPosition: await positionAt(2), maxCount: 2 });
        expect(await Promise.all(read.map(async (e) => [await rank(e.position), e.type]))).toEqual([
          [3, 'E2'],
          [4, 'T0'],
        ]);
        expect(await store.readAll({ afterPosition: await positionAt(6) })).toEqual([]);
      });

      it('numbers positions without holes from 1 and revisions from 0 per stream', async () => {
        const all = await store.readAll();
        if (contiguous) expect(all.map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6]);
        else expectIncreasing(all.map((e) => e.position), 6);
        expect(all.filter((e) => e.streamId === 's').map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
        expect(all.filter((e) => e.streamId === 't').map((e) => e.revision)).toEqual([0]);
      });

      it('links every event to its predecessor in one hash chain', async () => {
        verifyChain(await store.readAll());
      });
    });

    describe('subscribing to the log', () => {
      it('catches up from a checkpoint, then receives live appends', async () => {
        // given five stored events
        for (let i = 1; i <= 5; i++) await store.appendToStream(`s${i}`, [anEvent(`E${i}`)]);
        const subscription = store.subscribeToAll({ afterPosition: await positionAt(2), batchSize: 2 });
        const iterator = subscription[Symbol.asyncIterator]();

        // when reading, then the events after the checkpoint arrive in order
        expect(await ranks((await take(iterator, 3)).map((e) => e.position))).toEqual([3, 4, 5]);

        // when more events are appended, then they arrive live
        const pending = take(iterator, 2);
        await store.appendToStream('live', [anEvent('L1'), anEvent('L2')]);
        expect(await Promise.all((await pending).map(async (e) => [await rank(e.position), e.type]))).toEqual([
          [6, 'L1'],
          [7, 'L2'],
        ]);
        await subscription.close();
      });

      it('delivers only the chosen event types, in catch-up and live', async () => {
        await store.appendToStream('s', [anEvent('Wanted'), anEvent('Other'), anEvent('Wanted')]);
        const subscription = store.subscribeToAll({ eventTypes: new Set(['Wanted']), batchSize: 1 });
        const iterator = subscription[Symbol.asyncIterator]();
        expect(await ranks((await take(iterator, 2)).map((e) => e.position))).toEqual([1, 3]);

        const pending = take(iterator, 1);
        await store.appendToStream('s', [anEvent('Other'), anEvent('Wanted')]);
        expect(await ranks((await pending).map((e) => e.position))).toEqual([5]);
        await subscription.close();
      });

      it('ends the iteration on close, also while waiting for live events', async () => {
        // given a subscription that has caught up and waits
        await store.appendToStream('s', [anEvent('A')]);
        const subscription = store.subscribeToAll();
        const received: StoredEvent[] = [];
        const consuming = (async () => {
          for await (const e of subscription) received.push(e);
        })();
        await store.appendToStream('s', [anEvent('B')]);
        await waitUntil(() => received.length === 2);

        // when it is closed, then the loop ends
        await subscription.close();
        await consuming;
        expect(received.map((e) => e.type)).toEqual(['A', 'B']);
      });

      it('fetches no more than about one batch ahead of a slow consumer', async () => {
        // given 1000 stored events and a count of what the subscription fetched
        for (let i = 0; i < 10; i++) {
          await store.appendToStream(`s${i}`, Array.from({ length: 100 }, () => anEvent('E')));
        }
        let fetched = 0;
        const readAll = store.readAll.bind(store);
        jest.spyOn(store, 'readAll').mockImplementation(async (options) => {
          const events = await readAll(options);
          fetched += events.length;
          return events;
        });
        const batchSize = 10;
        const subscription = store.subscribeToAll({ batchSize });
        const iterator = subscription[Symbol.asyncIterator]();

        // when the consumer pulls one event at a time, yielding to the store between pulls
        let delivered = 0;
        let mostAhead = 0;
        while (delivered < 1000) {
          const next = await iterator.next();
          expect(next.done).toBe(false);
          delivered += 1;
          await new Promise((resolve) => setImmediate(resolve));
          mostAhead = Math.max(mostAhead, fetched - delivered);
        }

        // then it never held more than one batch beyond what was consumed
        expect(fetched).toBeGreaterThanOrEqual(1000);
        expect(mostAhead).toBeLessThanOrEqual(batchSize);
        await subscription.close();
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of many appends with the same expected revision win', async () => {
        // given a stream at revision 0
        await store.appendToStream('s', [anEvent('A')]);

        // when ten appends race on expected revision 0
        const outcomes = await Promise.allSettled(
          Array.from({ length: 10 }, () => store.appendToStream('s', [anEvent('B')], { expectedRevision: 0 })),
        );

        // then one succeeds and the others fail on the revision
        const won = outcomes.filter((o) => o.status === 'fulfilled');
        const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(9);
        for (const o of lost) expect(o.reason).toBeInstanceOf(WrongExpectedRevisionError);
        expect((await store.readStream('s')).map((e) => e.revision)).toEqual([0, 1]);
      });

      it('stores every one of many concurrent appends to different streams, contiguously', async () => {
        // when fifty appends of three events run at once
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.appendToStream(`c${i}`, [anEvent('X'), anEvent('Y'), anEvent('Z')], {
              expectedRevision: 'no_stream',
            }),
          ),
        );

        // then all 150 land, each append in consecutive positions, the log without holes
        for (const r of results) {
          const last = await rank(r.position);
          expect((await ranks(r.events.map((e) => e.position))).map((p) => p - last)).toEqual([-2, -1, 0]);
        }
        const all = await store.readAll();
        if (contiguous) expect(all.map((e) => e.position)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
        else expectIncreasing(all.map((e) => e.position), 150);
        verifyChain(all);
      });
    });
  });
}

/**
 * What an adapter may do differently and still keep the promise. The defaults describe the
 * strictest store (SQLite, PostgreSQL).
 */
export interface ContractCapabilities {
  /**
   * true (default): positions are 1, 2, 3… without holes. false: they only grow (EventStoreDB's
   * commit positions); the suite then checks each position's rank in the log instead of its value.
   */
  contiguousPositions?: boolean;
  /** how the hash chain is checked; default: one global chain (`expectValidChain`) */
  expectValidChain?: (log: StoredEvent[]) => void;
}

function expectIncreasing(positions: number[], count: number): void {
  expect(positions).toHaveLength(count);
  positions.forEach((p, i) => {
    expect(p).toBeGreaterThan(i === 0 ? 0 : positions[i - 1]!);
  });
}

/** Recomputes the chain from genesis over the whole log. */
export function expectValidChain(log: StoredEvent[]): void {
  let prev = GENESIS_HASH;
  for (const e of log) {
    expect(e.prevHash).toBe(prev);
    expect(e.hash).toBe(chainHash(prev, e));
    prev = e.hash;
  }
}

function anEvent(type: string): NewEvent {
  return {
    id: randomUUID(),
    type,
    data: { customerId: 'c-1', amountMinor: 1250, lines: [{ sku: 'cd-1', quantity: 1 }] },
    metadata: { occurredAt: '2026-01-05T10:00:00.000Z', schemaVersion: 1, commandId: randomUUID() },
  };
}

function copy(e: NewEvent): NewEvent {
  return JSON.parse(JSON.stringify(e)) as NewEvent;
}

async function take(iterator: AsyncIterator<StoredEvent>, count: number): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  while (out.length < count) {
    const next = await iterator.next();
    if (next.done) throw new Error(`subscription ended after ${out.length} of ${count} events`);
    out.push(next.value);
  }
  return out;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
