import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { SqliteEventStore, type StoredEvent } from '@clientele/event-store';

import { runCli } from '../apps/cli/src/cli.program';
import { detectFormat } from '../apps/cli/src/import/import.command';
import type { CliContext } from '../apps/cli/src/cli-context';
import { STORE_FILE_NAME as STORE_FILE } from '@clientele/application';
import { openEngine, openReader } from '../apps/cli/src/engine-wiring';
import { correctionJourneys, sameDayJourneys, type JourneySetup } from './cdnow-import.journeys';

const SAMPLE = '/work/shared/data/cdnow/CDNOW_sample.txt';

const captured = () => {
  const stream = new PassThrough() as PassThrough & NodeJS.WriteStream;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
};

const cli = async (args: string[]) => {
  const out = captured();
  const err = captured();
  const context: CliContext = { stdout: out.stream, stderr: err.stream, openEngine, openReader };
  const code = await runCli(args, context);
  return { code, stdout: out.text(), stderr: err.text() };
};

const readAll = async (dataDir: string): Promise<StoredEvent[]> => {
  const store = new SqliteEventStore({ file: join(dataDir, STORE_FILE) });
  try {
    return await store.readAll();
  } finally {
    await store.close();
  }
};

/** The figures the sample file implies, computed here independently of the importer. */
const sampleFigures = () => {
  const rows = readFileSync(SAMPLE, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim().split(/\s+/))
    .filter((t) => t.length === 5);
  const customers = new Set(rows.map((t) => Number(t[0])));
  const days = new Set(rows.map((t) => `${Number(t[0])}-${t[2]}`));
  const cds = rows.reduce((sum, t) => sum + Number(t[3]), 0);
  const cents = rows.reduce((sum, t) => sum + Math.round(Number(t[4]) * 100), 0);
  return { rows: rows.length, customers: customers.size, orders: days.size, cds, cents };
};

// imports the CDNOW sample twice through the whole command path: minutes on a busy 2-core machine
jest.setTimeout(300_000);

