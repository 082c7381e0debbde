import Database from 'better-sqlite3';
import { Command, CommanderError } from 'commander';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { DomainCommand } from '@clientele/domain';
import { canonicalJson, chainHash, PersonalDataEventStore, readSqliteLogRaw, SqliteCustomerKeyStore, SqliteEventStore } from '@clientele/event-store';
import { allProjections, Projector, ReadModels, SqliteReadModelGenerations } from '@clientele/projections';
import { runCommand, tempDir } from '@clientele/testing';
import { registerAuditCommands } from './audit.commands';

class Captured extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const line = (price: number) => ({ sku: `sku-${price}`, category: price > 2000 ? 'vinyl' : 'cd', quantity: 1, unitPriceMinor: price, unitCostMinor: 500 });

describe('clientele audit replay and clientele replay', () => {
  const tmp = tempDir('clientele-replay-cli-');
  const dbFile = tmp.file('clientele.db');
  const readModelsDir = join(tmp.dir, 'read-models');
  const masterKey = randomBytes(32).toString('base64');
  const env = { CLIENTELE_MASTER_KEY: masterKey, CLIENTELE_STORE: 'sqlite', CLIENTELE_DATA_DIR: tmp.dir, CLIENTELE_DURABILITY: 'normal' };

  async function run(args: string[], runEnv: NodeJS.ProcessEnv = env): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: runEnv });
    try {
      await program.parseAsync(args, { from: 'user' });
    } catch (error) {
      if (!(error instanceof CommanderError)) throw error;
      code = error.exitCode;
    }
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  beforeAll(async () => {
    // given a log written as the engine writes it (personal data sealed) and live read models its projector built
    const store = new PersonalDataEventStore(new SqliteEventStore({ file: dbFile, durability: 'normal' }), new SqliteCustomerKeyStore(dbFile, Buffer.from(masterKey, 'base64')));
    for (let i = 0; i < 25; i++) {
      const id = `c${String(i).padStart(2, '0')}`;
      const commands: [string, DomainCommand][] = [
        [`reg-${id}`, { type: 'RegisterProspect', data: { customerId: id, source: 'web', personal: { name: `Person ${i}`, email: `${id}@example.org` }, occurredAt: '2025-01-02T09:00:00Z' } }],
      ];
      for (let k = 0; k < i % 4; k++) {
        commands.push([`buy-${id}-${k}`, { type: 'RecordPurchase', data: { customerId: id, orderId: `${id}-o${k}`, lines: [line(1000 + 700 * k + i)], occurredAt: `2025-0${k + 2}-1${k}T10:00:00Z` } }]);
      }
      for (const [commandId, command] of commands) await runCommand(store, commandId, command);
    }
    const live = new ReadModels(await new SqliteReadModelGenerations(readModelsDir).openCurrent());
    const projector = new Projector(store, live, allProjections(), { batchSize: 9 });
    await projector.start();
    await projector.catchUp();
    // an erasure after the live fold: the live profile saw the name, a replay never will; both end erased alike
    await runCommand(store, 'erase-c03', { type: 'EraseCustomerPersonalData', data: { customerId: 'c03', occurredAt: '2025-06-01T00:00:00Z' } });
    await projector.catchUp();
    await live.close();
    await store.close();
  });
  afterAll(() => tmp.remove());

  const liveFile = () => join(readModelsDir, readFileSync(join(readModelsDir, 'CURRENT'), 'utf8').trim());

  it('audit replay: the live read models match a replay of the log; exit 0', async () => {
    const result = await run(['audit', 'replay', '--quiet']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const p of allProjections()) expect(result.stdout).toContain(`${p.name}: `);
    expect(result.stdout).toContain(`all ${allProjections().length} read models match the log`);
    const json = JSON.parse((await run(['audit', 'replay', '--quiet', '--json'])).stdout);
    expect(json.ok).toBe(true);
    for (const r of json.readModels) expect(r.liveDigest).toBe(r.replayedDigest);
  });

  it('audit replay: a live row altered with raw SQL is reported by table and key; exit 1; repaired, it matches again', async () => {
    const db = new Database(liveFile());
    const before = db.prepare("SELECT revenue_minor FROM profiles WHERE customer_id = 'c07'").get() as { revenue_minor: number };
    db.prepare("UPDATE profiles SET revenue_minor = 1 WHERE customer_id = 'c07'").run();
    db.close();
    try {
      const result = await run(['audit', 'replay', '--quiet']);
      expect(result.code).toBe(1);
      expect(result.stdout).toMatch(/profiles: [\s\S]*MISMATCH/);
      expect(result.stdout).toContain('first differing record: table profiles, key {"customer_id":"c07"}');
      expect(result.stdout).toMatch(/live {2}.*"revenue_minor":1[,}]/);
      expect(result.stdout).toContain(`"revenue_minor":${before.revenue_minor}`);
      expect(result.stdout).toContain(`1 of ${allProjections().length} read models differ from the log`);
    } finally {
      const repair = new Database(liveFile());
      repair.prepare("UPDATE profiles SET revenue_minor = ? WHERE customer_id = 'c07'").run(before.revenue_minor);
      repair.close();
    }
    expect((await run(['audit', 'replay', '--quiet'])).code).toBe(0);
  });

  it('audit replay on a log cut below the live checkpoints says the log lost its end (exit 1), instead of blaming the read models', async () => {
    // given a copy of the data directory whose log lost its last three events
    const copy = mkdtempSync(join(tmpdir(), 'clientele-replay-cut-'));
    try {
      cpSync(tmp.dir, copy, { recursive: true });
      const db = new Database(join(copy, 'clientele.db'));
      const head = (db.prepare('SELECT MAX(position) AS p FROM events').get() as { p: number }).p;
      db.prepare('DELETE FROM events WHERE position > ?').run(head - 3);
      db.close();

      const result = await run(['audit', 'replay', '--quiet'], { ...env, CLIENTELE_DATA_DIR: copy });
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`LOG CUT: the log ends at position ${head - 3}, but the live read models folded it up to ${head}`);
      expect(result.stdout).not.toContain('MISMATCH');
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  /** a copy of the data directory (log, keys, read models) whose log `edit` changed */
  function editedCopy(edit: (db: Database.Database) => void): string {
    const copy = mkdtempSync(join(tmpdir(), 'clientele-replay-edited-'));
    cpSync(tmp.dir, copy, { recursive: true });
    const db = new Database(join(copy, 'clientele.db'));
    edit(db);
    db.close();
    return copy;
  }
  /** the position and hash of the last event the current read models of `dataDir` folded */
  function anchorOf(dataDir: string): { position: number; hash: string } {
    const dir = join(dataDir, 'read-models');
    const db = new Database(join(dir, readFileSync(join(dir, 'CURRENT'), 'utf8').trim()), { readonly: true });
    try {
      return db.prepare('SELECT position, hash FROM projection_log_anchor WHERE id = 1').get() as { position: number; hash: string };
    } finally {
      db.close();
    }
  }
  const readModelFiles = (dataDir: string) => ({ current: readFileSync(join(dataDir, 'read-models', 'CURRENT'), 'utf8'), files: readdirSync(join(dataDir, 'read-models')).sort() });

  it('replay on a log cut after the read models folded it refuses, writing nothing, with the check to run; --accept-other-log goes ahead and says so', async () => {
    // given a copy of the data directory whose log lost its last three events after the read models folded it
    const anchor = anchorOf(tmp.dir);
    const copy = editedCopy((db) => db.prepare('DELETE FROM events WHERE position > ?').run(anchor.position - 3));
    const copyEnv = { ...env, CLIENTELE_DATA_DIR: copy };
    try {
      const before = readModelFiles(copy);

      // when it is replayed, then it is refused: both causes named, the command that checks, and what a replay would erase
      const refused = await run(['replay', '--quiet'], copyEnv);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toContain(
        `error: replay refused, nothing was written: the read models do not match this log: the last event they folded, at position ${anchor.position}, had hash ${anchor.hash}, ` +
          `and this log has no event at that position (its head is ${anchor.position - 3}). Either they were folded from another log, or this log was altered or cut after they folded it.`,
      );
      expect(refused.stderr).toContain('A replay replaces these read models, the only witness of the log they folded');
      expect(refused.stderr).toContain('`clientele replay --accept-other-log`');
      expect(refused.stderr).toContain(`The current read models: ${join(copy, 'read-models', before.current.trim())}`);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      // and nothing was written: no new generation, the same one current
      expect(readModelFiles(copy)).toEqual(before);

      // and the command it gives finds the cut
      const command = /`clientele (audit verify [^`]+)`/.exec(refused.stderr)![1]!;
      expect(command).toBe(`audit verify --store sqlite:${join(copy, 'clientele.db')} --expect ${anchor.position}:${anchor.hash}`);
      const verified = await run([...command.split(' '), '--quiet'], copyEnv);
      expect(verified.code).toBe(1);
      expect(verified.stdout).toContain(`BROKEN at position ${anchor.position} — truncated`);

      // when the operator accepts it, then the replay goes ahead, saying what it replaces
      const accepted = await run(['replay', '--quiet', '--accept-other-log'], copyEnv);
      expect(accepted.code).toBe(0);
      expect(accepted.stderr).toContain(`replay: --accept-other-log: replacing read models that do not match this log (${join(copy, 'read-models', before.current.trim())}; position ${anchor.position}, hash ${anchor.hash})`);
      expect(readModelFiles(copy).current).not.toBe(before.current);
      // and the new generation is anchored in this log: its last event, so a replay after it is no longer refused
      const cutHead = new Database(join(copy, 'clientele.db'), { readonly: true });
      const head = cutHead.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get();
      cutHead.close();
      expect(anchorOf(copy)).toEqual(head);
      expect((await run(['replay', '--quiet'], copyEnv)).code).toBe(0);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('replay on a log rewritten and re-chained after the read models folded it refuses, naming the hash the log has now; audit replay says the log differs', async () => {
    // given a copy whose second event was changed and every later hash recomputed, so the chain alone holds
    const anchor = anchorOf(tmp.dir);
    const copy = editedCopy(() => undefined);
    const file = join(copy, 'clientele.db');
    const stored = [];
    for await (const e of readSqliteLogRaw(file)) stored.push(e);
    const db = new Database(file);
    let prev = stored[0]!.hash;
    for (const e of stored.slice(1)) {
      const data = e.position === 2 ? { ...e.data, forged: true } : e.data;
      const hash = chainHash(prev, { ...e, data });
      db.prepare('UPDATE events SET data = ?, hash = ?, prev_hash = ? WHERE position = ?').run(canonicalJson(data), hash, prev, e.position);
      prev = hash;
    }
    db.close();
    const copyEnv = { ...env, CLIENTELE_DATA_DIR: copy };
    try {
      expect((await run(['audit', 'verify', '--quiet'], copyEnv)).code).toBe(0);
      const before = readModelFiles(copy);
      const refused = await run(['replay', '--quiet', '--json'], copyEnv);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`at position ${anchor.position}, had hash ${anchor.hash}, and this log has hash ${prev} there. Either they were folded from another log, or this log was altered`);
      expect(readModelFiles(copy)).toEqual(before);

      // and audit replay, whose digests cannot see a field no read model folds, says the log differs where they stopped (exit 1)
      const audit = await run(['audit', 'replay', '--quiet'], copyEnv);
      expect(audit.code).toBe(1);
      expect(audit.stdout).toContain(`LOG DIFFERS: the read models do not match this log: the last event they folded, at position ${anchor.position}, had hash ${anchor.hash}, and this log has hash ${prev} there.`);
      expect(audit.stdout).not.toContain('all 3 read models match');
      const json = JSON.parse((await run(['audit', 'replay', '--quiet', '--json'], copyEnv)).stdout);
      expect(json).toMatchObject({ ok: false, readModelsAnchor: anchor, logHash: prev });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('replay: twice gives the same digests; the new generation becomes current and still matches the log', async () => {
    const first = await run(['replay', '--quiet', '--json']);
    const second = await run(['replay', '--quiet', '--json', '--batch', '7']);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    const digests = (out: string) => (JSON.parse(out).readModels as { name: string; digest: string }[]).map((r) => [r.name, r.digest]);
    expect(digests(first.stdout)).toEqual(digests(second.stdout));
    expect(digests(first.stdout)).toHaveLength(allProjections().length);
    // rebuild instances that keep one customer at a time write out and read back all along: the same read models
    const third = await run(['replay', '--quiet', '--json', '--batch', '5'], { ...env, CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: '1' });
    expect(third.code).toBe(0);
    expect(digests(third.stdout)).toEqual(digests(first.stdout));
    const refused = await run(['replay', '--quiet', '--json'], { ...env, CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: '0' });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: expected a whole number ≥ 1, got "0"');
    expect(liveFile()).toMatch(/read-models-4\.sqlite$/);
    const audit = JSON.parse((await run(['audit', 'replay', '--quiet', '--json'])).stdout);
    expect(audit.readModels.map((r: { replayedDigest: string; liveDigest: string }) => r.liveDigest)).toEqual(digests(first.stdout).map(([, d]) => d));
  });

  it('audit replay without live read models exits 2 and says why', async () => {
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: { ...env, CLIENTELE_DATA_DIR: tmp.file('empty') } });
    await program.parseAsync(['audit', 'replay'], { from: 'user' });
    expect(code).toBe(2);
    expect(stderr.text).toMatch(/no live read models/);
  });
  it('replay with a data directory that holds no store refuses, and creates nothing there (no store, no master key, no read models)', async () => {
    const typo = tmp.file('no-such-dir');
    const stdout = new Captured();
    const stderr = new Captured();
    let code = 0;
    const program = new Command('clientele').exitOverride();
    const { CLIENTELE_MASTER_KEY: _key, ...withoutKey } = env;
    registerAuditCommands(program, { stdout, stderr, setExitCode: (c) => (code = c), env: { ...withoutKey, CLIENTELE_DATA_DIR: typo } });
    await program.parseAsync(['replay', '--quiet'], { from: 'user' });
    expect(code).toBe(1);
    expect(stderr.text).toContain(`CLIENTELE_DATA_DIR: no store at ${join(typo, 'clientele.db')}`);
    expect(existsSync(typo)).toBe(false);
  });
});
