/**
 * Runs the Kafka benchmarks against a broker: the one in KAFKA_BENCH_BROKERS, else one started here
 * (like the test setup does) and stopped afterwards. Prints one line of JSON per figure.
 *
 *   npx swc apps libs infra -d /tmp/clientele-bench --config-file .swcrc && node /tmp/clientele-bench/infra/kafka/kafka-bench.js
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { ClienteleModule, CommandService, ingestBatchDispatch } from '@clientele/application';
import { SqliteEventStore } from '@clientele/event-store';
import { benchEndToEndLatency, benchIngestThroughput, benchProducerCeiling, benchRelayThroughput } from '@clientele/messaging';
import { startBroker } from './broker';

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const wanted = (name: string): boolean => only.length === 0 || only.includes(name);
  const broker = process.env.KAFKA_BENCH_BROKERS ? undefined : await startBroker();
  const brokers = process.env.KAFKA_BENCH_BROKERS ?? broker?.brokers ?? '';
  const print = (name: string, figure: object): void => {
    process.stdout.write(`${JSON.stringify({ bench: name, ...figure })}\n`);
  };
  print('machine', { cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString() });
  try {
    if (wanted('ceiling')) {
      const events = Number(process.env.BENCH_EVENTS ?? 200_000);
      print('ceiling', await benchProducerCeiling(brokers, { events }));
      print('ceiling-no-headers', await benchProducerCeiling(brokers, { events, headers: false }));
    }
    if (wanted('relay')) print('relay', await benchRelayThroughput(brokers, { events: Number(process.env.BENCH_EVENTS ?? 200_000), ...(process.env.BENCH_BATCH && { batchSize: Number(process.env.BENCH_BATCH) }), ...(process.env.BENCH_GZIP === '1' && { compression: 'gzip' as const }) }));
    if (wanted('ingest-trivial')) print('ingest-trivial', await benchIngestThroughput(brokers, { commands: 50_000, concurrency: 32 }));
    if (wanted('ingest')) {
      const dir = mkdtempSync(join(tmpdir(), 'clientele-ingest-bench-'));
      const store = new SqliteEventStore({ file: join(dir, 'events.sqlite'), durability: 'full' });
      const app = await NestFactory.createApplicationContext(ClienteleModule.forRoot({ store, processManager: false }), { logger: false });
      try {
        print('ingest', await benchIngestThroughput(brokers, {
          commands: 50_000,
          partitionsAtOnce: 6,
          dispatchBatch: ingestBatchDispatch(app.get(CommandService)),
          dispatchLabel: 'CommandService.importBatch per fetched batch (validate, one look-up and one append per customer, SQLite durability full)',
        }));
      } finally {
        await app.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    if (wanted('latency')) print('latency', await benchEndToEndLatency(brokers, { events: 2000 }));
  } finally {
    await broker?.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
