import { readFileSync, writeFileSync } from 'node:fs';
import { appendTouchpoints, tempDir } from '@clientele/testing';
import type { EventStore, ReadAllOptions, StoredEvent } from './event-store.port';
import { ExportFormatError, exportNdjson, readNdjsonExport, type ExportProgress, type NdjsonSink } from './export-ndjson';
import { SqliteEventStore } from './sqlite/sqlite.event-store';
import { verifyChain } from './verify-chain';
import { verifyStreamEvents } from './verify-stream';

/** A sink that collects lines and, every other write, asks the writer to wait for 'drain'. */
class SlowSink implements NdjsonSink {
  text = '';
  writes = 0;
  private drain: (() => void) | undefined;
  write(chunk: string): boolean {
    this.text += chunk;
    this.writes += 1;
    if (this.writes % 2 === 0) {
      setImmediate(() => this.drain?.());
      return false;
    }
    return true;
  }
  once(_event: 'drain', listener: () => void): this {
    this.drain = listener;
    return this;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('NDJSON export', () => {
  const tmp = tempDir('clientele-export-');
  let store: SqliteEventStore;

  beforeAll(async () => {
    store = new SqliteEventStore({ file: tmp.file('events.db'), durability: 'normal' });
    await appendTouchpoints(store, 250, 10);
  });

  afterAll(async () => {
    await store.close();
    tmp.remove();
  });

  async function exportToFile(name: string, options: Parameters<typeof exportNdjson>[2]): Promise<string> {
    const sink = new SlowSink();
    await exportNdjson(store, sink, options);
    const file = tmp.file(name);
    writeFileSync(file, sink.text);
    return file;
  }

  it('exports the whole log with every field, in pages, and the export verifies offline', async () => {
    // given a store of 250 events, read through a spy that records every page asked for
    const pages: ReadAllOptions[] = [];
    const spy: Pick<EventStore, 'readAll' | 'readStream' | 'headPosition'> = {
      readAll: (o) => (pages.push(o ?? {}), store.readAll(o)),
      readStream: (s, o) => store.readStream(s, o),
      headPosition: () => store.headPosition(),
    };
    const progress: ExportProgress[] = [];
    const sink = new SlowSink();

    // when it is exported in pages of 40
    const summary = await exportNdjson(spy, sink, { batchSize: 40, onProgress: (p) => progress.push(p) });
    const file = tmp.file('all.ndjson');
    writeFileSync(file, sink.text);

    // then every event is one line with the fields an auditor needs, identical to the store's
    const lines = sink.text.trimEnd().split('\n');
    expect(summary).toEqual({ events: 250, firstPosition: 1, lastPosition: 250 });
    expect(lines).toHaveLength(250);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual([
      'id', 'streamId', 'revision', 'position', 'occurredAt', 'recordedAt', 'type', 'data', 'metadata', 'hash', 'prevHash',
    ]);
    const readBack = await collect(readNdjsonExport(file));
    expect(readBack).toEqual(await store.readAll());
    // and the store was read a page at a time, never the whole log at once
    expect(pages.every((p) => p.maxCount === 40)).toBe(true);
    expect(pages.length).toBeGreaterThanOrEqual(7);
    // and progress ended at the total
    expect(progress[progress.length - 1]).toEqual({ exported: 250, total: 250, position: 250 });
    // and the export verifies without the store
    expect(await verifyChain(readNdjsonExport(file))).toMatchObject({ ok: true, eventsChecked: 250, lastPosition: 250 });
  });

  it('an altered line of an export is caught at its position', async () => {
    // given an export with one value changed on the line of position 77
    const file = await exportToFile('altered.ndjson', {});
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[76]).toContain('"sequence":77');
    lines[76] = lines[76]!.replace('"sequence":77', '"sequence":78');
    writeFileSync(file, lines.join('\n'));

    // when the export is verified
    const report = await verifyChain(readNdjsonExport(file));

    // then the break is reported at 77 as altered content
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 77 });
    expect(report.eventsChecked).toBe(76);
  });

  it('a line removed from an export is caught as a gap', async () => {
    // given an export without the line of position 5
    const file = await exportToFile('cut.ndjson', {});
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.splice(4, 1);
    writeFileSync(file, lines.join('\n'));

    // when verified, then position 6 reports the hole
    expect((await verifyChain(readNdjsonExport(file))).firstBreak).toMatchObject({ kind: 'position_gap', position: 6 });
  });

  it('a line whose repeated business time disagrees with its metadata is refused with the line and field', async () => {
    // given an export whose third line shows another occurredAt than its metadata holds
    const file = await exportToFile('shifted.ndjson', {});
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"occurredAt":"2026-01-01T00:00:00.000Z","recordedAt"', '"occurredAt":"2025-01-01T00:00:00.000Z","recordedAt"');
    writeFileSync(file, lines.join('\n'));

    // when read, then it fails naming line 3 and the field
    const reading = collect(readNdjsonExport(file));
    await expect(reading).rejects.toThrow(ExportFormatError);
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(/line 3: occurredAt: expected the same value as metadata.occurredAt/);
  });

