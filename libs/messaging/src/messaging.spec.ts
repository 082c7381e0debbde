import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LIFECYCLE_TRANSITION_TYPES } from '@clientele/contracts';
import { EventTypes, LifecycleTransitionTypes } from '@clientele/domain';
import type { StoredEvent } from '@clientele/event-store';
import { SqliteCheckpointStore } from './checkpoint.store';
import { recordsFor, withoutPersonalData } from './event-messages';
import { kafkaConfigFromEnv } from './kafka-config';
import { ensureTopics, topicCreationError, topicNames } from './topics';
import type { Admin } from 'kafkajs';
import { messagingRolesFromEnv } from './messaging.runtime';

describe('topicCreationError', () => {
  it('names each topic the cluster refused and why, and the settings behind them', () => {
    const aggregate = Object.assign(new Error('Topic creation errors'), {
      errors: [
        { topic: 'p.events', type: 'INVALID_REPLICATION_FACTOR', message: 'Replication factor: 3 larger than available brokers: 1.' },
        { topic: 'p.lifecycle', type: 'INVALID_REPLICATION_FACTOR', message: 'Replication factor: 3 larger than available brokers: 1.' },
      ],
    });
    const error = topicCreationError(aggregate);
    expect(error.message).toContain('p.events: INVALID_REPLICATION_FACTOR (Replication factor: 3 larger than available brokers: 1.)');
    expect(error.message).toContain('p.lifecycle: INVALID_REPLICATION_FACTOR');
    expect(error.message).toContain('KAFKA_REPLICATION_FACTOR');
    expect(error.cause).toBe(aggregate);
    const plain = new Error('connect ECONNREFUSED');
    expect(topicCreationError(plain)).toBe(plain);
  });
});

