import { Command } from 'commander';
import { Client } from 'pg';
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { openStorage } from '@clientele/application';
import { PostgresEventStore } from '@clientele/event-store';
import { Projector, PostgresReadModelGenerations, ReadModels, type Projection } from '@clientele/projections';
import { appendTouchpoints, describeWithServer, PostgresServer, runCommand, tempDir } from '@clientele/testing';
import { registerAuditCommands } from './audit.commands';

class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describeWithServer(PostgresServer, 'audit CLI commands on PostgreSQL', (url) => {
  const schema = `audit_cli_${process.pid}_${Date.now()}`;
  const address = `postgres:${url}#${schema}`;
  const tmp = tempDir('clientele-audit-pg-');

  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: {} });
    await program.parseAsync([...args, '--store', address], { from: 'user' });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  beforeAll(async () => {
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      await appendTouchpoints(store, 60, 6);
    } finally {
      await store.close();
    }
  });

  afterAll(async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.query(`drop schema if exists ${schema}_keys cascade`);
    await client.query(`drop schema if exists ${schema}_lost cascade`);
    await client.end();
    tmp.remove();
  });

  it('a schema that holds no log is refused, and not created: a typo is not read as an empty log', async () => {
    const typo = `${schema}_typo`;
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: {} });
    await program.parseAsync(['audit', 'verify', '--quiet', '--store', `postgres:${url}#${typo}`], { from: 'user' });
    expect(code).toBe(2);
    expect(stderr.text).toContain(`--store: schema ${typo} holds no event log`);
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('select 1 from pg_namespace where nspname = $1', [typo])).rowCount).toBe(0);
    } finally {
      await client.end();
    }
  });

  it.each([
    ['a key repeated ahead of the hashed one', (data: string) => data.replace('{', '{"sequence":9000,')],
    ['a number written as 3e3', (data: string) => data.replace(/"sequence":(\d+)/, '"sequence":$1e0')],
  ])('a payload rewritten in the table with %s is altered content at its position, whole log and stream (exit 1)', async (_how, rewrite) => {
    // given event 20's data rewritten so a parser still reads the hashed values
    const client = new Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ data: string; event_id: string; stream_id: string }>(
      `select data::text as data, event_id, stream_id from ${schema}.events where position = 20`,
    );
    const row = rows[0]!;
    await client.query(`update ${schema}.events set data = $1::json where position = 20`, [rewrite(row.data)]);
    try {
      // when the log and the event's stream are verified
      const log = await run(['audit', 'verify', '--quiet']);
      const stream = await run(['audit', 'verify', '--quiet', '--stream', row.stream_id]);
      const json = await run(['audit', 'verify', '--quiet', '--json']);

      // then both name the break, its event and stream, as the embedded store's verification does
      expect(log.code).toBe(1);
      expect(log.stdout).toContain(`log in PostgreSQL ${url} schema ${schema}: BROKEN at position 20 — content_altered`);
      expect(log.stdout).toContain(`event ${row.event_id} in stream ${row.stream_id}`);
      expect(stream.code).toBe(1);
      expect(stream.stdout).toContain(`stream ${row.stream_id} in PostgreSQL ${url} schema ${schema}: BROKEN at position 20 — content_altered`);
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, eventsChecked: 19, firstBreak: { kind: 'content_altered', position: 20, eventId: row.event_id } });
    } finally {
      await client.query(`update ${schema}.events set data = $1::json where position = 20`, [row.data]);
      await client.end();
    }
    expect((await run(['audit', 'verify', '--quiet'])).code).toBe(0);
  });

  it('an auditor whose role may only read the schema verifies the log and a stream and exports it: nothing is migrated or written', async () => {
    // given a role with USAGE on the schema and SELECT on its tables, nothing more
    const role = `clientele_auditor_${process.pid}`;
    const admin = new Client({ connectionString: url });
    await admin.connect();
    const readOnlyUrl = new URL(url);
    readOnlyUrl.username = role;
    readOnlyUrl.password = '';
    try {
      await admin.query(`drop role if exists ${role}`);
      await admin.query(`create role ${role} login`);
      await admin.query(`grant usage on schema ${schema} to ${role}`);
      await admin.query(`grant select on all tables in schema ${schema} to ${role}`);
      const as = async (args: string[]) => {
        const stdout = new Captured();
        const stderr = new Captured();
        let code = 0;
        const program = new Command('clientele').exitOverride();
        registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: {} });
        await program.parseAsync([...args, '--store', `postgres:${readOnlyUrl.toString()}#${schema}`], { from: 'user' });
        return { code, stdout: stdout.text, stderr: stderr.text };
      };

      // when that role runs the audit commands
      const log = await as(['audit', 'verify']);
      const stream = await as(['audit', 'verify', '--stream', 'customer-c001']);
      const exported = await as(['export', '--out', tmp.file('read-only.ndjson'), '--quiet']);

      // then each succeeds; before, opening the store ran the migrations, refused for that role
      expect(log).toMatchObject({ code: 0, stderr: '' });
      expect(log.stdout).toContain(`schema ${schema}: intact — 60 events checked, last position 60`);
      expect(stream.code).toBe(0);
      expect(stream.stdout).toContain('intact — 10 events checked');
      expect(exported.code).toBe(0);
    } finally {
      await admin.query(`drop owned by ${role}`).catch(() => undefined);
      await admin.query(`drop role if exists ${role}`);
      await admin.end();
    }
  });

  it('verifies the log and a stream, exports, and reports a deleted row', async () => {
    // given the schema as written: verify, stream verify and export succeed
    // the report names the server (without a password) and the schema it judged, as it names an SQLite file
    const verified = (await run(['audit', 'verify'])).stdout;
    expect(verified).toContain(`log in PostgreSQL ${url} schema`);
    expect(verified).toContain(`schema ${schema}: intact — 60 events checked, last position 60`);
    expect((await run(['audit', 'verify', '--stream', 'customer-c001'])).stdout).toContain(`stream customer-c001 in PostgreSQL`);
    expect((await run(['audit', 'verify', '--stream', 'customer-c001'])).stdout).toContain(`schema ${schema}: intact — 10 events checked`);
    const file = tmp.file('all.ndjson');
    expect((await run(['export', '--out', file, '--quiet'])).code).toBe(0);

    // when a row is deleted by hand
    const client = new Client({ connectionString: url });
    await client.connect();
    await client.query(`delete from ${schema}.events where position = 30`);
    await client.end();

    // then the store fails verification at 31, and the export taken before still verifies
    const broken = await run(['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain('BROKEN at position 31 — position_gap');
    const stream = await run(['audit', 'verify', '--stream', 'customer-c000']);
    expect(stream.code).toBe(1);
    expect(stream.stdout).toContain('revision_gap');
    const offline = new Captured();
    const program = new Command('clientele').exitOverride();
    let code = -1;
    registerAuditCommands(program, { stdout: offline, stderr: new Captured(), setExitCode: (c) => (code = c), env: {} });
    await program.parseAsync(['audit', 'verify', '--from-export', file], { from: 'user' });
    expect(code).toBe(0);
  });

  it("verify --read-models and replay hold the log to the anchor of read models kept in PostgreSQL, reading them only", async () => {
    // given a log of its own and read models folded from it into a generation of a read-model schema base
    const logSchema = `${schema}_rmlog`;
    const base = `${schema}_rm`.slice(0, 50);
    const log = await PostgresEventStore.open({ connectionString: url, schema: logSchema, poolSize: 2 });
    const generations = new PostgresReadModelGenerations(url, base);
    try {
      await appendTouchpoints(log, 20, 4);
      const store = await generations.openCurrent();
      const noop: Projection = { name: 'noop', version: 1, tables: [], migrate: async () => undefined, apply: async () => undefined };
      const projector = new Projector(log, new ReadModels(store), [noop]);
      await projector.start();
      await projector.catchUp();
      const generation = generations.nameOf(store)!;
      await store.close();
      const last = (await log.readAll()).at(-1)!;
      const runWith = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
        const stdout = new Captured();
        const stderr = new Captured();
        let code = 0;
        const program = new Command('clientele').exitOverride();
        registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env });
        await program.parseAsync(args, { from: 'user' });
        return { code, stdout: stdout.text, stderr: stderr.text };
      };
      const logAddress = `postgres:${url}#${logSchema}`;

      // when verified against them, by their schema base or their generation, then their anchor holds
      for (const where of [`postgres:${url}#${base}`, `${url}#${generation}`]) {
        const held = await runWith(['audit', 'verify', '--quiet', '--store', logAddress, '--read-models', where]);
        expect({ where, code: held.code }).toEqual({ where, code: 0 });
        expect(held.stdout).toContain(`read models' anchor (PostgreSQL schema ${generation}): position 20 still has hash ${last.hash}`);
      }

      // when the last two events are deleted, then verify finds the cut through them, and replay refuses to replace them
      const client = new Client({ connectionString: url });
      await client.connect();
      await client.query(`delete from ${logSchema}.events where position > 18`);
      await client.end();
      const cut = await runWith(['audit', 'verify', '--quiet', '--json', '--store', logAddress, '--read-models', `postgres:${url}#${base}`]);
      expect(cut.code).toBe(1);
      expect(JSON.parse(cut.stdout)).toMatchObject({ firstBreak: { kind: 'truncated', position: 20 }, readModelsAnchor: { status: 'ends_before', where: `PostgreSQL schema ${generation}` } });
      const env = {
        CLIENTELE_STORE: 'postgres',
        DATABASE_URL: url,
        CLIENTELE_PG_SCHEMA: logSchema,
        CLIENTELE_READ_MODELS_PG_SCHEMA: base,
        CLIENTELE_MASTER_KEY: randomBytes(32).toString('base64'),
        CLIENTELE_DATA_DIR: tmp.file('rm-data'),
      };
      const refused = await runWith(['replay', '--quiet'], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`this log has no event at that position (its head is 18)`);
      expect(refused.stderr).toContain(`\`clientele audit verify --store postgres:${url}#${logSchema} --expect 20:${last.hash}\``);
      expect(refused.stderr).toContain(`The current read models: PostgreSQL schema ${generation}`);
      // and nothing was written: the same generation is current, and no other was made
      const check = new Client({ connectionString: url });
      await check.connect();
      try {
        expect((await check.query(`select schema_name from ${base}.current_generation`)).rows).toEqual([{ schema_name: generation }]);
        expect((await check.query('select nspname from pg_namespace where nspname like $1', [`${base}_g%`])).rows).toEqual([{ nspname: generation }]);
      } finally {
        await check.end();
      }
    } finally {
      await generations.dropAll();
      await log.close();
      const client = new Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema if exists ${logSchema} cascade`);
      await client.end();
    }
  });

  it('reads personal data with the keys the engine keeps in the schema: a person is not shown as erased', async () => {
    // given a customer registered the way the engine stores them on PostgreSQL (key in the schema)
    const keysSchema = `${schema}_keys`;
    const masterKey = randomBytes(32);
    const dataDir = tmp.file('engine-data');
    const storage = await openStorage({ dataDir, store: { kind: 'postgres', url, schema: keysSchema }, masterKey: { kind: 'given', key: masterKey } });
    try {
      await runCommand(storage.store, 'reg-pia', {
        type: 'RegisterProspect',
        data: { customerId: 'pia', source: 'web', personal: { name: 'Pia Keyholder', email: 'pia@example.org' }, occurredAt: '2025-01-10T09:00:00Z' },
      });
    } finally {
      await storage.close();
    }

    // when an auditor exports her data and asks for her profile, from another working directory
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    const env = { CLIENTELE_MASTER_KEY: masterKey.toString('base64'), CLIENTELE_DATA_DIR: tmp.file('cli-data') };
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env });
    await program.parseAsync(['personal-data', 'export', 'pia', '--store', `postgres:${url}#${keysSchema}`], { from: 'user' });
    const profile = new Captured();
    const again = new Command('clientele').exitOverride();
    registerAuditCommands(again, { stdout: profile, stderr: new Captured(), setExitCode: (c) => (code = c), env });
    await again.parseAsync(['as-of', 'pia', '--date', '2025-02-01', '--profile', '--json', '--store', `postgres:${url}#${keysSchema}`], { from: 'user' });

    // then her personal fields are there, decrypted, and no empty key file was made anywhere
    expect(code).toBe(0);
    expect(stderr.text).toBe('customer pia: 1 events\n');
    expect(JSON.parse(stdout.text)).toMatchObject({ type: 'ProspectRegistered', data: { personal: { name: 'Pia Keyholder', email: 'pia@example.org' } } });
    expect(stdout.text).not.toContain('personalDataErased');
    expect(JSON.parse(profile.text)).toMatchObject({ profile: { identity: { name: 'Pia Keyholder', email: 'pia@example.org' } } });
    expect(existsSync(tmp.file('cli-data'))).toBe(false);
    expect(existsSync('data/customer-keys.db')).toBe(false);
  });
  it("a customer's key row deleted from the schema is not an erasure: personal-data export refuses them, verify reports the missing key (exit 1)", async () => {
    // given two customers registered as the engine stores them on PostgreSQL, and one key row deleted with SQL
    const lostSchema = `${schema}_lost`;
    const masterKey = randomBytes(32);
    const storage = await openStorage({ dataDir: tmp.file('lost-data'), store: { kind: 'postgres', url, schema: lostSchema }, masterKey: { kind: 'given', key: masterKey } });
    try {
      for (const id of ['ann', 'bob']) {
        await runCommand(storage.store, `reg-${id}`, {
          type: 'RegisterProspect',
          data: { customerId: id, source: 'web', personal: { email: `${id}@example.org` }, occurredAt: '2025-01-10T09:00:00Z' },
        });
      }
    } finally {
      await storage.close();
    }
    const client = new Client({ connectionString: url });
    await client.connect();
    const { rows } = await client.query<{ position: number; event_id: string }>(`select position::int, event_id from ${lostSchema}.events where stream_id = 'customer-bob'`);
    await client.query(`delete from ${lostSchema}.customer_keys where customer_id = 'bob'`);
    await client.end();
    const bob = rows[0]!;

    // when bob's data is exported and the store verified
    const cli = async (args: string[]) => {
      const stdout = new Captured();
      const stderr = new Captured();
      let code = 0;
      const program = new Command('clientele').exitOverride();
      registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: { CLIENTELE_MASTER_KEY: masterKey.toString('base64') } });
      await program.parseAsync([...args, '--store', `postgres:${url}#${lostSchema}`], { from: 'user' });
      return { code, stdout: stdout.text, stderr: stderr.text };
    };
    const access = await cli(['personal-data', 'export', 'bob']);
    const other = await cli(['personal-data', 'export', 'ann']);
    const verify = await cli(['audit', 'verify', '--quiet']);
    const json = await cli(['audit', 'verify', '--quiet', '--json']);

    // then bob is refused, not answered as erased; ann reads; verify names bob's missing key
    expect(access).toMatchObject({ code: 1, stdout: '' });
    expect(access.stderr).toContain(`error: customer bob: 1 of their events holds personal data encrypted with a key that is missing (no customer_keys row for them in schema ${lostSchema}`);
    expect(other.code).toBe(0);
    expect(other.stdout).toContain('"email":"ann@example.org"');
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`schema ${lostSchema}: intact — 2 events checked`);
    expect(verify.stdout).toContain(`customer keys in schema ${lostSchema}: MISSING for 1 customer — key_missing`);
    expect(verify.stdout).toContain(`customer bob in stream customer-bob: 1 event, the first at position ${bob.position}, event ${bob.event_id}`);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, customerKeys: { missingCount: 1, missing: [{ customerId: 'bob' }] } });
  });
});
