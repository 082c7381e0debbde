import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { appendTouchpoints, tempDir } from '@clientele/testing';
import type { EventMetadata, JsonObject } from '../event-store.port';
import { chainHash } from '../hash-chain';
import { eventsOfLog } from '../read-in-batches';
import { verifyChain } from '../verify-chain';
import { verifyStreamEvents } from '../verify-stream';
import { openSqliteLogRaw, readSqliteLogRaw, readSqliteStreamRaw } from './sqlite-raw-log';
import { SqliteEventStore } from './sqlite.event-store';

/**
 * Tamper evidence on a real store file: events written through the adapter, the file then edited
 * with plain SQL as someone with access to the disk could, and the chain walked again.
 */
describe('tamper evidence on an embedded store file', () => {
  const EVENTS = 300;
  const tmp = tempDir('clientele-tamper-');
  const pristine = tmp.file('pristine.db');
  let copies = 0;

  beforeAll(async () => {
    const store = new SqliteEventStore({ file: pristine, durability: 'normal' });
    await appendTouchpoints(store, EVENTS);
    await store.close();
  });

  afterAll(() => tmp.remove());

  /** a copy of the untouched file, edited by `edit` with raw SQL */
  function tampered(edit: (db: Database.Database) => void): string {
    const file = tmp.file(`copy-${++copies}.db`);
    copyFileSync(pristine, file);
    const db = new Database(file);
    edit(db);
    db.close();
    return file;
  }

  function rowAt(db: Database.Database, position: number): Record<string, unknown> {
    const row = db.prepare('SELECT * FROM events WHERE position = ?').get(position) as Record<string, unknown> | undefined;
    if (!row) throw new Error(`no row at ${position}`);
    return row;
  }

  /** one stream of a file verified over raw rows, with the raw log for the links to its neighbours */
  async function verifyStreamRaw(file: string, streamId: string): ReturnType<typeof verifyStreamEvents> {
    const log = openSqliteLogRaw(file);
    try {
      return await verifyStreamEvents(readSqliteStreamRaw(file, streamId), { streamId, log });
    } finally {
      log.close();
    }
  }

  it('an untouched file verifies end to end, through the adapter and raw', async () => {
    // given the file as the adapter wrote it
    const store = new SqliteEventStore({ file: pristine });
    try {
      // when the chain is walked through the adapter and over raw rows
      const viaAdapter = await verifyChain(eventsOfLog(store, { batchSize: 64 }));
      const raw = await verifyChain(readSqliteLogRaw(pristine, { batchSize: 64 }));

      // then both see every event and no break
      expect(viaAdapter).toMatchObject({ ok: true, eventsChecked: EVENTS, lastPosition: EVENTS });
      expect(raw).toEqual(viaAdapter);
    } finally {
      await store.close();
    }
  });

  it('a file written by the inline writer holds the same rows as one written by the writer thread, record times and hashes aside', async () => {
    // given the same events appended through the inline writer into another file
    const inlineFile = tmp.file('inline.db');
    const store = new SqliteEventStore({ file: inlineFile, durability: 'normal', writer: 'inline' });
    await appendTouchpoints(store, EVENTS);
    await store.close();

    // when both files are read raw
    const rows = (file: string): unknown[] => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT position, stream_id, revision, type, data, metadata FROM events ORDER BY position').all();
      } finally {
        db.close();
      }
    };

    // then the content is byte for byte the same, and the inline file's chain verifies too
    expect(rows(inlineFile)).toEqual(rows(pristine));
    expect(await verifyChain(readSqliteLogRaw(inlineFile))).toMatchObject({ ok: true, eventsChecked: EVENTS });
  });

  it('one changed byte in one event is reported as altered content at that position', async () => {
    // given event 137's payload with one digit changed (still valid JSON)
    let eventId = '';
    const file = tampered((db) => {
      const row = rowAt(db, 137);
      eventId = String(row.id);
      const data = String(row.data);
      expect(data).toContain('"sequence":137');
      db.prepare('UPDATE events SET data = ? WHERE position = 137').run(data.replace('"sequence":137', '"sequence":138'));
    });

    // when the reopened store's log is verified
    const store = new SqliteEventStore({ file });
    try {
      const report = await verifyChain(eventsOfLog(store, { batchSize: 50 }));

      // then the break is at 137, as altered content, and everything before it was checked
      expect(report.ok).toBe(false);
      expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 137, eventId, streamId: 'customer-c017' });
      expect(report.eventsChecked).toBe(136);
      expect(report.lastPosition).toBe(136);
    } finally {
      await store.close();
    }
  });

  it('a byte that breaks the JSON is still reported, by the raw reader, where the adapter cannot read', async () => {
    // given event 42's payload with its first brace overwritten
    let rowStream = '';
    const file = tampered((db) => {
      rowStream = String(rowAt(db, 42).stream_id);
      const data = String(rowAt(db, 42).data);
      db.prepare('UPDATE events SET data = ? WHERE position = 42').run(`X${data.slice(1)}`);
    });

    // when the adapter reads the log, and when the raw rows are verified
    const store = new SqliteEventStore({ file });
    try {
      await expect(store.readAll({ afterPosition: 40, maxCount: 5 })).rejects.toThrow(SyntaxError);
      // named by its position, for whoever meets it in an export or a replay
      await expect(store.readAll({ afterPosition: 40, maxCount: 5 })).rejects.toThrow(/^the event at position 42 \(id [^)]+\) holds data that is not JSON/);
      await expect(store.readStream(String(rowStream))).rejects.toThrow(/the event at position 42 .* clientele audit verify reports it$/);
    } finally {
      await store.close();
    }
    const report = await verifyChain(readSqliteLogRaw(file));

    // then the adapter fails but verification reports altered content at 42
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 42 });
    expect(report.eventsChecked).toBe(41);
  });

  it('a deleted row is reported as a gap at the position after it', async () => {
    // given row 200 deleted
    const file = tampered((db) => db.prepare('DELETE FROM events WHERE position = 200').run());

    // when verified through the reopened adapter and raw
    const store = new SqliteEventStore({ file });
    let viaAdapter;
    try {
      viaAdapter = await verifyChain(eventsOfLog(store));
    } finally {
      await store.close();
    }
    const raw = await verifyChain(readSqliteLogRaw(file));

    // then both report a position gap at 201, with 199 good events before it
    for (const report of [viaAdapter, raw]) {
      expect(report.firstBreak).toMatchObject({ kind: 'position_gap', position: 201 });
      expect(report.firstBreak?.detail).toContain('200');
      expect(report.eventsChecked).toBe(199);
    }
  });

  it('two rows whose contents were swapped are reported at the first of them', async () => {
    // given the contents (everything but the position) of rows 50 and 120 exchanged; row 50 is
    // parked out of the way first because (stream, revision) is unique
    const columns = ['stream_id', 'revision', 'id', 'type', 'data', 'metadata', 'recorded_at', 'hash', 'prev_hash'];
    let movedId = '';
    const file = tampered((db) => {
      const a = rowAt(db, 50);
      const b = rowAt(db, 120);
      movedId = String(b.id);
      const set = `UPDATE events SET ${columns.map((c) => `${c} = @${c}`).join(', ')} WHERE position = @position`;
      db.transaction(() => {
        db.prepare("UPDATE events SET stream_id = 'parked' WHERE position = 50").run();
        db.prepare(set).run({ ...a, position: 120 });
        db.prepare(set).run({ ...b, position: 50 });
      })();
    });

    // when verified
    const report = await verifyChain(readSqliteLogRaw(file));
    const store = new SqliteEventStore({ file });
    let viaAdapter;
    try {
      viaAdapter = await verifyChain(eventsOfLog(store));
    } finally {
      await store.close();
    }

    // then position 50 (now holding event 120) breaks the link to its predecessor
    expect(report.firstBreak).toMatchObject({ kind: 'predecessor_mismatch', position: 50, eventId: movedId });
    expect(report.eventsChecked).toBe(49);
    expect(viaAdapter).toEqual(report);
  });

  it('a rewritten event whose hash was recomputed still breaks the link from its successor', async () => {
    // given event 10's content changed and its own hash recomputed by someone who knows the scheme
    const file = tampered((db) => {
      const row = rowAt(db, 10);
      const data = String(row.data).replace('"sequence":10', '"sequence":11');
      const forged = chainHash(String(row.prev_hash), {
        id: String(row.id),
        streamId: String(row.stream_id),
        revision: Number(row.revision),
        position: 10,
        type: String(row.type),
        data: JSON.parse(data) as JsonObject,
        metadata: JSON.parse(String(row.metadata)) as EventMetadata,
        recordedAt: String(row.recorded_at),
      });
      db.prepare('UPDATE events SET data = ?, hash = ? WHERE position = 10').run(data, forged);
    });

    // when verified
    const report = await verifyChain(readSqliteLogRaw(file));

    // then event 11, intact, names another hash for event 10: event 10 is the rewritten one, 9 the last good
    expect(report.firstBreak).toMatchObject({ kind: 'rewritten', position: 10 });
    expect(report).toMatchObject({ eventsChecked: 9, lastPosition: 9 });
  });

  it('one stream verified with the log reports a hole right after one of its events, where a deleted last event of the stream leaves one', async () => {
    // given the event after one of customer-c017's (position 77) deleted
    const file = tampered((db) => db.prepare('DELETE FROM events WHERE position = 78').run());

    // when the stream is verified over raw rows, with the raw log for the links
    const report = await verifyStreamRaw(file, 'customer-c017');

    // then the hole is reported at the event after it, naming the deleted event's hash as recorded there
    expect(report.firstBreak).toMatchObject({ kind: 'position_gap', position: 79 });
    expect(report.firstBreak?.detail).toContain('78..78');
    expect(report.eventsChecked).toBe(3);
  });
  it.each([
    ['a duplicated key placed first', (data: string) => data.replace('{"', '{"sequence":999,"')],
    ['a number written in another form', (data: string) => data.replace('"sequence":77', '"sequence":7.7e1')],
    ['a letter written as an escape', (data: string) => data.replace('"customerId":"c', '"customerId":"\\u0063')],
  ])('a payload rewritten with %s, the same JSON values to a parser but other bytes, is reported as altered', async (_how, rewrite) => {
    // given event 77's stored text rewritten so that a parser keeping the last key still reads the hashed values
    const file = tampered((db) => {
      const data = String(rowAt(db, 77).data);
      const rewritten = rewrite(data);
      expect(rewritten).not.toBe(data);
      db.prepare('UPDATE events SET data = ? WHERE position = 77').run(rewritten);
    });

    // when the raw rows are verified
    const report = await verifyChain(readSqliteLogRaw(file));

    // then the stored bytes are not those the hash covers: altered content at 77
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 77 });
    expect(report.eventsChecked).toBe(76);
  });

  it('one stream read raw holds the same events as the adapter reads, and verifies with its raw neighbours', async () => {
    // given the untouched file
    const store = new SqliteEventStore({ file: pristine });
    let viaAdapter;
    try {
      viaAdapter = await store.readStream('customer-c017');
    } finally {
      await store.close();
    }

    // when the stream is read raw, in small pages, and verified with the log read raw
    const raw = [];
    for await (const e of readSqliteStreamRaw(pristine, 'customer-c017', { batchSize: 4 })) raw.push(e);
    const log = openSqliteLogRaw(pristine);
    try {
      // then it is the adapter's stream, and it verifies with its links
      expect(raw).toEqual(viaAdapter);
      expect(await verifyStreamEvents(readSqliteStreamRaw(pristine, 'customer-c017'), { streamId: 'customer-c017', log })).toMatchObject({ ok: true, eventsChecked: EVENTS / 20 });
    } finally {
      log.close();
    }
  });

  it.each([
    ['a duplicated key placed first', (data: string) => data.replace('{"', '{"sequence":999,"')],
    ['a number written in another form', (data: string) => data.replace('"sequence":77', '"sequence":7.7e1')],
    ['a payload that is no longer JSON', (data: string) => `X${data.slice(1)}`],
  ])('one stream verified raw reports a payload rewritten with %s as altered at its position', async (_how, rewrite) => {
    // given event 77 (revision 3 of customer-c017) rewritten so that a parser would still read the hashed values, or nothing
    const file = tampered((db) => {
      const data = String(rowAt(db, 77).data);
      db.prepare('UPDATE events SET data = ? WHERE position = 77').run(rewrite(data));
    });

    // when the stream is verified over raw rows, with the raw log for the links
    const report = await verifyStreamRaw(file, 'customer-c017');

    // then the break is altered content at 77, after the stream's three events before it
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 77, streamId: 'customer-c017' });
    expect(report.eventsChecked).toBe(3);
  });

  it('an event slipped in below position 1 is reported before anything else', async () => {
    // given a copy of event 5 stored at position -1, as the domain would read it in its stream
    const file = tampered((db) => {
      const row = rowAt(db, 5);
      db.prepare('INSERT INTO events SELECT -1, stream_id, 99, id || \'-forged\', type, data, metadata, recorded_at, hash, prev_hash FROM events WHERE position = ?').run(
        Number(row.position),
      );
    });

    // when the raw rows are verified
    const report = await verifyChain(readSqliteLogRaw(file));

    // then the forged row is the first break, named by its position
    expect(report.ok).toBe(false);
    expect(report.firstBreak).toMatchObject({ kind: 'out_of_order', position: -1 });
    expect(report.firstBreak?.detail).toContain('below 1');
    expect(report.eventsChecked).toBe(0);
  });
});
