import { mkdtempSync, rmSync } from 'node:fs';
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
});
