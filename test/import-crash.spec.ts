import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { SqliteEventStore, type StoredEvent } from '@clientele/event-store';

import Database from 'better-sqlite3';
import { openStorage, storageConfigFromEnv, STORE_FILE_NAME as STORE_FILE } from '@clientele/application';
import { generateSyntheticCommands } from '@clientele/generator';

/**
 * Journey: the CLI process is killed with SIGKILL in the middle of an import. The store must hold
 * whole commands only, with contiguous stream revisions, and a re-run must end exactly where a clean
 * import ends.
 */
const ROOT = resolve(__dirname, '..');
// Compiled inside the repository so the child resolves node_modules like `npm run cli` does.
const BUILD = join(ROOT, 'dist', `import-crash-${process.pid}`);
const MAIN = join(BUILD, 'apps', 'cli', 'src', 'main.js');

const runToEnd = (args: string[]): Promise<number | null> =>
  new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.on('error', fail);
    child.on('exit', (code) => done(code));
  });

const readAll = async (dataDir: string): Promise<StoredEvent[]> => {
  const store = new SqliteEventStore({ file: join(dataDir, STORE_FILE) });
  try {
    return await store.readAll();
  } finally {
    await store.close();
  }
};

const headOf = async (dataDir: string): Promise<number> => {
  const store = new SqliteEventStore({ file: join(dataDir, STORE_FILE) });
  try {
    return await store.headPosition();
  } finally {
    await store.close();
  }
};

/** Every command's events as one multiset per stream, independent of interleaving between streams. */
const shape = (events: readonly StoredEvent[]): Map<string, string[]> => {
  const streams = new Map<string, string[]>();
  for (const e of events) {
    const list = streams.get(e.streamId) ?? [];
    list.push(`${e.type}@${e.metadata.commandId ?? e.metadata.causationId ?? ''}`);
    streams.set(e.streamId, list);
  }
  for (const list of streams.values()) list.sort();
  return streams;
};

describe('import killed with SIGKILL (journey)', () => {
  let dir: string;
  let input: string;
  /** each registration's personal fields as sent */
  const personalOf = new Map<string, unknown>();

  beforeAll(() => {
    const built = spawnSync('npx', ['swc', 'apps', 'libs', '--out-dir', BUILD, '--copy-files', '--quiet', '--config-file', '.swcrc'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (built.status !== 0) throw new Error(`could not compile the CLI: ${built.stderr}`);
    dir = mkdtempSync(join(tmpdir(), 'clientele-crash-'));
    input = join(dir, 'workload.ndjson');
    // No referrals: the referral process manager reacts asynchronously, so where its reactions land
    // among a referrer's own commands (and so which lifecycle transitions follow) depends on timing
    // even between two clean runs. Crash safety is what is measured here, not that race.
    const envelopes = generateSyntheticCommands({ customers: 1500, seed: 'crash', referralShare: 0 });
    writeFileSync(input, envelopes.map((e) => JSON.stringify(e)).join('\n') + '\n');
    for (const { type, data } of envelopes as { type: string; data: { customerId: string; personal?: unknown } }[]) {
      if (type === 'RegisterProspect' && data.personal !== undefined) personalOf.set(data.customerId, data.personal);
    }
  }, 120_000);

  afterAll(() => {
    rmSync(BUILD, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('given an import killed mid-way, then the store holds whole commands with contiguous revisions, and a re-run ends exactly like a clean import', async () => {
    // given a clean import as the reference
    const clean = join(dir, 'clean');
    expect(await runToEnd(['import', input, '--data-dir', clean, '--batch', '200', '--quiet'])).toBe(0);
    const reference = await readAll(clean);
    const eventsPerCommand = new Map<string, number>();
    for (const e of reference) {
      const id = e.metadata.commandId ?? '';
      eventsPerCommand.set(id, (eventsPerCommand.get(id) ?? 0) + 1);
    }

    // when another import is killed once part of the work is stored
    const crashed = join(dir, 'crashed');
    const child: ChildProcess = spawn(process.execPath, [MAIN, 'import', input, '--data-dir', crashed, '--batch', '200', '--quiet'], {
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, signal) => done(signal)));
    let head = 0;
    while (head < reference.length / 4) {
      await new Promise((r) => setTimeout(r, 25));
      head = await headOf(crashed).catch(() => 0);
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // then what is stored is consistent and partial
    const partial = await readAll(crashed);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(reference.length);
    const revisions = new Map<string, number[]>();
    for (const e of partial) revisions.set(e.streamId, [...(revisions.get(e.streamId) ?? []), e.revision]);
    for (const [stream, list] of revisions) {
      expect({ stream, revisions: list }).toEqual({ stream, revisions: list.map((_, i) => i) });
    }
    const partialPerCommand = new Map<string, number>();
    for (const e of partial) {
      const id = e.metadata.commandId ?? '';
      partialPerCommand.set(id, (partialPerCommand.get(id) ?? 0) + 1);
    }
    const halfWritten = [...partialPerCommand].filter(([id, n]) => eventsPerCommand.get(id) !== n);
    expect(halfWritten).toEqual([]);
    expect(partial.map((e) => e.position)).toEqual(partial.map((_, i) => i + 1));

    // and an import stopped with Ctrl-C says how far it got and how to finish, and exits 130
    const stopped = spawn(process.execPath, [MAIN, 'import', input, '--data-dir', crashed, '--batch', '200', '--quiet'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    stopped.stderr!.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const stoppedExit = new Promise<number | null>((done) => stopped.on('exit', (code) => done(code)));
    const before = await headOf(crashed);
    for (let waited = 0; (await headOf(crashed).catch(() => before)) <= before && waited < 20_000; waited += 25) await new Promise((r) => setTimeout(r, 25));
    stopped.kill('SIGINT');
    expect(await stoppedExit).toBe(130);
    expect(said).toMatch(/interrupted \(SIGINT\) after line \d+: \d+ commands stored so far, each whole; run the same import again to finish/);

    // when the import is run again, then it completes exactly once
    expect(await runToEnd(['import', input, '--data-dir', crashed, '--batch', '200', '--quiet'])).toBe(0);
    const final = shape(await readAll(crashed));
    const expected = shape(reference);
    const differing = [...new Set([...final.keys(), ...expected.keys()])]
      .filter((stream) => JSON.stringify(final.get(stream)) !== JSON.stringify(expected.get(stream)))
      .map((stream) => ({ stream, afterCrash: final.get(stream), clean: expected.get(stream) }));
    expect(differing).toEqual([]);

    // and each registration's key went in with it: one key per customer with personal data, and
    // every registration reads back as sent through the engine's decrypting store
    expect(personalOf.size).toBeGreaterThan(0);
    const db = new Database(join(crashed, STORE_FILE), { readonly: true });
    const keys = (db.prepare('SELECT count(*) AS n FROM customer_keys').get() as { n: number }).n;
    db.close();
    expect(keys).toBe(personalOf.size);
    const storage = await openStorage(storageConfigFromEnv({ CLIENTELE_DATA_DIR: crashed }));
    try {
      const registrations = (await storage.store.readAll()).filter((e) => e.type === 'ProspectRegistered');
      const unreadable = registrations.filter((e) => JSON.stringify(e.data.personal) !== JSON.stringify(personalOf.get(e.data.customerId as string)));
      expect(registrations.length).toBe(personalOf.size);
      expect(unreadable.map((e) => e.data.customerId)).toEqual([]);
    } finally {
      await storage.close();
    }
  }, 300_000);
});
