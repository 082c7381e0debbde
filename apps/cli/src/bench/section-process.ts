import { spawn } from 'node:child_process';

import type { BenchOptions, BenchReport } from './bench.command';

/** What a section run in a process of its own hands back: its rows, its skips and that process's peak RSS. */
export type SectionReport = Pick<BenchReport, 'rows' | 'skipped' | 'peakRssMiB'>;

const STDERR_TAIL_LINES = 20;

/**
 * Runs one section in a fresh Node process on the CLI's own entry file, as
 * `bench --json --in-process … --section <name>`, so it measures on a heap that no earlier section
 * filled and its peak RSS is its own. The child's stderr is held back: passed on after a section
 * that succeeded, its tail carried by the error of one that failed (so it is shown once).
 */
export const runSectionInOwnProcess = (
  cliEntry: string,
  section: string,
  options: BenchOptions,
  stderr: NodeJS.WritableStream,
): Promise<SectionReport> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry, ...childArguments(section, options)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', (error) => reject(new Error(`bench section '${section}' could not start its own process: ${error.message}`)));
    child.on('close', (code, signal) => {
      const report = code === 0 ? parseReport(out) : undefined;
      if (report !== undefined) {
        stderr.write(err);
        resolve(report);
        return;
      }
      const how =
        signal !== null ? `killed by ${signal}` : code !== 0 ? `exit code ${code}` : `exit code 0 without a report: ${out === '' ? 'stdout was empty' : `stdout began ${JSON.stringify(out.slice(0, 200))}`}`;
      reject(new Error(`bench section '${section}' failed in its own process (${how}); ${stderrTail(err)}`));
    });
  });

// `--section` is variadic, so it goes last: the next option would end its list, a value would join it.
const childArguments = (section: string, options: BenchOptions): string[] => [
  'bench',
  '--json',
  '--in-process',
  '--seed',
  options.seed,
  ...(options.quick ? ['--quick'] : []),
  ...(options.dir !== undefined ? ['--dir', options.dir] : []),
  ...(options.pg !== undefined ? ['--pg', options.pg] : []),
  ...(options.kafka !== undefined ? ['--kafka', options.kafka] : []),
  ...(options.case !== undefined ? ['--case', options.case] : []),
  '--section',
  section,
];

const parseReport = (stdout: string): SectionReport | undefined => {
  try {
    const report = JSON.parse(stdout) as Partial<SectionReport> | null;
    return Array.isArray(report?.rows) && Array.isArray(report.skipped) && typeof report.peakRssMiB === 'number'
      ? { rows: report.rows, skipped: report.skipped, peakRssMiB: report.peakRssMiB }
      : undefined;
  } catch {
    return undefined;
  }
};

const stderrTail = (stderr: string): string => {
  const lines = stderr.trimEnd().split('\n');
  if (lines.length === 1 && lines[0] === '') return 'it wrote nothing on stderr';
  return `the end of its stderr:\n${lines.slice(-STDERR_TAIL_LINES).join('\n')}`;
};
