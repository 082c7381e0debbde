import { randomBytes } from 'node:crypto';
import { EventEnvelopeSchema, formatIssues, validateAgainstSchema, type CommandEnvelope, type EventEnvelope } from '@clientele/contracts';
import { PersonalDataEventStore, SqliteCustomerKeyStore } from '@clientele/event-store';
import { describeWithServer, InMemoryEventStore, KafkaServer } from '@clientele/testing';
import { Partitioners } from 'kafkajs';
import { Registry } from 'prom-client';
import { InMemoryCheckpointStore } from './checkpoint.store';
import type { DispatchResult } from './command-ingest';
import type { KafkaConfig } from './kafka-config';
import { consumeUntil, newEvent, testKafka, uniquePrefix } from './kafka-test-helpers';
import { startMessaging } from './messaging.runtime';

/** the value of one metric (with labels, as Prometheus prints them) in the registry's text output */
function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeWithServer(KafkaServer, 'messaging runtime', (brokers) => {
  const kafka = testKafka(brokers);
  const config = (): KafkaConfig => ({ brokers: [brokers], clientId: 'spec', topicPrefix: uniquePrefix(), ssl: false, partitions: 1, replicationFactor: 1 });

  it('runs relay and ingest, reports their figures as metrics, measures ingest lag from the cluster, and removes its metrics on stop', async () => {
    // given stored events, and a dispatch that holds every command until released
    const store = new InMemoryEventStore();
    for (let i = 0; i < 12; i++) await store.appendToStream(`customer-c${i % 3}`, [newEvent('TouchpointRecorded', `c${i % 3}`, { channel: 'email' })]);
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    const dispatched: string[] = [];
    const dispatch = async (c: CommandEnvelope): Promise<DispatchResult> => {
      await released;
      dispatched.push(c.commandId);
      return { ok: true };
    };
    const registry = new Registry();

    // when messaging starts with both roles and three commands (and one poison record) arrive
    const runtime = await startMessaging({
      store, dispatch, checkpoints: new InMemoryCheckpointStore(), config: config(), roles: { relay: true, ingest: true }, registry, kafka,
      groupId: `spec-${randomBytes(4).toString('hex')}`,
    });
    try {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      const cmd = (id: string) => JSON.stringify({ type: 'RecordTouchpoint', commandId: id, data: { customerId: 'c1' } });
      await producer.send({ topic: runtime.topics.commands, messages: [cmd('a'), cmd('b'), '{oops', cmd('c')].map((value) => ({ key: 'k', value })) });
      await producer.disconnect();

      // then while the first command is held, the cluster shows all four records as lag
      const held = await runtime.refreshIngestLag();
      expect(held).toEqual({ 0: 4 });

      // and once released, everything is processed, committed and published
      release();
      await until(async () => (await runtime.refreshIngestLag())[0] === 0, 'the ingest to commit every record');
      await until(async () => (await runtime.stats()).relay?.position === 12, 'the relay to publish every event');
      expect(dispatched).toEqual(['a', 'b', 'c']);
      const stats = await runtime.stats();
      expect(stats.relay).toMatchObject({ position: 12, headPosition: 12, lag: 0, publishedEvents: 12, failedSends: 0 });
      expect(stats.ingest).toMatchObject({ accepted: 3, deadLettered: 1, lag: 0, lagByPartition: { 0: 0 } });

      const text = await registry.metrics();
      expect(metricValue(text, 'clientele_kafka_relay_position')).toBe(12);
      expect(metricValue(text, 'clientele_kafka_relay_head_position')).toBe(12);
      expect(metricValue(text, 'clientele_kafka_relay_lag_events')).toBe(0);
      expect(metricValue(text, 'clientele_kafka_relay_published_events_total')).toBe(12);
      expect(metricValue(text, 'clientele_kafka_relay_failed_sends_total')).toBe(0);
      expect(metricValue(text, 'clientele_kafka_ingest_processed_total')).toBe(3);
      expect(metricValue(text, 'clientele_kafka_ingest_dead_lettered_total')).toBe(1);
      expect(metricValue(text, 'clientele_kafka_ingest_lag_records{partition="0"}')).toBe(0);
      // a second scrape does not count the same events again
      expect(metricValue(await registry.metrics(), 'clientele_kafka_relay_published_events_total')).toBe(12);
    } finally {
      release();
      await runtime.stop();
    }
    expect(await registry.metrics()).not.toContain('clientele_kafka');
  });

  it('given topics deleted while it runs, then the ingest and the relay create them again and go on: a poison record reaches the dead-letter topic, stored events the events topic', async () => {
    const store = new InMemoryEventStore();
    const dispatch = async (): Promise<DispatchResult> => ({ ok: true });
    const runtime = await startMessaging({
      store, dispatch, checkpoints: new InMemoryCheckpointStore(), config: config(), roles: { relay: true, ingest: true }, kafka,
      groupId: `spec-${randomBytes(4).toString('hex')}`,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      // an operator deletes the dead-letter and the events topics (this cluster does not create topics on use)
      await admin.deleteTopics({ topics: [runtime.topics.commandsDeadLetter, runtime.topics.events] });
      await until(async () => {
        const names = await admin.listTopics();
        return !names.includes(runtime.topics.commandsDeadLetter) && !names.includes(runtime.topics.events);
      }, 'the topics to be gone');

      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: runtime.topics.commands, messages: [{ key: 'k', value: '{not json' }] });
      await producer.disconnect();
      await store.appendToStream('customer-c9', [newEvent('TouchpointRecorded', 'c9', { channel: 'email' })]);

      // each finds its topic missing on its next send and creates the topics again
      await until(async () => {
        const names = await admin.listTopics();
        return names.includes(runtime.topics.commandsDeadLetter) && names.includes(runtime.topics.events);
      }, 'the topics to be created again', 60_000);
      const letters = await consumeUntil(kafka, [runtime.topics.commandsDeadLetter], (r) => r.length >= 1, 60_000);
      expect(JSON.parse(letters[0]!.value!.toString()).reason).toMatch(/JSON/i);
      const published = await consumeUntil(kafka, [runtime.topics.events], (r) => r.length >= 1, 60_000);
      expect(published.map((r) => r.key)).toEqual(['customer-c9']);
      expect((await runtime.stats()).ingest).toMatchObject({ deadLettered: 1 });
    } finally {
      await admin.disconnect();
      await runtime.stop();
    }
  }, 120_000);

  it('given the commands topic deleted while it runs, then the ingest creates it again and takes the commands sent to it afterwards', async () => {
    const dispatched: string[] = [];
    const dispatch = async (c: CommandEnvelope): Promise<DispatchResult> => {
      dispatched.push(c.commandId);
      return { ok: true };
    };
    const warnings: string[] = [];
    const runtime = await startMessaging({
      store: new InMemoryEventStore(), dispatch, checkpoints: new InMemoryCheckpointStore(), config: config(), roles: { relay: false, ingest: true }, kafka,
      groupId: `spec-${randomBytes(4).toString('hex')}`,
      logger: { warn: (_detail: object, message: string) => void warnings.push(message) },
    });
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await admin.connect();
    await producer.connect();
    const cmd = (id: string) => ({ key: 'c1', value: JSON.stringify({ type: 'RecordTouchpoint', commandId: id, data: { customerId: 'c1' } }) });
    try {
      await producer.send({ topic: runtime.topics.commands, messages: [cmd('before')] });
      await until(() => dispatched.includes('before'), 'the first command');

      // an operator deletes the commands topic (this cluster does not create topics on use)
      await admin.deleteTopics({ topics: [runtime.topics.commands] });

      // the ingest's consumer finds it gone, and the topic is there again for producers
      await until(() => warnings.includes('the commands topic was missing; created it again'), 'the ingest to create the commands topic again', 60_000);
      expect((await admin.listTopics()).includes(runtime.topics.commands)).toBe(true);
      await producer.send({ topic: runtime.topics.commands, messages: [cmd('after')] });
      await until(() => dispatched.includes('after'), 'the command sent after the topic came back', 60_000);
      expect(dispatched.filter((id) => id === 'after')).toEqual(['after']);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
      await runtime.stop();
    }
  }, 120_000);

  it('with the relay role only, starts no ingest and registers no ingest metrics', async () => {
    const registry = new Registry();
    const dispatch = async (): Promise<DispatchResult> => ({ ok: true });
    const runtime = await startMessaging({
      store: new InMemoryEventStore(), dispatch, checkpoints: new InMemoryCheckpointStore(), config: config(), roles: { relay: true, ingest: false }, registry, kafka,
    });
    try {
      expect(Object.keys(await runtime.stats())).toEqual(['relay']);
      const text = await registry.metrics();
      expect(text).toContain('clientele_kafka_relay_position 0');
      expect(text).not.toContain('clientele_kafka_ingest');
    } finally {
      await runtime.stop();
    }
  });

  it('publishes no personal data, not even ciphertext, and tombstones the profile of an erased customer', async () => {
    // given a customer whose personal data is stored encrypted, then erased
    const raw = new InMemoryEventStore();
    const keys = new SqliteCustomerKeyStore(':memory:', randomBytes(32));
    const store = new PersonalDataEventStore(raw, keys);
    await store.appendToStream('customer-c1', [
      { ...newEvent('ProspectRegistered', 'c1', { source: 'web' }), data: { customerId: 'c1', occurredAt: '2026-02-01T09:00:00.000Z', source: 'web', personal: { email: 'ada@example.com' } } },
    ]);
    await store.appendToStream('customer-c1', [
      { ...newEvent('TouchpointRecorded', 'c1'), data: { customerId: 'c1', occurredAt: '2026-02-01T09:00:00.000Z', channel: 'phone', note: 'Ada asked for a call' } },
    ]);
    await store.appendToStream('customer-c1', [newEvent('PersonalDataErased', 'c1')]);
    expect(JSON.stringify(await raw.readAll())).toContain('enc:v1:');

    // when the relay publishes from the raw store
    const dispatch = async (): Promise<DispatchResult> => ({ ok: true });
    const runtime = await startMessaging({ store: raw, dispatch, checkpoints: new InMemoryCheckpointStore(), config: config(), roles: { relay: true, ingest: false }, kafka });
    let received;
    try {
      await until(async () => (await runtime.stats()).relay?.position === 3, 'the relay to publish the three events');
      received = await consumeUntil(kafka, [runtime.topics.events, runtime.topics.lifecycle, runtime.topics.profiles], (r) => r.length >= 5);
    } finally {
      await runtime.stop();
      await keys.close();
    }

    // then no record holds a personal field, in clear or encrypted, and events say what was removed
    for (const r of received) {
      const text = r.value?.toString() ?? '';
      // the personal values themselves (not "ada" alone: a random event id may hold those hex letters)
      expect(text).not.toMatch(/ada@example\.com|Ada asked|\$personal|enc:v1|"personal"|"note"/i);
    }
    const events = received.filter((r) => r.topic === runtime.topics.events).map((r) => JSON.parse(r.value?.toString() ?? '') as EventEnvelope);
    for (const e of events) expect(formatIssues(validateAgainstSchema(EventEnvelopeSchema, e))).toBe('');
    expect(events.map((e) => [e.type, e.data.personalDataRedacted])).toEqual([
      ['ProspectRegistered', true],
      ['TouchpointRecorded', true],
      ['PersonalDataErased', undefined],
    ]);
    expect(events[1]?.data).toMatchObject({ customerId: 'c1', channel: 'phone' });
    // and the compacted profiles topic holds a tombstone for the customer
    const profiles = received.filter((r) => r.topic === runtime.topics.profiles);
    expect(profiles.map((r) => [r.key, r.value])).toEqual([['c1', null]]);
  });
});
