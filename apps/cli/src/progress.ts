import { SingleBar } from 'cli-progress';

export interface ProgressFigures {
  /** input consumed so far, in the unit of the total (bytes for a file) */
  done: number;
  lines: number;
  rejected: number;
}

export interface Progress {
  update(figures: ProgressFigures): void;
  stop(figures: ProgressFigures): void;
}

export interface ProgressOptions {
  total: number;
  stream: NodeJS.WriteStream;
  /** how often a non-TTY prints its one-line report */
  intervalMs?: number;
  label?: string;
}

const rate = (lines: number, startedAt: number, now: number): number =>
  Math.round(lines / Math.max((now - startedAt) / 1000, 0.001));

/**
 * A bar on a terminal; on a pipe or a log file, one plain line every few seconds, because carriage
 * returns and cursor codes turn a log into noise.
 */
export const createProgress = ({ total, stream, intervalMs = 5000, label = 'import' }: ProgressOptions): Progress => {
  const startedAt = Date.now();
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: `${label} [{bar}] {percentage}% | {lines} lines | {rate} lines/s | {rejected} rejected | {duration_formatted}`,
      hideCursor: true,
    });
    bar.start(Math.max(total, 1), 0, { lines: 0, rate: 0, rejected: 0 });
    const payload = (f: ProgressFigures) => ({ lines: f.lines, rejected: f.rejected, rate: rate(f.lines, startedAt, Date.now()) });
    return {
      update: (f) => bar.update(Math.min(f.done, total), payload(f)),
      stop: (f) => {
        bar.update(total, payload(f));
        bar.stop();
      },
    };
  }
  let lastPrinted = startedAt;
  const print = (f: ProgressFigures, now: number): void => {
    const percent = total > 0 ? ((Math.min(f.done, total) / total) * 100).toFixed(1) : '100.0';
    stream.write(
      `${label}: ${percent}% ${f.lines} lines, ${rate(f.lines, startedAt, now)} lines/s, ${f.rejected} rejected, ${((now - startedAt) / 1000).toFixed(1)}s\n`,
    );
  };
  return {
    update: (f) => {
      const now = Date.now();
      if (now - lastPrinted >= intervalMs) {
        lastPrinted = now;
        print(f, now);
      }
    },
    stop: (f) => print({ ...f, done: total }, Date.now()),
  };
};

/** For tests and `--quiet`. */
export const silentProgress: Progress = { update: () => undefined, stop: () => undefined };
