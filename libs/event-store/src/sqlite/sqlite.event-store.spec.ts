import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expectValidChain, runEventStoreContract } from '@clientele/testing';
import { DuplicateEventIdError, WrongExpectedRevisionError, type NewEvent, type StoredEvent } from '../event-store.port';
import { UpcasterRegistry } from '../serialization';
import { SqliteEventStore, sqliteEventStoreOptionsFromEnv, type SqliteWriterMode } from './sqlite.event-store';
import type { WriterRequest } from './sqlite-writer.protocol';
import type { WriterThread } from './sqlite-writer.thread';

function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'clientele-sqlite-store-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

const WRITERS: SqliteWriterMode[] = ['thread', 'inline'];

for (const writer of WRITERS) {
  runEventStoreContract(`SQLite, ${writer} writer`, async () => {
    const { dir, remove } = tempDir();
    const store = new SqliteEventStore({ file: join(dir, 'events.db'), writer });
    return {
      store,
      cleanup: async () => {
        await store.close();
        remove();
      },
    };
  });
}

runEventStoreContract('SQLite, :memory:', async () => {
  const store = new SqliteEventStore({ file: ':memory:' });
  return { store, cleanup: () => store.close() };
});

/** A fresh folder per test, stores opened in it with `writer`, all closed and the folder removed after each test. */
function storeFiles(writer: SqliteWriterMode): {
  dir: string;
  file: string;
  openStore(options?: Partial<ConstructorParameters<typeof SqliteEventStore>[0]>): SqliteEventStore;
} {
  const open: SqliteEventStore[] = [];
  let remove: () => void = () => undefined;
  const files = {
    dir: '',
    file: '',
    openStore(options: Partial<ConstructorParameters<typeof SqliteEventStore>[0]> = {}): SqliteEventStore {
      const store = new SqliteEventStore({ file: files.file, writer, ...options });
      open.push(store);
      return store;
    },
  };
  beforeEach(() => {
    ({ dir: files.dir, remove } = tempDir());
    files.file = join(files.dir, 'events.db');
  });
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    remove();
  });
  return files;
}

function anEvent(type: string, data: NewEvent['data'] = { n: 1 }, schemaVersion = 1): NewEvent {
  return { id: randomUUID(), type, data, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion } };
}

