/** Helpers for this lib's Kafka specs only (not exported). */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import type { NewEvent } from '@clientele/event-store';

export function testKafka(brokers: string): Kafka {
  // few, quick retries: a spec that cannot reach the broker should say so soon
  return new Kafka({
    clientId: 'clientele-spec',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 3 },
    connectionTimeout: 2000,
  });
}

export const uniquePrefix = (): string => `t${randomUUID().slice(0, 8)}.`;

export function newEvent(type: string, customerId: string, data: Record<string, string | number> = {}): NewEvent {
  return {
    id: randomUUID(),
    type,
    data: { customerId, occurredAt: '2026-02-01T09:00:00.000Z', ...data },
    metadata: { occurredAt: '2026-02-01T09:00:00.000Z', schemaVersion: 1, correlationId: `corr-${customerId}` },
  };
}

export interface Received {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** Reads `topics` from the beginning with a fresh group until `done(received)` holds. */
export async function consumeUntil(
  kafka: Kafka,
  topics: string[],
  done: (received: Received[]) => boolean,
  timeoutMs = 30_000,
): Promise<Received[]> {
  const consumer = kafka.consumer({ groupId: `spec-${randomUUID()}`, maxBytesPerPartition: 8 * 1024 * 1024 });
  const received: Received[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    let finish: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        received.push(toReceived(topic, partition, message));
        if (done(received)) finish();
      },
    });
    const timer = new Promise<void>((_, reject) =>
      setTimeout(() => reject(new Error(`only ${received.length} messages arrived on ${topics.join(', ')}`)), timeoutMs).unref(),
    );
    await Promise.race([finished, timer]);
    return received;
  } finally {
    await consumer.disconnect();
  }
}

function toReceived(topic: string, partition: number, m: KafkaMessage): Received {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[k] = String(v);
  return { topic, partition, offset: m.offset, key: m.key?.toString('utf8') ?? null, value: m.value, headers };
}
