import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { runCli } from './cli.program';
import type { CliContext } from './cli-context';

const captured = () => {
  const stream = new PassThrough() as PassThrough & NodeJS.WriteStream;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
};

/** The CLI in-process; a refused option must stop it before any store is opened. */
async function cli(args: string[]) {
  const out = captured();
  const err = captured();
  let opened = 0;
  const context: CliContext = {
    stdout: out.stream,
    stderr: err.stream,
    openEngine: () => {
      opened++;
      return Promise.reject(new Error('no store is opened in these cases'));
    },
  };
  const code = await runCli(args, context);
  return { code, stdout: out.text(), stderr: err.text(), opened };
}

describe('clientele: bad option values', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'clientele-cli-options-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    [['import', 'x.ndjson', '--batch', '0'], "--batch: expected a positive integer, got '0'"],
    [['generate', '--customers', 'many'], "--customers: expected a positive integer, got 'many'"],
    [['generate', '--customers', '3', '--referral-share', 'abc'], "--referral-share: expected a number from 0 to 1, got 'abc'"],
    [['generate', '--customers', '3', '--referral-share', '1.5'], "--referral-share: expected a number from 0 to 1, got '1.5'"],
    [['generate', '--customers', '3', '--id-prefix', 'bad prefix'], "--id-prefix: expected a letter or digit, then up to 99 letters, digits or . _ : @ + - (the start of every generated id), got 'bad prefix'"],
    [['generate', '--customers', '3', '--id-prefix', ''], "--id-prefix: expected a letter or digit"],
    [['generate', '--customers', '3', '--from', '2025-02-30'], "--from: expected a date of the calendar (YYYY-MM-DD), got '2025-02-30'"],
    [['generate', '--customers', '3', '--from', '2025-05-01', '--to', '2025-03-01'], "--to: expected a day at least 60 days after --from (2025-05-01), got '2025-03-01'"],
    [['generate', '--customers', '3', '--from', '2025-01-01', '--to', '2025-03-01'], "--to: expected a day at least 60 days after --from (2025-01-01), got '2025-03-01'"],
    [['sweep-churn', '--as-of', '2206-01-01'], "--as-of: expected a business time from 1900-01-01 up to one day after now ("],
    [['sweep-churn', '--as-of', '1899-12-31'], 'earlier dates are taken for typing mistakes'],
    [['generate', '--customers', '3', '--from', '2026-06-01', '--to', '2206-06-01'], "--to: expected a business time from 1900-01-01 up to one day after now ("],
    [['sweep-churn', '--as-of', '2025-02-29'], "--as-of: expected a date of the calendar (YYYY-MM-DD), got '2025-02-29'"],
    [['as-of', 'ada', '--date', '2025-04-31'], "--date: expected a date (YYYY-MM-DD) or a date-time with a zone"],
    [['migrate', '--from', 'sqlite:a.db', '--to', 'sqlite:b.db', '--batch', '-1'], "--batch: expected a positive integer, got '-1'"],
    [['import', 'x.ndjson', '--rejects', '/no/such/folder/r.ndjson'], "--rejects: expected a file in an existing folder (/no/such/folder does not exist)"],
    [['export', '--out', '/no/such/folder/log.ndjson'], "--out: expected a file in an existing folder (/no/such/folder does not exist)"],
    [['personal-data', 'export', 'ada', '--out', '/no/such/folder/ada.ndjson'], "--out: expected a file in an existing folder"],
  ])('%j is refused naming the option, exit 1, nothing opened or written', async (args, message) => {
    const out = join(dir, 'out.ndjson');
    const run = await cli(args[0] === 'generate' ? [...args, '--out', out] : args);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(1);
    expect(run.opened).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    [['audit', 'verify', '--from-export', '/no/such/log.ndjson'], "--from-export: expected an existing file, got '/no/such/log.ndjson'"],
    [['audit', 'verify', '--expect', '5:abc'], '--expect: expected <position>:<64 hex digit hash>'],
    [['audit', 'verify', '--no-such-option'], "unknown option '--no-such-option'"],
    [['audit', 'replay', '--batch', '0'], "--batch: expected a positive integer, got '0'"],
  ])('%j: a refused option exits 2, "could not verify", never 1, which says the log is broken', async (args, message) => {
    const run = await cli(args);
    expect(run.stderr).toContain(message);
    expect(run.code).toBe(2);
  });

  it('generate --out into a missing folder is refused before anything is generated', async () => {
    const run = await cli(['generate', '--customers', '2', '--out', join(dir, 'nope', 'out.ndjson')]);
    expect(run).toMatchObject({ code: 1, opened: 0 });
    expect(run.stderr).toContain(`--out: expected a file in an existing folder (${join(dir, 'nope')} does not exist)`);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a span of exactly 60 days is a workload the generator takes', async () => {
    const out = join(dir, 'out.ndjson');
    const run = await cli(['generate', '--customers', '2', '--from', '2025-01-01', '--to', '2025-03-02', '--out', out]);
    expect(run).toMatchObject({ code: 0, opened: 0 });
    expect(readFileSync(out, 'utf8').trim().split('\n').length).toBeGreaterThan(0);
  });
});
