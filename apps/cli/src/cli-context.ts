import type { StoredEvent } from '@clientele/event-store';

import type { CommandSink } from './command-sink';

/** What the commands need from a running Clientele: a command path and the store to read history. */
export interface Engine {
  sink: CommandSink;
  readStream(streamId: string): Promise<StoredEvent[]>;
  /** the churn sweep as of a business date, when the application offers one */
  sweepChurn?: (asOf: string) => Promise<{ examined: number; churned: number; refused: number; conflicts: number }>;
  close(): Promise<void>;
}

/** What a command that only reads the log needs: a customer's stream, as stored, and nothing started. */
export interface LogReader {
  readStream(streamId: string): Promise<StoredEvent[]>;
  close(): Promise<void>;
}

/** Streams and the engine factory arrive from outside so tests can run the program in-process. */
export interface CliContext {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  /**
   * `existing`: the command only reads or maintains a store (history, sweep-churn), so a store that
   * is not there is refused (a mistyped --data-dir) instead of created empty with a new master key
   */
  openEngine(dataDir: string, options?: { existing?: boolean }): Promise<Engine>;
  /**
   * The store of a data directory opened to read only (history): nothing started, nothing written to
   * the store file or its folder. Without it, history opens the engine.
   */
  openReader?(dataDir: string): Promise<LogReader>;
  /**
   * The file the CLI runs from (main.ts sets it), so a command can start the CLI again in a child
   * process: `bench` runs each section in one. Absent when the program runs in-process (the specs).
   */
  cliEntry?: string;
}

/** A refusal of the operator's input: the CLI prints the message (no stack) and exits 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
