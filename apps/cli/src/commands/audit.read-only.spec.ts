import { Command, CommanderError } from 'commander';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { Writable } from 'node:stream';
import { PersonalDataEventStore, SqliteCustomerKeyStore, SqliteEventStore } from '@clientele/event-store';
import { asUnprivilegedReader, runCommand, tempDir } from '@clientele/testing';
import { runCli } from '../cli.program';
import { openReader } from '../engine-wiring';
import { registerAuditCommands } from './audit.commands';

class Captured extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/**
 * Evidence handed to an auditor: a store file, often on read-only storage or owned by someone else.
 * Every command that only reads it must read it as it is and leave nothing beside it: no
 * write-ahead log or shared-memory index created, nothing refused for want of write access.
 */
describe('audit commands on a store that must not be written to', () => {
  const tmp = tempDir('clientele-audit-evidence-');
  const original = tmp.file('clientele.db');
  const masterKey = randomBytes(32).toString('base64');
  let folders = 0;

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: { CLIENTELE_MASTER_KEY: masterKey } });
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error;
      code = error.exitCode;
    }
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  /** the store's file (and others, by name) copied into a new folder, made read-only when asked */
  function evidence(options: { readOnly: boolean; files?: Record<string, string> }): { dir: string; file: string } {
    const dir = tmp.file(`evidence-${++folders}`);
    mkdirSync(dir);
    for (const [name, from] of Object.entries(options.files ?? { 'clientele.db': original })) copyFileSync(from, `${dir}/${name}`);
    if (options.readOnly) {
      for (const name of readdirSync(dir)) chmodSync(`${dir}/${name}`, 0o444);
      chmodSync(dir, 0o555);
    }
    return { dir, file: `${dir}/clientele.db` };
  }

  const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

  /** every command that only reads the store, as an auditor runs them */
  const readingCommands = (store: string): string[][] => [
    ['audit', 'verify', '--quiet', '--store', store],
    ['audit', 'verify', '--quiet', '--json', '--store', store],
    ['audit', 'verify', '--quiet', '--stream', 'customer-ada', '--store', store],
    ['export', '--quiet', '--store', store],
    ['export', '--quiet', '--customer', 'ada', '--store', store],
    ['as-of', 'ada', '--date', '2025-03-31', '--store', store],
    ['as-of', 'ada', '--date', '2025-03-31', '--profile', '--json', '--store', store],
    ['personal-data', 'export', 'ada', '--store', store],
    ['personal-data', 'export', 'ada', '--keys', store.slice('sqlite:'.length), '--store', store],
  ];

  beforeAll(async () => {
    // the folders on the way to the evidence are open to the unprivileged reader
    chmodSync(tmp.dir, 0o755);
    // given a store written as the engine writes it (keys in the same file), closed cleanly
    const store = new PersonalDataEventStore(new SqliteEventStore({ file: original, durability: 'normal' }), new SqliteCustomerKeyStore(original, Buffer.from(masterKey, 'base64')));
    const line = { sku: 'cd-1', category: 'jazz', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };
    await runCommand(store, 'reg-ada', { type: 'RegisterProspect', data: { customerId: 'ada', source: 'web', personal: { email: 'ada@example.org' }, occurredAt: '2025-01-10T09:00:00Z' } });
    await runCommand(store, 'buy-1', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-1', lines: [line], occurredAt: '2025-02-01T10:00:00Z' } });
    await runCommand(store, 'reg-bo', { type: 'RegisterProspect', data: { customerId: 'bo', source: 'store', personal: { email: 'bo@example.org' }, occurredAt: '2025-01-11T09:00:00Z' } });
    await store.close();
    expect(readdirSync(tmp.dir)).toEqual(['clientele.db']);
  });

  afterAll(() => {
    for (const name of readdirSync(tmp.dir)) chmodSync(tmp.file(name), 0o755);
    tmp.remove();
  });

  it('in a writable folder, every reading command succeeds and leaves no write-ahead log or index beside the file', async () => {
    const { dir, file } = evidence({ readOnly: false });
    const before = { digest: digest(file), mtimeMs: statSync(file).mtimeMs };

    for (const args of readingCommands(`sqlite:${file}`)) {
      const result = await run(args);
      expect({ args, code: result.code, stderr: result.stderr.replace(/^customer ada: .*\n$/, '') }).toEqual({ args, code: 0, stderr: '' });
      expect(readdirSync(dir)).toEqual(['clientele.db']);
    }
    expect({ digest: digest(file), mtimeMs: statSync(file).mtimeMs }).toEqual(before);
  });

  it('in a read-only folder (file 444, folder 555), run by a user who may not write there, every reading command succeeds and nothing appears', async () => {
    const { dir, file } = evidence({ readOnly: true });
    const before = digest(file);

    const results = await asUnprivilegedReader(async () => {
      const answers = [];
      for (const args of readingCommands(`sqlite:${file}`)) answers.push({ args, ...(await run(args)) });
      return answers;
    });

    for (const { args, code, stdout, stderr } of results) {
      expect({ args, code, stderr: stderr.replace(/^customer ada: .*\n$/, '') }).toEqual({ args, code: 0, stderr: '' });
      expect(stdout).not.toContain('not an SQLite database');
    }
    expect(results[0]!.stdout).toMatch(new RegExp(`^log in ${file}: intact — 4 events checked`));
    expect(results.find((r) => r.args[0] === 'personal-data')!.stdout).toContain('"email":"ada@example.org"');
    expect(readdirSync(dir)).toEqual(['clientele.db']);
    expect(digest(file)).toBe(before);
  });

  it('a store whose write-ahead log holds committed events: read through it where the folder allows, refused with what to do where it does not', async () => {
    // given a copy taken while an engine held the store open: its last events only in clientele.db-wal
    const live = tmp.file('live.db');
    copyFileSync(original, live);
    const engine = new PersonalDataEventStore(new SqliteEventStore({ file: live, durability: 'full', writer: 'inline' }), new SqliteCustomerKeyStore(live, Buffer.from(masterKey, 'base64')));
    await runCommand(engine, 'reg-cy', { type: 'RegisterProspect', data: { customerId: 'cy', source: 'web', occurredAt: '2025-01-12T09:00:00Z' } });
    const files = { 'clientele.db': tmp.file('live-copy.db'), 'clientele.db-wal': tmp.file('live-copy.db-wal') };
    copyFileSync(live, files['clientele.db']);
    copyFileSync(`${live}-wal`, files['clientele.db-wal']);
    await engine.close();
    const walBytes = statSync(files['clientele.db-wal']).size;
    expect(walBytes).toBeGreaterThan(0);

    // when verified in a writable folder, the events in the log are counted (never skipped)
    const writable = evidence({ readOnly: false, files });
    const counted = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${writable.file}`]);
    expect(counted.code).toBe(0);
    expect(counted.stdout).toContain('intact — 5 events checked');

    // when verified, exported or asked about in a read-only folder by a user who may not write there
    const locked = evidence({ readOnly: true, files });
    const [verify, exported, asOf] = await asUnprivilegedReader(async () => [
      await run(['audit', 'verify', '--quiet', '--store', `sqlite:${locked.file}`]),
      await run(['export', '--quiet', '--store', `sqlite:${locked.file}`]),
      await run(['as-of', 'cy', '--date', '2025-03-31', '--store', `sqlite:${locked.file}`]),
    ]);

    // then each says the log cannot be read without write access and what to do, never "not an SQLite database"
    const expected = `error: --store: ${locked.file}-wal holds ${walBytes} bytes of write-ahead log: events committed there may not be in clientele.db yet`;
    expect(verify).toMatchObject({ code: 2, stdout: '' });
    for (const result of [verify, exported, asOf]) {
      expect(result.stderr).toContain(expected);
      expect(result.stderr).toContain('Copy the folder (clientele.db together with clientele.db-wal) somewhere writable and run the command on the copy');
      expect(result.stderr).not.toContain('not an SQLite database');
    }
    expect(exported.code).toBe(1);
    expect(asOf.code).toBe(1);
    expect(readdirSync(locked.dir).sort()).toEqual(['clientele.db', 'clientele.db-wal']);
  });
  it('history, which only reads, runs on a data directory in a read-only folder without starting the engine or writing anything', async () => {
    const { dir } = evidence({ readOnly: true });
    const out = new Captured();
    const err = new Captured();
    const context = {
      stdout: out as unknown as NodeJS.WriteStream,
      stderr: err as unknown as NodeJS.WriteStream,
      openEngine: () => Promise.reject(new Error('history must not start the engine')),
      openReader,
    };

    const code = await asUnprivilegedReader(() => runCli(['history', 'ada', '--json', '--data-dir', dir], context));

    expect({ code, stderr: err.text }).toEqual({ code: 0, stderr: '' });
    expect(out.text.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted']);
    expect(readdirSync(dir)).toEqual(['clientele.db']);
  });
});
