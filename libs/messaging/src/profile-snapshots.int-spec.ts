import { formatIssues, ProfileSnapshotSchema, validateAgainstSchema } from '@clientele/contracts';
import { describeWithServer, KafkaServer } from '@clientele/testing';
import { Partitioners } from 'kafkajs';
import { consumeUntil, testKafka, uniquePrefix } from './kafka-test-helpers';
import { profileSnapshotPublisher } from './profile-snapshots';
import { ensureTopics } from './topics';

describeWithServer(KafkaServer, 'profile snapshots on Kafka', (brokers) => {
  it('publishes the latest profile keyed by customer id, and a tombstone when it is erased', async () => {
    // given the profiles topic and a publisher
    const kafka = testKafka(brokers);
    const admin = kafka.admin();
    await admin.connect();
    const topics = await ensureTopics(admin, { topicPrefix: uniquePrefix(), partitions: 1, replicationFactor: 1 });
    const config = await admin.describeConfigs({ resources: [{ type: 2, name: topics.profiles }], includeSynonyms: false });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const publish = profileSnapshotPublisher(producer, topics.profiles);

    // when a profile is published and then erased
    const profile = {
      customerId: 'c1', erased: false, preferences: {}, consents: {}, habits: { topCategories: [], topProducts: [], ordersPer30Days: 0 },
      stage: 'customer', stageHistory: [], acquisition: {}, referees: [], feedback: { count: 0, complaints: 0 }, thanks: { count: 0, recent: [] },
      value: { revenueMinor: 1250, costMinor: 700, marginMinor: 550 }, rfm: { frequency: 1, monetaryMinor: 1250 }, personalDataRedacted: true,
    };
    await publish('c1', profile, { position: 12 });
    await publish('c1', null);
    await producer.disconnect();

    // then the compacted topic holds the snapshot, then a null value, both keyed c1
    const received = await consumeUntil(kafka, [topics.profiles], (r) => r.length >= 2);
    expect(received.map((r) => r.key)).toEqual(['c1', 'c1']);
    const snapshot = JSON.parse(received[0]?.value?.toString() ?? '') as unknown;
    expect(formatIssues(validateAgainstSchema(ProfileSnapshotSchema, snapshot))).toBe('');
    expect(snapshot).toEqual({ customerId: 'c1', snapshotVersion: 1, position: 12, profile });
    expect(received[1]?.value).toBeNull();
    const policy = config.resources[0]?.configEntries.find((e) => e.configName === 'cleanup.policy');
    expect(policy?.configValue).toBe('compact');
  });
});
