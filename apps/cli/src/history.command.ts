import { customerStream } from '@clientele/domain';
import type { StoredEvent } from '@clientele/event-store';

import type { CliContext } from './cli-context';

export interface HistoryOptions {
  json?: boolean;
  dataDir: string;
}

export interface HistoryRow {
  position: number;
  revision: number;
  type: string;
  occurredAt: string;
  recordedAt: string;
  causation: string;
}

export const historyRow = (event: StoredEvent): HistoryRow => ({
  position: event.position,
  revision: event.revision,
  type: event.type,
  occurredAt: event.metadata.occurredAt,
  recordedAt: event.recordedAt,
  causation: event.metadata.causationId ?? '',
});

const COLUMNS: readonly (keyof HistoryRow)[] = ['position', 'revision', 'type', 'occurredAt', 'recordedAt', 'causation'];

export const formatTable = (rows: readonly HistoryRow[]): string => {
  const cells = [COLUMNS.map(String), ...rows.map((row) => COLUMNS.map((column) => String(row[column])))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? '').length)));
  return cells.map((line) => line.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
};

/**
 * Prints a customer's stream in revision order. An unknown customer prints nothing and exits 1,
 * so scripts can tell "no such customer" from "a customer with history".
 */
export const printHistory = async (customerId: string, options: HistoryOptions, context: CliContext): Promise<number> => {
  // only reads: the store is opened read-only where the CLI can (see CliContext.openReader)
  const engine = context.openReader ? await context.openReader(options.dataDir) : await context.openEngine(options.dataDir, { existing: true });
  try {
    const events = await engine.readStream(customerStream(customerId));
    if (events.length === 0) {
      context.stderr.write(`customer ${customerId}: no events in ${options.dataDir}\n`);
      return 1;
    }
    const rows = events.map(historyRow);
    if (options.json) {
      for (const row of rows) context.stdout.write(`${JSON.stringify(row)}\n`);
    } else {
      context.stdout.write(formatTable(rows));
    }
    return 0;
  } finally {
    await engine.close();
  }
};
