import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import type { StoredEvent } from '@clientele/event-store';

import { runCli } from '../apps/cli/src/cli.program';
import { openEngine } from '../apps/cli/src/engine-wiring';

/**
 * CDNOW import journeys every store must pass: run by `cli-import.spec.ts` on the embedded store and
 * by `cli-import-postgres.int-spec.ts` on PostgreSQL.
 */
export interface JourneyStore {
  /** `clientele <args>` against this store, in-process */
  cli(args: string[]): Promise<{ code: number; stderr: string }>;
  events(): Promise<StoredEvent[]>;
}

export interface JourneySetup {
  /** a new, empty store */
  store(name: string): Promise<JourneyStore>;
  /** a folder for the files the journeys write */
  dir(): string;
}

const cdnow = (dir: string, name: string, rows: string[]): string => {
  const file = join(dir, name);
  writeFileSync(file, `${rows.join('\r\n')}\r\n`);
  return file;
};

const purchases = (events: StoredEvent[]) =>
  events.filter((e) => e.type === 'PurchaseRecorded').map((e) => (e.data as { orderId: string; totalMinor: number }));

export function sameDayJourneys(setup: JourneySetup): void {
  // a 1-in-10 sample holds customers 4 and 5; the whole file starts with customers the sample lacks
  const sampleRows = [' 00004 19970101  2  29.33', ' 00004 19970101  1  10.00', ' 00005 19970102  1  12.00'];
  const wholeRows = [' 00001 19970101  1  11.77', ' 00002 19970112  1  12.00', ' 00003 19970102  2  20.76', ...sampleRows];

  it.each([
    ['merge', 'separate'],
    ['separate', 'merge'],
  ] as const)(
    'given a store holding CDNOW orders imported with --same-day %s, when a file is imported with %s, then it is refused before anything is written, naming the policy the store holds, and a re-run with that policy goes ahead',
    async (held, other) => {
      const store = await setup.store(`same_day_${held}`);
      const sample = cdnow(setup.dir(), `sample-${held}.txt`, sampleRows);
      const whole = cdnow(setup.dir(), `whole-${held}.txt`, wholeRows);
      expect((await store.cli(['import', sample, '--format', 'cdnow', '--same-day', held, '--quiet'])).code).toBe(0);
      const before = await store.events();

      const refused = await store.cli(['import', whole, '--format', 'cdnow', '--same-day', other, '--quiet']);

      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`error: --same-day ${other}: the store already holds CDNOW orders imported with --same-day ${held} (order cdnow-4-19970101${held === 'separate' ? '-1' : ''} of cdnow-4)`);
      expect(refused.stderr).toContain(`Import with --same-day ${held} to add this file to what is stored, or into an empty store`);
      expect(await store.events()).toHaveLength(before.length);

      const again = await store.cli(['import', sample, '--format', 'cdnow', '--same-day', held, '--quiet']);
      expect(again.code).toBe(0);
      // two registrations and the orders: one of customer 4's day merged, two separate, and customer 5's
      expect(again.stderr).toContain(` 0 stored (0 events), ${held === 'merge' ? 4 : 5} already stored`);
      const added = await store.cli(['import', whole, '--format', 'cdnow', '--same-day', held, '--quiet']);
      expect(added.code).toBe(0);
      // the sample's two revenues once each, the three customers before them added
      const orders = purchases(await store.events());
      expect(orders.reduce((sum, o) => sum + o.totalMinor, 0)).toBe(1177 + 1200 + 2076 + 2933 + 1000 + 1200);
    },
  );
}

