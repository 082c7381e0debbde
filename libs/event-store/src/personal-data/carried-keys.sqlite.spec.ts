import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { tempDir } from '@clientele/testing';
import { SqliteEventStore } from '../sqlite/sqlite.event-store';
import { carriedKeysContract } from './carried-keys.contract';
import { SqliteCustomerKeyStore } from './customer-keys';

function countKeyRows(file: string, customerId: string): number {
  const db = new Database(file, { readonly: true });
  try {
    const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customer_keys'").get();
    if (!table) return 0;
    return (db.prepare('SELECT count(*) AS n FROM customer_keys WHERE customer_id = ?').get(customerId) as { n: number }).n;
  } finally {
    db.close();
  }
}

describe.each([
  ['the writer thread', 'thread'],
  ['the inline writer', 'inline'],
] as const)('customer keys carried by the embedded store (%s)', (_name, writer) => {
  carriedKeysContract(async () => {
    const tmp = tempDir('clientele-carried-');
    const file = tmp.file('clientele.db');
    const master = randomBytes(32);
    return {
      master,
      open: async () => {
        const carrier = new SqliteEventStore({ file, durability: 'normal', writer });
        return { carrier, keys: new SqliteCustomerKeyStore(file, master, carrier) };
      },
      openKeyWriter: async () => new SqliteCustomerKeyStore(file, master),
      keyRows: async (customerId) => countKeyRows(file, customerId),
      cleanup: async () => tmp.remove(),
    };
  });
});
