import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';

import { formatReport, type BenchReport } from './bench.command';
import { runSectionInOwnProcess } from './section-process';

const ROOT = resolve(__dirname, '..', '..', '..', '..');

const run = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });

/** A port nothing listens on: bound, then closed again. */
const closedPort = (): Promise<number> =>
  new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address !== null ? address.port : 1));
    });
  });

describe('clientele bench, each section in its own process (the built CLI)', () => {
  // Compiled inside the repository so the child resolves node_modules like `npm run cli` does.
  const build = join(ROOT, 'dist', `bench-process-${process.pid}`);
  const main = join(build, 'apps', 'cli', 'src', 'main.js');

  beforeAll(() => {
    const built = spawnSync('npx', ['swc', 'apps', 'libs', '--out-dir', build, '--copy-files', '--quiet', '--config-file', '.swcrc'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    if (built.status !== 0) throw new Error(`could not compile the CLI: ${built.stderr}`);
  }, 120_000);

  afterAll(() => rmSync(build, { recursive: true, force: true }));

  it('given a section, when the bench runs, then its rows arrive from its own process with that process\'s peak RSS', async () => {
    const { code, stdout } = await run([main, 'bench', '--quick', '--json', '--section', 'sqlite appends']);

    expect(code).toBe(0);
    const report = JSON.parse(stdout) as BenchReport;
    expect(report.eachSectionInOwnProcess).toBe(true);
    expect(report.rows.length).toBeGreaterThanOrEqual(4);
    expect(report.rows.every((r) => r.section === 'sqlite appends' && r.eventsPerSecond! > 0)).toBe(true);
    expect(report.peakRssMiBAfter).toEqual([{ section: 'sqlite appends', peakRssMiB: expect.any(Number) as number }]);
    const own = report.peakRssMiBAfter[0]!.peakRssMiB;
    expect(own).toBeGreaterThan(0);
    expect(report.peakRssMiB).toBeGreaterThanOrEqual(own);
    expect(formatReport(report)).toContain(`\npeak RSS per section, each in its own process: sqlite appends ${own} MiB\n`);
  }, 60_000);

  it('given a section with cases, when the bench runs, then each case runs in a process of its own and the section reports the largest peak RSS', async () => {
    const { code, stdout } = await run([main, 'bench', '--quick', '--json', '--section', 'rebuild memory']);

    expect(code).toBe(0);
    const report = JSON.parse(stdout) as BenchReport;
    expect(report.rows.map((r) => r.name)).toEqual([
      '100 customers, 2,000 events',
      '100 customers, 4,000 events',
      '200 customers, 2,400 events, 100 resident',
      '400 customers, 4,800 events, 100 resident',
    ]);
    expect(report.peakRssMiBAfter).toEqual([{ section: 'rebuild memory', peakRssMiB: expect.any(Number) as number }]);
  }, 120_000);

  it('given a section whose process fails, then the bench fails naming the section with the end of its stderr, and prints no report', async () => {
    const pg = `postgres://postgres@127.0.0.1:${await closedPort()}/bench`;

    const { code, stdout, stderr } = await run([main, 'bench', '--quick', '--json', '--section', 'postgresql appends', '--pg', pg]);

    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^error: bench section 'postgresql appends' failed in its own process \(exit code 1\); the end of its stderr:\n.*ECONNREFUSED/);
  }, 60_000);
});

describe('runSectionInOwnProcess', () => {
  let dir: string;
  const captured = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
    return { stream, text: () => text };
  };
  /** A stand-in for the CLI's entry file: a script doing what the test needs of the child. */
  const entry = (name: string, script: string): string => {
    const file = join(dir, name);
    writeFileSync(file, script);
    return file;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-bench-process-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("given the parent's options, then the child gets them with --json, --in-process and the section last, and its stderr is passed on", async () => {
    const echo = entry(
      'echo.js',
      `process.stderr.write(JSON.stringify(process.argv.slice(2)));
       process.stdout.write(JSON.stringify({ rows: [{ section: 's', name: 'n' }], skipped: [], peakRssMiB: 42 }));`,
    );
    const err = captured();

    const report = await runSectionInOwnProcess(echo, 'sqlite appends', { quick: true, seed: 's1', dir: '/d', pg: 'postgres://p', kafka: 'k:1', case: '2' }, err.stream);

    expect(report).toEqual({ rows: [{ section: 's', name: 'n' }], skipped: [], peakRssMiB: 42 });
    expect(JSON.parse(err.text())).toEqual([
      'bench', '--json', '--in-process', '--seed', 's1', '--quick', '--dir', '/d', '--pg', 'postgres://p', '--kafka', 'k:1', '--case', '2', '--section', 'sqlite appends',
    ]);
  });

  it('given a child that exits 0 without a report, then the error names the section, what it printed and the end of its stderr', async () => {
    const garbled = entry(
      'garbled.js',
      `process.stderr.write(Array.from({ length: 30 }, (_, i) => 'line ' + i).join('\\n') + '\\n');
       process.stdout.write('not a report');`,
    );

    const failed = runSectionInOwnProcess(garbled, 'statistics', { seed: 'bench' }, captured().stream);

    await expect(failed).rejects.toThrow(
      `bench section 'statistics' failed in its own process (exit code 0 without a report: stdout began "not a report"); the end of its stderr:\n` +
        Array.from({ length: 20 }, (_, i) => `line ${i + 10}`).join('\n'),
    );
  });

  it('given a child killed by a signal, then the error says so', async () => {
    const killed = entry('killed.js', `process.kill(process.pid, 'SIGKILL');`);

    await expect(runSectionInOwnProcess(killed, 'kafka', { seed: 'bench' }, captured().stream)).rejects.toThrow(
      "bench section 'kafka' failed in its own process (killed by SIGKILL); it wrote nothing on stderr",
    );
  });
});
