import { writeFileSync } from 'node:fs';
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
