import { SingleBar } from 'cli-progress';

/** One progress report for every long CLI command (import, export, migrate), on stderr. */
export interface ProgressFigures {
  /** work done so far, in the unit of the total (bytes of a file, events of a log) */
  done: number;
  /** when the total is only learnt (or changes) while the work runs */
  total?: number;
  /** lines read, when they differ from `done` (an import counts bytes for the bar, lines for the rate) */
  lines?: number;
  rejected?: number;
}

export interface Progress {
  update(figures: ProgressFigures): void;
  stop(figures: ProgressFigures): void;
}

export interface ProgressOptions {
  total: number;
  stream: NodeJS.WritableStream & { isTTY?: boolean };
  /** how often a non-TTY prints its one-line report; default 5 s */
  intervalMs?: number;
  label?: string;
  /**
   * what `done` counts, shown as `done/total unit` (e.g. 'events'); leave out when `done` is bytes,
   * which only the percentage shows
   */
  unit?: string;
}

const rate = (count: number, startedAt: number, now: number): number => Math.round(count / Math.max((now - startedAt) / 1000, 0.001));

/**
 * A bar on a terminal; on a pipe or a log file, one plain line every few seconds and one at the
 * end, because carriage returns and cursor codes turn a log into noise.
 */
export const createProgress = ({ total: initialTotal, stream, intervalMs = 5000, label = 'import', unit }: ProgressOptions): Progress => {
  const startedAt = Date.now();
  let total = initialTotal;
  const percentOf = (done: number): string => (total > 0 ? ((Math.min(done, total) / total) * 100).toFixed(1) : '100.0');
  /** everything but the percentage and the elapsed time, the same words on a bar and in a log line */
  const detail = (f: ProgressFigures, now: number): string => {
    const parts: string[] = [];
    if (f.lines !== undefined) parts.push(`${f.lines} lines, ${rate(f.lines, startedAt, now)} lines/s`);
    else if (unit !== undefined) parts.push(`${rate(f.done, startedAt, now)} ${unit}/s`);
    if (f.rejected !== undefined) parts.push(`${f.rejected} rejected`);
    return parts.join(', ');
  };

  if (stream.isTTY) {
    const bar = new SingleBar({
      stream: stream as NodeJS.WriteStream,
      format: `${label} [{bar}] {percentage}%${unit ? ` | {value}/{total} ${unit}` : ''} | {detail} | {duration_formatted}`,
      hideCursor: true,
    });
    let started = false;
    const show = (f: ProgressFigures): void => {
      if (f.total !== undefined && f.total !== total) {
        total = f.total;
        if (started) bar.setTotal(Math.max(total, 1));
      }
      if (!started) {
        bar.start(Math.max(total, 1), 0, { detail: '' });
        started = true;
      }
      bar.update(Math.min(f.done, Math.max(total, 1)), { detail: detail(f, Date.now()) });
    };
    return {
      update: show,
      stop: (f) => {
        show(f);
        bar.stop();
      },
    };
  }

  let lastPrinted = startedAt;
  const print = (f: ProgressFigures, now: number): void => {
    if (f.total !== undefined) total = f.total;
    const amount = unit !== undefined ? `${f.done}/${total} ${unit} (${percentOf(f.done)}%)` : `${percentOf(f.done)}%`;
    const more = detail(f, now);
    stream.write(`${label}: ${amount}${more ? `${unit !== undefined ? ',' : ''} ${more}` : ''}, ${((now - startedAt) / 1000).toFixed(1)}s\n`);
  };
  return {
    update: (f) => {
      const now = Date.now();
      if (now - lastPrinted >= intervalMs) {
        lastPrinted = now;
        print(f, now);
      }
    },
    stop: (f) => print(f, Date.now()),
  };
};

/** For tests and `--quiet`. */
export const silentProgress: Progress = { update: () => undefined, stop: () => undefined };