describe.each(WRITERS)('SQLite event store, %s writer', (writer) => {
  const files = storeFiles(writer);

  it('answers the same events, field for field, through the global read as through the stream reads and the appends', async () => {
    const store = files.openStore();
    const appended = [
      ...(await store.appendToStream('a', [anEvent('A', { n: 1, nested: { x: [1, 'two'] } }), anEvent('B')])).events,
      ...(await store.appendToStream('b', [anEvent('C', { text: 'é ✓' })])).events,
      ...(await store.appendToStream('a', [anEvent('D')])).events,
    ];

    const all = await store.readAll();

    expect(all).toEqual(appended);
    expect(all).toEqual([...(await store.readStream('a')), ...(await store.readStream('b'))].sort((x, y) => x.position - y.position));
    expect(await store.readAll({ afterPosition: 1, maxCount: 2 })).toEqual(appended.slice(1, 3));
  });

  it('creates the file with its folder, and continues positions and chain after reopening', async () => {
    // given a store with events, closed
    files.file = join(files.dir, 'nested', 'events.db');
    const first = files.openStore({ durability: 'normal' });
    await first.appendToStream('s', [anEvent('A'), anEvent('B')]);
    await first.close();

    // when it is reopened and appended to
    const reopened = files.openStore();
    await reopened.appendToStream('s', [anEvent('C')], { expectedRevision: 1 });

    // then the log goes on from where it was
    const all = await reopened.readAll();
    expect(all.map((e) => e.position)).toEqual([1, 2, 3]);
    expectValidChain(all);
  });

  it('sees appends another instance made to the same file: in subscriptions, revisions and the chain', async () => {
    // given two stores on one file, the first one having written to a stream and subscribed
    const a = files.openStore({ pollIntervalMs: 20 });
    const b = files.openStore();
    await a.appendToStream('s', [anEvent('FromA')], { expectedRevision: 'no_stream' });
    const iterator = a.subscribeToAll({ afterPosition: 1 })[Symbol.asyncIterator]();
    const pending = iterator.next();

    // when the second store appends to that stream, then the first one's subscription delivers it (found by polling)
    await b.appendToStream('s', [anEvent('FromB')], { expectedRevision: 0 });
    expect((await pending).value).toMatchObject({ type: 'FromB', position: 2 });

    // when the first store appends next, then it knows the stream moved on and continues the chain
    await expect(a.appendToStream('s', [anEvent('Stale')], { expectedRevision: 0 })).rejects.toThrow(
      'expected revision 0, actual 1',
    );
    await a.appendToStream('s', [anEvent('FromA')], { expectedRevision: 1 });
    const all = await b.readAll();
    expect(all.map((e) => [e.type, e.revision])).toEqual([
      ['FromA', 0],
      ['FromB', 1],
      ['FromA', 2],
    ]);
    expectValidChain(all);
  });

  it('fails one append of a group alone when a write inside it fails, leaving none of its events', async () => {
    // given a store whose file refuses one particular event (as a disk error would)
    const store = files.openStore();
    const bad = anEvent('Bad');
    const saboteur = new Database(files.file);
    saboteur.exec(
      `CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.id = '${bad.id}' BEGIN SELECT RAISE(ABORT, 'refused'); END`,
    );
    saboteur.close();

    // when three appends are written together, the middle one failing on its second event
    const outcomes = await Promise.allSettled([
      store.appendToStream('a', [anEvent('A')]),
      store.appendToStream('b', [anEvent('B1'), bad, anEvent('B3')]),
      store.appendToStream('c', [anEvent('C')]),
    ]);

    // then the others are stored, contiguous and chained, and nothing of the failed one
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const all = await store.readAll();
    expect(all.map((e) => [e.position, e.streamId])).toEqual([
      [1, 'a'],
      [2, 'c'],
    ]);
    expectValidChain(all);
  });

  it('stores content as canonical JSON writes it, also content a thread cannot receive, and fails an append without a JSON form alone', async () => {
    // given appends requested together: plain, one holding a function (no structured clone), one holding a BigInt (no JSON)
    const store = files.openStore();
    const outcomes = await Promise.allSettled([
      store.appendToStream('plain', [anEvent('Plain', { b: 2, a: 1 })]),
      store.appendToStream('fn', [anEvent('WithFunction', { keep: 1, skip: (() => 1) as unknown as number })]),
      store.appendToStream('big', [anEvent('WithBigInt', { n: BigInt(1) as unknown as number })]),
      store.appendToStream('after', [anEvent('After')]),
    ]);

    // then the function is left out as JSON.stringify would, the BigInt append fails alone, and the rest is stored
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toMatch(/BigInt/);
    const all = await store.readAll();
    expect(all.map((e) => [e.type, e.data])).toEqual([
      ['Plain', { a: 1, b: 2 }],
      ['WithFunction', { keep: 1 }],
      ['After', { n: 1 }],
    ]);
    expectValidChain(all);
  });

  it('applies upcasters on read and keeps the stored hash', async () => {
    // given an event stored at schema version 1 and an upcaster to version 2
    const upcasters = new UpcasterRegistry([
      {
        type: 'PurchaseRecorded',
        fromVersion: 1,
        upcast: (e: StoredEvent): StoredEvent => ({
          ...e,
          data: { ...e.data, currency: 'USD' },
          metadata: { ...e.metadata, schemaVersion: 2 },
        }),
      },
    ]);
    const writer = files.openStore();
    await writer.appendToStream('s', [anEvent('PurchaseRecorded', { amountMinor: 100 })]);

    // when read through a store with the upcaster
    const [read] = await files.openStore({ upcasters }).readStream('s');

    // then it has today's shape, and the chain still verifies on the raw events
    expect(read).toMatchObject({ data: { amountMinor: 100, currency: 'USD' }, metadata: { schemaVersion: 2 } });
    expectValidChain(await writer.readAll());
  });

  it('refuses an unknown durability setting', () => {
    expect(() => files.openStore({ durability: 'fast' as 'full' })).toThrow(/durability/);
  });

  it('reads its settings from the environment, with defaults, and names a bad one', () => {
    expect(sqliteEventStoreOptionsFromEnv({})).toEqual({ file: 'data/clientele.db', durability: 'full', pollIntervalMs: 250 });
    expect(
      sqliteEventStoreOptionsFromEnv({
        CLIENTELE_SQLITE_FILE: '/var/lib/clientele/events.db',
        CLIENTELE_SQLITE_DURABILITY: 'normal',
        CLIENTELE_SQLITE_POLL_MS: '50',
      }),
    ).toEqual({ file: '/var/lib/clientele/events.db', durability: 'normal', pollIntervalMs: 50 });
    expect(() => sqliteEventStoreOptionsFromEnv({ CLIENTELE_SQLITE_DURABILITY: 'off' })).toThrow(
      /CLIENTELE_SQLITE_DURABILITY: expected 'full' or 'normal'/,
    );
    expect(() => sqliteEventStoreOptionsFromEnv({ CLIENTELE_SQLITE_POLL_MS: 'soon' })).toThrow(/CLIENTELE_SQLITE_POLL_MS/);
  });

  it('leaves every append whole when the writing process is killed', async () => {
    // given a child process appending 5-event batches from 16 concurrent callers, killed mid-way
    const child = spawnAppender(files.file, writer);
    await child.committed(40);
    child.kill();
    await child.exited;

    // when the file is opened again
    const store = files.openStore();
    const all = await store.readAll();

    // then each append is all there or not at all, and the chain is intact
    expect(all.length).toBeGreaterThan(0);
    expect(all.length % 5).toBe(0);
    const perStream = new Map<string, number[]>();
    for (const e of all) perStream.set(e.streamId, [...(perStream.get(e.streamId) ?? []), e.revision]);
    for (const revisions of perStream.values()) {
      expect(revisions).toEqual(revisions.map((_, i) => i));
      expect(revisions.length % 5).toBe(0);
    }
    expectValidChain(all);
    await store.appendToStream('after-crash', [anEvent('A')]);
    expect(await store.headPosition()).toBe(all.length + 1);
  });
});

