import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteReadModelStore } from './sqlite-read-model.store';

describe('SqliteReadModelStore', () => {
  it('commits a transaction whole, and rolls it back whole when the work fails', async () => {
    const store = new SqliteReadModelStore(':memory:');
    await store.transaction(async (tx) => {
      await tx.exec('CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT NOT NULL)');
      await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['a', 1]);
    });
    await expect(
      store.transaction(async (tx) => {
        await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['b', 2]);
        throw new Error('crash mid-batch');
      }),
    ).rejects.toThrow('crash mid-batch');
    expect(await store.all('SELECT k, n FROM t ORDER BY k')).toEqual([{ k: 'a', n: 1 }]);
    await store.close();
  });

  it('given a bulk load, then secondary indexes wait for its end, rollbacks still work, and the file is back in WAL mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-bulk-'));
    const store = new SqliteReadModelStore(join(dir, 'fresh.sqlite'));
    const indexes = () => store.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name");
    try {
      await store.beginBulkLoad();
      expect(await store.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'memory' });
      await store.transaction(async (tx) => {
        await tx.exec(`CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, n BIGINT NOT NULL);
          CREATE INDEX IF NOT EXISTS t_n ON t (n, k);
          CREATE UNIQUE INDEX IF NOT EXISTS t_n_unique ON t (n)`);
        await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['a', 1]);
      });
      expect(await indexes()).toEqual([{ name: 't_n_unique' }]);
      await expect(
        store.transaction(async (tx) => {
          await tx.run('INSERT INTO t (k, n) VALUES (?, ?)', ['b', 2]);
          throw new Error('crash mid-batch');
        }),
      ).rejects.toThrow('crash mid-batch');

      await store.endBulkLoad();

      expect(await indexes()).toEqual([{ name: 't_n' }, { name: 't_n_unique' }]);
      expect(await store.get('PRAGMA journal_mode')).toEqual({ journal_mode: 'wal' });
      expect(await store.all('SELECT k, n FROM t ORDER BY k')).toEqual([{ k: 'a', n: 1 }]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('given a bulk load whose file outgrows the in-memory journal bound, then the journal moves to a file, rollbacks still work, and the end leaves only the store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-bulk-journal-'));
    const file = join(dir, 'fresh.sqlite');
    const store = new SqliteReadModelStore(file, { bulkJournalInMemoryUpTo: 64 * 1024 });
    const journalMode = async () => (await store.get<{ journal_mode: string }>('PRAGMA journal_mode'))?.journal_mode;
    const rows = (from: number, count: number) => Array.from({ length: count }, (_, i) => [`k-${from + i}`, 'x'.repeat(200)]);
    const insert = (tx: Parameters<Parameters<SqliteReadModelStore['transaction']>[0]>[0], batch: string[][]) =>
      Promise.all(batch.map((r) => tx.run('INSERT INTO t (k, v) VALUES (?, ?)', r)));
    try {
      await store.beginBulkLoad();
      await store.transaction(async (tx) => {
        await tx.exec('CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
        await insert(tx, rows(0, 100));
      });
      // about 25 KB: the journal stays in memory
      expect(await journalMode()).toBe('memory');
      await store.transaction((tx) => insert(tx, rows(100, 400)));
      // about 125 KB, past the bound of 64 KB
      expect(await journalMode()).toBe('truncate');
      await expect(
        store.transaction(async (tx) => {
          await tx.run('UPDATE t SET v = ?', ['changed']);
          await insert(tx, rows(500, 400));
          throw new Error('crash mid-batch');
        }),
      ).rejects.toThrow('crash mid-batch');
      expect(await store.get('SELECT COUNT(*) AS n, MIN(v) = MAX(v) AND MIN(v) = ? AS same FROM t', ['x'.repeat(200)])).toEqual({ n: 500, same: 1 });

      await store.endBulkLoad();

      expect(await journalMode()).toBe('wal');
      expect(existsSync(`${file}-journal`)).toBe(false);
      expect(readdirSync(dir).filter((f) => !f.startsWith('fresh.sqlite-wal') && !f.startsWith('fresh.sqlite-shm'))).toEqual(['fresh.sqlite']);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
