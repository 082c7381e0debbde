import { closeSync, createWriteStream, openSync, readSync, statSync } from 'node:fs';

import { validateCommandEnvelope } from '@clientele/contracts';
import { customerStream } from '@clientele/domain';

import { UsageError, type CliContext, type Engine } from '../cli-context';
import type { EnvelopeValidator } from '../command-sink';
import { createProgress, silentProgress } from '../progress';
import { firstCustomers, looksLikeCdnow, readCdnowCommands, sameDayPolicyOf, type SameDayPolicy } from './cdnow.reader';
import { openLines } from './import-item';
import { runImport, type ImportSummary, type RejectedLine } from './import.runner';
import { readNdjsonCommands } from './ndjson.reader';

export interface ImportOptions {
  /** `auto`: told apart by the file's first line (detectFormat) */
  format: 'auto' | 'ndjson' | 'cdnow';
  batch: number;
  dataDir: string;
  rejects?: string;
  sameDay: SameDayPolicy;
  quiet?: boolean;
}

/** How many refusals are printed to stderr; the `--rejects` file has them all. */
const PRINTED_REJECTS = 50;

const validate: EnvelopeValidator = (input) => validateCommandEnvelope(input);

/** Exit code 2 when any line was refused, 0 otherwise. */
export const importFile = async (file: string, options: ImportOptions, context: CliContext): Promise<number> => {
  let size: number;
  try {
    const stat = statSync(file);
    if (stat.isDirectory()) throw new UsageError(`file: '${file}' is a directory, not a file of commands`);
    size = stat.size;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`file: cannot read '${file}'`);
  }
  let format = options.format;
  if (format === 'auto') {
    format = detectFormat(firstLine(file));
    if (!options.quiet) context.stderr.write(`format: ${format} (from the first line; --format ndjson|cdnow to choose)\n`);
  }
  const engine = await context.openEngine(options.dataDir);
  if (format === 'cdnow') {
    try {
      await refuseOtherSameDay(file, options.sameDay, engine);
    } catch (error) {
      await engine.close();
      throw error;
    }
  }
  const rejectsOut = options.rejects === undefined ? undefined : createWriteStream(options.rejects, { encoding: 'utf8' });
  const lines = openLines(file);
  const items = format === 'cdnow' ? readCdnowCommands(lines, { sameDay: options.sameDay }) : readNdjsonCommands(lines);
  const progress = options.quiet ? silentProgress : createProgress({ total: size, stream: context.stderr });
  const printed: RejectedLine[] = [];
  const startedAt = Date.now();
  let summary: ImportSummary;
  // Ctrl-C or a stop: what is stored stays (each command whole); say how far it got and how to finish
  let reached: Readonly<ImportSummary> | undefined;
  const interrupted = (signal: NodeJS.Signals): void => {
    progress.stop({ done: lines.stream.bytesRead, lines: reached?.lines ?? 0, rejected: reached?.rejected ?? 0 });
    context.stderr.write(
      `\ninterrupted (${signal}) after line ${reached?.lines ?? 0}: ${reached?.stored ?? 0} commands stored so far, each whole; ` +
        `run the same import again to finish (what is stored is answered "already stored")\n`,
    );
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    summary = await runImport(items, {
      sink: engine.sink,
      validate,
      batchSize: options.batch,
      onReject: (rejected) => {
        if (printed.length < PRINTED_REJECTS) printed.push(rejected);
        rejectsOut?.write(`${JSON.stringify(rejected)}\n`);
      },
      onProgress: (s) => {
        reached = s;
        progress.update({ done: lines.stream.bytesRead, lines: s.lines, rejected: s.rejected });
      },
    });
    progress.stop({ done: size, lines: summary.lines, rejected: summary.rejected });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    lines.stream.destroy();
    await engine.close();
    if (rejectsOut !== undefined) await new Promise<void>((resolve) => rejectsOut.end(resolve));
  }
  const seconds = (Date.now() - startedAt) / 1000;
  for (const rejected of printed) {
    context.stderr.write(`line ${rejected.line}: ${rejected.stage}: ${rejected.reason}\n`);
  }
  if (summary.rejected > printed.length) {
    context.stderr.write(`… and ${summary.rejected - printed.length} more rejected lines${options.rejects ? ` (all in ${options.rejects})` : ' (use --rejects <file> for all)'}\n`);
  }
  context.stderr.write(
    `imported ${file}: ${summary.lines} lines, ${summary.sent} commands sent, ${summary.stored} stored (${summary.events} events), ` +
      `${summary.duplicates} already stored, ${summary.noOps} with nothing to record, ${summary.rejected} rejected, ${seconds.toFixed(1)}s\n`,
  );
  return summary.rejected > 0 ? 2 : 0;
};

