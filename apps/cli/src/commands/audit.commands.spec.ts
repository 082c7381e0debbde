import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { type DomainCommand } from '@clientele/domain';
import { chainHash, PersonalDataEventStore, readSqliteLogRaw, SqliteCustomerKeyStore, SqliteEventStore } from '@clientele/event-store';
import { Projector, ReadModels, SqliteReadModelGenerations, type Projection } from '@clientele/projections';
import { runCommand, tempDir } from '@clientele/testing';
import { parseStoreAddress, registerAuditCommands, resolveStoreAddress } from './audit.commands';

class Captured extends Writable {
  text = '';
  isTTY = false;
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const line = { sku: 'cd-1', category: 'jazz', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };

describe('audit CLI commands', () => {
  const tmp = tempDir('clientele-audit-cli-');
  const dbFile = tmp.file('clientele.db');
  const masterKey = randomBytes(32).toString('base64');
  const env = { CLIENTELE_MASTER_KEY: masterKey, CLIENTELE_STORE: 'sqlite', CLIENTELE_SQLITE_FILE: dbFile, CLIENTELE_DATA_DIR: tmp.file('data') };

  async function run(args: string[], extraEnv: Record<string, string | undefined> = {}): Promise<Run> {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele')
      .exitOverride()
      .configureOutput({ writeOut: (t) => stdout.write(t), writeErr: (t) => stderr.write(t) });
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: { ...env, ...extraEnv } });
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (error) {
      // commander refuses bad options itself; the CLI turns that into its exit code
      if (!(error instanceof CommanderError)) throw error;
      code = error.exitCode;
    }
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  /** a copy of the test store, edited with raw SQL as someone with access to the disk could; answers the file and what `edit` answered */
  function editedCopy<T>(name: string, edit: (db: Database.Database) => T): [string, T] {
    const file = tmp.file(name);
    writeFileSync(file, readFileSync(dbFile));
    const db = new Database(file);
    try {
      return [file, edit(db)];
    } finally {
      db.close();
    }
  }

  /** an SQLite file made by `sql`: something other than a store */
  function sqliteFileWith(name: string, sql: string): string {
    const file = tmp.file(name);
    const db = new Database(file);
    db.exec(sql);
    db.close();
    return file;
  }

  beforeAll(async () => {
    // given a store written through the personal-data decorator: Ada's history and 40 others' registrations
    const store = new PersonalDataEventStore(new SqliteEventStore({ file: dbFile, durability: 'normal' }), new SqliteCustomerKeyStore(dbFile, Buffer.from(masterKey, 'base64')));
    const commands: [string, DomainCommand][] = [
      ['reg-ada', { type: 'RegisterProspect', data: { customerId: 'ada', source: 'web', personal: { email: 'ada@example.org' }, occurredAt: '2025-01-10T09:00:00Z' } }],
      ['buy-1', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-1', lines: [line], occurredAt: '2025-02-01T10:00:00Z' } }],
      ['buy-2', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-2', lines: [line], occurredAt: '2025-03-15T10:00:00Z' } }],
    ];
    for (let i = 0; i < 40; i++) {
      commands.push([`reg-${i}`, { type: 'RegisterProspect', data: { customerId: `p${i}`, source: 'store', personal: { email: `p${i}@example.org` }, occurredAt: '2025-01-02T00:00:00Z' } }]);
    }
    for (const [id, command] of commands) await runCommand(store, id, command);
    await store.close();
  });

  afterAll(() => tmp.remove());

  /** a copy of the store rewritten from position 2 on, every later hash recomputed: the chain alone holds */
  async function rechainedCopy(name: string): Promise<string> {
    const file = tmp.file(name);
    writeFileSync(file, readFileSync(dbFile));
    const events = [];
    for await (const e of readSqliteLogRaw(file)) events.push(e);
    const edit = new Database(file);
    let prev = events[0]!.hash;
    for (const e of events.slice(1)) {
      const data = e.position === 2 ? { ...e.data, totalMinor: 1 } : e.data;
      const hash = chainHash(prev, { ...e, data });
      edit.prepare('UPDATE events SET data = ?, hash = ?, prev_hash = ? WHERE position = ?').run(JSON.stringify(data), hash, prev, e.position);
      prev = hash;
    }
    edit.close();
    return file;
  }

  it('verify: an intact store exits 0 and says how much it checked', async () => {
    const result = await run(['audit', 'verify', '--quiet']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toMatch(/intact — 45 events checked, last position 45, last hash [0-9a-f]{64}/);
  });

  it('verify: a store with a deleted row exits 1 and names the break, its event and stream', async () => {
    // given a copy of the store with position 20 deleted
    const [copy, next] = editedCopy('cut.db', (db) => {
      const following = db.prepare('SELECT id, stream_id FROM events WHERE position = 21').get() as { id: string; stream_id: string };
      db.prepare('DELETE FROM events WHERE position = 20').run();
      return following;
    });

    // when verified, as text and as JSON
    const text = await run(['audit', 'verify', '--store', `sqlite:${copy}`]);
    const json = await run(['audit', 'verify', '--store', `sqlite:${copy}`, '--json']);

    // then both say a position gap at 21
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('BROKEN at position 21 — position_gap');
    expect(text.stdout).toContain(`event ${next.id} in stream ${next.stream_id}`);
    expect(text.stdout).toContain('19 events verified before it (last good position 19)');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, eventsChecked: 19, firstBreak: { kind: 'position_gap', position: 21 } });
  });

  it('verify --expect: a noted position and hash also catch a cut tail and a log re-chained from scratch', async () => {
    // given the head as an earlier run printed it
    const first = await run(['audit', 'verify', '--quiet', '--json']);
    const { lastPosition, lastHash } = JSON.parse(first.stdout) as { lastPosition: number; lastHash: string };
    const anchor = `${lastPosition}:${lastHash}`;
    const same = await run(['audit', 'verify', '--quiet', '--expect', anchor]);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain(`noted position ${lastPosition} still has hash ${lastHash}`);

    // when the last three events are cut off a copy: the chain alone still looks whole, the anchor does not
    const [cut] = editedCopy('tail-cut.db', (db) => db.prepare('DELETE FROM events WHERE position > ?').run(lastPosition - 3));
    expect((await run(['audit', 'verify', '--quiet', '--store', `sqlite:${cut}`])).code).toBe(0);
    const truncated = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${cut}`, '--expect', anchor]);
    expect(truncated.code).toBe(1);
    expect(truncated.stdout).toContain(`BROKEN at position ${lastPosition} — truncated`);
    expect(truncated.stdout).toContain(`the log ends at position ${lastPosition - 3}`);

    // when a copy is rewritten from event 2 on and every later hash recomputed
    const rechained = await rechainedCopy('rechained.db');
    expect((await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`])).code).toBe(0);
    const rewritten = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`, '--expect', anchor]);
    expect(rewritten.code).toBe(1);
    expect(rewritten.stdout).toContain(`BROKEN at position ${lastPosition} — anchor_mismatch`);

    // every --expect counts, in whatever order given: one that no longer holds breaks the verdict
    const early = JSON.parse(first.stdout) as { lastPosition: number };
    let firstHash = '';
    for await (const e of readSqliteLogRaw(rechained)) {
      firstHash = e.hash;
      break;
    }
    const holds = `1:${firstHash}`;
    for (const order of [[anchor, holds], [holds, anchor]]) {
      const both = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`, ...order.flatMap((a) => ['--expect', a])]);
      expect(both.code).toBe(1);
      expect(both.stdout).toContain(`BROKEN at position ${early.lastPosition} — anchor_mismatch`);
    }
    const intact = await run(['audit', 'verify', '--quiet', '--json', '--expect', holds, '--expect', anchor]);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true, anchors: [{ position: 1, hash: firstHash }, { position: lastPosition, hash: lastHash }] });
    const contradictory = await run(['audit', 'verify', '--quiet', '--expect', anchor, '--expect', `${lastPosition}:${'0'.repeat(64)}`]);
    expect(contradictory.code).toBe(2);
    expect(contradictory.stderr).toContain(`position ${lastPosition} is noted twice`);

    // and a malformed anchor is refused before anything is read
    const bad = await run(['audit', 'verify', '--expect', '45:abc']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('--expect: expected <position>:<64 hex digit hash>');
  });

  describe('verify --read-models: the anchor the read models keep, checked as --expect checks a noted one', () => {
    const dataDir = tmp.file('engine-data');
    const readModelsDir = join(dataDir, 'read-models');
    let anchor: { position: number; hash: string };
    let generation: string;

    beforeAll(async () => {
      // given read models folded from the whole log, as the engine's projector folds them (a fold that keeps no rows will do)
      const log = new SqliteEventStore({ file: dbFile, durability: 'normal' });
      const store = await new SqliteReadModelGenerations(readModelsDir).openCurrent();
      const noop: Projection = { name: 'noop', version: 1, tables: [], migrate: async () => undefined, apply: async () => undefined };
      const projector = new Projector(log, new ReadModels(store), [noop]);
      await projector.start();
      await projector.catchUp();
      await store.close();
      const last = (await log.readAll()).at(-1)!;
      await log.close();
      anchor = { position: last.position, hash: last.hash };
      generation = join(readModelsDir, readFileSync(join(readModelsDir, 'CURRENT'), 'utf8').trim());
    });

    it('given the log they folded, then it is intact and the report names their anchor as held, whichever way they are named', async () => {
      // SQLite may add its empty -wal and -shm beside a file opened read-only; the read models' own bytes stay as they were
      const files = () => ({
        generations: readdirSync(readModelsDir).filter((f) => !/-(wal|shm)$/.test(f)),
        bytes: createHash('sha256').update(readFileSync(generation)).digest('hex'),
      });
      const before = files();
      for (const where of [[dataDir], [readModelsDir], [generation], [`sqlite:${generation}`], []]) {
        const result = await run(['audit', 'verify', '--quiet', '--read-models', ...where], { CLIENTELE_DATA_DIR: dataDir });
        expect({ where, code: result.code }).toEqual({ where, code: 0 });
        expect(result.stdout).toContain('intact — 45 events checked');
        expect(result.stdout).toContain(`  read models' anchor (${generation}): position ${anchor.position} still has hash ${anchor.hash}\n`);
      }
      const json = JSON.parse((await run(['audit', 'verify', '--quiet', '--json', '--read-models', dataDir])).stdout);
      expect(json).toMatchObject({ ok: true, readModelsAnchor: { where: generation, position: anchor.position, hash: anchor.hash, status: 'held' } });
      // and it only read them
      expect(files()).toEqual(before);
    });

    it('given the log cut after they folded it, then the cut is found without a noted anchor, naming the read models and both causes', async () => {
      const [cut] = editedCopy('rm-tail-cut.db', (db) => db.prepare('DELETE FROM events WHERE position > ?').run(anchor.position - 3));
      expect((await run(['audit', 'verify', '--quiet', '--store', `sqlite:${cut}`])).code).toBe(0);

      const text = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${cut}`, '--read-models', dataDir]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain(`BROKEN at position ${anchor.position} — truncated`);
      expect(text.stdout).toContain(
        `the log ends at position ${anchor.position - 3}, before position ${anchor.position}, the last event the read models in ${generation} folded: ` +
          'events were cut from its end after they folded it, or they were folded from another log',
      );
      const json = JSON.parse((await run(['audit', 'verify', '--quiet', '--json', '--store', `sqlite:${cut}`, '--read-models', dataDir])).stdout);
      expect(json).toMatchObject({ ok: false, firstBreak: { kind: 'truncated', position: anchor.position }, readModelsAnchor: { status: 'ends_before', position: anchor.position } });
    });

    it('given the log rewritten and re-chained after they folded it, then the rewrite is found, with the hash the log has now', async () => {
      const rechained = await rechainedCopy('rm-rechained.db');
      expect((await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`])).code).toBe(0);

      const text = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`, '--read-models', dataDir]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain(`BROKEN at position ${anchor.position} — anchor_mismatch`);
      expect(text.stdout).toContain(`the read models in ${generation} folded ${anchor.hash.slice(0, 12)}… there: this log was rewritten up to here after they folded it, or they were folded from another log`);
      const json = JSON.parse((await run(['audit', 'verify', '--quiet', '--json', '--store', `sqlite:${rechained}`, '--read-models', dataDir])).stdout);
      expect(json.readModelsAnchor).toMatchObject({ status: 'other_hash', hash: anchor.hash, logHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(json.readModelsAnchor.logHash).not.toBe(anchor.hash);

      // with a noted anchor too, both hold the log; the first break is reported as the noted one's
      const both = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${rechained}`, '--expect', `${anchor.position}:${anchor.hash}`, '--read-models', dataDir]);
      expect(both.code).toBe(1);
      expect(both.stdout).toContain(`BROKEN at position ${anchor.position} — anchor_mismatch`);
    });

    it('given a chain that breaks before their anchor, then the break is reported and the anchor said not judged', async () => {
      const [gap] = editedCopy('rm-gap.db', (db) => db.prepare('DELETE FROM events WHERE position = 20').run());
      const text = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${gap}`, '--read-models', dataDir]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain('BROKEN at position 21 — position_gap');
      expect(text.stdout).toContain(`read models' anchor (${generation}, position ${anchor.position}) not judged: the chain breaks before it`);
    });

    it('given no read models, read models with no anchor, or one stream, then it cannot verify against them (exit 2)', async () => {
      const none = await run(['audit', 'verify', '--quiet', '--read-models', tmp.file('no-read-models-here')]);
      expect(none).toMatchObject({ code: 2, stdout: '' });
      expect(none.stderr).toContain(`error: --read-models: no read models at ${tmp.file('no-read-models-here')}`);
      const empty = sqliteFileWith('rm-empty.sqlite', 'CREATE TABLE projection_checkpoints (name TEXT PRIMARY KEY, version BIGINT NOT NULL, position BIGINT NOT NULL)');
      const noAnchor = await run(['audit', 'verify', '--quiet', '--read-models', empty]);
      expect(noAnchor.code).toBe(2);
      expect(noAnchor.stderr).toContain(`error: --read-models: the read models in ${empty} hold no anchor`);
      const stream = await run(['audit', 'verify', '--quiet', '--stream', 'customer-ada', '--read-models', dataDir]);
      expect(stream).toMatchObject({ code: 2, stderr: 'error: --read-models applies to the whole log, not to --stream\n' });
    });
  });

  it('verify: a store that is not there cannot be verified (exit 2), and none is created', async () => {
    const missing = tmp.file('nope.db');
    const result = await run(['audit', 'verify', '--store', `sqlite:${missing}`]);
    expect(result).toMatchObject({ code: 2, stdout: '', stderr: `error: --store: ${missing} does not exist\n` });
    // with --json, a script reading stdout gets the error too, with no verdict
    const json = await run(['audit', 'verify', '--json', '--store', `sqlite:${missing}`]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ error: `--store: ${missing} does not exist` });
    expect(existsSync(missing)).toBe(false);
    // the engine's store, when no --store is given, is named as such
    const configured = await run(['audit', 'verify'], { CLIENTELE_SQLITE_FILE: missing });
    expect(configured).toMatchObject({ code: 2, stderr: `error: the store: ${missing} does not exist\n` });
    expect(existsSync(missing)).toBe(false);
  });

  it('verify: a directory, a file of something else or not a database is refused naming --store (exit 2), whole log or one stream', async () => {
    // given an SQLite file of something else, a file that is not a database, and a directory
    const other = sqliteFileWith('verify-other.sqlite', 'CREATE TABLE profiles (customer_id TEXT PRIMARY KEY)');
    const text = tmp.file('verify-notes.txt');
    writeFileSync(text, 'these are notes, not a store\n'.repeat(200));
    const directory = tmp.file('');

    for (const stream of [[], ['--stream', 'customer-ada']]) {
      // when each is verified, then each refusal names the option and what is wrong
      const notAStore = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${other}`, ...stream]);
      expect(notAStore).toMatchObject({ code: 2, stdout: '', stderr: `error: --store: ${other} is not a Clientele event store (it has no events table)\n` });
      const notADatabase = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${text}`, ...stream]);
      expect(notADatabase).toMatchObject({ code: 2, stdout: '' });
      expect(notADatabase.stderr).toMatch(new RegExp(`^error: --store: ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not an SQLite database`));
      const folder = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${directory}`, ...stream]);
      expect(folder).toMatchObject({ code: 2, stdout: '', stderr: `error: --store: ${directory} is a directory, not a file\n` });
    }
  });

  it('export then verify the export offline; an altered or damaged export exits 1', async () => {
    // when the whole log is exported to a file
    const file = tmp.file('all.ndjson');
    const exported = await run(['export', '--out', file, '--batch', '7']);

    // then the file holds every event, progress ended at 100 %, and no partial file is left
    expect(exported.code).toBe(0);
    expect(readFileSync(file, 'utf8').trimEnd().split('\n')).toHaveLength(45);
    expect(exported.stderr).toContain('export: 45/45 events (100.0%)');
    expect(exported.stderr).toContain(`exported 45 events (positions 1..45) to ${file}`);
    expect(existsSync(`${file}.partial`)).toBe(false);
    // and personal fields are exported as stored (encrypted)
    expect(readFileSync(file, 'utf8')).not.toContain('ada@example.org');
    expect((await run(['audit', 'verify', '--from-export', file])).code).toBe(0);

    // when one line is altered
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[1]).toContain('"totalMinor":1500');
    lines[1] = lines[1]!.replace('"totalMinor":1500', '"totalMinor":150');
    const altered = tmp.file('altered.ndjson');
    writeFileSync(altered, lines.join('\n'));
    const report = await run(['audit', 'verify', '--from-export', altered]);
    expect(report.code).toBe(1);
    expect(report.stdout).toContain('BROKEN at position 2 — content_altered');

    // when a line is no longer JSON
    lines[1] = lines[1]!.slice(0, 40);
    writeFileSync(altered, lines.join('\n'));
    const damaged = await run(['audit', 'verify', '--from-export', altered]);
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toContain('export damaged:');
    expect(damaged.stdout).toContain('line 2: not JSON');
  });

  it("export --customer writes that customer's stream, which verifies as a stream export and in the store", async () => {
    const result = await run(['export', '--customer', 'ada', '--quiet']);
    const events = result.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { streamId: string; revision: number });
    expect(result.code).toBe(0);
    expect(events.map((e) => [e.streamId, e.revision])).toEqual([0, 1, 2, 3, 4].map((r) => ['customer-ada', r]));

    const file = tmp.file('ada.ndjson');
    writeFileSync(file, result.stdout);
    expect((await run(['audit', 'verify', '--from-export', file, '--stream', 'customer-ada'])).code).toBe(0);
    // a customer id given where the stream id goes is named, with the stream id to give
    const bare = await run(['audit', 'verify', '--stream', 'ada']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('stream ada has no events (stream ids name their kind: for customer ada, give customer-ada');
    const inStore = await run(['audit', 'verify', '--stream', 'customer-ada']);
    expect(inStore.code).toBe(0);
    expect(inStore.stdout).toContain('stream customer-ada: intact — 5 events checked');
    expect((await run(['export', '--customer', 'ada', '--stream', 'customer-ada'])).stderr).toContain('give --stream or --customer, not both');
    expect((await run(['export', '--customer', 'nobody'])).code).toBe(1);
    // a refusal found before anything is written leaves no partial file behind
    const refused = tmp.file('nobody.ndjson');
    for (const args of [['export', '--customer', 'nobody', '--out', refused], ['personal-data', 'export', 'nobody', '--out', refused]]) {
      expect((await run(args)).code).toBe(1);
      // the output file's open completes on the event loop: give it the time to, then look
      await new Promise((done) => setTimeout(done, 100));
      expect(existsSync(`${refused}.partial`)).toBe(false);
      expect(existsSync(refused)).toBe(false);
    }
  });

  it('personal-data export decrypts with the master key, and refuses without it', async () => {
    const own = await run(['personal-data', 'export', 'ada']);
    expect(own.code).toBe(0);
    expect(own.stdout).toContain('"email":"ada@example.org"');
    expect(own.stdout.trimEnd().split('\n')).toHaveLength(5);
    expect(own.stderr).toContain('customer ada: 5 events');

    const noKey = await run(['personal-data', 'export', 'ada'], { CLIENTELE_MASTER_KEY: undefined });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('CLIENTELE_MASTER_KEY is not set');
    const badKey = await run(['personal-data', 'export', 'ada'], { CLIENTELE_MASTER_KEY: 'c2hvcnQ=' });
    expect(badKey.stderr).toContain('CLIENTELE_MASTER_KEY must be 32 bytes encoded as base64');
    const otherKey = await run(['personal-data', 'export', 'ada'], { CLIENTELE_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(otherKey).toMatchObject({ code: 1, stdout: '' });
    expect(otherKey.stderr).toMatch(/^error: the master key in use cannot open this store's customer keys: they were wrapped with another one/);
  });

  it('a keys file that is not there is refused, not created empty (every customer would read as erased)', async () => {
    const typo = tmp.file('no-such-keys.db');
    const given = await run(['personal-data', 'export', 'ada', '--keys', typo]);
    expect(given).toMatchObject({ code: 1, stdout: '', stderr: `error: --keys: ${typo} does not exist\n` });
    const fromEnv = await run(['as-of', 'ada', '--date', '2025-03-31', '--profile'], { CLIENTELE_KEYS_FILE: typo });
    expect(fromEnv).toMatchObject({ code: 1, stderr: `error: CLIENTELE_KEYS_FILE: ${typo} does not exist\n` });
    expect(existsSync(typo)).toBe(false);
    // the store's own keys, named as a file, read like the default
    const named = await run(['personal-data', 'export', 'ada', '--keys', dbFile]);
    expect(named.stdout).toContain('"email":"ada@example.org"');
  });

  it('a file that is not a store, or not a keys file, is refused and left as it was (no table created in it)', async () => {
    // given an SQLite file of something else, an empty file and a directory
    const other = sqliteFileWith('other.sqlite', 'CREATE TABLE profiles (customer_id TEXT PRIMARY KEY)');
    const empty = tmp.file('empty.keys');
    writeFileSync(empty, '');
    const tables = (file: string) => (new Database(file, { readonly: true }).prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);

    const exported = await run(['export', '--store', `sqlite:${other}`, '--quiet']);
    expect(exported).toMatchObject({ code: 1, stdout: '', stderr: `error: --store: ${other} is not a Clientele event store (it has no events table)\n` });
    const streamVerify = await run(['audit', 'verify', '--stream', 'customer-x', '--store', `sqlite:${empty}`]);
    expect(streamVerify.code).toBe(2);
    expect(streamVerify.stderr).toContain('is not a Clientele event store');
    const directory = await run(['export', '--store', `sqlite:${tmp.file('')}`]);
    expect(directory.stderr).toContain('is a directory, not a file');

    for (const keys of [empty, other]) {
      const access = await run(['personal-data', 'export', 'ada', '--keys', keys]);
      expect(access).toMatchObject({ code: 1, stdout: '' });
      expect(access.stderr).toContain(`--keys: ${keys} holds no customer keys`);
    }
    // a keys file with the table but no key in it would make everyone read as erased too
    const emptyKeys = sqliteFileWith('empty-keys.db', 'CREATE TABLE customer_keys (customer_id TEXT PRIMARY KEY, wrapped_key TEXT)');
    const noKeys = await run(['personal-data', 'export', 'ada', '--keys', emptyKeys]);
    expect(noKeys).toMatchObject({ code: 1, stdout: '' });
    expect(noKeys.stderr).toContain('its customer_keys table is empty');
    expect(tables(other)).toEqual(['profiles']);
    expect(readFileSync(empty)).toHaveLength(0);
  });

  it('verify: an export with no event, an empty stream id, or the export of another stream cannot be verified (exit 2, not a verdict of tampering)', async () => {
    const empty = tmp.file('nothing.ndjson');
    writeFileSync(empty, '\n\n');
    const nothing = await run(['audit', 'verify', '--from-export', empty]);
    expect(nothing).toMatchObject({ code: 2, stdout: '' });
    expect(nothing.stderr).toContain('holds no events');
    expect((await run(['audit', 'verify', '--stream', ''])).stderr).toContain('--stream: expected a stream id');

    const ada = tmp.file('ada-only.ndjson');
    writeFileSync(ada, (await run(['export', '--customer', 'ada', '--quiet'])).stdout);
    const otherStream = await run(['audit', 'verify', '--from-export', ada, '--stream', 'customer-bob']);
    expect(otherStream.code).toBe(2);
    expect(otherStream.stderr).toContain('start with stream customer-ada, not customer-bob');
  });

  it('verify: a whole-log export checked as one stream cannot be verified (exit 2) once it meets another stream, not a verdict of tampering', async () => {
    // given the whole log exported: Ada's five events first, then the other customers'
    const all = tmp.file('whole-for-stream.ndjson');
    writeFileSync(all, (await run(['export', '--quiet'])).stdout);

    // when it is verified as the export of Ada's stream
    const result = await run(['audit', 'verify', '--quiet', '--from-export', all, '--stream', 'customer-ada']);

    // then it is refused as not that stream's events, naming the other stream met
    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr).toContain('the events given hold an intact event of stream customer-p0 at position 6, after 5 of stream customer-ada');
    expect(result.stderr).toContain('a whole-log export is verified without --stream');
  });

  it('verify: a stream export checked as a whole log breaks at its first line (exit 1) with a hint to give --stream', async () => {
    // given the export of one stream that does not start at position 1
    const file = tmp.file('p3-only.ndjson');
    writeFileSync(file, (await run(['export', '--stream', 'customer-p3', '--quiet'])).stdout);

    // when verified as a whole-log export, as text and as JSON
    const text = await run(['audit', 'verify', '--quiet', '--from-export', file]);
    const json = await run(['audit', 'verify', '--quiet', '--from-export', file, '--json']);

    // then the gap stands (a whole-log export without its first lines looks the same), with the hint
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('position_gap');
    expect(text.stdout).toContain('  if this file is the export of one stream, verify it with --stream <its stream id> (its first event is in stream customer-p3)\n');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, eventsChecked: 0, firstBreak: { kind: 'position_gap' }, hint: expect.stringContaining('--stream') });
    // and verified as that stream's export, it is intact
    expect((await run(['audit', 'verify', '--quiet', '--from-export', file, '--stream', 'customer-p3'])).code).toBe(0);
    // while a whole-log export broken at position 1 gets no hint
    const all = (await run(['export', '--quiet'])).stdout.split('\n');
    all[0] = all[0]!.replace('"source":"web"', '"source":"ads"');
    const altered = tmp.file('first-altered.ndjson');
    writeFileSync(altered, all.join('\n'));
    const first = await run(['audit', 'verify', '--quiet', '--from-export', altered]);
    expect(first.stdout).toContain('BROKEN at position 1');
    expect(first.stdout).not.toContain('--stream');
  });

  it('verify: an event slipped in below position 1 is the first break, though every read of the log from its start skips it', async () => {
    const [copy] = editedCopy('below-one.db', (db) =>
      db.exec("INSERT INTO events SELECT -1, stream_id, 5, id || '-forged', type, data, metadata, recorded_at, hash, prev_hash FROM events WHERE position = 3"),
    );
    const result = await run(['audit', 'verify', '--quiet', '--store', `sqlite:${copy}`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('BROKEN at position -1 — out_of_order');
  });

  it.each([
    ['a duplicated key placed first', (data: string) => data.replace('{"', '{"totalMinor":5,"')],
    ['a number written in another form', (data: string) => data.replace('"totalMinor":1500', '"totalMinor":1.5e3')],
    ['data that is no longer JSON', (data: string) => `X${data.slice(1)}`],
  ])('verify --stream: a stored payload rewritten with %s is altered content at its position (exit 1)', async (_how, rewrite) => {
    // given a copy of the store with Ada's first purchase payload rewritten in place
    const [copy, row] = editedCopy(`stream-rewritten-${Math.random().toString(36).slice(2)}.db`, (db) => {
      const first = db.prepare("SELECT position, data FROM events WHERE stream_id = 'customer-ada' AND data LIKE '%\"totalMinor\":1500%' ORDER BY position LIMIT 1").get() as { position: number; data: string };
      const rewritten = rewrite(first.data);
      expect(rewritten).not.toBe(first.data);
      db.prepare('UPDATE events SET data = ? WHERE position = ?').run(rewritten, first.position);
      return first;
    });

    // when the stream is verified
    const result = await run(['audit', 'verify', '--quiet', '--stream', 'customer-ada', '--store', `sqlite:${copy}`]);

    // then it is a verdict of alteration at that position, not an intact stream nor a failure to verify
    expect(result).toMatchObject({ code: 1, stderr: '' });
    expect(result.stdout).toContain(`stream customer-ada: BROKEN at position ${row.position} — content_altered`);
  });

  it.each([
    ['a type repeated ahead of the real one', (line: string) => line.replace('"type":"', '"type":"Forged","type":"')],
    ['data starting with a key that is repeated later', (line: string) => line.replace('"data":{', '"data":{"totalMinor":5,')],
    ['a number written in another form', (line: string) => line.replace('"totalMinor":1500', '"totalMinor":1.5e3')],
  ])('verify --from-export: a line edited with %s is damage at its line (exit 1), with or without --stream', async (_how, edit) => {
    // given Ada's stream export with her first purchase line edited, the parsed values unchanged
    const lines = (await run(['export', '--customer', 'ada', '--quiet'])).stdout.split('\n');
    const at = lines.findIndex((l) => l.includes('"totalMinor":1500'));
    const edited = edit(lines[at]!);
    expect(edited).not.toBe(lines[at]);
    lines[at] = edited;
    const file = tmp.file(`ada-edited-${Math.random().toString(36).slice(2)}.ndjson`);
    writeFileSync(file, lines.join('\n'));

    // when verified as a stream export, and as a file of events
    for (const args of [['--stream', 'customer-ada'], []]) {
      const result = await run(['audit', 'verify', '--quiet', '--from-export', file, ...args]);

      // then the line is named as edited, a verdict and not intact
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`export damaged: ${file} line ${at + 1}: not as the export writes it`);
    }
  });

  it("a customer's key row deleted by hand is not an erasure: personal-data export and as-of --profile refuse them, and verify reports the missing key (exit 1)", async () => {
    // given a copy where p1 was erased the engine's way and p2's key row was deleted with SQL
    const copy = tmp.file('lost-key.db');
    writeFileSync(copy, readFileSync(dbFile));
    const engine = new PersonalDataEventStore(new SqliteEventStore({ file: copy, durability: 'normal' }), new SqliteCustomerKeyStore(copy, Buffer.from(masterKey, 'base64')));
    await runCommand(engine, 'erase-p1', { type: 'EraseCustomerPersonalData', data: { customerId: 'p1', requestedBy: 'dpo', occurredAt: '2025-06-01T00:00:00Z' } });
    await engine.close();
    const db = new Database(copy);
    const p2 = db.prepare("SELECT position, id FROM events WHERE stream_id = 'customer-p2'").get() as { position: number; id: string };
    db.prepare("DELETE FROM customer_keys WHERE customer_id = 'p2'").run();
    db.close();
    const store = ['--store', `sqlite:${copy}`];

    // when p2's data is asked for
    const access = await run(['personal-data', 'export', 'p2', ...store]);
    const profile = await run(['as-of', 'p2', '--date', '2025-03-31', '--profile', ...store]);

    // then it is refused, naming the customer and what is wrong, with nothing written; the erased p1 reads as erased
    expect(access).toMatchObject({ code: 1, stdout: '' });
    expect(access.stderr).toBe(
      `error: customer p2: 1 of their events holds personal data encrypted with a key that is missing (no customer_keys row for them in ${copy}; first at position ${p2.position}, event ${p2.id}), ` +
        "and their stream records no PersonalDataErased: the data was not erased, it cannot be read. Nothing was written; restore the store's customer keys from a backup, or name the keys file that holds them with --keys\n",
    );
    expect(profile).toMatchObject({ code: 1, stdout: '' });
    expect(profile.stderr).toContain('customer p2: 1 of their events holds personal data encrypted with a key that is missing');
    const erased = await run(['personal-data', 'export', 'p1', ...store]);
    expect(erased.code).toBe(0);
    expect(erased.stdout).toContain('"personalDataErased":true');
    expect(erased.stderr).toContain('personal data erased');

    // when the store is verified, as text and as JSON, whole log and p2's stream
    const text = await run(['audit', 'verify', '--quiet', ...store]);
    const json = await run(['audit', 'verify', '--quiet', '--json', ...store]);
    const stream = await run(['audit', 'verify', '--quiet', '--stream', 'customer-p2', ...store]);

    // then the chain is intact, and the missing key is a finding of its own kind (exit 1); p1 is not one
    expect(text.code).toBe(1);
    expect(text.stdout).toContain(`log in ${copy}: intact — 46 events checked`);
    expect(text.stdout).toContain(`customer keys in ${copy}: MISSING for 1 customer — key_missing`);
    expect(text.stdout).toContain(`  customer p2 in stream customer-p2: 1 event, the first at position ${p2.position}, event ${p2.id}`);
    expect(text.stdout).not.toContain('customer p1 ');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      eventsChecked: 46,
      customerKeys: { where: copy, missingCount: 1, missing: [{ kind: 'key_missing', customerId: 'p2', streamId: 'customer-p2', position: p2.position, eventId: p2.id, encryptedEvents: 1 }] },
    });
    expect(JSON.parse(json.stdout)).not.toHaveProperty('firstBreak');
    expect(stream.code).toBe(1);
    expect(stream.stdout).toContain('key_missing');

    // and the store as the engine left it has every key
    const intact = await run(['audit', 'verify', '--quiet']);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain(`customer keys in ${dbFile}: none missing`);
  });

  it('as-of prints the stage at a date with the events used and the policy; JSON on request', async () => {
    const text = await run(['as-of', 'ada', '--date', '2025-02-20']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('customer ada as of 2025-02-20T23:59:59.999Z: customer');
    expect(text.stdout).toContain('policy: repeatPurchaseThreshold=2 advocateMinConvertedReferrals=1 promoterMinScore=9 churnAfterDays=180');
    expect(text.stdout).toContain('events used: 3; recorded with a later business time: 2');

    const json = await run(['as-of', 'ada', '--date', '2025-03-15', '--json', '--policy', '{"churnAfterDays":30}']);
    expect(JSON.parse(json.stdout)).toMatchObject({ stage: 'repeat_buyer', orders: 2, policy: { churnAfterDays: 30 } });

    const badDate = await run(['as-of', 'ada', '--date', '2025-13-01']);
    expect(badDate.code).toBe(1);
    expect(badDate.stderr).toContain("--date: expected a date (YYYY-MM-DD) or a date-time with a zone (e.g. 2026-01-31T10:00:00Z), got '2025-13-01'");
    const unknown = await run(['as-of', 'nobody', '--date', '2025-03-15']);
    expect(unknown).toMatchObject({ code: 1, stderr: 'error: customer nobody: no events\n' });
  });

  it('as-of --profile also prints the profile as it stood then, folded from the events up to that date', async () => {
    // ada: registered 2025-01-10, bought 15.00 on 2025-02-01 and 2025-03-15 (cost 9.00 each)
    const feb = JSON.parse((await run(['as-of', 'ada', '--date', '2025-02-20', '--profile', '--json'])).stdout);
    expect(feb).toMatchObject({ stage: 'customer', profile: { stage: 'customer', value: { revenueMinor: 1500, costMinor: 900, marginMinor: 600 }, rfm: { recencyDays: 19, frequency: 1 } } });
    const march = JSON.parse((await run(['as-of', 'ada', '--date', '2025-03-31', '--profile', '--json'])).stdout);
    expect(march.profile).toMatchObject({ stage: 'repeat_buyer', value: { revenueMinor: 3000 }, rfm: { recencyDays: 16, frequency: 2 } });
    const text = await run(['as-of', 'ada', '--date', '2025-03-31', '--profile']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('profile as of 2025-03-31T23:59:59.999Z:');
    expect(text.stdout).toContain('"revenueMinor": 3000');
    const early = JSON.parse((await run(['as-of', 'ada', '--date', '2025-01-01', '--profile', '--json'])).stdout);
    expect(early).toMatchObject({ profile: null });
  });

  it('reads store addresses for both stores and refuses others', () => {
    expect(parseStoreAddress('sqlite:./data/x.db')).toEqual({ kind: 'sqlite', file: './data/x.db' });
    expect(parseStoreAddress('postgres:postgres://u@h:5432/db#audit_1')).toEqual({ kind: 'postgres', url: 'postgres://u@h:5432/db', schema: 'audit_1' });
    expect(parseStoreAddress('postgresql://u@h/db')).toEqual({ kind: 'postgres', url: 'postgresql://u@h/db', schema: 'clientele' });
    expect(() => parseStoreAddress('mysql://x')).toThrow(/--store: expected sqlite:<file> or postgres:<url>\[#schema\]/);
    expect(() => parseStoreAddress('sqlite:')).toThrow(/the file is missing/);
    // without --store, the engine's own configuration
    expect(resolveStoreAddress(undefined, {})).toEqual({ kind: 'sqlite', file: resolve('./data/clientele.db') });
    expect(resolveStoreAddress(undefined, { CLIENTELE_DATA_DIR: '/srv/clientele' })).toEqual({ kind: 'sqlite', file: '/srv/clientele/clientele.db' });
    expect(resolveStoreAddress(undefined, { CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://h/db', CLIENTELE_PG_SCHEMA: 'tenant_a' })).toEqual({
      kind: 'postgres',
      url: 'postgres://h/db',
      schema: 'tenant_a',
    });
    expect(() => resolveStoreAddress(undefined, { CLIENTELE_STORE: 'eventstoredb', EVENTSTOREDB_URL: 'esdb://h:2113' })).toThrow(/give --store/);
  });
});
