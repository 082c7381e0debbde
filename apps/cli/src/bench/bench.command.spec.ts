import { PassThrough } from 'node:stream';

import { runCli } from '../cli.program';
import type { CliContext } from '../cli-context';
import type { CommandPathFigure } from '@clientele/application';
import { formatReport, medianOfRounds, roundsNote, type BenchReport, type BenchRow } from './bench.command';

const captured = () => {
  const stream = new PassThrough() as PassThrough & NodeJS.WriteStream;
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
};

const positive = (n: number | undefined): boolean => typeof n === 'number' && Number.isFinite(n) && n > 0;

/** `clientele bench --quick …` in-process (no CLI entry file, so every section runs in this process). */
const benchQuick = async (...args: string[]) => {
  const out = captured();
  const err = captured();
  const context: CliContext = {
    stdout: out.stream,
    stderr: err.stream,
    openEngine: () => Promise.reject(new Error('bench must not open the operator store')),
  };
  const code = await runCli(['bench', '--quick', ...args], context);
  return { code, stdout: out.text(), stderr: err.text() };
};

describe('clientele bench --quick', () => {
  let code: number;
  let report: BenchReport;

  beforeAll(async () => {
    const run = await benchQuick('--json');
    code = run.code;
    report = JSON.parse(run.stdout) as BenchReport;
  }, 180_000);

  const rowsOf = (section: string): BenchRow[] => report.rows.filter((r) => r.section === section);

  it('given a quick run, then the command path has 1 and 64 callers at full and normal durability, and on the store as the engine opens it, with throughput and latency', () => {
    expect(code).toBe(0);
    const rows = rowsOf('command path');
    expect(rows.map((r) => `${r.name}/${r.durability}`)).toEqual([
      '1 caller/full',
      '64 callers/full',
      '1 caller/normal',
      '64 callers/normal',
      'personal data encrypted, 1 caller/full',
      'personal data encrypted, 64 callers/full',
    ]);
    for (const row of rows) {
      expect([row.commandsPerSecond, row.eventsPerSecond, row.p50Ms, row.p99Ms, row.cpuMicrosPerCommand].every(positive)).toBe(true);
      expect(row.p99Ms!).toBeGreaterThanOrEqual(row.p50Ms!);
    }
  });

  it('given a quick run, then batched imports and raw SQLite appends report events per second', () => {
    const imports = rowsOf('batched import');
    expect(imports.map((r) => `${r.name.split(' ')[0]}/${r.durability}`)).toEqual(['executeBatch/full', 'executeBatch/normal', 'importBatch/full', 'importBatch/normal', 'importBatch/full']);
    expect(imports[4]!.name).toBe('importBatch of 200, personal data encrypted');
    expect(imports.every((r) => positive(r.eventsPerSecond) && positive(r.commandsPerSecond))).toBe(true);
    const appends = rowsOf('sqlite appends');
    expect(appends.length).toBeGreaterThanOrEqual(4);
    expect(appends.every((r) => positive(r.eventsPerSecond) && positive(r.appendsPerSecond))).toBe(true);
  });

  it('given a quick run, then the projection rebuild reports events per second and peak RSS for every read model and for the older pair, lookup latency, and what SQLite alone takes for its rows and its log', () => {
    const [all, pair, lookup, writeFloor, readFloor] = rowsOf('projection rebuild');
    expect([all?.name, pair?.name, lookup?.name, writeFloor?.name, readFloor?.name]).toEqual([
      'every read model from the log',
      'profiles + referrals from the log',
      'profile lookup after the rebuild',
      'baseline: its rows written again by better-sqlite3 alone',
      'baseline: its log read and parsed alone',
    ]);
    expect(positive(writeFloor?.eventsPerSecond) && positive(readFloor?.eventsPerSecond)).toBe(true);
    expect(writeFloor?.note).toMatch(/^[1-9][\d,]* rows of every read model: \d+\.\d\d s of inserts, \d+\.\d\d s of deferred indexes$/);
    for (const rebuild of [all, pair]) {
      expect(positive(rebuild?.eventsPerSecond)).toBe(true);
      expect(rebuild?.note).toMatch(/peak RSS [1-9]\d* MB/);
    }
    expect(positive(lookup?.p50Ms) && positive(lookup?.p99Ms)).toBe(true);
  });

  it('given a quick run, then the rebuild memory rows give the retained heap and the RSS of rebuilds of ever longer logs, for the same customers and for customers past a resident limit', () => {
    const rows = rowsOf('rebuild memory');
    expect(rows.map((r) => r.name)).toEqual([
      '100 customers, 2,000 events',
      '100 customers, 4,000 events',
      '200 customers, 2,400 events, 100 resident',
      '400 customers, 4,800 events, 100 resident',
    ]);
    for (const row of rows) {
      expect(row.note).toMatch(/^retained heap peak [1-9]\d* MB, RSS [1-9]\d* → [1-9]\d* MB$/);
      expect(row.eventsPerSecond).toBeUndefined();
    }
  });

  it('given a quick run, then the statistics read model reports its build rate and the latency of every query', () => {
    const [build, ...queries] = rowsOf('statistics');
    expect(build?.name).toBe('build the statistics read model');
    expect(positive(build?.eventsPerSecond)).toBe(true);
    expect(queries.length).toBeGreaterThan(5);
    expect(queries.every((q) => q.name.startsWith('query ') && q.p50Ms !== undefined && q.p99Ms! >= q.p50Ms)).toBe(true);
  });

  it('given no PostgreSQL or Kafka option, then their sections are skipped with the reason, and peak memory is reported', () => {
    expect(report.skipped).toEqual([
      { section: 'postgresql appends', reason: 'no server given (pass --pg <url>)' },
      { section: 'kafka', reason: 'no broker given (pass --kafka <host:port>)' },
    ]);
    expect(rowsOf('postgresql appends')).toEqual([]);
    expect(rowsOf('kafka')).toEqual([]);
    expect(positive(report.peakRssMiB)).toBe(true);
    expect(report.peakRssMiBAfter.map((p) => p.section)).toEqual(['command path', 'batched import', 'sqlite appends', 'projection rebuild', 'rebuild memory', 'statistics']);
    expect(report.peakRssMiBAfter.every((p) => positive(p.peakRssMiB) && p.peakRssMiB <= report.peakRssMiB)).toBe(true);
  });

  it('given the report, when printed as a table, then every measured row and the skipped section appear', () => {
    const table = formatReport(report);

    const lines = table.split('\n');
    expect(lines.find((l) => l.startsWith('section'))).toContain('p99 ms');
    for (const row of report.rows) expect(lines.some((l) => l.startsWith(row.section) && l.includes(row.name))).toBe(true);
    expect(table).toContain('skipped postgresql appends: no server given (pass --pg <url>)');
    expect(table).toContain('skipped kafka: no broker given (pass --kafka <host:port>)');
    expect(table).toContain(`peak RSS: ${report.peakRssMiB} MiB (`);
  });
});

