import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import {
  chainHash,
  DuplicateEventIdError,
  GENESIS_HASH,
  WrongExpectedRevisionError,
  type NewEvent,
  type StoredEvent,
} from '@clientele/event-store';
import { describeWithServer, PostgresServer, runEventStoreContract } from '@clientele/testing';
import { PostgresEventStore } from './postgres.event-store';
import { MIGRATIONS, migrate } from './postgres.migrations';
import { dropSchema, openFreshStore, uniqueSchema } from './postgres.test-support';

describeWithServer(PostgresServer, 'PostgreSQL event store', (url) => {
  runEventStoreContract('PostgreSQL', () => openFreshStore(url));
  runEventStoreContract('PostgreSQL, every small group numbered and hashed by the server', () => openFreshStore(url, { sealOnServer: 'always' }));

  describe('opened to read only (an auditor)', () => {
    it('reads what was stored, and a write is refused by the server: nothing is appended', async () => {
      const { store, cleanup, schema } = await openFreshStore(url);
      try {
        await store.appendToStream('customer-1', [anEvent('CustomerTouched')]);
        const reader = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 1, readOnly: true });
        try {
          expect((await reader.readAll()).map((e) => e.position)).toEqual([1]);
          await expect(reader.appendToStream('customer-2', [anEvent('CustomerTouched')])).rejects.toThrow(/read-only transaction/);
          expect(await store.headPosition()).toBe(1);
        } finally {
          await reader.close();
        }
      } finally {
        await cleanup();
      }
    });

    it('refuses a schema behind this build, naming the migration it lacks, and migrates nothing', async () => {
      const { store, cleanup, schema } = await openFreshStore(url);
      await store.close();
      const pool = new Pool({ connectionString: url, max: 1 });
      try {
        const last = MIGRATIONS[MIGRATIONS.length - 1]!.version;
        await pool.query(`delete from ${schema}.migrations where version = $1`, [last]);

        const opening = PostgresEventStore.open({ connectionString: url, schema, poolSize: 1, readOnly: true });

        await expect(opening).rejects.toThrow(`schema ${schema} lacks migration ${last} this build reads with; opened to read only, nothing was migrated`);
        expect((await pool.query(`select 1 from ${schema}.migrations where version = $1`, [last])).rowCount).toBe(0);
        await expect(PostgresEventStore.open({ connectionString: url, schema: `${schema}_none`, poolSize: 1, readOnly: true })).rejects.toThrow(
          `schema ${schema}_none holds no Clientele event log`,
        );
      } finally {
        await pool.end();
        await cleanup();
      }
    });
  });

  describe('groups numbered and hashed by the server (append_server_sealed)', () => {
    it('hashes the same bytes the store would: escapes, non-ASCII text, key order and numbers', async () => {
      // given a store whose small groups are sealed by the server, and content that JSON escapes
      const { store, cleanup } = await openFreshStore(url, { sealOnServer: 'always' });
      try {
        const tricky: NewEvent[] = [
          {
            id: 'ev-"quoted"\\back\nslash',
            type: 'NoteTaken',
            data: { zeta: 1, alpha: 'tab\there "q" \\ end', café: 'crème ☕ 😀', sep: 'line\u2028para\u2029', nested: [{ b: 2, a: [1, -1.5, 1e21, 0.1] }], nothing: null },
            metadata: { occurredAt: '2026-02-01T09:30:00.000Z', schemaVersion: 1, commandId: 'c-ü' },
          },
          anEvent('CustomerTouched'),
        ];
        // when it appends them in two streams, one of them named with non-ASCII text
        const first = await store.appendToStream('customer-Ørsted "1"', [tricky[0]!]);
        const second = await store.appendToStream('customer-2', [tricky[1]!], { expectedRevision: 'no_stream' });

        // then what is stored chains from genesis by the store's own hashing, holds the content as sent,
        // and each caller was answered with the positions and hashes that were stored
        const log = await store.readAll();
        expect(log.map((e) => e.position)).toEqual([1, 2]);
        expect(firstBrokenLink(log)).toBeUndefined();
        expect(log[0]!.data).toEqual(tricky[0]!.data);
        expect(log[0]!.streamId).toBe('customer-Ørsted "1"');
        expect(first.events).toEqual([log[0]]);
        expect(second.events).toEqual([log[1]]);
        expect([first.position, second.position]).toEqual([1, 2]);
      } finally {
        await cleanup();
      }
    });

    it('numbers from the head another process moved, and answers each caller with what was stored', async () => {
      // given two stores on one schema (two processes), one sealing on the server and one not
      const { store: sealing, schema, cleanup } = await openFreshStore(url, { sealOnServer: 'always' });
      const other = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, sealOnServer: 'never' });
      try {
        // when they take turns appending, also to each other's streams and with exact revisions
        const results = [];
        for (let i = 0; i < 6; i++) {
          results.push(await sealing.appendToStream('customer-a', [anEvent('CustomerTouched'), anEvent('CustomerTouched')]));
          results.push(await other.appendToStream('customer-b', [anEvent('CustomerTouched')]));
          results.push(await sealing.appendToStream('customer-b', [anEvent('CustomerTouched')], { expectedRevision: 2 * i }));
          results.push(await other.appendToStream('customer-a', [anEvent('CustomerTouched')]));
        }

        // then the log has no hole and verifies, and every answer is the events as stored
        const log = await sealing.readAll();
        expect(log.map((e) => e.position)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
        expect(firstBrokenLink(log)).toBeUndefined();
        const stored = new Map(log.map((e) => [e.id, e]));
        for (const result of results) {
          expect(result.events).toEqual(result.events.map((e) => stored.get(e.id)));
          expect(result.position).toBe(result.events[result.events.length - 1]!.position);
          expect(result.nextExpectedRevision).toBe(result.events[result.events.length - 1]!.revision);
        }
        expect(log.filter((e) => e.streamId === 'customer-b').map((e) => e.revision)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      } finally {
        await other.close();
        await cleanup();
      }
    });

    it('refuses an unknown setting by name', async () => {
      await expect(openFreshStore(url, { sealOnServer: 'sometimes' as never })).rejects.toThrow(
        "sealOnServer: expected 'when-contended', 'always' or 'never', got \"sometimes\"",
      );
    });
  });

  describe('gap safety with writers in separate connections', () => {
    it('a live subscriber from 0 sees every event exactly once, in position order, with a valid chain', async () => {
      // given eight stores on one schema (eight pools, as eight engine processes would have), whose
      // transactions hold the append lock for a random few milliseconds, half of which write appends
      // of three events in two statements, and a ninth that subscribes
      const schema = uniqueSchema('gap');
      const writers = await Promise.all(
        Array.from({ length: 8 }, (_, w) =>
          PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, beforeWrite: randomPause, ...(w % 2 ? { rowsPerStatement: 2 } : {}) }),
        ),
      );
      const reader = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, pollIntervalMs: 50 });
      const subscription = reader.subscribeToAll({ afterPosition: 0, batchSize: 7 });
      const received: StoredEvent[] = [];
      let expectedTotal = Number.POSITIVE_INFINITY;
      const consuming = (async () => {
        for await (const event of subscription) {
          received.push(event);
          if (received.length >= expectedTotal) break;
        }
      })();

      try {
        // when each writer appends 60 times, one to three events each, with pauses between appends
        const appended = await Promise.all(
          writers.map(async (store, w) => {
            const ids: string[] = [];
            for (let i = 0; i < 60; i++) {
              const events = Array.from({ length: 1 + ((w + i) % 3) }, () => anEvent('CustomerTouched'));
              const result = await store.appendToStream(`customer-${w}-${i % 5}`, events);
              ids.push(...result.events.map((e) => e.id));
              if (i % 4 === 0) await randomPause();
            }
            return ids;
          }),
        );
        const allIds = appended.flat();
        expectedTotal = allIds.length;
        if (received.length < expectedTotal) await consuming;

        // then the subscriber saw each appended event once, positions 1..N without a hole
        expect(received.map((e) => e.position)).toEqual(Array.from({ length: expectedTotal }, (_, i) => i + 1));
        expect(new Set(received.map((e) => e.id))).toEqual(new Set(allIds));
        expect(received).toHaveLength(allIds.length);
        // and the global chain verifies from genesis over what it received
        expect(firstBrokenLink(received)).toBeUndefined();
      } finally {
        await subscription.close();
        await consuming;
        await Promise.all([...writers, reader].map((s) => s.close()));
        await dropSchema(url, schema);
      }
    });
  });

  describe('live delivery across processes', () => {
    it('wakes a subscriber in another process through NOTIFY, long before its poll would', async () => {
      // given a subscriber whose poll fallback is an hour away, on its own pool
      const { store: writer, schema, cleanup } = await openFreshStore(url);
      const reader = await PostgresEventStore.open({ connectionString: url, schema, pollIntervalMs: 3_600_000 });
      const subscription = reader.subscribeToAll();
      const iterator = subscription[Symbol.asyncIterator]();
      try {
        const first = iterator.next();
        // when another process appends (after the subscriber has found the log empty and waits)
        await new Promise((resolve) => setTimeout(resolve, 200));
        await writer.appendToStream('customer-1', [anEvent('ProspectRegistered')]);

        // then the event arrives (the test would time out if only the hourly poll could deliver it)
        const next = await first;
        expect(next.done).toBe(false);
        expect(next.value).toMatchObject({ position: 1, streamId: 'customer-1' });
      } finally {
        await subscription.close();
        await reader.close();
        await cleanup();
      }
    });
  });

  describe('optimistic concurrency across processes', () => {
    it('lets exactly one of two stores win a race on the same expected revision', async () => {
      // given a stream at revision 0 and two stores on the same schema
      const { store: a, schema, cleanup } = await openFreshStore(url);
      const b = await PostgresEventStore.open({ connectionString: url, schema });
      try {
        await a.appendToStream('customer-1', [anEvent('ProspectRegistered')]);

        // when both append at expected revision 0
        const outcomes = await Promise.allSettled([
          a.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 0 }),
          b.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 0 }),
        ]);

        // then one wins and the other is told the actual revision
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        const lost = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
        expect(lost?.reason).toBeInstanceOf(WrongExpectedRevisionError);
        expect(lost?.reason).toMatchObject({ actual: 1 });
      } finally {
        await b.close();
        await cleanup();
      }
    });
  });

  describe('group commit', () => {
    it('fails only the append whose revision is wrong when it shares a transaction with others', async () => {
      // given an existing stream
      const { store, cleanup } = await openFreshStore(url);
      try {
        await store.appendToStream('customer-x', [anEvent('ProspectRegistered')]);

        // when twenty appends are issued at once and one of them expects the wrong revision
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            i === 10
              ? store.appendToStream('customer-x', [anEvent('PurchaseRecorded')], { expectedRevision: 5 })
              : store.appendToStream(`customer-${i}`, [anEvent('ProspectRegistered')], { expectedRevision: 'no_stream' }),
          ),
        );

        // then the other nineteen are stored and the log stays gap-free
        expect(outcomes.map((o) => o.status)).toEqual(
          Array.from({ length: 20 }, (_, i) => (i === 10 ? 'rejected' : 'fulfilled')),
        );
        const all = await store.readAll();
        expect(all.map((e) => e.position)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await cleanup();
      }
    });

    it('never strands an append issued just as the previous group commit finishes', async () => {
      // given a caller that appends again a few microtasks after each append resolves
      // (the window in which a flush has drained its queue but not yet marked itself idle)
      const { store, cleanup } = await openFreshStore(url);
      try {
        for (let i = 0; i < 24; i++) {
          await store.appendToStream('customer-1', [anEvent('TouchpointRecorded')]);
          for (let hop = 0; hop < i % 4; hop++) await Promise.resolve();
        }

        // then every append was written (a stranded one would hang this test)
        expect(await store.headPosition()).toBe(24);
      } finally {
        await cleanup();
      }
    });

    it('writes the next appends of callers answered by one commit in one transaction, though each takes a few steps first', async () => {
      // given eight callers that each append, then take one to four asynchronous steps (as deciding
      // the next command does) before appending again, ten times
      const { store, schema, cleanup } = await openFreshStore(url);
      try {
        await Promise.all(
          Array.from({ length: 8 }, async (_, w) => {
            for (let i = 0; i < 10; i++) {
              await store.appendToStream(`customer-${w}`, [anEvent('TouchpointRecorded')]);
              for (let step = 0; step <= w % 4; step++) await Promise.resolve();
            }
          }),
        );

        // then each round of eight appends was one group commit: rows of one transaction share its id
        const pool = new Pool({ connectionString: url, max: 1 });
        try {
          const result = await pool.query<{ n: number }>(`select count(distinct xmin::text)::integer as n from ${schema}.events`);
          expect(result.rows[0]?.n).toBe(10);
        } finally {
          await pool.end();
        }
        expect(await store.headPosition()).toBe(80);
      } finally {
        await cleanup();
      }
    });

    it('fails only the append the server cannot store when it shares a transaction with others', async () => {
      // given twenty appends issued at once, one of whose type PostgreSQL refuses (text has no \u0000)
      const { store, cleanup } = await openFreshStore(url);
      try {
        const poisoned: NewEvent = { ...anEvent('NoteRecorded'), type: 'Note\u0000Recorded' };
        const outcomes = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            store.appendToStream(`customer-${i}`, [i === 7 ? poisoned : anEvent('ProspectRegistered')]),
          ),
        );

        // then the group's transaction failed as a whole, and each append was tried again alone:
        // only the poisoned one fails, the others are stored, gap-free and chained
        expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 20 }, (_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
        const all = await store.readAll();
        expect(all.map((e) => e.position)).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
        expect(all.some((e) => e.streamId === 'customer-7')).toBe(false);
        expect(firstBrokenLink(all)).toBeUndefined();

        // and the store goes on appending after the failed group
        const next = await store.appendToStream('customer-7', [anEvent('ProspectRegistered')], { expectedRevision: 'no_stream' });
        expect(next.position).toBe(20);
      } finally {
        await cleanup();
      }
    });

    it('writes appends issued without waiting in the order they were issued', async () => {
      // given a caller that fires forty appends to one stream, each expecting the previous one's revision
      const { store, cleanup } = await openFreshStore(url);
      try {
        const events = Array.from({ length: 40 }, () => anEvent('TouchpointRecorded'));
        const results = await Promise.all(
          events.map((e, i) => store.appendToStream('customer-1', [e], { expectedRevision: i === 0 ? 'no_stream' : i - 1 })),
        );

        // then every append was accepted, at the revision and position of its turn
        expect(results.map((r) => [r.events[0]!.id, r.nextExpectedRevision, r.position])).toEqual(
          events.map((e, i) => [e.id, i, i + 1]),
        );
        expect((await store.readStream('customer-1')).map((e) => e.id)).toEqual(events.map((e) => e.id));
      } finally {
        await cleanup();
      }
    });

    it('answers a retry as a duplicate even when what the store remembers would accept it as new', async () => {
      // given an append with expected revision any, which the store remembers as the stream's head
      const { store, cleanup } = await openFreshStore(url);
      try {
        const first = await store.appendToStream('customer-1', [anEvent('ProspectRegistered')]);

        // when it is sent again (its ids are already stored, which memory alone cannot tell)
        const retry = await store.appendToStream('customer-1', first.events.map(asNewEvent));

        // then it answers the first result and writes nothing
        expect(retry).toEqual({ ...first, duplicate: true });
        expect(await store.headPosition()).toBe(1);
        // and the next append still continues the log
        expect((await store.appendToStream('customer-1', [anEvent('PurchaseRecorded')])).position).toBe(2);
      } finally {
        await cleanup();
      }
    });

    it('checks what it remembers against the log when another process appended in between', async () => {
      // given two stores on one schema that take turns on the same stream and on new streams
      const { store: a, schema, cleanup } = await openFreshStore(url);
      const b = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
      try {
        await a.appendToStream('customer-1', [anEvent('ProspectRegistered')]);
        await b.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 0 });

        // when A appends as if its own last append were still the head, and to a stream B created
        await expect(a.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 0 })).rejects.toMatchObject({
          actual: 1,
        });
        const onA = await a.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 1 });
        await b.appendToStream('customer-2', [anEvent('ProspectRegistered')], { expectedRevision: 'no_stream' });
        await expect(a.appendToStream('customer-2', [anEvent('ProspectRegistered')], { expectedRevision: 'no_stream' })).rejects.toMatchObject({
          actual: 0,
        });
        const onB = await b.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 2 });

        // and when A, up to date with the head again, appends to a stream it never saw at a revision
        // that stream has not reached (so the unique (stream, revision) key alone would let it in)
        await b.appendToStream('customer-4', [anEvent('ProspectRegistered')], { expectedRevision: 'no_stream' });
        await a.appendToStream('customer-3', [anEvent('ProspectRegistered')]);
        await expect(a.appendToStream('customer-4', [anEvent('PurchaseRecorded')], { expectedRevision: 5 })).rejects.toMatchObject({
          actual: 0,
        });
        // or with expected revision any, which it first takes for a new stream
        const anyOnA = await a.appendToStream('customer-4', [anEvent('PurchaseRecorded')]);
        expect([anyOnA.position, anyOnA.nextExpectedRevision]).toEqual([8, 1]);

        // then each accepted append continued the log where it really was, and the refused ones wrote nothing
        expect([onA.position, onA.nextExpectedRevision, onB.position, onB.nextExpectedRevision]).toEqual([3, 2, 5, 3]);
        const all = await a.readAll();
        expect(all.map((e) => e.position)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect((await a.readStream('customer-4')).map((e) => e.revision)).toEqual([0, 1]);
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await b.close();
        await cleanup();
      }
    });

    it('does not continue a head it remembers when the log was set back and grew again to the same position', async () => {
      // given a store that appended twice, and then its last event replaced, as a restore from a
      // backup taken after the first append and another process's append would leave it
      const { store: a, schema, cleanup } = await openFreshStore(url);
      const b = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
      const admin = new Pool({ connectionString: url, max: 1 });
      try {
        await a.appendToStream('customer-1', [anEvent('ProspectRegistered')]);
        await a.appendToStream('customer-1', [anEvent('PurchaseRecorded')]);
        await admin.query(`delete from ${schema}.events where position = 2`);
        const replaced = await b.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 0 });

        // when the first store appends again (position and stream revision are what it remembers)
        const next = await a.appendToStream('customer-1', [anEvent('PurchaseRecorded')], { expectedRevision: 1 });

        // then it chained onto the event really at position 2, not the one it remembered
        expect(replaced.position).toBe(2);
        expect(next.events[0]!.prevHash).toBe(replaced.events[0]!.hash);
        expect(firstBrokenLink(await a.readAll())).toBeUndefined();
      } finally {
        await admin.end();
        await b.close();
        await cleanup();
      }
    });

    it('writes an append larger than one statement in pieces, all of it or nothing', async () => {
      // given a store that inserts at most four rows per statement, and an append of ten events
      const { store, schema, cleanup } = await openFreshStore(url, { rowsPerStatement: 4 });
      const other = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
      try {
        const first = await store.appendToStream('campaign-1', Array.from({ length: 10 }, () => anEvent('CampaignSent')));
        expect(first.events.map((e) => e.position)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));

        // when a later append's ninth event reuses a stored id (its third piece fails), and another
        // one's ninth event has a type the server refuses
        const reused: NewEvent = { ...anEvent('CampaignSent'), id: first.events[2]!.id };
        const clash = Array.from({ length: 10 }, (_, i) => (i === 8 ? reused : anEvent('CampaignSent')));
        await expect(store.appendToStream('campaign-2', clash)).rejects.toBeInstanceOf(DuplicateEventIdError);
        const refused = Array.from({ length: 10 }, (_, i) => (i === 8 ? { ...anEvent('CampaignSent'), type: 'Campaign\u0000Sent' } : anEvent('CampaignSent')));
        await expect(store.appendToStream('campaign-3', refused)).rejects.toThrow();

        // then neither wrote any of its pieces
        expect(await store.headPosition()).toBe(10);

        // and after another process appended, the next large append checks, reads and continues the chain
        await other.appendToStream('customer-9', [anEvent('ProspectRegistered')]);
        const next = await store.appendToStream('campaign-1', Array.from({ length: 10 }, () => anEvent('CampaignSent')), { expectedRevision: 9 });
        expect(next.events.map((e) => [e.revision, e.position])).toEqual(Array.from({ length: 10 }, (_, i) => [10 + i, 12 + i]));
        const all = await store.readAll();
        expect(all).toHaveLength(21);
        expect(firstBrokenLink(all)).toBeUndefined();
        expect(all.slice(11)).toEqual(next.events);
      } finally {
        await other.close();
        await cleanup();
      }
    });

    it('copies an append larger than one statement with awkward text and JSON back exactly as it was appended', async () => {
      // given a store that copies at most four rows per piece, and ten events whose stream id, ids,
      // type and data hold what COPY's text format gives a meaning to, escapes, and non-ASCII text
      const { store, cleanup } = await openFreshStore(url, { rowsPerStatement: 4 });
      try {
        const events: NewEvent[] = Array.from({ length: 10 }, (_, i) => ({
          ...anEvent(`Note\tRecorded\n${i}\\`),
          id: `id\\${i}\t\r${randomUUID()}`,
          data: { text: `line\none\ttab\\back "quoted" \u2028 😀 é ${i}`, nul: 'a\u0000b', path: 'C:\\dir\\' },
        }));

        // when they are appended in one call
        const result = await store.appendToStream('campaign\t\\1\n', events);

        // then reading them back gives every value as appended, in order, on a chain that verifies
        const all = await store.readAll();
        expect(all).toEqual(result.events);
        expect(all.map((e) => [e.id, e.type, e.data])).toEqual(events.map((e) => [e.id, e.type, e.data]));
        expect(await store.readStream('campaign\t\\1\n')).toEqual(result.events);
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await cleanup();
      }
    });

    it('refuses only the append whose text has a lone surrogate when it shares a large group with others', async () => {
      // given a store that copies four rows per piece, and three appends of ten events issued at once,
      // the middle one with a lone surrogate in one event's type (UTF-8 has no spelling for it)
      const { store, cleanup } = await openFreshStore(url, { rowsPerStatement: 4 });
      try {
        // (its second event: in the group it falls in a later piece, alone again in the first piece)
        const batch = (type: string) => Array.from({ length: 10 }, (_, i) => (i === 1 ? { ...anEvent('CampaignSent'), type } : anEvent('CampaignSent')));
        const outcomes = await Promise.allSettled([
          store.appendToStream('campaign-1', batch('CampaignSent')),
          store.appendToStream('campaign-2', batch('Campaign\ud800Sent')),
          store.appendToStream('campaign-3', batch('CampaignSent')),
        ]);

        // then the other two are written, one after the other, and nothing of the refused one
        expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({ message: expect.stringMatching(/lone surrogate/) });
        const all = await store.readAll();
        expect(all.map((e) => e.streamId)).toEqual([...Array(10).fill('campaign-1'), ...Array(10).fill('campaign-3')]);
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await cleanup();
      }
    });

    it('writes or refuses whole appends whose pieces are larger than the COPY stream buffers, on one connection', async () => {
      // given a store with one connection and pieces of 100 rows, and events of about 500 bytes, so
      // that every piece (~50 kB) fills the COPY stream and the writer waits for it to drain
      const { store, cleanup } = await openFreshStore(url, { rowsPerStatement: 100, poolSize: 1 });
      const large = (): NewEvent => ({ ...anEvent('CampaignSent'), data: { customerId: 'c-1', note: 'x'.repeat(300) } });
      try {
        const first = await store.appendToStream('campaign-1', Array.from({ length: 1_000 }, large));

        // when a later append reuses a stored id in its fifteenth piece (the server refuses it while
        // pieces are still being sent), and another has a lone surrogate in its twelfth piece (the
        // store refuses it after eleven pieces went out)
        const clash = Array.from({ length: 1_500 }, (_, i) => (i === 1_450 ? { ...large(), id: first.events[7]!.id } : large()));
        await expect(store.appendToStream('campaign-2', clash)).rejects.toBeInstanceOf(DuplicateEventIdError);
        const lone = Array.from({ length: 1_500 }, (_, i) => (i === 1_150 ? { ...large(), type: 'Campaign\udc00Sent' } : large()));
        await expect(store.appendToStream('campaign-3', lone)).rejects.toThrow(/lone surrogate/);

        // then nothing of either was kept, and the same connection writes the next large append
        expect(await store.headPosition()).toBe(1_000);
        const next = await store.appendToStream('campaign-1', Array.from({ length: 1_000 }, large), { expectedRevision: 999 });
        expect(next.events.map((e) => e.position)).toEqual(Array.from({ length: 1_000 }, (_, i) => 1_001 + i));
        const all = await store.readAll();
        expect(all.map((e) => e.id)).toEqual([...first.events, ...next.events].map((e) => e.id));
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await cleanup();
      }
    });

    it('wakes a subscriber in another process for appends written by COPY, on the checked and on the locked path', async () => {
      // given a writer that copies four rows per piece, whose write hook can let another process
      // append first, and a subscriber in a third process whose poll fallback is an hour away
      let interfere = 0;
      let hookCalls = 0;
      const { store: writer, schema, cleanup } = await openFreshStore(url, {
        rowsPerStatement: 4,
        beforeWrite: async () => {
          hookCalls += 1;
          if (interfere > 0) {
            interfere -= 1;
            await other.appendToStream(`customer-${interfere}`, [anEvent('ProspectRegistered')]);
          }
        },
      });
      const other = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
      const reader = await PostgresEventStore.open({ connectionString: url, schema, pollIntervalMs: 3_600_000 });
      const subscription = reader.subscribeToAll();
      const iterator = subscription[Symbol.asyncIterator]();
      const take = async (n: number): Promise<StoredEvent[]> => {
        const seen: StoredEvent[] = [];
        while (seen.length < n) seen.push((await iterator.next()).value as StoredEvent);
        return seen;
      };
      try {
        // when the writer appends ten events from what it remembers (one checked call, then COPY)
        const waiting = take(10);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const first = await writer.appendToStream('campaign-1', Array.from({ length: 10 }, () => anEvent('CampaignSent')));
        // then they arrive (only a notification could deliver them within the test's time)
        expect(await waiting).toEqual(first.events);

        // and when another process appends before each of its checked calls, so that it decides under the lock
        hookCalls = 0;
        interfere = 2;
        const later = take(12);
        const second = await writer.appendToStream('campaign-2', Array.from({ length: 10 }, () => anEvent('CampaignSent')));
        expect(hookCalls).toBe(3);

        // then the subscriber gets the other process's two events and the ten copied under the lock, in order
        const delivered = await later;
        expect(delivered.map((e) => e.position)).toEqual(Array.from({ length: 12 }, (_, i) => 11 + i));
        expect(delivered.slice(2)).toEqual(second.events);
        const all = await writer.readAll();
        expect(firstBrokenLink(all)).toBeUndefined();
      } finally {
        await subscription.close();
        await reader.close();
        await other.close();
        await cleanup();
      }
    });

    it('answers positions and revisions as JavaScript numbers', async () => {
      const { store, cleanup } = await openFreshStore(url);
      try {
        await store.appendToStream('customer-1', [anEvent('ProspectRegistered')]);
        const [event] = await store.readAll();
        expect(typeof event?.position).toBe('number');
        expect(typeof event?.revision).toBe('number');
        expect(typeof (await store.headPosition())).toBe('number');
      } finally {
        await cleanup();
      }
    });
  });

  describe('migrations', () => {
    it('run once even when several processes start at the same moment, and not again on restart', async () => {
      // given a fresh schema and four pools
      const schema = uniqueSchema('mig');
      const pools = Array.from({ length: 4 }, () => new Pool({ connectionString: url, max: 1 }));
      try {
        // when all of them migrate at once
        const ran = await Promise.all(pools.map((pool) => migrate(pool, schema)));

        // then exactly one process applied each version, and a later start applies nothing
        expect(ran.flat()).toEqual(MIGRATIONS.map((m) => m.version));
        expect(await migrate(pools[0]!, schema)).toEqual([]);
        const versions = await pools[0]!.query<{ version: number }>(`select version from ${schema}.migrations`);
        expect(versions.rows.map((r) => r.version).sort()).toEqual(MIGRATIONS.map((m) => m.version));
      } finally {
        await Promise.all(pools.map((pool) => pool.end()));
        await dropSchema(url, schema);
      }
    });

    it('bring a log written before data and metadata were json up to date, unchanged and still appendable', async () => {
      // given a schema at version 3 (data and metadata jsonb) holding three chained events
      const schema = uniqueSchema('mig');
      const pool = new Pool({ connectionString: url, max: 1 });
      try {
        await migrate(pool, schema, MIGRATIONS.filter((m) => m.version <= 3));
        const written: StoredEvent[] = [];
        let prevHash = GENESIS_HASH;
        for (let i = 0; i < 3; i++) {
          const content = {
            id: randomUUID(),
            streamId: 'customer-1',
            revision: i,
            position: i + 1,
            type: 'PurchaseRecorded',
            data: { orderId: `o-${i}`, lines: [{ sku: 'cd-0421', quantity: 2, unitPriceMinor: 1299 }], note: 'café ☕', refund: null },
            metadata: { occurredAt: '2026-02-01T09:30:00.000Z', schemaVersion: 1, commandId: `c-${i}` },
            recordedAt: '2026-02-01T09:30:01.000Z',
          };
          const hash = chainHash(prevHash, content);
          written.push({ ...content, hash, prevHash });
          prevHash = hash;
        }
        await pool.query(
          `insert into ${schema}.events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
           select position, "streamId", revision, id, type, data, metadata, "recordedAt", hash, "prevHash"
             from json_to_recordset($1::json) as x(position bigint, "streamId" text, revision integer, id text, type text,
                                                   data jsonb, metadata jsonb, "recordedAt" timestamptz, hash text, "prevHash" text)`,
          [JSON.stringify(written)],
        );

        // when the store opens it with this release
        const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
        try {
          // then version 4 ran, the columns are json, and every event reads back as it was written
          const versions = await pool.query<{ version: number }>(`select version from ${schema}.migrations order by version`);
          expect(versions.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
          const types = await pool.query<{ column_name: string; data_type: string }>(
            `select column_name, data_type from information_schema.columns
              where table_schema = $1 and table_name = 'events' and column_name in ('data', 'metadata') order by column_name`,
            [schema],
          );
          expect(types.rows).toEqual([
            { column_name: 'data', data_type: 'json' },
            { column_name: 'metadata', data_type: 'json' },
          ]);
          expect(await store.readAll()).toEqual(written);

          // and appending continues the chain from the migrated head
          const next = await store.appendToStream('customer-1', [anEvent('TouchpointRecorded')], { expectedRevision: 2 });
          expect(next.position).toBe(4);
          expect(firstBrokenLink(await store.readAll())).toBeUndefined();
        } finally {
          await store.close();
        }
      } finally {
        await pool.end();
        await dropSchema(url, schema);
      }
    });

    it('refuses a schema name that is not a plain identifier', async () => {
      await expect(
        PostgresEventStore.open({ connectionString: url, schema: 'events; drop table x' }),
      ).rejects.toThrow(/schema: expected a lower-case PostgreSQL identifier/);
    });
  });
});

function anEvent(type: string): NewEvent {
  return {
    id: randomUUID(),
    type,
    data: { customerId: 'c-1', amountMinor: 990 },
    metadata: { occurredAt: '2026-02-01T09:30:00.000Z', schemaVersion: 1 },
  };
}

function asNewEvent(e: StoredEvent): NewEvent {
  return { id: e.id, type: e.type, data: e.data, metadata: e.metadata };
}

function randomPause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 3)));
}

/** The position of the first event whose link to its predecessor does not verify, if any. */
function firstBrokenLink(log: StoredEvent[]): number | undefined {
  let prev = GENESIS_HASH;
  for (const e of log) {
    if (e.prevHash !== prev || e.hash !== chainHash(prev, e)) return e.position;
    prev = e.hash;
  }
  return undefined;
}
