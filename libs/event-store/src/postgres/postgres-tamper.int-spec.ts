import { Client } from 'pg';
import { appendTouchpoints, describeWithServer, idFrom, PostgresServer } from '@clientele/testing';
import { chainHash } from '../hash-chain';
import { exportNdjson, readNdjsonExport, type NdjsonSink } from '../export-ndjson';
import type { JsonObject, NewEvent } from '../event-store.port';
import { eventsOfLog, eventsOfStream } from '../read-in-batches';
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
const touch = (id: string, data: JsonObject): NewEvent => ({
  id: idFrom(id),
  type: 'TouchpointRecorded',
  data: { channel: 'email', direction: 'outbound', kind: 'newsletter', occurredAt: '2026-01-02T00:00:00.000Z', ...data },
  metadata: { occurredAt: '2026-01-02T00:00:00.000Z', schemaVersion: 1 },
});

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

  /** as `audit verify` walks it: the stored text of each payload judged, not only the values a parser reads */
  async function verifyAsStored() {
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      return await verifyChain(eventsOfLog({ readAll: (o) => store.readAllAsStored(o) }, { batchSize: 64 }));
    } finally {
      await store.close();
    }
  }

  it.each([
    ['a key repeated, the hashed value last (SQL reads the first, json_each both)', (data: string) => data.replace('{', '{"sequence":9000,')],
    ['a number written in another form', (data: string) => data.replace(/"sequence":(\d+)/, '"sequence":$1e0')],
    ['a letter written as an escape', (data: string) => data.replace('"email"', '"\\u0065mail"')],
  ])('a payload rewritten with %s is altered content at its position, as on the embedded store', async (_how, rewrite) => {
    // given event 42's data rewritten in the table so a parser still reads the hashed values
    const [row] = await sql(`select event_id, stream_id, data::text as data from ${schema}.events where position = 42`);
    const rewritten = rewrite(row!.data as string);
    expect(rewritten).not.toBe(row!.data);
    await sql(`update ${schema}.events set data = $1::json where position = 42`, [rewritten]);

    // when verified through the adapter's parsed values, and as stored
    const parsed = await verifyReopened();
    const stored = await verifyAsStored();

    // then the parsed values still match (what a reader of the table sees may not), the stored text does not
    expect(parsed.ok).toBe(true);
    expect(stored.firstBreak).toMatchObject({ kind: 'content_altered', position: 42, eventId: row!.event_id, streamId: row!.stream_id });
    expect(stored.eventsChecked).toBe(41);
    // and a stream's own verification, reading as stored, finds it too
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    try {
      const streamId = row!.stream_id as string;
      const events = eventsOfStream({ readStream: (id, o) => store.readStreamAsStored(id, o) }, streamId);
      const report = await verifyStreamEvents(events, { streamId, log: { readAll: (o) => store.readAllAsStored(o) } });
      expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 42 });
    } finally {
      await store.close();
    }
  });

  it("rows holding PostgreSQL's own rendering of the hashed values (stored as jsonb before migration 4) verify as stored", async () => {
    await sql(`update ${schema}.events set data = data::jsonb::json, metadata = metadata::jsonb::json`);
    const [row] = await sql(`select data::text as data from ${schema}.events where position = 1`);
    expect(row!.data).toContain('": ');
    expect(await verifyAsStored()).toMatchObject({ ok: true, eventsChecked: 300 });
  });

  it('every way the store writes rows (one round trip, sealed by the server, a large group by COPY, an import) stores the canonical text', async () => {
    // given more events through the server-sealed path, a group large enough for COPY, and an import into another schema
    const sealed = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, sealOnServer: 'always' });
    try {
      await sealed.appendToStream('customer-sealed', [touch('sealed-1', { note: 'é ü \u0001 "quoted"' })]);
    } finally {
      await sealed.close();
    }
    const copying = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2, sealOnServer: 'never', rowsPerStatement: 5 });
    try {
      await copying.appendToStream('customer-copied', Array.from({ length: 40 }, (_, i) => touch(`copied-${i}`, { n: i, '10': 'index-like key', a: [1.5, -0, null] })));
    } finally {
      await copying.close();
    }
    expect(await verifyAsStored()).toMatchObject({ ok: true, eventsChecked: 341 });

    const imported = uniqueSchema('tamper_import');
    const source = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    const target = await PostgresEventStore.open({ connectionString: url, schema: imported, poolSize: 2 });
    try {
      await target.importStored(await source.readAll());
      expect(await verifyChain(eventsOfLog({ readAll: (o) => target.readAllAsStored(o) }))).toMatchObject({ ok: true, eventsChecked: 341 });
    } finally {
      await source.close();
      await target.close();
      await dropSchema(url, imported);
    }
  });

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