describe('clientele bench --section', () => {
  it('given one section named, then only its rows are measured and nothing else runs or is skipped', async () => {
    const run = await benchQuick('--json', '--section', 'sqlite appends');

    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as BenchReport;
    expect(new Set(report.rows.map((r) => r.section))).toEqual(new Set(['sqlite appends']));
    expect(report.rows.length).toBeGreaterThanOrEqual(4);
    expect(report.skipped).toEqual([]);
    expect(report.peakRssMiBAfter.map((p) => p.section)).toEqual(['sqlite appends']);
  }, 60_000);

  it('given sections named out of order, then they are taken in the order of the bench', async () => {
    const run = await benchQuick('--json', '--section', 'kafka', 'postgresql appends');

    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as BenchReport;
    expect(report.skipped.map((s) => s.section)).toEqual(['postgresql appends', 'kafka']);
    expect(report.rows).toEqual([]);
  });

  it('given one case of a section that has cases, then only that case is measured', async () => {
    const run = await benchQuick('--json', '--case', '1', '--section', 'rebuild memory');

    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as BenchReport;
    expect(report.rows.map((r) => `${r.section}: ${r.name}`)).toEqual(['rebuild memory: 100 customers, 4,000 events']);
  }, 60_000);

  it('given a case out of range, or a case without one section that has cases, then it is a usage error naming --case, and nothing runs', async () => {
    const outOfRange = await benchQuick('--case', '4', '--section', 'rebuild memory');
    expect(outOfRange.code).toBe(1);
    expect(outOfRange.stdout).toBe('');
    expect(outOfRange.stderr).toBe('error: --case: expected a case number from 0 to 3, got "4"\n');

    const notANumber = await benchQuick('--case', '-1', '--section', 'rebuild memory');
    expect(notANumber.stderr).toBe('error: --case: expected a case number from 0 to 3, got "-1"\n');

    for (const sections of [[], ['sqlite appends'], ['rebuild memory', 'statistics']]) {
      const run = await benchQuick('--case', '0', ...(sections.length > 0 ? ['--section', ...sections] : []));
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe('error: --case: needs one --section that has cases (rebuild memory)\n');
    }
  });

  it('given an unknown section, then it is a usage error naming the option, the name and every section, and nothing runs', async () => {
    const run = await benchQuick('--section', 'sqlite appends', 'sqlite apends');

    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      "error: --section: no section 'sqlite apends'; the sections are 'command path', 'batched import', 'sqlite appends', " +
        "'projection rebuild', 'rebuild memory', 'statistics', 'postgresql appends', 'kafka'\n",
    );
  });
});

