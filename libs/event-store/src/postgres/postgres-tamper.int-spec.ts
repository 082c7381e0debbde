import { Client } from 'pg';
import { appendTouchpoints, describeWithServer, PostgresServer } from '@clientele/testing';
import { chainHash } from '../hash-chain';
import { exportNdjson, readNdjsonExport, type NdjsonSink } from '../export-ndjson';
import { eventsOfLog } from '../read-in-batches';
import { verifyChain } from '../verify-chain';
import { verifyStreamEvents } from '../verify-stream';
import { PostgresEventStore } from './postgres.event-store';
import { dropSchema, uniqueSchema } from './postgres.test-support';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Tamper evidence on PostgreSQL: 300 events written through the adapter into a fresh schema, the
 * table then edited with plain SQL as a database administrator could, and the chain walked again
 * through a newly opened store.
 */
describeWithServer(PostgresServer, 'tamper evidence on a PostgreSQL store', (url) => {
  let schema: string;

  beforeEach(async () => {
    schema = uniqueSchema('tamper');
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      await appendTouchpoints(store, 300);
    } finally {
      await store.close();
    }
  });

  afterEach(async () => {
    await dropSchema(url, schema);
  });

  async function sql(text: string, values: unknown[] = []): Promise<Record<string, unknown>[]> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  async function verifyReopened() {
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      return await verifyChain(eventsOfLog(store, { batchSize: 64 }));
    } finally {
      await store.close();
    }
  }

  it('an untouched schema verifies, and so does its export', async () => {
    const report = await verifyReopened();
    expect(report).toMatchObject({ ok: true, eventsChecked: 300, lastPosition: 300 });

    // and an export taken from it verifies offline
    const dir = mkdtempSync(join(tmpdir(), 'clientele-pg-export-'));
    try {
      const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
      let text = '';
      const sink: NdjsonSink = { write: (c) => ((text += c), true), once: () => sink };
      try {
        await exportNdjson(store, sink, { batchSize: 50 });
      } finally {
        await store.close();
      }
      const file = join(dir, 'all.ndjson');
      writeFileSync(file, text);
      expect(await verifyChain(readNdjsonExport(file))).toEqual(report);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a row put below position 1, and a record time moved by less than a millisecond, are what the store names as outside the walk', async () => {
    const reopened = async () => PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    let store = await reopened();
    try {
      expect(await store.rowOutsideTheChain()).toBeUndefined();
    } finally {
      await store.close();
    }
    // the walk from the start of the log reads neither edit
    await sql(`update ${schema}.events set recorded_at = recorded_at + interval '400 microseconds' where position = 120`);
    expect((await verifyReopened()).ok).toBe(true);
    store = await reopened();
    try {
      expect(await store.rowOutsideTheChain()).toMatchObject({ kind: 'content_altered', position: 120 });
    } finally {
      await store.close();
    }
    await sql(`insert into ${schema}.events (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
               select -1, stream_id, 1000, event_id || '-forged', type, data, metadata, recorded_at, hash, prev_hash from ${schema}.events where position = 5`);
    store = await reopened();
    try {
      expect(await store.rowOutsideTheChain()).toMatchObject({ kind: 'out_of_order', position: -1, detail: expect.stringContaining('below 1') });
    } finally {
      await store.close();
    }
  });

  it('one changed value in one event is reported as altered content at that position', async () => {
    // given event 137's sequence number changed in place
    const [row] = await sql(`select event_id, stream_id from ${schema}.events where position = 137`);
    await sql(`update ${schema}.events set data = jsonb_set(data::jsonb, '{sequence}', '138')::json where position = 137`);

    // when verified, then the break is at 137
    const report = await verifyReopened();
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 137, eventId: row!.event_id, streamId: row!.stream_id });
    expect(report.eventsChecked).toBe(136);
  });

  it('a deleted row is reported as a gap at the position after it', async () => {
    await sql(`delete from ${schema}.events where position = 200`);
    const report = await verifyReopened();
    expect(report.firstBreak).toMatchObject({ kind: 'position_gap', position: 201 });
    expect(report.eventsChecked).toBe(199);
  });

  it('two rows whose contents were swapped are reported at the first of them', async () => {
    // given the contents of rows 50 and 120 exchanged (row 50 parked first: ids and revisions are unique)
    const [b] = await sql(`select event_id from ${schema}.events where position = 120`);
    const columns = ['stream_id', 'revision', 'event_id', 'type', 'data', 'metadata', 'recorded_at', 'hash', 'prev_hash'];
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('begin');
      await client.query(`create temp table swap as select * from ${schema}.events where position in (50, 120)`);
      await client.query(`update ${schema}.events set stream_id = 'parked', event_id = 'parked' where position = 50`);
      const set = columns.map((c) => `${c} = s.${c}`).join(', ');
      await client.query(`update ${schema}.events e set ${set} from swap s where e.position = 120 and s.position = 50`);
      await client.query(`update ${schema}.events e set ${set} from swap s where e.position = 50 and s.position = 120`);
      await client.query('commit');
    } finally {
      await client.end();
    }

    // when verified, then position 50 no longer links to 49
    const report = await verifyReopened();
    expect(report.firstBreak).toMatchObject({ kind: 'predecessor_mismatch', position: 50, eventId: b!.event_id });
    expect(report.eventsChecked).toBe(49);
  });

  it("a stream's own verification sees a rewritten event whose hash was recomputed, through its successor's link", async () => {
    // given event 10 altered and its own hash recomputed by someone who knows the scheme
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      const [original] = await store.readAll({ afterPosition: 9, maxCount: 1 });
      const forged = { ...original!, data: { ...original!.data, sequence: 11 } };
      await sql(`update ${schema}.events set data = $1, hash = $2 where position = 10`, [
        JSON.stringify(forged.data),
        chainHash(forged.prevHash, forged),
      ]);

      // when the stream is verified on its own, and with its links into the log
      const events = await store.readStream(original!.streamId);
      const alone = await verifyStreamEvents(events, { streamId: original!.streamId });
      const linked = await verifyStreamEvents(events, { streamId: original!.streamId, log: store });

      // then alone it looks intact, but the next event in the log, itself intact, names another
      // hash for it: both verifications report event 10 as rewritten
      expect(alone.ok).toBe(true);
      expect(linked.firstBreak).toMatchObject({ kind: 'rewritten', position: 10, eventId: original!.id });
      expect((await verifyChain(eventsOfLog(store)))).toMatchObject({ lastPosition: 9, firstBreak: { kind: 'rewritten', position: 10, eventId: original!.id } });
    } finally {
      await store.close();
    }
  });
});
