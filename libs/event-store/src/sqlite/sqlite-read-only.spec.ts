import { chmodSync, copyFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { appendTouchpoints, asUnprivilegedReader, idFrom, tempDir } from '@clientele/testing';
import type { NewEvent } from '../event-store.port';
import { verifyChain } from '../verify-chain';
import { readSqliteLogRaw } from './sqlite-raw-log';
import { openSqliteReadOnly, StoreChangedWhileReadError, StoreNeedsWriteAccessError } from './sqlite-read-only';
import { SqliteEventStore } from './sqlite.event-store';

/**
 * A store file read as evidence: nothing may be written to it or beside it, whether its folder can
 * be written or not, and events committed in a write-ahead log beside it must never be skipped.
 */
describe('reading an embedded store file without writing to it or its folder', () => {
  const tmp = tempDir('clientele-read-only-');
  const pristine = tmp.file('pristine.db');
  let folders = 0;

  beforeAll(async () => {
    // the spec's folder must be open to the unprivileged reader on the way to the evidence
    chmodSync(tmp.dir, 0o755);
    const store = new SqliteEventStore({ file: pristine, durability: 'normal' });
    await appendTouchpoints(store, 50);
    await store.close();
  });

  afterAll(() => {
    for (const name of readdirSync(tmp.dir)) chmodSync(tmp.file(name), 0o755);
    tmp.remove();
  });

  /** a folder holding a copy of the store (and of its write-ahead log when `wal` is given) */
  function evidenceFolder(files: Record<string, string> = { 'clientele.db': pristine }): { dir: string; file: string } {
    const dir = tmp.file(`evidence-${++folders}`);
    mkdirSync(dir);
    for (const [name, from] of Object.entries(files)) copyFileSync(from, `${dir}/${name}`);
    return { dir, file: `${dir}/clientele.db` };
  }

  function readOnly(dir: string): void {
    for (const name of readdirSync(dir)) chmodSync(`${dir}/${name}`, 0o444);
    chmodSync(dir, 0o555);
  }

  async function eventsIn(file: string): Promise<number> {
    const report = await verifyChain(readSqliteLogRaw(file));
    expect(report.ok).toBe(true);
    return report.eventsChecked;
  }

  const tenLateEvents = (): NewEvent[] =>
    Array.from({ length: 10 }, (_, i) => ({
      id: idFrom(`late-${i}`),
      type: 'TouchpointRecorded',
      data: { customerId: 'late', channel: 'email', direction: 'outbound', kind: 'newsletter', sequence: i, occurredAt: '2026-02-01T00:00:00.000Z' },
      metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 },
    }));

  /** a store whose last events sit in its write-ahead log: copied with it while a writer holds it open */
  async function withCommittedLog(): Promise<{ db: string; wal: string }> {
    const live = tmp.file(`live-${++folders}.db`);
    copyFileSync(pristine, live);
    const store = new SqliteEventStore({ file: live, durability: 'full', writer: 'inline' });
    await store.appendToStream('customer-late', tenLateEvents());
    const copy = { db: tmp.file(`live-${folders}-copy.db`), wal: tmp.file(`live-${folders}-copy.db-wal`) };
    copyFileSync(live, copy.db);
    copyFileSync(`${live}-wal`, copy.wal);
    await store.close();
    expect(statSync(copy.wal).size).toBeGreaterThan(0);
    return copy;
  }

  it('a store closed cleanly is read immutable in a writable folder: every event, and no file appears beside it', async () => {
    const { dir, file } = evidenceFolder();
    const before = statSync(file);

    const opened = openSqliteReadOnly(file);
    expect(opened.mode).toBe('immutable');
    opened.close();
    expect(await eventsIn(file)).toBe(50);

    expect(readdirSync(dir)).toEqual(['clientele.db']);
    expect(statSync(file).mtimeMs).toBe(before.mtimeMs);
  });

  it('a store in a read-only folder, read as a user who may not write there, verifies and nothing appears beside it', async () => {
    const { dir, file } = evidenceFolder();
    readOnly(dir);

    const checked = await asUnprivilegedReader(() => eventsIn(file));

    expect(checked).toBe(50);
    expect(readdirSync(dir)).toEqual(['clientele.db']);
  });

  it('a store whose write-ahead log holds committed events is read through it, never immutable (which would skip them)', async () => {
    const copy = await withCommittedLog();
    const { dir, file } = evidenceFolder({ 'clientele.db': copy.db, 'clientele.db-wal': copy.wal });
    // the file alone holds the 50 events written before; the log the 10 after them
    expect(await eventsIn(evidenceFolder({ 'clientele.db': copy.db }).file)).toBe(50);

    const opened = openSqliteReadOnly(file);
    expect(opened.mode).toBe('wal');
    opened.close();
    expect(await eventsIn(file)).toBe(60);
    expect(readdirSync(dir)).toContain('clientele.db-wal');
  });

  it('in a read-only folder, such a log is refused with what to do, not read as "not an SQLite database", and nothing is written', async () => {
    const copy = await withCommittedLog();
    const { dir, file } = evidenceFolder({ 'clientele.db': copy.db, 'clientele.db-wal': copy.wal });
    readOnly(dir);

    const error = await asUnprivilegedReader(async () => {
      try {
        openSqliteReadOnly(file);
      } catch (caught) {
        return caught;
      }
      return undefined;
    });

    expect(error).toBeInstanceOf(StoreNeedsWriteAccessError);
    expect((error as Error).message).toContain(`${file}-wal holds ${statSync(copy.wal).size} bytes of write-ahead log`);
    expect((error as Error).message).toContain('Copy the folder (clientele.db together with clientele.db-wal) somewhere writable');
    expect(readdirSync(dir).sort()).toEqual(['clientele.db', 'clientele.db-wal']);
  });

  it('an empty write-ahead log and a stale index hold no event: the file alone is read', async () => {
    const { dir, file } = evidenceFolder();
    // a log truncated to nothing (as a checkpoint leaves it) and an index left by a process that died
    writeFileSync(`${dir}/clientele.db-wal`, '');
    writeFileSync(`${dir}/clientele.db-shm`, Buffer.alloc(32_768));
    readOnly(dir);

    expect(await asUnprivilegedReader(() => eventsIn(file))).toBe(50);
    expect(readdirSync(dir).sort()).toEqual(['clientele.db', 'clientele.db-shm', 'clientele.db-wal']);
  });

  it('a file written by another process while it is read without locks fails the read instead of mixing two states', async () => {
    const { file } = evidenceFolder();
    const reader = new SqliteEventStore({ file, readOnly: true });
    try {
      expect(await reader.headPosition()).toBe(50);
      // an engine opens the store, writes, and folds its log into the file when it closes
      const writer = new SqliteEventStore({ file, durability: 'normal', writer: 'inline' });
      await writer.appendToStream('customer-late', tenLateEvents());
      await writer.close();

      await expect(reader.readAll({ maxCount: 10 })).rejects.toBeInstanceOf(StoreChangedWhileReadError);
    } finally {
      await reader.close();
    }
  });

  it('a store opened read-only refuses every write', async () => {
    const { file } = evidenceFolder();
    const reader = new SqliteEventStore({ file, readOnly: true });
    try {
      await expect(
        reader.appendToStream('customer-x', [{ id: 'e-1', type: 'TouchpointRecorded', data: {}, metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 } }]),
      ).rejects.toThrow('was opened read-only');
      expect(await reader.headPosition()).toBe(50);
    } finally {
      await reader.close();
    }
  });
});
