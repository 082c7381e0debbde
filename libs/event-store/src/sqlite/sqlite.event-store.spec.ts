import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expectValidChain, runEventStoreContract } from '@clientele/testing';
import type { NewEvent, StoredEvent } from '../event-store.port';
import { UpcasterRegistry } from '../serialization';
import { SqliteEventStore, sqliteEventStoreOptionsFromEnv } from './sqlite.event-store';

function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'clientele-sqlite-store-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

runEventStoreContract('SQLite', async () => {
  const { dir, remove } = tempDir();
  const store = new SqliteEventStore({ file: join(dir, 'events.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      remove();
    },
  };
});

function anEvent(type: string, data: NewEvent['data'] = { n: 1 }, schemaVersion = 1): NewEvent {
  return { id: randomUUID(), type, data, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion } };
}

describe('SQLite event store', () => {
  let dir: string;
  let remove: () => void;
  let file: string;
  const open: SqliteEventStore[] = [];
  const openStore = (options: Partial<ConstructorParameters<typeof SqliteEventStore>[0]> = {}): SqliteEventStore => {
    const store = new SqliteEventStore({ file, ...options });
    open.push(store);
    return store;
  };

  beforeEach(() => {
    ({ dir, remove } = tempDir());
    file = join(dir, 'events.db');
  });

  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    remove();
  });

  it('creates the file with its folder, and continues positions and chain after reopening', async () => {
    // given a store with events, closed
    file = join(dir, 'nested', 'events.db');
    const first = openStore({ durability: 'normal' });
    await first.appendToStream('s', [anEvent('A'), anEvent('B')]);
    await first.close();

    // when it is reopened and appended to
    const reopened = openStore();
    await reopened.appendToStream('s', [anEvent('C')], { expectedRevision: 1 });

    // then the log goes on from where it was
    const all = await reopened.readAll();
    expect(all.map((e) => e.position)).toEqual([1, 2, 3]);
    expectValidChain(all);
  });

  it('sees appends another instance made to the same file: in subscriptions, revisions and the chain', async () => {
    // given two stores on one file, the first one having written to a stream and subscribed
    const a = openStore({ pollIntervalMs: 20 });
    const b = openStore();
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
    const store = openStore();
    const bad = anEvent('Bad');
    const saboteur = new Database(file);
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
    const writer = openStore();
    await writer.appendToStream('s', [anEvent('PurchaseRecorded', { amountMinor: 100 })]);

    // when read through a store with the upcaster
    const [read] = await openStore({ upcasters }).readStream('s');

    // then it has today's shape, and the chain still verifies on the raw events
    expect(read).toMatchObject({ data: { amountMinor: 100, currency: 'USD' }, metadata: { schemaVersion: 2 } });
    expectValidChain(await writer.readAll());
  });

  it('refuses an unknown durability setting', () => {
    expect(() => openStore({ durability: 'fast' as 'full' })).toThrow(/durability/);
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
    const child = spawnAppender(file);
    await child.committed(40);
    child.kill();
    await child.exited;

    // when the file is opened again
    const store = openStore();
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

/**
 * Runs the adapter's TypeScript in a separate node process (compiled on load by @swc/core), so the
 * kill is a real one: no finally blocks, no close.
 */
function spawnAppender(file: string): { committed(n: number): Promise<void>; kill(): void; exited: Promise<void> } {
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
const store = new SqliteEventStore({ file: ${JSON.stringify(file)} });
let committed = 0;
async function caller(k) {
  for (let i = 0; ; i++) {
    const events = Array.from({ length: 5 }, () => ({
      id: randomUUID(), type: 'E', data: { k, i, pad: 'x'.repeat(200) },
      metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 },
    }));
    await store.appendToStream('s' + k + '-' + (i % 7), events);
    committed += 1;
    if (committed % 10 === 0) process.stdout.write(committed + '\\n');
  }
}
for (let k = 0; k < 16; k++) caller(k);
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
