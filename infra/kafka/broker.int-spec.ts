import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { describeWithServer, KafkaServer } from '@clientele/testing';
import { startBroker } from './broker';

// Runs only where the shared test broker could start (same prerequisites: Java and Maven).
describeWithServer(KafkaServer, 'a local Kafka broker', () => {
  it('keeps its topics and records across a stop and a restart on the same port', async () => {
    // given a broker of its own with one record stored
    const dataDir = mkdtempSync(join(tmpdir(), 'clientele-broker-spec-'));
    const first = await startBroker({ dataDir });
    try {
      const kafka = new Kafka({ clientId: 'broker-spec', brokers: [first.brokers], logLevel: logLevel.NOTHING });
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'kept', numPartitions: 1 }], waitForLeaders: true });
      await admin.disconnect();
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: 'kept', messages: [{ key: 'k', value: 'survives a restart' }] });
      await producer.disconnect();

      // when it stops and starts again from the same folder
      await first.stop();
      const second = await startBroker({ dataDir });
      try {
        // then it listens where it did and still has the record
        expect(second.brokers).toBe(first.brokers);
        expect(second.pid).not.toBe(first.pid);
        const again = new Kafka({ clientId: 'broker-spec', brokers: [second.brokers], logLevel: logLevel.NOTHING }).admin();
        await again.connect();
        const offsets = await again.fetchTopicOffsets('kept');
        await again.disconnect();
        expect(offsets).toEqual([expect.objectContaining({ partition: 0, high: '1', low: '0' })]);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