export function correctionJourneys(setup: JourneySetup): void {
  it('given a CDNOW file imported, when a corrected copy is imported, then each order stored with other content is refused with its lines as not applied, nothing is written, and the original again is all already stored', async () => {
    const store = await setup.store('corrected');
    const rows = [' 00001 19970101  1  11.77', ' 00002 19970112  1  12.00', ' 00002 19970112  5  77.00', ' 00002 19970301  3  10.00', ' 00003 19970102  2  20.76'];
    const original = cdnow(setup.dir(), 'original.txt', rows);
    // another amount on the second row of a merged day, another CD count on a day of one row
    const corrected = cdnow(setup.dir(), 'corrected.txt', rows.map((row, i) => (i === 2 ? row.replace('77.00', '70.00') : i === 4 ? row.replace('  2  ', '  3  ') : row)));
    const rejects = join(setup.dir(), 'corrected-rejects.ndjson');
    expect((await store.cli(['import', original, '--format', 'cdnow', '--quiet'])).code).toBe(0);
    const before = await store.events();

    const run = await store.cli(['import', corrected, '--format', 'cdnow', '--quiet', '--rejects', rejects]);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(new RegExp(`line 2: domain: command id \\S+ was already used for a different command: data\\.lines differs from what it stored \\(PurchaseRecorded at position \\d+\\); send a new command under a new id; lines 2, 3 were not applied \\(the log is append-only: the first version stays\\)\n`));
    expect(run.stderr).toMatch(new RegExp(`line 5: domain: command id \\S+ was already used for a different command: data\\.lines differs from what it stored \\(PurchaseRecorded at position \\d+\\); send a new command under a new id; this line was not applied \\(the log is append-only: the first version stays\\)\n`));
    expect(run.stderr).toContain(' 0 stored (0 events), 5 already stored, 0 with nothing to record, 2 rejected');
    const report = readFileSync(rejects, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; code: string });
    expect(report.map((r) => [r.line, r.code])).toEqual([
      [2, 'command_id_reused'],
      [5, 'command_id_reused'],
    ]);
    expect(await store.events()).toHaveLength(before.length);

    const again = await store.cli(['import', original, '--format', 'cdnow', '--quiet']);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(' 0 stored (0 events), 7 already stored, 0 with nothing to record, 0 rejected');
  });

  it('given a CDNOW file imported, when the next file holds later rows of the same customers, then their registrations have nothing to record and the new orders are stored', async () => {
    const store = await setup.store('next_month');
    const january = cdnow(setup.dir(), 'january.txt', [' 00001 19970101  1  11.77', ' 00002 19970112  1  12.00']);
    const february = cdnow(setup.dir(), 'february.txt', [' 00001 19970203  2  20.00', ' 00002 19970214  1  9.00', ' 00003 19970220  1  5.00']);
    expect((await store.cli(['import', january, '--format', 'cdnow', '--quiet'])).code).toBe(0);

    // each customer's first row of the file registers them: a day after their January one here
    const run = await store.cli(['import', february, '--format', 'cdnow', '--quiet']);

    expect(run.code).toBe(0);
    expect(run.stderr).toContain(' 4 stored (7 events), 0 already stored, 2 with nothing to record, 0 rejected');
    const registrations = (await store.events()).filter((e) => e.type === 'ProspectRegistered').map((e) => [e.data['customerId'], e.data['occurredAt']]);
    expect(registrations).toEqual([
      ['cdnow-1', '1997-01-01T00:00:00.000Z'],
      ['cdnow-2', '1997-01-12T00:00:00.000Z'],
      ['cdnow-3', '1997-02-20T00:00:00.000Z'],
    ]);
    expect(purchases(await store.events()).map((o) => o.orderId).sort()).toEqual(['cdnow-1-19970101', 'cdnow-1-19970203', 'cdnow-2-19970112', 'cdnow-2-19970214', 'cdnow-3-19970220']);
  });

  it('given an NDJSON purchase imported, when a line changes it under the same commandId, then that line is refused as a reused command id', async () => {
    const store = await setup.store('changed_ndjson');
    const at = '2025-03-01T10:00:00Z';
    const line = { sku: 'a', category: 'b', quantity: 1, unitPriceMinor: 500, unitCostMinor: 200 };
    const envelopes = (price: number) => [
      JSON.stringify({ type: 'RegisterProspect', commandId: 'r-1', data: { customerId: 'ann', source: 'web', occurredAt: at } }),
      JSON.stringify({ type: 'RecordPurchase', commandId: 'p-1', data: { customerId: 'ann', orderId: 'o-1', lines: [{ ...line, unitPriceMinor: price }], occurredAt: at } }),
    ];
    const file = join(setup.dir(), 'purchases.ndjson');
    writeFileSync(file, `${envelopes(500).join('\n')}\n`);
    expect((await store.cli(['import', file, '--quiet'])).code).toBe(0);
    expect((await store.cli(['import', file, '--quiet'])).code).toBe(0);
    writeFileSync(file, `${envelopes(450).join('\n')}\n`);

    const run = await store.cli(['import', file, '--quiet']);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain('line 2: domain: command id p-1 was already used for a different command: data.lines differs from what it stored');
    expect(run.stderr).toContain('this line was not applied (the log is append-only: the first version stays)');
  });
}

/** `clientele <args>` in-process with the real engine, stdout and stderr captured. */
export async function cliInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const captured = () => {
    const stream = new PassThrough() as PassThrough & NodeJS.WriteStream;
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { stream, text: () => text };
  };
  const out = captured();
  const err = captured();
  const code = await runCli(args, { stdout: out.stream, stderr: err.stream, openEngine });
  return { code, stdout: out.text(), stderr: err.text() };
}
