import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { tempDir } from '@clientele/testing';
import { CustomerKeyConflictError, sqliteCustomerKeyTable, type WrappedKeyRow } from './customer-key-rows';
import { SqliteCustomerKeyStore } from './customer-keys';

describe('customer key rows between SQLite files', () => {
  const tmp = tempDir('clientele-key-rows-');
  const master = randomBytes(32);
  let files = 0;
  const file = (): string => tmp.file(`k${++files}.db`);

  afterAll(() => tmp.remove());

  /** A key file as the engine writes it: keys created on first use, some destroyed. */
  async function keysFile(live: string[], erased: string[]): Promise<string> {
    const path = file();
    const store = new SqliteCustomerKeyStore(path, master);
    for (const id of [...live, ...erased]) await store.keyFor(id);
    for (const id of erased) await store.destroyKey(id, '2026-03-01T00:00:00.000Z');
    await store.close();
    return path;
  }

  it('copies wrapped keys as they are, so the same master key opens them on the target', async () => {
    // given a source with two live keys and one erased
    const sourcePath = await keysFile(['ann', 'bob'], ['cy']);
    const source = new SqliteCustomerKeyStore(sourcePath, master);
    const annKey = await source.keyFor('ann');
    await source.close();

    // when its rows are merged into an empty file
    const from = sqliteCustomerKeyTable(sourcePath, { create: false });
    const targetPath = file();
    const to = sqliteCustomerKeyTable(targetPath, { create: true });
    const result = await to.mergeRows(await from.readRows());
    const again = await to.mergeRows(await from.readRows());
    await from.close();
    await to.close();

    // then every row arrived once, and the keys read the same through the engine's key store
    expect(result).toEqual({ added: 3, addedErased: 1, erased: 0, unchanged: 0 });
    expect(again).toEqual({ added: 0, addedErased: 0, erased: 0, unchanged: 3 });
    const target = new SqliteCustomerKeyStore(targetPath, master);
    expect(await target.existingKey('ann')).toEqual(annKey);
    expect(await target.existingKey('cy')).toBe('erased');
    await target.close();
  });

  it('lets erasure win in both directions', async () => {
    // given ann erased on the source but live on the target, and bob the other way round
    const sourcePath = await keysFile(['bob'], ['ann']);
    const targetPath = await keysFile(['ann'], ['bob']);
    const from = sqliteCustomerKeyTable(sourcePath, { create: false });
    const to = sqliteCustomerKeyTable(targetPath, { create: true });

    // when the source's rows are merged into the target
    const result = await to.mergeRows(await from.readRows());
    await from.close();
    await to.close();

    // then ann's key is destroyed on the target and bob's stays destroyed
    expect(result).toEqual({ added: 0, addedErased: 0, erased: 1, unchanged: 1 });
    const target = new SqliteCustomerKeyStore(targetPath, master);
    expect(await target.existingKey('ann')).toBe('erased');
    expect(await target.existingKey('bob')).toBe('erased');
    await target.close();
  });

  it('refuses two different live keys for one customer and writes none of the batch', async () => {
    // given a target that created its own key for ann
    const targetPath = await keysFile(['ann'], []);
    const to = sqliteCustomerKeyTable(targetPath, { create: true });
    const rows: WrappedKeyRow[] = [
      { customerId: 'aaron', wrappedKey: randomBytes(60), erasedAt: null },
      { customerId: 'ann', wrappedKey: randomBytes(60), erasedAt: null },
    ];

    // when rows with another key for ann arrive, then the merge is refused and aaron was not added
    await expect(to.mergeRows(rows)).rejects.toThrow(CustomerKeyConflictError);
    expect((await to.readRows()).map((r) => r.customerId)).toEqual(['ann']);
    await to.close();
  });

  it('reads a source without a keys table as no rows, and leaves it without one', async () => {
    // given an SQLite file with no customer_keys table
    const bare = tmp.file('bare.db');
    const setup = new Database(bare);
    setup.exec('CREATE TABLE other (x)');
    setup.close();

    // when it is read as a source
    const from = sqliteCustomerKeyTable(bare, { create: false });
    const rows = await from.readRows();
    await from.close();

    // then it has no rows and still no table
    expect(rows).toEqual([]);
    const check = new Database(bare);
    expect(check.prepare("SELECT name FROM sqlite_master WHERE name = 'customer_keys'").get()).toBeUndefined();
    check.close();
  });
});
