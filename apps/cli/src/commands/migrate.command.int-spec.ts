import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import { openStorage, storageConfigFromEnv, type OpenedStorage } from '@clientele/application';
import {
  canonicalJson,
  copyLog,
  eventsOfLog,
  PostgresEventStore,
  SqliteEventStore,
  verifyChain,
  type EventStore,
  type NewEvent,
  type StoredEvent,
} from '@clientele/event-store';
import { appendTouchpoints, describeWithServer, idFrom, PostgresServer, tempDir } from '@clientele/testing';
import { registerMigrateCommand } from './migrate.command';

class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function migrate(from: string, to: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Captured();
  const stderr = new Captured();
  let code = 0;
  const program = new Command('clientele').exitOverride();
  registerMigrateCommand(program, { stdout, stderr, setExitCode: (c) => (code = c), progressIntervalMs: 0 });
  await program.parseAsync(['migrate', '--from', from, '--to', to, ...extra], { from: 'user' });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function logOf(store: EventStore): Promise<string[]> {
  const lines: string[] = [];
  for await (const e of eventsOfLog(store)) lines.push(canonicalJson(e));
  return lines;
}

const at = '2026-03-01T09:00:00.000Z';
const event = (seed: string, type: string, data: NewEvent['data']): NewEvent => ({ id: idFrom(seed), type, data, metadata: { occurredAt: at, schemaVersion: 1, commandId: seed } });

/** Customers with personal data (sealed by the decorator with their own keys) and one erased customer. */
async function writePersonalHistory(storage: OpenedStorage): Promise<void> {
  for (const name of ['ann', 'bob', 'cy']) {
    await storage.store.appendToStream(`customer-${name}`, [
      event(`reg-${name}`, 'ProspectRegistered', { customerId: name, source: 'web', occurredAt: at, personal: { name: name.toUpperCase(), email: `${name}@example.org` } }),
      event(`touch-${name}`, 'TouchpointRecorded', { customerId: name, channel: 'phone', direction: 'inbound', kind: 'call', note: `called ${name}`, occurredAt: at }),
    ]);
  }
  await storage.store.appendToStream('customer-bob', [event('erase-bob', 'PersonalDataErased', { customerId: 'bob', occurredAt: at })]);
  await appendTouchpoints(storage.store, 137, 9);
}

describeWithServer(PostgresServer, 'clientele migrate between SQLite and PostgreSQL', (url) => {
  const tmp = tempDir('clientele-migrate-');
  const masterKey = randomBytes(32).toString('base64');
  const schemas: string[] = [];
  const schema = (): string => {
    const name = `migrate_${process.pid}_${Date.now()}_${schemas.length}`;
    schemas.push(name);
    return name;
  };
  const sqliteEnv = (file: string) => ({ CLIENTELE_DATA_DIR: tmp.dir, CLIENTELE_SQLITE_FILE: file, CLIENTELE_MASTER_KEY: masterKey, CLIENTELE_DURABILITY: 'normal' });
  const pgEnv = (name: string) => ({ CLIENTELE_DATA_DIR: tmp.dir, CLIENTELE_STORE: 'postgres', DATABASE_URL: url, CLIENTELE_PG_SCHEMA: name, CLIENTELE_MASTER_KEY: masterKey });

  afterAll(async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    for (const name of schemas) await client.query(`drop schema if exists ${name} cascade`);
    await client.end();
    tmp.remove();
  });

  it('moves a log SQLite → PostgreSQL → SQLite with every event byte-identical and personal data still readable', async () => {
    // given an embedded store with personal data, one customer erased
    const sourceFile = tmp.file('source.db');
    const source = await openStorage(storageConfigFromEnv(sqliteEnv(sourceFile)));
    await writePersonalHistory(source);
    const original = await logOf(source.raw);
    await source.close();

    // when it is migrated to PostgreSQL and from there to a new SQLite file
    const pgSchema = schema();
    const toPg = await migrate(`sqlite:${sourceFile}`, `postgres:${url}#${pgSchema}`, ['--batch', '40']);
    const backFile = tmp.file('back.db');
    const back = await migrate(`postgres:${url}#${pgSchema}`, `sqlite:${backFile}`, ['--batch', '40']);

    // then both runs copied every event and verified the target
    for (const run of [toPg, back]) {
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`events copied: ${original.length}\n`);
      expect(run.stdout).toContain(`target head: ${original.length}\n`);
      expect(run.stdout).toContain(`verification: intact, ${original.length} events checked`);
      expect(run.stdout).toContain('customer keys: 3 copied (1 of them erased on the source, copied erased), 0 erased as on the source, 0 already there');
      expect(run.stderr).toContain(`migrate: ${original.length}/${original.length} events (100.0%)`);
    }

    // and each target holds the source's events byte for byte, its chain intact
    for (const env of [pgEnv(pgSchema), sqliteEnv(backFile)]) {
      const target = await openStorage(storageConfigFromEnv(env));
      try {
        expect(await logOf(target.raw)).toEqual(original);
        expect((await verifyChain(eventsOfLog(target.raw))).ok).toBe(true);

        // and personal data reads through the decorator with the same master key; the erased stays erased
        const [ann] = await target.store.readStream('customer-ann');
        expect(ann!.data.personal).toEqual({ name: 'ANN', email: 'ann@example.org' });
        const cy = await target.store.readStream('customer-cy');
        expect(cy[1]!.data.note).toBe('called cy');
        const [bob] = await target.store.readStream('customer-bob');
        expect(bob!.data.personal).toBeUndefined();
        expect(bob!.data.personalDataErased).toBe(true);
        expect(await target.store.isErased('bob')).toBe(true);
      } finally {
        await target.close();
      }
    }
  });

  it('resumes an interrupted migration into PostgreSQL and copies each event exactly once', async () => {
    // given a migration interrupted after two batches of 50 reached PostgreSQL
    const sourceFile = tmp.file('resume-source.db');
    const source = await openStorage(storageConfigFromEnv(sqliteEnv(sourceFile)));
    await writePersonalHistory(source);
    const original = await logOf(source.raw);
    await source.close();
    const pgSchema = schema();
    const reader = new SqliteEventStore({ file: sourceFile });
    const partial = await PostgresEventStore.open({ connectionString: url, schema: pgSchema, poolSize: 2 });
    let batches = 0;
    await expect(
      copyLog(reader, partial, {
        batchSize: 50,
        onProgress: () => {
          if (++batches === 2) throw new Error('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    expect(await partial.headPosition()).toBe(100);
    await partial.close();
    await reader.close();

    // when migrate runs again, and once more
    const resumed = await migrate(`sqlite:${sourceFile}`, `postgres:${url}#${pgSchema}`);
    const again = await migrate(`sqlite:${sourceFile}`, `postgres:${url}#${pgSchema}`);

    // then the second run copied the rest after position 100, the third nothing, and the log is the source's
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`events copied: ${original.length - 100} (resumed after position 100)`);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`events copied: 0 (resumed after position ${original.length})`);
    expect(again.stdout).toContain('customer keys: 0 copied (0 of them erased on the source, copied erased), 0 erased as on the source, 3 already there');
    const target = await PostgresEventStore.open({ connectionString: url, schema: pgSchema, poolSize: 2 });
    try {
      expect(await logOf(target)).toEqual(original);
      const ids = (await target.readAll()).map((e: StoredEvent) => e.id);
      expect(new Set(ids).size).toBe(original.length);
    } finally {
      await target.close();
    }
  });

  it('refuses a target that holds a different log, writing nothing to it', async () => {
    // given a source and a PostgreSQL schema an engine already wrote other events to
    const sourceFile = tmp.file('refuse-source.db');
    const source = await openStorage(storageConfigFromEnv(sqliteEnv(sourceFile)));
    await writePersonalHistory(source);
    await source.close();
    const pgSchema = schema();
    const other = await openStorage(storageConfigFromEnv(pgEnv(pgSchema)));
    await other.store.appendToStream('customer-zed', [
      event('reg-zed', 'ProspectRegistered', { customerId: 'zed', source: 'shop', occurredAt: at, personal: { name: 'Zed' } }),
    ]);
    await other.close();

    // when the source is migrated into it
    const run = await migrate(`sqlite:${sourceFile}`, `postgres:${url}#${pgSchema}`);

    // then it is refused, and the schema still holds only its own event and key
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/error: the target already holds a different log: at position 1/);
    const check = new Client({ connectionString: url });
    await check.connect();
    try {
      expect((await check.query(`select count(*)::int as n from ${pgSchema}.events`)).rows[0].n).toBe(1);
      expect((await check.query(`select customer_id from ${pgSchema}.customer_keys`)).rows).toEqual([{ customer_id: 'zed' }]);
    } finally {
      await check.end();
    }
  });

  it('refuses a source that does not exist and the same store on both sides', async () => {
    const missing = await migrate(`sqlite:${tmp.file('nope.db')}`, `sqlite:${tmp.file('t.db')}`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
    const same = await migrate(`postgres:${url}#same_schema`, `postgres:${url}#same_schema`);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain('--from and --to name the same store');
    const noSchema = await migrate(`postgres:${url}#${schema()}`, `sqlite:${tmp.file('t2.db')}`);
    expect(noSchema.stderr).toContain('holds no event log');
    // a malformed address is named by the option it came from
    const badTarget = await migrate(`sqlite:${tmp.file('s.db')}`, 'mysql://x');
    expect(badTarget.code).toBe(1);
    expect(badTarget.stderr).toContain('--to: expected sqlite:<file> or postgres:<url>[#schema], got "mysql://x"');
    const badSource = await migrate('sqlite:', `sqlite:${tmp.file('t3.db')}`);
    expect(badSource.stderr).toContain('--from: expected sqlite:<file>, the file is missing');
  });

  it('names the side and the address of a store it cannot open, without the password', async () => {
    // a source with a log, and targets that cannot be reached or opened
    const source = tmp.file('named-source.db');
    const sourceStore = new SqliteEventStore({ file: source, durability: 'normal' });
    await appendTouchpoints(sourceStore, 5, 2);
    await sourceStore.close();

    const refused = await migrate(`sqlite:${source}`, 'postgres:postgres://app:s3cret@127.0.0.1:1/crm#target');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--to: postgres:postgres://…@127.0.0.1:1/crm#target: connect ECONNREFUSED 127.0.0.1:1');
    expect(refused.stderr).not.toContain('s3cret');
    const noDatabase = await migrate(`postgres:${url.replace(/\/[^/]*$/, '/no_such_db_here')}#x`, `sqlite:${tmp.file('t4.db')}`);
    expect(noDatabase.stderr).toMatch(/--from: postgres:.*no_such_db_here#x: database "no_such_db_here" does not exist/);
    const directory = await migrate(`sqlite:${source}`, `sqlite:${tmp.dir}`);
    expect(directory.stderr).toContain(`--to: sqlite:${tmp.dir}: `);
  });
});