describe('SQLite event store, writer thread', () => {
  const files = storeFiles('thread');

  it("writes appends in the order they were requested while groups alternate, and answers only what another connection can read", async () => {
    // given 64 callers, each appending to its own streams and to one shared stream, numbering every request
    const store = files.openStore();
    const observer = new Database(files.file, { readonly: true });
    let requested = 0;
    let unseen = 0;
    const caller = async (k: number): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const streamId = i % 5 === 0 ? 'shared' : `caller-${k}`;
        const result = await store.appendToStream(streamId, [anEvent('Numbered', { n: requested++ })]);
        // when an append is answered, then a separate connection already sees it
        const row = observer.prepare('SELECT id FROM events WHERE position = ?').get(result.position) as { id: string } | undefined;
        if (row?.id !== result.events[0]!.id) unseen += 1;
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, k) => caller(k)));
    observer.close();

    // then the log holds every request once, in the order of the requests, with a valid chain
    const all = await store.readAll();
    expect(unseen).toBe(0);
    expect(all).toHaveLength(64 * 25);
    expect(all.map((e) => e.data.n)).toEqual(all.map((_, i) => i));
    expectValidChain(all);
  });

  it('gives the thread the next group while it still writes one, encoded here, and never more than two', async () => {
    // given a store whose writer thread is started, and its answers held back until released
    const store = files.openStore();
    await store.appendToStream('start', [anEvent('Start')]);
    const thread = (store as unknown as { writerThread: WriterThread }).writerThread;
    const send = thread.send.bind(thread);
    const held: (() => void)[] = [];
    const requests: WriterRequest[] = [];
    let sent = 0;
    thread.send = (request, answer) => {
      sent += 1;
      requests.push(request);
      send(request, (reply) => held.push(() => answer(reply)));
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));

    // when three appends are requested a turn apart, none answered yet
    const appends = [store.appendToStream('a', [anEvent('A')])];
    await turn();
    appends.push(store.appendToStream('b', [anEvent('B')]));
    await turn();
    appends.push(store.appendToStream('c', [anEvent('C')]));
    await turn();

    // then the second went to the thread while the first was in it, the third waits for an answer;
    // the idle thread got the event's objects, the busy one their canonical JSON, made here
    expect(sent).toBe(2);
    const dataOf = (request: WriterRequest | undefined) => (request?.t === 'group' ? request.group[7] : undefined);
    expect(dataOf(requests[0])).toEqual({ n: 1 });
    expect(dataOf(requests[1])).toBe('{"n":1}');
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    held.shift()!();
    expect(sent).toBe(3);
    while (held.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const release of held.splice(0)) release();
    await Promise.all(appends);
    expect((await store.readAll()).map((e) => e.type)).toEqual(['Start', 'A', 'B', 'C']);
  });

  it('fails a refused append of a pipelined group alone, with the same errors as the inline writer, and writes nothing of it', async () => {
    // given a stream at revision 1 and a group already in the writer
    const store = files.openStore();
    const taken = anEvent('Taken');
    await store.appendToStream('s', [taken, anEvent('B')], { expectedRevision: 'no_stream' });
    const inWriter = Promise.all(Array.from({ length: 20 }, (_, k) => store.appendToStream(`busy-${k}`, [anEvent('Busy')])));
    await new Promise((resolve) => setImmediate(resolve));

    // when the next group holds a stale revision, an id reused with other content, and good appends
    const outcomes = await Promise.allSettled([
      store.appendToStream('a', [anEvent('A')]),
      store.appendToStream('s', [anEvent('Stale')], { expectedRevision: 0 }),
      store.appendToStream('s', [{ ...taken, data: { other: true } }], { expectedRevision: 'any' }),
      store.appendToStream('s', [anEvent('C')], { expectedRevision: 1 }),
    ]);
    await inWriter;

    // then only the refused ones fail, as WrongExpectedRevisionError and DuplicateEventIdError
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const [, stale, reused] = outcomes as PromiseRejectedResult[];
    expect(stale!.reason).toBeInstanceOf(WrongExpectedRevisionError);
    expect((stale!.reason as Error).message).toBe('stream s: expected revision 0, actual 1');
    expect(reused!.reason).toBeInstanceOf(DuplicateEventIdError);
    expect((reused!.reason as DuplicateEventIdError).eventId).toBe(taken.id);
    const all = await store.readAll();
    expect(all.filter((e) => e.streamId === 's').map((e) => e.type)).toEqual(['Taken', 'B', 'C']);
    expect(all.some((e) => e.type === 'Stale')).toBe(false);
    expectValidChain(all);
  });

  it('answers every append in flight with an error when the writer thread dies, refuses later ones, and still closes', async () => {
    // given appends in flight
    const store = files.openStore();
    await store.appendToStream('before', [anEvent('A')]);
    const inFlight = Array.from({ length: 10 }, (_, k) => store.appendToStream(`s-${k}`, [anEvent('InFlight')]));

    // when the thread ends abruptly (as a crash in it would)
    // (the thread is private; the spec reaches it the way a crash would: from outside the store's API)
    await (store as unknown as { writerThread: WriterThread }).writerThread.terminate();

    // then each of them is answered: stored whole, or failed naming the thread; later appends fail too
    const outcomes = await Promise.allSettled(inFlight);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect(String(o.reason)).toMatch(/writer thread stopped/);
    }
    await expect(store.appendToStream('after', [anEvent('After')])).rejects.toThrow(/writer thread stopped/);
    await store.close();
    const reopened = files.openStore();
    const all = await reopened.readAll();
    expect(all.length).toBe(1 + outcomes.filter((o) => o.status === 'fulfilled').length);
    expectValidChain(all);
  });

  it('writes every append already requested before close() finishes, and refuses those requested after', async () => {
    // given 200 appends requested and not awaited
    const store = files.openStore();
    const requested = Array.from({ length: 200 }, (_, k) => store.appendToStream(`s-${k % 7}`, [anEvent('E')]));

    // when the store is closed at once
    const closing = store.close();
    const late = expect(store.appendToStream('late', [anEvent('Late')])).rejects.toThrow('the event store is closed');
    await closing;

    // then all of them were stored and answered, the late one refused
    const results = await Promise.all(requested);
    expect(results.map((r) => r.position).sort((x, y) => x - y)).toEqual(results.map((_, i) => i + 1));
    await late;
    const all = await files.openStore().readAll();
    expect(all).toHaveLength(200);
    expectValidChain(all);
  });

  it('takes a verbatim import in its turn after the appends requested before it', async () => {
    // given a log of 2 events in another store, to be imported
    const source = files.openStore({ file: join(files.dir, 'source.db') });
    await source.appendToStream('x', [anEvent('X1'), anEvent('X2')]);
    const events = await source.readAll();
    const target = files.openStore();

    // when an append is requested (not awaited) before the import of a log that starts at position 1
    const append = target.appendToStream('first', [anEvent('First')]);
    const imported = target.importStored(events);

    // then the append took position 1, so the import no longer continues the log and writes nothing
    expect((await append).position).toBe(1);
    await expect(imported).rejects.toThrow(/import refused at position 1: expected position 2/);
    expect(await target.headPosition()).toBe(1);
  });

  it('stays consistent with another process appending to the same file meanwhile', async () => {
    // given another process appending 5-event batches from 16 callers (300 appends)
    const child = spawnAppender(files.file, 'thread', 300);
    await child.committed(10);

    // when this process appends from 32 callers at the same time, on streams of its own and shared ones
    const store = files.openStore();
    let refused = 0;
    await Promise.all(
      Array.from({ length: 32 }, async (_, k) => {
        for (let i = 0; i < 20; i++) {
          const streamId = i % 2 === 0 ? `mine-${k}` : `s${k % 16}-${i % 7}`;
          try {
            const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
            await store.appendToStream(streamId, [anEvent('Mine')], { expectedRevision: last ? last.revision : 'no_stream' });
          } catch (error) {
            // a shared stream moved on in the other process: refused, not written
            expect(error).toBeInstanceOf(WrongExpectedRevisionError);
            refused += 1;
          }
        }
      }),
    );
    await child.exited;

    // then both processes' appends are all there, each stream's revisions contiguous, and the chain intact
    const all = await store.readAll();
    expect(all.filter((e) => e.type === 'E')).toHaveLength(300 * 5);
    expect(all.filter((e) => e.type === 'Mine')).toHaveLength(32 * 20 - refused);
    const perStream = new Map<string, number[]>();
    for (const e of all) perStream.set(e.streamId, [...(perStream.get(e.streamId) ?? []), e.revision]);
    for (const revisions of perStream.values()) expect(revisions).toEqual(revisions.map((_, i) => i));
    expectValidChain(all);
  });

  it("refuses a thread writer for ':memory:', which another thread cannot open", () => {
    expect(() => new SqliteEventStore({ file: ':memory:', writer: 'thread' })).toThrow(/:memory:/);
  });
});