describe('kafkaConfigFromEnv', () => {
  it('defaults to a local broker and the clientele. prefix', () => {
    expect(kafkaConfigFromEnv({})).toEqual({ brokers: ['127.0.0.1:9092'], clientId: 'clientele', topicPrefix: 'clientele.', ssl: false });
  });

  it('reads the relay batch size', () => {
    expect(kafkaConfigFromEnv({ KAFKA_RELAY_BATCH_SIZE: '200' }).relayBatchSize).toBe(200);
  });

  it('reads brokers, prefix, SSL and SASL', () => {
    const config = kafkaConfigFromEnv({
      KAFKA_BROKERS: 'k1:9093, k2:9093',
      KAFKA_CLIENT_ID: 'engine-1',
      KAFKA_TOPIC_PREFIX: 'prod.crm.',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      KAFKA_SASL_USERNAME: 'clientele',
      KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(config).toEqual({
      brokers: ['k1:9093', 'k2:9093'],
      clientId: 'engine-1',
      topicPrefix: 'prod.crm.',
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'clientele', password: 'secret' },
    });
  });

  it.each([
    [{ KAFKA_BROKERS: 'k1' }, 'KAFKA_BROKERS: expected host:port, got "k1"'],
    [{ KAFKA_SSL: 'yes' }, 'KAFKA_SSL: expected true or false, got "yes"'],
    [{ KAFKA_TOPIC_PARTITIONS: '0' }, 'KAFKA_TOPIC_PARTITIONS: expected a whole number >= 1, got "0"'],
    [{ KAFKA_REPLICATION_FACTOR: '0' }, 'KAFKA_REPLICATION_FACTOR: expected a whole number >= -1 other than 0, got "0"'],
    [{ KAFKA_RELAY_BATCH_SIZE: '0' }, 'KAFKA_RELAY_BATCH_SIZE: expected a whole number >= 1, got "0"'],
    [{ KAFKA_TOPIC_PREFIX: 'bad/prefix.' }, 'KAFKA_TOPIC_PREFIX: expected letters, digits'],
    [{ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }, 'KAFKA_SASL_MECHANISM: expected one of'],
    [{ KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }, 'KAFKA_SASL_PASSWORD: required'],
  ])('names the variable that is wrong: %j', (env, message) => {
    expect(() => kafkaConfigFromEnv(env)).toThrow(message);
  });
});

describe('messagingRolesFromEnv', () => {
  it('runs no Kafka part by default, both with CLIENTELE_KAFKA=on, and exactly the listed ones with CLIENTELE_ROLES', () => {
    expect(messagingRolesFromEnv({})).toEqual({ relay: false, ingest: false });
    expect(messagingRolesFromEnv({ CLIENTELE_KAFKA: 'on' })).toEqual({ relay: true, ingest: true });
    expect(messagingRolesFromEnv({ CLIENTELE_KAFKA: 'on', CLIENTELE_ROLES: 'http, relay' })).toEqual({ relay: true, ingest: false });
    expect(messagingRolesFromEnv({ CLIENTELE_ROLES: 'ingest,projector' })).toEqual({ relay: false, ingest: true });
  });

  it('names the variable that is wrong', () => {
    expect(() => messagingRolesFromEnv({ CLIENTELE_KAFKA: 'yes' })).toThrow('CLIENTELE_KAFKA: expected on or off, got "yes"');
    expect(() => messagingRolesFromEnv({ CLIENTELE_ROLES: 'relay,worker' })).toThrow('CLIENTELE_ROLES: expected a list of relay, ingest, http, projector, got "worker"');
  });

  it('reads partitions and replication factor for the topics it creates', () => {
    expect(kafkaConfigFromEnv({ KAFKA_TOPIC_PARTITIONS: '12', KAFKA_REPLICATION_FACTOR: '3' })).toMatchObject({ partitions: 12, replicationFactor: 3 });
  });
});

describe('personal data on the way to Kafka', () => {
  it('drops listed personal fields and any encrypted field, and says so; leaves other events untouched', () => {
    const data = { customerId: 'c1', source: 'web', personal: { $personal: 'enc:v1:AAAA' } };
    expect(withoutPersonalData('ProspectRegistered', data)).toEqual({ customerId: 'c1', source: 'web', personalDataRedacted: true });
    expect(withoutPersonalData('TouchpointRecorded', { customerId: 'c1', note: 'in clear' })).toEqual({ customerId: 'c1', personalDataRedacted: true });
    expect(withoutPersonalData('SomeFutureEvent', { customerId: 'c1', x: { $personal: 'erased' } })).toEqual({ customerId: 'c1', personalDataRedacted: true });
    const plain = { customerId: 'c1', totalMinor: 1250 };
    expect(withoutPersonalData('PurchaseRecorded', plain)).toBe(plain);
    expect(data.personal).toEqual({ $personal: 'enc:v1:AAAA' });
  });

  it('turns an erasure into a tombstone on the profiles topic, keyed by customer id', () => {
    const records = recordsFor(
      { id: 'e1', type: 'PersonalDataErased', data: { customerId: 'c1' }, metadata: { occurredAt: '2026-02-01T09:00:00.000Z', schemaVersion: 1 },
        streamId: 'customer-c1', revision: 5, position: 30, recordedAt: '2026-02-01T09:00:01.000Z', hash: 'h', prevHash: 'p' },
      topicNames('x.'),
    );
    expect(records.map((r) => [r.topic, r.key, r.value === null])).toEqual([['x.events', 'customer-c1', false], ['x.profiles', 'c1', true]]);
  });
});

describe('records for a stored event', () => {
  const topics = topicNames('x.');
  const stored = (type: string, data: Record<string, string>): StoredEvent => ({
    id: `id-${type}`,
    type,
    data: { occurredAt: '2026-02-01T09:00:00.000Z', ...data },
    metadata: { occurredAt: '2026-02-01T09:00:00.000Z', schemaVersion: 1, causationId: 'cause-1' },
    streamId: 'customer-c1',
    revision: 4,
    position: 17,
    recordedAt: '2026-02-01T09:00:01.000Z',
    hash: 'h',
    prevHash: 'p',
  });

  it('the contract lists exactly the domain transitions', () => {
    expect([...LIFECYCLE_TRANSITION_TYPES].sort()).toEqual([...LifecycleTransitionTypes].sort());
  });

  it('sends a plain fact to events only, a transition also to lifecycle, a referral also to referrals', () => {
    expect(recordsFor(stored(EventTypes.PurchaseRecorded, { customerId: 'c1' }), topics).map((r) => r.topic)).toEqual(['x.events']);
    const churned = recordsFor(stored(EventTypes.CustomerChurned, { customerId: 'c1' }), topics);
    expect(churned.map((r) => r.topic)).toEqual(['x.events', 'x.lifecycle']);
    expect(JSON.parse(churned[1]?.value ?? '')).toMatchObject({ customerId: 'c1', toStage: 'churned', causationId: 'cause-1', position: 17 });
    const converted = recordsFor(stored(EventTypes.ReferralConverted, { customerId: 'c1', refereeId: 'c9', orderId: 'o3' }), topics);
    expect(converted.map((r) => [r.topic, r.key])).toEqual([['x.events', 'customer-c1'], ['x.referrals', 'customer-c1']]);
    expect(JSON.parse(converted[1]?.value ?? '')).toEqual({
      eventId: 'id-ReferralConverted', type: 'ReferralConverted', referrerId: 'c1', refereeId: 'c9', status: 'converted',
      orderId: 'o3', occurredAt: '2026-02-01T09:00:00.000Z', position: 17,
    });
  });
});

describe('SqliteCheckpointStore', () => {
  it('keeps checkpoints per name across reopening the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-checkpoints-'));
    try {
      const file = join(dir, 'clientele.db');
      const first = new SqliteCheckpointStore(file);
      await first.save('kafka-relay', 40);
      await first.save('kafka-relay', 41);
      first.close();
      const again = new SqliteCheckpointStore(file);
      expect(await again.load('kafka-relay')).toBe(41);
      expect(await again.load('other')).toBe(0);
      await expect(again.save('kafka-relay', -1)).rejects.toThrow('checkpoint position: expected an integer >= 0, got -1');
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ensureTopics', () => {
  /** an admin that knows `existing` topics and records what it is asked to create */
  const adminKnowing = (existing: string[]) => {
    const created: string[][] = [];
    const admin = {
      listTopics: async () => existing,
      createTopics: async ({ topics }: { topics: { topic: string }[] }) => {
        created.push(topics.map((t) => t.topic));
        return true;
      },
    } as unknown as Admin;
    return { admin, created };
  };

  it('asks the cluster to create only the topics it lacks, and nothing when all are there (an existing topic asked for logs an error in kafkajs)', async () => {
    const names = topicNames('p.');
    const all = Object.values(names);
    const some = adminKnowing([names.events, names.commands, 'other']);
    expect(await ensureTopics(some.admin, { topicPrefix: 'p.' })).toEqual(names);
    expect(some.created).toEqual([all.filter((t) => t !== names.events && t !== names.commands)]);
    const every = adminKnowing(all);
    await ensureTopics(every.admin, { topicPrefix: 'p.' });
    expect(every.created).toEqual([]);
  });
});
