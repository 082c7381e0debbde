import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { SqliteEventStore, type SqliteDurability } from '@clientele/event-store';
import { ClienteleModule } from './clientele.module';
import { CommandService } from './command.service';

export interface CommandPathBenchOptions {
  /** customers; each gets a registration and two purchases (3 commands, 6 events); default 5,000 */
  customers?: number;
  /** envelopes per executeBatch call; default 5,000 */
  batchSize?: number;
  durability?: SqliteDurability;
  /** commands in flight at once; default 64 */
  concurrency?: number;
  dir?: string;
}

export interface CommandPathFigure {
  durability: SqliteDurability;
  concurrency: number;
  commands: number;
  events: number;
  seconds: number;
  commandsPerSecond: number;
  eventsPerSecond: number;
}

/**
 * The full command path (validate, CommandBus, load, decide, append with group commit) through
 * `executeBatch`, on a fresh SQLite file. Prints nothing: the caller (CLI bench) reports.
 */
export async function benchCommandPath(options: CommandPathBenchOptions = {}): Promise<CommandPathFigure> {
  const customers = options.customers ?? 5000;
  const batchSize = options.batchSize ?? 5000;
  const durability = options.durability ?? 'full';
  const concurrency = options.concurrency ?? 64;
  const dir = mkdtempSync(join(options.dir ?? tmpdir(), 'clientele-command-bench-'));
  const store = new SqliteEventStore({ file: join(dir, 'bench.sqlite'), durability });
  const app = await NestFactory.createApplicationContext(ClienteleModule.forRoot({ store, processManager: false, batchConcurrency: concurrency }), {
    logger: false,
  });
  try {
    const commands = app.get(CommandService);
    const envelopes: unknown[] = [];
    for (let i = 0; i < customers; i++) {
      const customerId = `bench-${i}`;
      envelopes.push({
        type: 'RegisterProspect',
        commandId: `r-${i}`,
        data: { customerId, source: 'bench', occurredAt: '2026-01-01T10:00:00Z', personal: { name: `Customer ${i}` } },
      });
      for (const order of [1, 2]) {
        envelopes.push({
          type: 'RecordPurchase',
          commandId: `p-${i}-${order}`,
          data: {
            customerId,
            orderId: `o-${i}-${order}`,
            occurredAt: `2026-01-0${order + 1}T10:00:00Z`,
            lines: [{ sku: 'SKU-1', category: 'books', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 700 }],
          },
        });
      }
    }
    const started = process.hrtime.bigint();
    for (let i = 0; i < envelopes.length; i += batchSize) {
      const results = await commands.executeBatch(envelopes.slice(i, i + batchSize));
      const failed = results.find((r) => !r.ok);
      if (failed) throw new Error(`bench command failed: ${JSON.stringify(failed)}`);
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const events = await store.headPosition();
    return {
      durability,
      concurrency,
      commands: envelopes.length,
      events,
      seconds,
      commandsPerSecond: Math.round(envelopes.length / seconds),
      eventsPerSecond: Math.round(events / seconds),
    };
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