/**
 * How many of a CDNOW file's first customers have their stored orders looked at before anything is
 * written: one stream read each, all at once (milliseconds on either store). A store that holds a
 * 1-in-10 sample of the file's customers has some among them almost surely.
 */
const PROBED_CUSTOMERS = 100;

/**
 * The two --same-day policies give the same rows different order ids (cdnow.reader.ts), so a store
 * holding orders made under one takes the file's orders under the other for new ones: every row
 * stored twice, revenue doubled. Refused before anything is written when the stored orders of the
 * file's first customers were made under the other policy only; a re-run with the policy the store
 * holds finds its own order ids and goes ahead (a store holding both was mixed before this check).
 */
async function refuseOtherSameDay(file: string, sameDay: SameDayPolicy, engine: Engine): Promise<void> {
  const lines = openLines(file);
  let customers: string[];
  try {
    customers = await firstCustomers(lines, PROBED_CUSTOMERS);
  } finally {
    lines.stream.destroy();
  }
  const histories = await Promise.all(customers.map((customerId) => engine.readStream(customerStream(customerId))));
  let other: { customerId: string; orderId: string } | undefined;
  for (const [i, history] of histories.entries()) {
    for (const event of history) {
      const orderId = event.type === 'PurchaseRecorded' ? event.data['orderId'] : undefined;
      const policy = typeof orderId === 'string' ? sameDayPolicyOf(orderId) : undefined;
      if (policy === sameDay) return;
      if (policy !== undefined && other === undefined) other = { customerId: customers[i] as string, orderId: orderId as string };
    }
  }
  if (other === undefined) return;
  const held: SameDayPolicy = sameDay === 'merge' ? 'separate' : 'merge';
  throw new UsageError(
    `--same-day ${sameDay}: the store already holds CDNOW orders imported with --same-day ${held} (order ${other.orderId} of ${other.customerId}); ` +
      `imported with ${sameDay}, the same rows would be stored again under other order ids and their CDs and revenue counted twice. ` +
      `Import with --same-day ${held} to add this file to what is stored, or into an empty store (another --data-dir, or another CLIENTELE_PG_SCHEMA) ` +
      `to keep ${sameDay === 'merge' ? 'one order per customer and day' : 'one order per row'}; nothing was imported`,
  );
}

/**
 * The format a file is in, from its first line that is not blank: NDJSON envelopes start with `{`;
 * a CDNOW file starts with its header or a row the CDNOW reader parses (looksLikeCdnow). Anything
 * else is taken as NDJSON, whose reader then says what is wrong with each line.
 */
export function detectFormat(line: string | undefined): 'ndjson' | 'cdnow' {
  const text = line ?? '';
  return !text.trim().startsWith('{') && looksLikeCdnow(text) ? 'cdnow' : 'ndjson';
}

/** The first line of the file that is not blank, from its first 64 KiB (undefined when there is none). */
function firstLine(file: string): string | undefined {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer
      .toString('utf8', 0, read)
      .split(/\r?\n/)
      .find((l) => l.trim() !== '');
  } finally {
    closeSync(fd);
  }
}
