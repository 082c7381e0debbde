import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWithServer, InMemoryEventStore, KafkaServer } from '@clientele/testing';
// the spec needs a broker of its own to stop and restart, so it starts one like global setup does
import { startBroker } from '../../../infra/kafka/broker';
import { InMemoryCheckpointStore } from './checkpoint.store';
import { EventRelay } from './event-relay';
import { consumeUntil, newEvent, testKafka, uniquePrefix } from './kafka-test-helpers';
import { ensureTopics } from './topics';

describeWithServer(KafkaServer, 'event relay across a broker outage', () => {
  it('keeps its checkpoint while the broker is down and publishes everything once it is back', async () => {
    // given a relay publishing into a broker of its own
    const dataDir = mkdtempSync(join(tmpdir(), 'clientele-outage-'));
    let broker = await startBroker({ dataDir });
    const kafka = testKafka(broker.brokers);
    const store = new InMemoryEventStore();
    const checkpoints = new InMemoryCheckpointStore();
    let relay: EventRelay | undefined;
    try {
      const admin = kafka.admin();
      await admin.connect();
      const topics = await ensureTopics(admin, { topicPrefix: uniquePrefix(), partitions: 2, replicationFactor: 1 });
      await admin.disconnect();
      relay = new EventRelay({ store, kafka, topics, checkpoints, retryBackoffMs: 200 });
      const append = async (from: number, to: number) => {
        for (let i = from; i < to; i++) await store.appendToStream(`customer-c${i % 5}`, [newEvent('TouchpointRecorded', `c${i % 5}`, { n: i })]);
      };
      relay.start();
      await append(0, 30);
      await relay.waitForPosition(30);

      // when the broker stops while events keep being appended, then comes back on the same port
      await broker.stop();
      await append(30, 60);
      await new Promise((r) => setTimeout(r, 500));
      const checkpointWhileDown = await checkpoints.load('kafka-relay');
      broker = await startBroker({ dataDir });
      await append(60, 90);
      await relay.waitForPosition(90, 120_000);
      await relay.stop();

      // then nothing was checkpointed past what the broker had, and every event is on the topic
      expect(checkpointWhileDown).toBe(30);
      const received = await consumeUntil(kafka, [topics.events], (r) => new Set(r.map((m) => m.headers['clientele-event-id'])).size >= 90);
      const ids = new Set(received.map((m) => m.headers['clientele-event-id']));
      expect([...ids].sort()).toEqual((await store.readAll()).map((e) => e.id).sort());
      expect((await relay.stats()).failedSends).toBeGreaterThan(0);
    } finally {
      await relay?.stop();
      await broker.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
