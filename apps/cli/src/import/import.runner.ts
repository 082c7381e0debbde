import type { CommandEnvelope, CommandSink, EnvelopeValidator, FieldError } from '../command-sink';
import { listLines, type ImportItem, type LineError, type Withholding } from './import-item';

/** A refused line: at parsing, at the edge validator, or by the domain once sent. */
export interface RejectedLine extends Withholding {
  line: number;
  stage: 'parse' | 'validation' | 'domain';
  reason: string;
  commandId?: string;
  code?: string;
  errors?: LineError[];
}

export interface ImportSummary {
  /** last input line read */
  lines: number;
  /** valid commands sent to the sink */
  sent: number;
  /** commands stored for the first time */
  stored: number;
  /** commands the store already had (a re-run): answered, nothing written; one stored with other content is refused instead */
  duplicates: number;
  /** commands accepted with nothing to record (an order already recorded under another command id) */
  noOps: number;
  /** events appended by the commands stored for the first time */
  events: number;
  rejected: number;
}

export interface ImportDependencies {
  sink: CommandSink;
  validate: EnvelopeValidator;
  batchSize: number;
  onReject: (rejected: RejectedLine) => void;
  /** called after every batch and every refused line */
  onProgress?: (summary: Readonly<ImportSummary>) => void;
}

/** The engine's code for a command sent under an id that stored another command (a line changed since it was imported). */
const COMMAND_ID_REUSED = 'command_id_reused';

const describeErrors = (errors: readonly FieldError[]): string =>
  errors.map((error) => `${error.field}: expected ${error.expected}`).join('; ');

/**
 * Validates each item at the edge and sends the valid ones in batches. Refusals leave through
 * `onReject` in line order (items arrive in line order): one of a line after the first command of
 * the batch in flight waits for that batch's answers, which may refuse earlier lines. Memory is
 * bounded by one batch: at `batchSize` refusals waiting, the batch is sent early.
 */
export const runImport = async (items: AsyncIterable<ImportItem>, deps: ImportDependencies): Promise<ImportSummary> => {
  if (!Number.isInteger(deps.batchSize) || deps.batchSize < 1) {
    throw new Error(`batch size: expected a positive integer, found ${deps.batchSize}`);
  }
  const summary: ImportSummary = { lines: 0, sent: 0, stored: 0, duplicates: 0, noOps: 0, events: 0, rejected: 0 };
  let batch: { line: number; rows?: number[]; envelope: CommandEnvelope }[] = [];
  /** refusals of lines after the batch's first command, in line order */
  let waiting: RejectedLine[] = [];

  const report = (rejected: RejectedLine): void => {
    summary.rejected += 1;
    deps.onReject(rejected);
  };

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const sending = batch;
    const after = waiting;
    batch = [];
    waiting = [];
    const results = await deps.sink.executeBatch(sending.map((item) => item.envelope));
    if (results.length !== sending.length) {
      throw new Error(`the command service answered ${results.length} results for ${sending.length} commands`);
    }
    let next = 0;
    /** an answer's refusal, after the waiting refusals of earlier lines */
    const reportInOrder = (rejected: RejectedLine): void => {
      for (; next < after.length && (after[next] as RejectedLine).line < rejected.line; next++) report(after[next] as RejectedLine);
      report(rejected);
    };
    results.forEach((result, index) => {
      const { line, rows } = sending[index] as { line: number; rows?: number[] };
      if (!result.ok) {
        const reason = result.field === undefined ? result.message : `${result.field}: ${result.message}`;
        reportInOrder({
          line,
          stage: 'domain',
          commandId: result.commandId,
          code: result.code,
          // a changed line under an id already stored: the first version stays, and the user must
          // know which lines of the file that leaves out (a merged CDNOW order has several)
          reason:
            result.code === COMMAND_ID_REUSED
              ? `${reason}; ${rows === undefined ? 'this line was' : `lines ${listLines(rows)} were`} not applied (the log is append-only: the first version stays)`
              : reason,
        });
      } else if (result.status === 'duplicate') summary.duplicates += 1;
      else if (result.status === 'no_op') summary.noOps += 1;
      else {
        summary.stored += 1;
        summary.events += result.eventCount;
      }
    });
    for (; next < after.length; next++) report(after[next] as RejectedLine);
    deps.onProgress?.(summary);
  };

  const reject = async (rejected: RejectedLine): Promise<void> => {
    if (batch.length === 0) {
      report(rejected);
      return;
    }
    waiting.push(rejected);
    if (waiting.length >= deps.batchSize) await flush();
  };

  for await (const item of items) {
    summary.lines = Math.max(summary.lines, item.line);
    if (item.kind === 'reject') {
      await reject({
        line: item.line,
        stage: 'parse',
        reason: item.reason,
        ...(item.errors ? { errors: item.errors } : {}),
        ...(item.withheldBy ? { withheldBy: item.withheldBy } : {}),
        ...(item.withholds ? { withholds: item.withholds } : {}),
      });
      continue;
    }
    const validation = deps.validate(item.input);
    if (!validation.ok) {
      await reject({ line: item.line, stage: 'validation', reason: describeErrors(validation.errors), errors: validation.errors });
      continue;
    }
    batch.push(item.rows ? { line: item.line, rows: item.rows, envelope: validation.command } : { line: item.line, envelope: validation.command });
    summary.sent += 1;
    if (batch.length >= deps.batchSize) await flush();
  }
  await flush();
  deps.onProgress?.(summary);
  return summary;
};
