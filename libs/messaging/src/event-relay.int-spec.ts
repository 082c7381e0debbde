import { EventEnvelopeSchema, LifecycleTransitionSchema, ReferralEdgeSchema, formatIssues, validateAgainstSchema } from '@clientele/contracts';
import type { EventEnvelope, JsonSchema } from '@clientele/contracts';
import { describeWithServer, InMemoryEventStore, KafkaServer } from '@clientele/testing';
import { InMemoryCheckpointStore, type CheckpointStore } from './checkpoint.store';
import { EventRelay } from './event-relay';
import { consumeUntil, newEvent, testKafka, uniquePrefix, type Received } from './kafka-test-helpers';
import { ensureTopics } from './topics';

const parse = (r: Received): EventEnvelope => JSON.parse(r.value?.toString('utf8') ?? 'null') as EventEnvelope;
const schemaIssues = (schema: JsonSchema, r: Received): string => formatIssues(validateAgainstSchema(schema, JSON.parse(r.value?.toString() ?? 'null')));

/** Forgets every save after the first: a relay that dies before checkpointing its latest batches. */
class CheckpointLostAfterFirstSave implements CheckpointStore {
  private saved = false;
  constructor(private readonly inner: CheckpointStore) {}
  load(name: string): Promise<number> {
    return this.inner.load(name);
  }
  async save(name: string, position: number): Promise<void> {
    if (this.saved) return;
    this.saved = true;
    await this.inner.save(name, position);
  }
}

describeWithServer(KafkaServer, 'event relay into Kafka', (brokers) => {
  const kafka = testKafka(brokers);

  async function setUp() {
    const admin = kafka.admin();
    await admin.connect();
    const topics = await ensureTopics(admin, { topicPrefix: uniquePrefix(), partitions: 3, replicationFactor: 1 });
    await admin.disconnect();
    return { topics, store: new InMemoryEventStore(), checkpoints: new InMemoryCheckpointStore() };
  }

  it('publishes every event in order per stream, with id headers, and transitions and referrals to their topics', async () => {
    // given three customers' histories, interleaved, including transitions and a referral
    const { topics, store, checkpoints } = await setUp();
    for (const c of ['c1', 'c2', 'c3']) await store.appendToStream(`customer-${c}`, [newEvent('ProspectRegistered', c, { source: 'web' })]);
    for (let i = 0; i < 5; i++) {
      for (const c of ['c1', 'c2', 'c3']) await store.appendToStream(`customer-${c}`, [newEvent('TouchpointRecorded', c, { channel: 'email' })]);
    }
    await store.appendToStream('customer-c1', [newEvent('PurchaseRecorded', 'c1', { orderId: 'o1' }), newEvent('CustomerConverted', 'c1', { orderId: 'o1' })]);
    await store.appendToStream('customer-c1', [newEvent('ReferralCredited', 'c1', { refereeId: 'c2' })]);
    const head = await store.headPosition();

    // when the relay runs
    const relay = new EventRelay({ store, kafka, topics, checkpoints, batchSize: 7 });
    relay.start();
    await relay.waitForPosition(head);
    await relay.stop();

    // then `events` holds each event once, in revision order per key, valid, with matching headers
    const all = await consumeUntil(kafka, [topics.events, topics.lifecycle, topics.referrals], (r) => r.length >= head + 5);
    const events = all.filter((r) => r.topic === topics.events);
    expect(events).toHaveLength(head);
    for (const stream of ['customer-c1', 'customer-c2', 'customer-c3']) {
      const revisions = events.filter((r) => r.key === stream).map((r) => parse(r).revision);
      expect(revisions).toEqual([...revisions.keys()]);
    }
    for (const r of events) {
      expect(schemaIssues(EventEnvelopeSchema, r)).toBe('');
      const e = parse(r);
      expect(r.headers).toEqual({
        'clientele-message': 'event.v1',
        'clientele-event-id': e.id,
        'clientele-event-type': e.type,
        'clientele-stream-id': e.streamId,
        'clientele-position': String(e.position),
        'clientele-correlation-id': e.correlationId,
      });
    }
    // and `lifecycle` has exactly the transitions, `referrals` the edge
    const lifecycle = all.filter((r) => r.topic === topics.lifecycle);
    expect(lifecycle.map((r) => parse(r).type).sort()).toEqual(['CustomerConverted', 'ProspectRegistered', 'ProspectRegistered', 'ProspectRegistered']);
    for (const r of lifecycle) expect(schemaIssues(LifecycleTransitionSchema, r)).toBe('');
    const referrals = all.filter((r) => r.topic === topics.referrals);
    expect(referrals).toHaveLength(1);
    expect(schemaIssues(ReferralEdgeSchema, referrals[0] as Received)).toBe('');
    expect(JSON.parse(referrals[0]?.value?.toString() ?? '')).toMatchObject({ referrerId: 'c1', refereeId: 'c2', status: 'credited' });
    expect((await relay.stats()).lag).toBe(0);
  });

  it('re-publishes from its last checkpoint after dying mid-stream: nothing lost, exactly once after dedup by id', async () => {
    // given a relay whose checkpoints after the first batch never reach storage (it "dies" before saving)
    const { topics, store, checkpoints } = await setUp();
    const streams = ['customer-a', 'customer-b', 'customer-c', 'customer-d'];
    for (let i = 0; i < 40; i++) {
      const s = streams[i % streams.length] as string;
      await store.appendToStream(s, [newEvent('TouchpointRecorded', s.slice(9), { n: i })]);
    }
    const lossy = new EventRelay({ store, kafka, topics, checkpoints: new CheckpointLostAfterFirstSave(checkpoints), batchSize: 10 });
    lossy.start();
    await lossy.waitForPosition(40);
    await lossy.stop();
    const resumedFrom = await checkpoints.load('kafka-relay');
    expect(resumedFrom).toBe(10);

    // when a new relay starts on the saved checkpoint while more events arrive
    const relay = new EventRelay({ store, kafka, topics, checkpoints, batchSize: 10 });
    relay.start();
    for (let i = 40; i < 60; i++) {
      const s = streams[i % streams.length] as string;
      await store.appendToStream(s, [newEvent('TouchpointRecorded', s.slice(9), { n: i })]);
    }
    await relay.waitForPosition(60);
    await relay.stop();

    // then every stored event arrived, some twice, and dedup by id leaves each once in stream order
    const stored = await store.readAll();
    const received = await consumeUntil(kafka, [topics.events], (r) => r.length >= 60 + (40 - resumedFrom));
    expect(received).toHaveLength(90);
    const firstSeen = new Map<string, EventEnvelope>();
    for (const r of received) {
      const e = parse(r);
      if (!firstSeen.has(e.id)) firstSeen.set(e.id, e);
    }
    expect([...firstSeen.keys()].sort()).toEqual(stored.map((e) => e.id).sort());
    for (const s of streams) {
      const revisions = [...firstSeen.values()].filter((e) => e.streamId === s).map((e) => e.revision);
      expect(revisions).toEqual([...revisions.keys()]);
    }
  });
});