describe('command-path rounds', () => {
  const round = (commandsPerSecond: number, p99: number, cpu: number): CommandPathFigure => ({
    durability: 'full',
    callers: 64,
    commands: 1000,
    events: 1200,
    seconds: 1000 / commandsPerSecond,
    commandsPerSecond,
    eventsPerSecond: commandsPerSecond * 1.2,
    latencyMs: { p50: p99 / 3, p99, max: p99 * 2 },
    cpuMicrosPerCommand: cpu,
    outcomes: { applied: 1000, duplicate: 0, no_op: 0, refused: 0 },
  });

  it('given three rounds, then each figure is its own median, and the counts are the workload\'s', () => {
    const median = medianOfRounds([round(18_000, 9, 70), round(26_000, 5, 50), round(22_000, 6, 60)]);
    expect(median.commandsPerSecond).toBe(22_000);
    expect(median.eventsPerSecond).toBeCloseTo(26_400);
    expect(median.latencyMs).toEqual({ p50: 2, p99: 6, max: 12 });
    expect(median.cpuMicrosPerCommand).toBe(60);
    expect(median.commands).toBe(1000);
    expect(median.events).toBe(1200);
  });

  it('given an even number of rounds, then the median is the mean of the middle two; given none, then it refuses', () => {
    expect(medianOfRounds([round(10_000, 4, 50), round(30_000, 8, 70)]).commandsPerSecond).toBe(20_000);
    expect(() => medianOfRounds([])).toThrow('no rounds');
  });

  it('given the rounds, then the note lists each in order with its p99 and how many ran untimed before', () => {
    expect(roundsNote([round(18_311.4, 8.48, 70), round(23_605, 5.63, 50), round(28_967, 5.57, 45)], 1)).toBe(
      '3 rounds (1 untimed before): 18,311 · 23,605 · 28,967 commands/s, p99 8.48 · 5.63 · 5.57 ms',
    );
    expect(roundsNote([round(1_000, 2, 300), round(1_100, 2.5, 290)], 0)).toBe('2 rounds: 1,000 · 1,100 commands/s, p99 2 · 2.5 ms');
  });
});