describe('clientele import (journey, embedded store)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('given the CDNOW sample, when imported twice, then customers, orders, CDs and cents match the file exactly and the second run writes nothing', async () => {
    const expected = sampleFigures();
    const dataDir = join(dir, 'data');

    const first = await cli(['import', SAMPLE, '--format', 'cdnow', '--data-dir', dataDir, '--quiet']);
    expect(first.code).toBe(0);
    const events = await readAll(dataDir);
    const of = (type: string) => events.filter((e) => e.type === type);
    expect(of('ProspectRegistered')).toHaveLength(expected.customers);
    expect(of('CustomerConverted')).toHaveLength(expected.customers);
    const purchases = of('PurchaseRecorded').map((e) => e.data as { totalMinor: number; lines: { quantity: number }[] });
    expect(purchases).toHaveLength(expected.orders);
    expect(purchases.reduce((s, p) => s + p.totalMinor, 0)).toBe(expected.cents);
    expect(purchases.reduce((s, p) => s + p.lines.reduce((q, l) => q + l.quantity, 0), 0)).toBe(expected.cds);

    const again = await cli(['import', SAMPLE, '--format', 'cdnow', '--data-dir', dataDir, '--quiet']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/ 0 stored \(0 events\)/);
    expect(await readAll(dataDir)).toHaveLength(events.length);
  });

  it('given NDJSON with bad lines, when imported, then good lines are stored, bad ones reported by line number (stderr and --rejects) and the exit code is 2', async () => {
    const file = join(dir, 'in.ndjson');
    const rejectsFile = join(dir, 'rejects.ndjson');
    const at = '2025-03-01T10:00:00Z';
    writeFileSync(
      file,
      [
        JSON.stringify({ type: 'RegisterProspect', commandId: 'r-1', data: { customerId: 'ann', source: 'web', occurredAt: at } }),
        'not json',
        JSON.stringify({ type: 'RecordPurchase', commandId: 'p-1', data: { customerId: 'ann', orderId: 'o-1', lines: [], occurredAt: at } }),
        JSON.stringify({ type: 'RegisterProspect', commandId: 'r-2', data: { customerId: 'bob', source: 'web', referredBy: 'bob', occurredAt: at } }),
        JSON.stringify({ type: 'RecordPurchase', commandId: 'p-2', data: { customerId: 'ann', orderId: 'o-2', lines: [{ sku: 'a', category: 'b', quantity: 1, unitPriceMinor: 500, unitCostMinor: 200 }], occurredAt: at } }),
      ].join('\n') + '\n',
    );

    const run = await cli(['import', file, '--data-dir', join(dir, 'data'), '--rejects', rejectsFile, '--quiet']);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^line 2: parse: not valid JSON/m);
    expect(run.stderr).toMatch(/^line 3: validation: data\.lines/m);
    expect(run.stderr).toMatch(/^line 4: domain: /m);
    const rejects = readFileSync(rejectsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; stage: string });
    expect(rejects.map((r) => [r.line, r.stage])).toEqual([
      [2, 'parse'],
      [3, 'validation'],
      [4, 'domain'],
    ]);
    const history = await cli(['history', 'ann', '--json', '--data-dir', join(dir, 'data')]);
    expect(history.code).toBe(0);
    expect(history.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type)).toEqual([
      'ProspectRegistered',
      'PurchaseRecorded',
      'CustomerConverted',
    ]);
    expect((await cli(['history', 'bob', '--data-dir', join(dir, 'data')])).code).toBe(1);
  });

  it('given NDJSON with CRLF endings, a line without its newline and a line in Latin-1, when imported, then the Latin-1 line is refused as not UTF-8 and the rest stored', async () => {
    const file = join(dir, 'mixed.ndjson');
    const at = '2025-03-01T10:00:00Z';
    const register = (id: string, name: string) => JSON.stringify({ type: 'RegisterProspect', commandId: `r-${id}`, data: { customerId: id, source: 'web', occurredAt: at, personal: { name } } });
    writeFileSync(
      file,
      Buffer.concat([
        Buffer.from(`${register('ines', 'Inés Adler')}\r\n`, 'utf8'),
        // the same name saved by a Latin-1 editor: é is the single byte 0xE9
        Buffer.from(`${register('lat', 'Inés Latin')}\r\n`, 'latin1'),
        Buffer.from(register('zoe', 'Zoë'), 'utf8'),
      ]),
    );

    const run = await cli(['import', file, '--data-dir', join(dir, 'data'), '--quiet']);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^line 2: parse: not UTF-8 text/m);
    const stored = (await readAll(join(dir, 'data'))).filter((e) => e.type === 'ProspectRegistered').map((e) => e.data['customerId']);
    expect(stored).toEqual(['ines', 'zoe']);
  });

  it('given a --data-dir with no store, then history and sweep-churn refuse it and create nothing there', async () => {
    // a mistyped directory must not become a new, empty store with a new master key
    const missing = join(dir, 'no-such-dir');
    for (const args of [['history', 'ann', '--data-dir', missing], ['sweep-churn', '--as-of', '2025-06-01', '--data-dir', missing]]) {
      const run = await cli(args);
      expect(run.code).toBe(1);
      expect(run.stderr).toBe(`error: --data-dir: no store in ${missing} (${join(missing, STORE_FILE)} does not exist); give the directory the engine keeps its data in\n`);
      expect(existsSync(missing)).toBe(false);
    }
  });

  it('given the CDNOW files without --format, then the importer tells the format from the first line and says so', async () => {
    // the master file starts with a row of four columns (no header), the sample with five
    const dataDir = join(dir, 'detected');
    const header = join(dir, 'with-header.txt');
    writeFileSync(header, `customer_id date number_of_cds dollar_value\r\n${readFileSync(SAMPLE, 'utf8')}`);
    const sample = await cli(['import', SAMPLE, '--data-dir', dataDir]);
    expect(sample.code).toBe(0);
    expect(sample.stderr).toMatch(/^format: cdnow \(from the first line; --format ndjson\|cdnow to choose\)$/m);
    expect(sample.stderr).toMatch(/0 rejected/);
    const again = await cli(['import', header, '--data-dir', dataDir, '--quiet']);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/ 0 stored .* 0 rejected/);
    expect(detectFormat(' 00001 19970101  1   11.77\r')).toBe('cdnow');
    expect(detectFormat(' 00004 0001 19970101  2   29.33')).toBe('cdnow');
    expect(detectFormat('{"type":"RegisterProspect"}')).toBe('ndjson');
    expect(detectFormat('not json')).toBe('ndjson');
    expect(detectFormat(undefined)).toBe('ndjson');
  });

  it('given a missing file or a bad option, then the CLI names it and exits 1', async () => {
    const missing = await cli(['import', join(dir, 'nope.ndjson'), '--data-dir', join(dir, 'data')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/file: cannot read/);
    const folder = await cli(['import', dir, '--data-dir', join(dir, 'folder-data')]);
    expect(folder).toMatchObject({ code: 1, stderr: `error: file: '${dir}' is a directory, not a file of commands\n` });
    expect(existsSync(join(dir, 'folder-data'))).toBe(false);
    const badBatch = await cli(['import', SAMPLE, '--batch', '0']);
    expect(badBatch.code).toBe(1);
    expect(badBatch.stderr).toMatch(/batch: expected a positive integer/);
  });

  const embedded: JourneySetup = {
    dir: () => dir,
    store: async (name) => {
      const dataDir = join(dir, name);
      return { cli: (args) => cli([...args, '--data-dir', dataDir]), events: () => readAll(dataDir) };
    },
  };
  describe('mixing --same-day policies', () => sameDayJourneys(embedded));
  describe('a corrected file imported again', () => correctionJourneys(embedded));
});
