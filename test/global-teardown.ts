import { rmSync } from 'node:fs';
import type { RunningBroker } from '../infra/kafka/broker';
import { KAFKA_HANDLE } from './global-setup';

/** Stops what global setup started. */
export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as typeof globalThis & { [KAFKA_HANDLE]?: RunningBroker };
  const broker = holder[KAFKA_HANDLE];
  if (!broker) return;
  delete holder[KAFKA_HANDLE];
  await broker.stop();
  rmSync(broker.dataDir, { recursive: true, force: true });
}
