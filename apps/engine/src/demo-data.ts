import type { INestApplicationContext } from '@nestjs/common';
import { CommandService, EVENT_STORE, ReferralProcessRunner } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import { generateSyntheticCommands } from '@clientele/generator';
import { EngineReadModels } from './engine-read-models';

export interface DemoReport {
  seeded: boolean;
  commands: number;
  head: number;
  sampleCustomerId?: string;
}

/**
 * A newcomer's first start: when the store is empty, fill it with a seeded synthetic workload
 * (sources, Pareto spend, referrals, complaints, churn and win-backs) through the normal command
 * path, so every endpoint has something to show. Never touches a store that already has events.
 *
 * The referral process manager waits while the batches run and then reacts to all of them from its
 * checkpoint: running beside them, its credits kept losing the revision race to the batch's own
 * commands for the same referrers (each such reaction is tried again a second later, with a
 * warning in the newcomer's first log).
 */
export async function seedDemoData(app: INestApplicationContext, customers: number): Promise<DemoReport> {
  const store = app.get<EventStore>(EVENT_STORE);
  if ((await store.headPosition()) > 0) return { seeded: false, commands: 0, head: await store.headPosition() };
  const commands = generateSyntheticCommands({ customers, seed: 'demo', idPrefix: 'demo' });
  const service = app.get(CommandService);
  const runner = app.get(ReferralProcessRunner);
  const reacting = runner.running;
  if (reacting) await runner.stop();
  for (let i = 0; i < commands.length; i += 2000) {
    await service.executeBatch(commands.slice(i, i + 2000));
  }
  if (reacting) {
    await runner.start();
    await runner.catchUp();
  }
  await app.get(EngineReadModels).catchUp();
  const first = commands.find((c) => c.type === 'RecordPurchase');
  const sampleCustomerId = first ? String((first.data as { customerId?: unknown }).customerId) : undefined;
  return { seeded: true, commands: commands.length, head: await store.headPosition(), sampleCustomerId };
}
