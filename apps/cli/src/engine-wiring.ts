import 'reflect-metadata';

import { NestFactory } from '@nestjs/core';
import { existsSync } from 'node:fs';
import {
  ChurnSweep,
  ClienteleModule,
  CommandService,
  openStorage,
  ReferralProcessRunner,
  storageConfigFromEnv,
  type BatchItemResult,
} from '@clientele/application';

import type { ValidCommand } from '@clientele/contracts';
import { createEventStore, SqliteEventStore } from '@clientele/event-store';

import { UsageError, type Engine, type LogReader } from './cli-context';
import type { CommandEnvelope, CommandSink, ItemResult } from './command-sink';

export const toItemResult = (envelope: CommandEnvelope, item: BatchItemResult): ItemResult => {
  if (!item.ok) {
    return {
      ok: false,
      commandId: item.commandId ?? envelope.commandId,
      code: item.failure.code,
      message: item.failure.message,
      ...(item.failure.kind === 'rule' && item.failure.field !== undefined ? { field: item.failure.field } : {}),
    };
  }
  const { commandId, status, events } = item.result;
  return { ok: true, commandId, status, eventCount: status === 'applied' ? events.length : 0 };
};

/**
 * The store of a data directory (the engine's storage settings, with --data-dir on top) opened to
 * read a stream: no engine, no referral process manager catching up (which may append), no master
 * key. The embedded store is opened read-only, writing nothing to its file or folder, so history
 * works on evidence on read-only storage as the audit commands do.
 */
export const openReader = async (dataDir: string): Promise<LogReader> => {
  const config = storageConfigFromEnv({ ...process.env, CLIENTELE_DATA_DIR: dataDir });
  if (config.store.kind === 'sqlite') {
    if (!existsSync(config.store.file)) {
      throw new UsageError(`--data-dir: no store in ${dataDir} (${config.store.file} does not exist); give the directory the engine keeps its data in`);
    }
    const store = new SqliteEventStore({ file: config.store.file, readOnly: true });
    return { readStream: (streamId) => store.readStream(streamId), close: () => store.close() };
  }
  const store = await createEventStore(config.store);
  return { readStream: (streamId) => store.readStream(streamId), close: () => store.close() };
};

/**
 * Starts the command side of Clientele in this process over the embedded SQLite store, with the
 * referral process manager running so referrals are credited as purchases arrive. `close()` lets
 * the process manager catch up with everything imported before it stops.
 */
export const openEngine = async (dataDir: string, options: { existing?: boolean } = {}): Promise<Engine> => {
  // the engine's own storage settings (store kind, durability, master key), with --data-dir on top
  const config = storageConfigFromEnv({ ...process.env, CLIENTELE_DATA_DIR: dataDir });
  if (options.existing && config.store.kind === 'sqlite' && !existsSync(config.store.file)) {
    throw new UsageError(`--data-dir: no store in ${dataDir} (${config.store.file} does not exist); give the directory the engine keeps its data in`);
  }
  const storage = await openStorage(config);
  const store = storage.store;
  const app = await NestFactory.createApplicationContext(
    ClienteleModule.forRoot({ store, checkpoints: storage.checkpoints }),
    { logger: ['error', 'warn'] },
  );
  const commands = app.get(CommandService);
  const sink: CommandSink = {
    executeBatch: async (envelopes) => {
      // The import runner sends only what validateCommandEnvelope accepted (a ValidCommand each), so
      // the bulk path takes them without validating every line a second time. A line that fails for
      // now holds its customer's later lines of the batch (reported as not run), so that re-running
      // the import applies them in file order instead of finding a purchase stored ahead of the
      // registration before it.
      const results = await commands.importValid(envelopes as readonly ValidCommand[], { holdStreamAfterTemporaryFailure: true });
      return results.map((item, i) => toItemResult(envelopes[i] as CommandEnvelope, item));
    },
  };
  return {
    sink,
    readStream: (streamId) => store.readStream(streamId),
    sweepChurn: async (asOf) => {
      const report = await app.get(ChurnSweep).sweepChurn(asOf);
      return { examined: report.customers, churned: report.churned, refused: report.refused, conflicts: report.conflicts };
    },
    close: async () => {
      const runner = app.get(ReferralProcessRunner);
      if (runner.running) await runner.catchUp();
      await app.close();
    },
  };
};
