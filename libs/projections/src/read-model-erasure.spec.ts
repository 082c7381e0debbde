import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StoredEvent } from '@clientele/event-store';
import { inMemoryStoreOf, StoredEventLog } from '@clientele/testing';
import Database from 'better-sqlite3';
import { ProfilesProjection } from './profiles.projection';
import { Projector } from './projector';
import { ReadModels } from './read-models';
import { SqliteReadModelStore } from './sqlite-read-model.store';

const EMAIL = 'ada.lovelace@example.test';

/** whether the bytes of `text` are anywhere in the store's file or its write-ahead log */
function onDisk(file: string, text: string): { file: boolean; wal: boolean } {
  const holds = (path: string) => existsSync(path) && readFileSync(path).includes(Buffer.from(text));
  return { file: holds(file), wal: holds(`${file}-wal`) };
}

describe('erased personal data on the read models’ disk', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-erasure-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('given a profile with an e-mail, when the erasure is projected live, then neither the file nor its WAL holds the e-mail', async () => {
    const log = new StoredEventLog();
    // Ada first, then others on the same pages: there the erased row's new version is not written
    // over its old bytes, so only secure delete removes them (alone, a row's new version covers them)
    for (let i = 0; i < 20; i++) {
      const [customerId, name, email] = i === 0 ? ['ada', 'Ada Lovelace', EMAIL] : [`c${i}`, `Customer ${i}`, `customer${i}@example.test`];
      log.append('ProspectRegistered', { customerId, source: 'web', personal: { name, email, birthday: '1815-12-10' }, implicit: false });
    }
    const events = await inMemoryStoreOf(log.events);
    const file = join(dir, 'read-models-1.sqlite');
    const store = new SqliteReadModelStore(file);
    let erasureApplied!: () => void;
    const applied = new Promise<void>((resolve) => (erasureApplied = resolve));
    const projector = new Projector(events, new ReadModels(store), [new ProfilesProjection()], {
      onBatchApplied: (batch) => {
        if (batch.some((e) => e.type === 'PersonalDataErased')) erasureApplied();
      },
    });
    try {
      const running = projector.run();
      while ((await projector.status())[0]?.position !== 20) await new Promise((resolve) => setTimeout(resolve, 5));
      // the check below can see the e-mail when it is there
      expect(onDisk(file, EMAIL)).toEqual({ file: false, wal: true });

      const erasure: StoredEvent = log.append('PersonalDataErased', { customerId: 'ada' });
      await events.appendToStream(erasure.streamId, [{ id: erasure.id, type: erasure.type, data: erasure.data, metadata: erasure.metadata }]);
      await applied;

      expect(await store.get('SELECT erased FROM profiles WHERE customer_id = ?', ['ada'])).toEqual({ erased: 1 });
      expect(onDisk(file, EMAIL)).toEqual({ file: false, wal: false });
      // what was not erased is still there, in the file now
      expect(onDisk(file, 'customer8@example.test')).toEqual({ file: true, wal: false });
      await projector.stop();
      await running;
    } finally {
      await store.close();
    }
  });

  it('given another connection reading the file, then the purge does not wait for it, and runs after the next commit', async () => {
    const file = join(dir, 'read-models-1.sqlite');
    const store = new SqliteReadModelStore(file);
    const reader = new Database(file);
    try {
      await store.transaction((tx) => tx.exec('CREATE TABLE t (k TEXT PRIMARY KEY)'));
      await store.transaction(async (tx) => void (await tx.run('INSERT INTO t (k) VALUES (?)', [EMAIL])));
      reader.exec('BEGIN');
      reader.prepare('SELECT count(*) FROM t').get();
      await store.transaction(async (tx) => void (await tx.run('DELETE FROM t')));

      const started = Date.now();
      await store.purgeOldPages();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(onDisk(file, EMAIL)).toEqual({ file: false, wal: true });

      reader.exec('COMMIT');
      await store.transaction(async (tx) => void (await tx.run('INSERT INTO t (k) VALUES (?)', ['someone else'])));
      expect(statSync(`${file}-wal`).size).toBe(0);
      expect(onDisk(file, EMAIL)).toEqual({ file: false, wal: false });
    } finally {
      reader.close();
      await store.close();
    }
  });

  it('given a rebuild into a fresh store, then old pages are never purged during its bulk load', async () => {
    const log = new StoredEventLog();
    log.append('ProspectRegistered', { customerId: 'ada', source: 'web', personal: { email: EMAIL }, implicit: false });
    log.append('PersonalDataErased', { customerId: 'ada' });
    const live = new SqliteReadModelStore(join(dir, 'read-models-1.sqlite'));
    const calls: string[] = [];
    class WatchedStore extends SqliteReadModelStore {
      override async beginBulkLoad(): Promise<void> {
        calls.push('begin bulk load');
        await super.beginBulkLoad();
      }
      override async endBulkLoad(): Promise<void> {
        calls.push('end bulk load');
        await super.endBulkLoad();
      }
      override async purgeOldPages(): Promise<void> {
        calls.push('purge');
        await super.purgeOldPages();
      }
    }
    const readModels = new ReadModels(live);
    const projector = new Projector(await inMemoryStoreOf(log.events), readModels, [new ProfilesProjection()], {
      freshStore: async () => new WatchedStore(join(dir, 'read-models-2.sqlite')),
    });
    try {
      await projector.rebuild();
      expect(calls).toEqual(['begin bulk load', 'end bulk load']);
    } finally {
      await readModels.current.close();
    }
  });
});
