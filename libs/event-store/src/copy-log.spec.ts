import { appendTouchpoints, tempDir } from '@clientele/testing';
import { copyLog, LogMismatchError } from './copy-log';
import type { StoredEvent } from './event-store.port';
import { canonicalJson } from './hash-chain';
import { ImportRefusedError } from './import-stored';
import { eventsOfLog } from './read-in-batches';
import { SqliteEventStore } from './sqlite/sqlite.event-store';
import { verifyChain } from './verify-chain';

async function allOf(store: SqliteEventStore): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for await (const e of eventsOfLog(store)) events.push(e);
  return events;
}

describe('importStored and copyLog on the embedded store', () => {
  const tmp = tempDir('clientele-copy-');
  let files = 0;
  const fresh = (): SqliteEventStore => new SqliteEventStore({ file: tmp.file(`s${++files}.db`), durability: 'normal' });
  let source: SqliteEventStore;
  let log: StoredEvent[];

  beforeAll(async () => {
    source = fresh();
    await appendTouchpoints(source, 120, 7);
    log = await allOf(source);
  });

  afterAll(async () => {
    await source.close();
    tmp.remove();
  });

  it('imports stored events verbatim: same positions, times and hashes, and appends continue the chain', async () => {
    // given an empty target
    const target = fresh();
    try {
      // when the first 50 events are imported, then the rest
      await target.importStored(log.slice(0, 50));
      await target.importStored(log.slice(50));

      // then the target holds every event byte for byte, and its chain verifies
      const copied = await allOf(target);
      expect(copied.map((e) => canonicalJson(e))).toEqual(log.map((e) => canonicalJson(e)));
      expect((await verifyChain(eventsOfLog(target))).ok).toBe(true);

      // and an ordinary append afterwards continues at the right revision and position
      const result = await target.appendToStream('customer-c001', [
        { id: 'after-import', type: 'TouchpointRecorded', data: { n: 1 }, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 } },
      ]);
      expect(result.position).toBe(121);
      expect(result.nextExpectedRevision).toBe(log.filter((e) => e.streamId === 'customer-c001').length);
      expect((await verifyChain(eventsOfLog(target))).ok).toBe(true);
    } finally {
      await target.close();
    }
  });

  it.each([
    ['a batch that does not start at head + 1', (events: StoredEvent[]) => events.slice(1, 10), /expected position 1/],
    ['a batch with a position skipped', (events: StoredEvent[]) => [...events.slice(0, 4), ...events.slice(5, 10)], /expected position 5/],
    ['an event whose predecessor hash is not the previous hash', (events: StoredEvent[]) => events.slice(0, 10).map((e, i) => (i === 6 ? { ...e, prevHash: 'f'.repeat(64) } : e)), /position 7: its predecessor hash/],
    ['an event altered after it was hashed', (events: StoredEvent[]) => events.slice(0, 10).map((e, i) => (i === 8 ? { ...e, data: { ...e.data, channel: 'sms' } } : e)), /content does not match its hash/],
    ['a record time changed', (events: StoredEvent[]) => events.slice(0, 10).map((e, i) => (i === 3 ? { ...e, recordedAt: '2020-01-01T00:00:00.000Z' } : e)), /content does not match its hash/],
  ])('refuses %s and writes nothing of the batch', async (_name, shape, message) => {
    // given an empty target
    const target = fresh();
    try {
      // when a batch that would not continue the chain is imported
      const attempt = target.importStored(shape(log));

      // then it is refused with the position named, and the target stays empty
      await expect(attempt).rejects.toThrow(ImportRefusedError);
      await expect(target.importStored(shape(log))).rejects.toThrow(message);
      expect(await target.headPosition()).toBe(0);
    } finally {
      await target.close();
    }
  });

  it('resumes after an interruption and copies every event exactly once', async () => {
    // given a copy interrupted after its second batch committed
    const target = fresh();
    try {
      let batches = 0;
      const interrupted = copyLog(source, target, {
        batchSize: 25,
        onProgress: () => {
          if (++batches === 2) throw new Error('interrupted');
        },
      });
      await expect(interrupted).rejects.toThrow('interrupted');
      expect(await target.headPosition()).toBe(50);

      // when the copy runs again
      const resumed = await copyLog(source, target, { batchSize: 25 });

      // then it continues after position 50, ends at the source's head, and a third run copies nothing
      expect(resumed).toEqual({ resumedAfter: 50, copied: 70, head: 120, lastHash: log[119]!.hash });
      expect((await allOf(target)).map((e) => canonicalJson(e))).toEqual(log.map((e) => canonicalJson(e)));
      expect(await copyLog(source, target)).toEqual({ resumedAfter: 120, copied: 0, head: 120, lastHash: log[119]!.hash });
    } finally {
      await target.close();
    }
  });

  it('refuses a target that already holds a different log, and leaves it alone', async () => {
    // given a target with its own, different events
    const target = fresh();
    try {
      await target.appendToStream('customer-other', [
        { id: 'other-1', type: 'TouchpointRecorded', data: { n: 1 }, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 } },
      ]);

      // when the source is copied into it
      const attempt = copyLog(source, target);

      // then the copy is refused and the target still holds its one event
      await expect(attempt).rejects.toThrow(LogMismatchError);
      await expect(copyLog(source, target)).rejects.toThrow(/already holds a different log: at position 1/);
      expect(await target.headPosition()).toBe(1);
    } finally {
      await target.close();
    }
  });

  it('refuses a target longer than the source', async () => {
    // given a target that holds the source's log and one more event
    const target = fresh();
    const shorter = fresh();
    try {
      await target.importStored(log.slice(0, 30));
      await shorter.importStored(log.slice(0, 20));

      // when the shorter log is copied into it, then the copy is refused, saying the target went on from it
      await expect(copyLog(shorter, target)).rejects.toThrow(
        "the target is ahead of the source: it holds 30 events, the source 20, and the source's are its first 20 (events were written to the target after an earlier migration); there is nothing to copy",
      );
    } finally {
      await target.close();
      await shorter.close();
    }
  });

  it('refuses a target longer than a source it does not start with, as another log', async () => {
    const target = fresh();
    const other = fresh();
    try {
      await target.importStored(log.slice(0, 30));
      // another log of 20 events: other ids and hashes
      await appendTouchpoints(other, 20, 3);
      await expect(copyLog(other, target)).rejects.toThrow(/source has no event at position 30: the target holds a different log/);
    } finally {
      await target.close();
      await other.close();
    }
  });
});
