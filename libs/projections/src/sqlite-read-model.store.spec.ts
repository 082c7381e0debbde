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
});