  it('a line that is not an event is refused with the line and what was expected', async () => {
    // given a file whose second line lacks a position and whose fourth is not JSON
    const file = tmp.file('broken.ndjson');
    const good = readFileSync(await exportToFile('good.ndjson', {}), 'utf8').split('\n');
    const noPosition = JSON.parse(good[1]!) as Record<string, unknown>;
    delete noPosition.position;
    writeFileSync(file, [good[0], JSON.stringify(noPosition), good[2]].join('\n'));

    // when read, then the error names line 2 and the position field
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(/line 2: position: expected a non-negative integer, got nothing/);
    // a field the export never writes, added to an otherwise intact line, is not covered by any hash
    writeFileSync(file, [good[0], good[1]!.replace(/^\{/, '{"approvedBy":"auditor-x",')].join('\n'));
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(/line 2: approvedBy: not a field of an exported event/);
    writeFileSync(file, [good[0], '{"id": nope}'].join('\n'));
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(/line 2: not JSON/);
    await expect(collect(readNdjsonExport(tmp.file('missing.ndjson')))).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['a type repeated ahead of the real one', (line: string) => line.replace('"type":"TouchpointRecorded"', '"type":"Forged","type":"TouchpointRecorded"')],
    ['data starting with a key that is repeated later', (line: string) => line.replace('"data":{', '"data":{"sequence":5,')],
    ['a number written in another form', (line: string) => line.replace('"sequence":77', '"sequence":7.7e1')],
  ])('a line edited with %s parses to the hashed event but is refused as not written by the export', async (_how, edit) => {
    // given an export whose line 77 shows other text than the export wrote, for the same parsed values
    const file = await exportToFile(`rewritten-${Math.random().toString(36).slice(2)}.ndjson`, {});
    const lines = readFileSync(file, 'utf8').split('\n');
    const edited = edit(lines[76]!);
    expect(edited).not.toBe(lines[76]);
    lines[76] = edited;
    writeFileSync(file, lines.join('\n'));

    // when read (for a whole-log or a stream verification), then line 77 is refused by number
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(ExportFormatError);
    await expect(collect(readNdjsonExport(file))).rejects.toThrow(/line 77: not as the export writes it \(the line was edited/);
  });

  it('an export saved with CRLF line ends reads back as the same events', async () => {
    // given an export whose lines end with \r\n, as an editor on another system may save it
    const file = await exportToFile('crlf.ndjson', {});
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\n/g, '\r\n'));

    // when read and verified, then it is the store's log, intact
    expect(await collect(readNdjsonExport(file))).toEqual(await store.readAll());
    expect(await verifyChain(readNdjsonExport(file))).toMatchObject({ ok: true, eventsChecked: 250 });
  });

  it('exports one stream, which verifies on its own against its hashes and revisions', async () => {
    // given the stream of customer c003 (25 of the 250 events)
    const sink = new SlowSink();
    const summary = await exportNdjson(store, sink, { scope: { kind: 'stream', streamId: 'customer-c003' }, batchSize: 7 });
    const file = tmp.file('stream.ndjson');
    writeFileSync(file, sink.text);

    // when read back and verified as a stream, with and without the log for the links
    const events: StoredEvent[] = await collect(readNdjsonExport(file));
    const alone = await verifyStreamEvents(events, { streamId: 'customer-c003' });
    const linked = await verifyStreamEvents(events, { streamId: 'customer-c003', log: store });

    // then it holds exactly that stream, in revision order, and both checks pass
    expect(summary.events).toBe(25);
    expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(new Set(events.map((e) => e.streamId))).toEqual(new Set(['customer-c003']));
    expect(alone).toMatchObject({ ok: true, eventsChecked: 25 });
    expect(linked).toMatchObject({ ok: true, eventsChecked: 25 });

    // and a stream export missing its third event is reported as a revision gap
    const gap = await verifyStreamEvents(events.filter((e) => e.revision !== 2), { streamId: 'customer-c003' });
    expect(gap.firstBreak).toMatchObject({ kind: 'revision_gap', position: events[3]!.position });
    // and intact events of another stream after the first are not this stream's events: no verdict can be given
    const other = (await store.readStream('customer-c004'))[0]!;
    await expect(verifyStreamEvents([events[0]!, other], { streamId: 'customer-c003' })).rejects.toThrow(
      `the events given hold an intact event of stream customer-c004 at position ${other.position}, after 1 of stream customer-c003: not the events of stream customer-c003 alone`,
    );
    // while an event whose stream id was edited to this one, or away from it, is altered content
    const moved = await verifyStreamEvents([events[0]!, { ...events[1]!, streamId: 'customer-c004' }], { streamId: 'customer-c003' });
    expect(moved.firstBreak).toMatchObject({ kind: 'content_altered', streamId: 'customer-c004', detail: 'belongs to stream customer-c004, not customer-c003' });
    const forged = await verifyStreamEvents([events[0]!, { ...other, streamId: 'customer-c003', revision: 1 }], { streamId: 'customer-c003' });
    expect(forged.firstBreak).toMatchObject({ kind: 'content_altered', position: other.position });
  });

  it('an empty store exports nothing and still reports progress once', async () => {
    const empty = new SqliteEventStore({ file: tmp.file('empty.db') });
    try {
      const progress: ExportProgress[] = [];
      const sink = new SlowSink();
      const summary = await exportNdjson(empty, sink, { onProgress: (p) => progress.push(p) });
      expect(summary).toEqual({ events: 0, firstPosition: 0, lastPosition: 0 });
      expect(sink.text).toBe('');
      expect(progress).toEqual([{ exported: 0, total: 0, position: 0 }]);
    } finally {
      await empty.close();
    }
  });
});
