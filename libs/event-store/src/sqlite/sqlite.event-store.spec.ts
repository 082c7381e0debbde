import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEventStoreContract } from '@clientele/testing';
import { SqliteEventStore } from './sqlite.event-store';

function tempFile(): { file: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'clientele-sqlite-store-'));
  return { file: join(dir, 'events.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

runEventStoreContract('SQLite', async () => {
  const { file, remove } = tempFile();
  const store = new SqliteEventStore({ file });
  return {
    store,
    cleanup: async () => {
      await store.close();
      remove();
    },
  };
});
