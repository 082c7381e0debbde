import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer } from 'kafkajs';
import request from 'supertest';
import { bootstrapEngine, EngineRuntime, loadEngineConfig } from '../apps/engine/src';
import { ReferralProcessRunner } from '@clientele/application';
import { formatIssues, LIFECYCLE_TRANSITION_TYPES, PublicSchemas, validateAgainstSchema, type JsonSchema } from '@clientele/contracts';
import { describeWithServer, KafkaServer, openApiAnswerErrors } from '@clientele/testing';

type HistoryEntry = { id: string; type: string; position: number; commandId?: string };
type Received = { topic: string; key: string | null; value: string | null; headers: Record<string, string> };

const line = (unitPriceMinor: number) => ({ sku: 'BOOK-1', category: 'books', quantity: 1, unitPriceMinor, unitCostMinor: 700 });
// personal data distinctive enough to search every topic for
const ANN_NAME = 'Annabel Quixote-Marchetti';
const ANN_EMAIL = 'annabel.quixote@example.test';

/**
 * The engine in-process with CLIENTELE_KAFKA=on against the test broker: what goes in over HTTP and
 * over the ingest topic comes out on the topics, in order, valid, and without personal data.
 */
describeWithServer(KafkaServer, 'Kafka journey through the engine', (brokers) => {
  const prefix = `j${randomUUID().slice(0, 8)}.`;
  const topic = (name: string) => `${prefix}${name}`;
  const saved: Record<string, string | undefined> = {};
  let dir: string;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;
  let kafka: Kafka;
  let tap: Consumer;
  let producer: Producer;
  const received: Received[] = [];

  beforeAll(async () => {
    // the engine reads its Kafka settings from the process environment
    const env = { KAFKA_BROKERS: brokers, KAFKA_TOPIC_PREFIX: prefix, KAFKA_CLIENT_ID: `journey-${prefix}`, KAFKA_TOPIC_PARTITIONS: '3', KAFKA_REPLICATION_FACTOR: '1' };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    dir = mkdtempSync(join(tmpdir(), 'clientele-kafka-journey-'));
    app = await bootstrapEngine(
      loadEngineConfig({ ...process.env, CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', CLIENTELE_KAFKA: 'on', LOG_LEVEL: 'silent' }),
    );
    http = request(app.getHttpServer());
    // the Kafka side starts in the background; the topics exist once it runs
    await app.get(EngineRuntime).messagingStarted();

    // one consumer on every topic for the whole suite (the engine created them on start)
    kafka = new Kafka({ clientId: 'journey-spec', brokers: [brokers], logLevel: logLevel.NOTHING });
    tap = kafka.consumer({ groupId: `journey-tap-${prefix}`, maxWaitTimeInMs: 100 });
    await tap.connect();
    const names = ['events', 'lifecycle', 'profiles', 'referrals', 'commands', 'commands.dlq'].map(topic);
    await tap.subscribe({ topics: names, fromBeginning: true });
    await tap.run({
      eachMessage: async ({ topic: t, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = String(v);
        received.push({ topic: t, key: message.key?.toString() ?? null, value: message.value?.toString() ?? null, headers });
      },
    });
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect();
    await tap?.disconnect();
    await app?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const send = (envelope: object) => http.post('/commands').send(envelope);
  const settle = () => app.get(ReferralProcessRunner).catchUp();
  const events = async (id: string): Promise<HistoryEntry[]> => {
    const res = await http.get(`/customers/${id}/events`);
    return res.status === 200 ? (res.body.events as HistoryEntry[]) : [];
  };
  const on = (name: string) => received.filter((r) => r.topic === topic(name));

  async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** each value checked against the schema its `clientele-message` header names */
  function expectValidAgainstClaimedSchema(records: Received[]): void {
    for (const r of records) {
      const schema = (PublicSchemas as Record<string, JsonSchema>)[r.headers['clientele-message'] ?? ''];
      expect(schema).toBeDefined();
      expect(formatIssues(validateAgainstSchema(schema as JsonSchema, JSON.parse(r.value ?? 'null')))).toBe('');
    }
  }

  const lifecycleTypes: ReadonlySet<string> = new Set(LIFECYCLE_TRANSITION_TYPES);

  it('publishes every lifecycle transition of the journey in order per customer, valid, with its ids in headers', async () => {
    // given one person who goes prospect → customer → advocate through a referral, and one who churns and comes back
    const journey = [
      { type: 'RegisterProspect', commandId: 'reg-ann', data: { customerId: 'ann', source: 'web', occurredAt: '2026-01-02T09:00:00Z', personal: { name: ANN_NAME, email: ANN_EMAIL } } },
      { type: 'RecordPurchase', commandId: 'buy-ann-1', data: { customerId: 'ann', orderId: 'A-1', lines: [line(2500)], occurredAt: '2026-01-05T10:00:00Z' } },
      { type: 'RegisterProspect', commandId: 'reg-ben', data: { customerId: 'ben', source: 'referral', referredBy: 'ann', occurredAt: '2026-01-10T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'buy-ben-1', data: { customerId: 'ben', orderId: 'B-1', lines: [line(1200)], occurredAt: '2026-01-12T10:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'buy-cat-1', data: { customerId: 'cat', orderId: 'C-1', lines: [line(900)], occurredAt: '2025-01-15T10:00:00Z' } },
    ];
    for (const command of journey) {
      await send(command).expect(201);
      await settle();
    }
    await http.post('/sweeps/churn').send({ asOf: '2025-09-01T00:00:00Z' }).expect(200);
    await send({ type: 'RecordPurchase', commandId: 'buy-cat-2', data: { customerId: 'cat', orderId: 'C-2', lines: [line(1900)], occurredAt: '2025-10-01T10:00:00Z' } }).expect(201);
    await settle();

    // when the relay has published everything the store holds
    const stored = new Map<string, HistoryEntry[]>();
    for (const id of ['ann', 'ben', 'cat']) stored.set(`customer-${id}`, (await events(id)).filter((e) => lifecycleTypes.has(e.type)));
    const expectedCount = [...stored.values()].reduce((n, list) => n + list.length, 0);
    const lifecycle = await eventually('every transition on the lifecycle topic', () => {
      const firsts = dedupe(on('lifecycle'));
      return firsts.length >= expectedCount ? firsts : undefined;
    });

    // then per key (the stream id) the transitions arrive in the store's order, and nothing else does
    const byKey = new Map<string, string[]>();
    for (const r of lifecycle) byKey.set(r.key ?? '', [...(byKey.get(r.key ?? '') ?? []), r.headers['clientele-event-id'] ?? '']);
    expect(Object.fromEntries(byKey)).toEqual(Object.fromEntries([...stored].map(([key, list]) => [key, list.map((e) => e.id)])));
    const types = (key: string) => lifecycle.filter((r) => r.key === key).map((r) => r.headers['clientele-event-type']);
    expect(types('customer-ann')).toEqual(['ProspectRegistered', 'CustomerConverted', 'AdvocateRecognized']);
    expect(types('customer-cat')).toEqual(['ProspectRegistered', 'CustomerConverted', 'CustomerChurned', 'CustomerReactivated']);

    // and each message is valid against the schema it claims, with the envelope's ids in its headers
    expectValidAgainstClaimedSchema(lifecycle);
    for (const r of lifecycle) {
      const body = JSON.parse(r.value ?? '') as { id: string; type: string; streamId: string; position: number; customerId: string };
      expect(r.headers).toMatchObject({
        'clientele-message': 'lifecycle-transition.v1',
        'clientele-event-id': body.id,
        'clientele-event-type': body.type,
        'clientele-stream-id': r.key,
        'clientele-position': String(body.position),
      });
      expect(body.streamId).toBe(`customer-${body.customerId}`);
    }
  });

  it('keeps the latest profile per customer on the profiles topic: after a purchase it shows the new revenue', async () => {
    // given cat's profile as the engine serves it after the journey
    const before = (await http.get('/customers/cat/profile').expect(200)).body as { value: { revenueMinor: number } };

    // when cat buys again
    await send({ type: 'RecordPurchase', commandId: 'buy-cat-3', data: { customerId: 'cat', orderId: 'C-3', lines: [line(4100)], occurredAt: '2025-11-01T10:00:00Z' } }).expect(201);

    // then the profiles topic's latest value for cat carries the new revenue, valid and without personal data
    const expected = before.value.revenueMinor + 4100;
    const latest = await eventually('a snapshot of cat with the new revenue', () => {
      const mine = on('profiles').filter((r) => r.key === 'cat');
      const last = mine[mine.length - 1];
      const body = last?.value ? (JSON.parse(last.value) as { profile: { value: { revenueMinor: number } } }) : undefined;
      return body?.profile.value.revenueMinor === expected ? last : undefined;
    });
    expectValidAgainstClaimedSchema([latest]);
    const snapshot = JSON.parse(latest.value ?? '') as { customerId: string; position: number; profile: Record<string, unknown> };
    const catEvents = await events('cat');
    expect(snapshot).toMatchObject({ customerId: 'cat', snapshotVersion: 1, position: catEvents[catEvents.length - 1]?.position });
    // the moment its date-relative figures were counted as of: while this run lasted
    const asOf = Date.parse((snapshot as { asOf?: string }).asOf ?? '');
    expect(asOf).toBeGreaterThan(Date.now() - 10 * 60_000);
    expect(asOf).toBeLessThanOrEqual(Date.now());
    // a third purchase makes cat a repeat buyer
    expect(snapshot.profile).toMatchObject({ customerId: 'cat', stage: 'repeat_buyer', personalDataRedacted: true });
    expect(snapshot.profile).not.toHaveProperty('identity');
    const served = (await http.get('/customers/cat/profile').expect(200)).body as { value: { revenueMinor: number } };
    expect(served.value.revenueMinor).toBe(expected);
    const metrics = (await http.get('/metrics').expect(200)).text;
    expect(Number(/^clientele_kafka_profile_snapshots_published_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^clientele_kafka_profile_snapshots_pending \d+$/m);
  });

  it('turns good ingest records into events, dead-letters poison ones with reasons, and ignores a redelivered command', async () => {
    // given command records on the ingest topic: good ones, poison ones, and one delivered twice
    const command = (commandId: string, type: string, data: object) => JSON.stringify({ type, commandId, data });
    const register = command('k-reg-dan', 'RegisterProspect', { customerId: 'dan', source: 'kafka', occurredAt: '2026-02-01T09:00:00Z' });
    const buy = command('k-buy-dan-1', 'RecordPurchase', { customerId: 'dan', orderId: 'D-1', lines: [line(3000)], occurredAt: '2026-02-02T09:00:00Z' });
    const poison = [
      { key: 'dan', value: 'this is {not json' },
      { key: 'dan', value: command('k-fly', 'FlyToTheMoon', { customerId: 'dan' }) },
      { key: 'dan', value: command('k-missing', 'RecordPurchase', { customerId: 'dan' }) },
    ];
    await producer.send({ topic: topic('commands'), messages: [{ key: 'dan', value: register }, { key: 'dan', value: buy }, ...poison] });
    const dlq = await eventually('three dead letters', () => (on('commands.dlq').length >= 3 ? on('commands.dlq') : undefined));
    const dan = await eventually('dan registered and converted', async () => {
      const list = await events('dan');
      return list.some((e) => e.type === 'CustomerConverted') ? list : undefined;
    });

    // when the purchase arrives again, followed (same key, so in order) by a second purchase
    const buyAgain = command('k-buy-dan-2', 'RecordPurchase', { customerId: 'dan', orderId: 'D-2', lines: [line(500)], occurredAt: '2026-02-03T09:00:00Z' });
    await producer.send({ topic: topic('commands'), messages: [{ key: 'dan', value: buy }, { key: 'dan', value: buyAgain }] });
    const after = await eventually('the second purchase', async () => {
      const list = await events('dan');
      return list.some((e) => e.commandId === 'k-buy-dan-2') ? list : undefined;
    });

    // then the good commands became events, the redelivered one changed nothing
    expect(dan.map((e) => e.type)).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted']);
    expect(after.slice(0, dan.length)).toEqual(dan);
    expect(after.filter((e) => e.type === 'PurchaseRecorded').map((e) => e.commandId)).toEqual(['k-buy-dan-1', 'k-buy-dan-2']);

    // and each poison record is on the dead-letter topic with its reason and original bytes
    expect(on('commands.dlq')).toHaveLength(3);
    expectValidAgainstClaimedSchema(dlq);
    const letters = dlq.map((r) => JSON.parse(r.value ?? '') as { reason: string; value: string; commandId?: string; key: string; sourceTopic: string });
    expect(letters.map((l) => Buffer.from(l.value, 'base64').toString())).toEqual(poison.map((p) => p.value));
    expect(letters.map((l) => [l.key, l.sourceTopic])).toEqual(poison.map(() => ['dan', topic('commands')]));
    const [notJson, unknownType, missing] = letters.map((l) => l.reason);
    expect(notJson).toMatch(/JSON/);
    expect(unknownType).toMatch(/type/);
    expect(unknownType).toMatch(/type must be one of/);
    expect(missing).toMatch(/orderId/);
    expect(missing).toMatch(/lines/);
    // and a code and the fields at fault, as the HTTP API's problem details name them, for a program to act on
    const structured = dlq.map((r) => JSON.parse(r.value ?? '') as { code?: string; errors?: { field: string }[] });
    expect(structured.map((l) => l.code)).toEqual(['not_json', 'invalid_command', 'invalid_command']);
    expect(structured[2]?.errors?.map((e) => e.field)).toEqual(expect.arrayContaining(['data.orderId', 'data.lines']));
  });

  it('on erasure writes a tombstone to the profiles topic, and no topic ever carried personal data', async () => {
    // given Ann, registered with a name and email over HTTP, whose profile snapshots are on Kafka
    await eventually('a snapshot of ann', () => on('profiles').find((r) => r.key === 'ann' && r.value !== null));

    // when her personal data is erased
    await send({ type: 'EraseCustomerPersonalData', commandId: 'erase-ann', data: { customerId: 'ann', occurredAt: '2026-03-01T09:00:00Z' } }).expect(201);
    const erasure = await eventually('the erasure event', async () => (await events('ann')).find((e) => e.type === 'PersonalDataErased'));

    // then the profiles topic gets a tombstone for her, and once both relay and snapshots are past
    // the erasure, the last word for her key is that tombstone
    await eventually('a tombstone for ann', () => on('profiles').find((r) => r.key === 'ann' && r.value === null));
    await eventually('every event on the events topic', async () => {
      const head = (await http.get('/health').expect(200)).body as { kafka: { relay: { position: number }; profileSnapshots: { position: number } } };
      return head.kafka.relay.position >= erasure.position && head.kafka.profileSnapshots.position >= erasure.position ? true : undefined;
    });
    // and /health, with every Kafka part running, is as the served document describes it
    const health = (await http.get('/health').expect(200)).body as { kafka: Record<string, unknown> };
    expect(Object.keys(health.kafka).sort()).toEqual(['ingest', 'profileSnapshots', 'relay']);
    expect(openApiAnswerErrors((await http.get('/docs-json').expect(200)).body, '/health', 'get', health)).toEqual([]);
    const annProfiles = on('profiles').filter((r) => r.key === 'ann');
    expect(annProfiles[annProfiles.length - 1]?.value).toBeNull();
    expect(annProfiles.find((r) => r.value === null)?.headers['clientele-message']).toBe('profile-snapshot.v1');

    // and no record on any topic holds her name, email, or any encrypted field
    expect(received.length).toBeGreaterThan(20);
    const leaks = received.filter((r) => [ANN_NAME, ANN_EMAIL, 'Quixote', '$personal', 'enc:v1'].some((s) => r.value?.includes(s)));
    expect(leaks).toEqual([]);
    const registered = on('events').find((r) => r.headers['clientele-event-type'] === 'ProspectRegistered' && r.key === 'customer-ann');
    expect(JSON.parse(registered?.value ?? '{}')).toMatchObject({ data: { personalDataRedacted: true } });
  });
});

/** at least once: keep each event's first delivery */
function dedupe(records: Received[]): Received[] {
  const seen = new Set<string>();
  return records.filter((r) => {
    const id = r.headers['clientele-event-id'] ?? '';
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}