/**
 * Runs the adapter's TypeScript in a separate node process (compiled on load by @swc/core), so the
 * kill is a real one: no finally blocks, no close.
 */
function spawnAppender(
  file: string,
  writer: SqliteWriterMode,
  appends = Infinity,
): { committed(n: number): Promise<void>; kill(): void; exited: Promise<void> } {
  const script = join(file, '..', 'appender.js');
  const adapter = join(__dirname, 'sqlite.event-store.ts');
  writeFileSync(
    script,
    `
const Module = require('node:module');
const fs = require('node:fs');
const swc = require(${JSON.stringify(require.resolve('@swc/core'))});
require.extensions['.ts'] = (m, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
    filename, swcrc: false, module: { type: 'commonjs' },
    jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
  });
  m._compile(code, filename);
};
const { randomUUID } = require('node:crypto');
const { SqliteEventStore } = require(${JSON.stringify(adapter)});
const store = new SqliteEventStore({ file: ${JSON.stringify(file)}, writer: ${JSON.stringify(writer)} });
let committed = 0;
let requested = 0;
async function caller(k) {
  for (let i = 0; requested < ${String(appends)}; i++) {
    requested += 1;
    const events = Array.from({ length: 5 }, () => ({
      id: randomUUID(), type: 'E', data: { k, i, pad: 'x'.repeat(200) },
      metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 },
    }));
    await store.appendToStream('s' + k + '-' + (i % 7), events);
    committed += 1;
    if (committed % 10 === 0) process.stdout.write(committed + '\\n');
  }
}
Promise.all(Array.from({ length: 16 }, (_, k) => caller(k))).then(() => store.close());
`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    committed: (n) =>
      new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          const counts = chunk.toString().trim().split('\n').map(Number);
          if (counts.some((c) => c >= n)) resolve();
        });
        child.on('exit', (code) => reject(new Error(`appender exited early with code ${String(code)}`)));
      }),
    kill: () => child.kill('SIGKILL'),
    exited,
  };
}
