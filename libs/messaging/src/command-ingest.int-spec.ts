import { DeadLetterSchema, formatIssues, validateAgainstSchema, type CommandEnvelope, type DeadLetterMessage } from '@clientele/contracts';
import { describeWithServer, KafkaServer } from '@clientele/testing';
import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { CommandIngest, type CommandBatchDispatch, type DispatchResult } from './command-ingest';
import { consumeUntil, testKafka, uniquePrefix } from './kafka-test-helpers';
import { ensureTopics } from './topics';

describeWithServer(KafkaServer, 'command ingest from Kafka', (brokers) => {
  const kafka = testKafka(brokers);

  async function setUp() {
    const admin = kafka.admin();
    await admin.connect();
    const topics = await ensureTopics(admin, { topicPrefix: uniquePrefix(), partitions: 1, replicationFactor: 1 });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const send = async (values: (string | Buffer)[]) => {
      await producer.send({ topic: topics.commands, messages: values.map((value) => ({ key: 'k', value })) });
      await producer.disconnect();
    };
    return { topics, send, groupId: `ingest-${randomUUID()}` };
  }

  const command = (commandId: string, type = 'RecordTouchpoint'): string =>
    JSON.stringify({ type, commandId, data: { customerId: 'c1', channel: 'email' } });

  async function committedOffset(groupId: string, topic: string): Promise<string | undefined> {
    const admin = kafka.admin();
    await admin.connect();
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    return entry?.partitions[0]?.offset;
  }

  /**
   * How many records a topic holds: what a spec sent, exactly once (its producer is idempotent, so a
   * send retried on a slow broker does not store records twice). Before, a duplicated partition
   * left the waits for a spec's commit count hanging until the test timed out.
   */
  async function recordsOn(topic: string): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  /** Runs the ingest until its group committed `offset` on the one-partition commands topic. */
  async function runUntilCommitted(ingest: CommandIngest, groupId: string, topic: string, offset: string): Promise<void> {
    await ingest.start();
    try {
      while ((await committedOffset(groupId, topic)) !== offset) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await ingest.stop();
    }
  }

  it('dead-letters poison records with reason and original bytes, and processes the good ones behind them', async () => {
    // given good commands around five kinds of poison, one of them larger than 1 MB
    const { topics, send, groupId } = await setUp();
    const huge = JSON.stringify({ type: 'RecordTouchpoint', commandId: 'huge', data: { note: 'x'.repeat(1_500_000) } });
    const records = [
      command('good-1'),
      '{"type": "RecordTouchpoint", "commandId": ',
      JSON.stringify({ type: 42, commandId: 'wrong-type', data: {} }),
      JSON.stringify({ type: 'RecordTouchpoint', data: {} }),
      huge,
      command('refused', 'UnknownCommand'),
      command('good-2'),
    ];
    await send(records);
    const dispatched: string[] = [];
    const dispatch = async (envelope: CommandEnvelope): Promise<DispatchResult> => {
      dispatched.push(envelope.commandId);
      return envelope.type === 'UnknownCommand'
        ? { ok: false, reason: 'type: unknown command UnknownCommand', retryable: false, code: 'invalid_command', errors: [{ field: 'type', expected: 'a known command type' }] }
        : { ok: true };
    };

    // when the ingest runs
    const ingest = new CommandIngest({ kafka, topics, groupId, dispatch, now: () => new Date('2026-03-01T00:00:00.000Z') });
    await ingest.start();
    let letters;
    try {
      letters = await consumeUntil(kafka, [topics.commandsDeadLetter], (r) => r.length >= 5);
      while (dispatched.length < 3 || (await committedOffset(groupId, topics.commands)) !== '7') await new Promise((r) => setTimeout(r, 50));
    } finally {
      await ingest.stop();
    }

    // then good commands were dispatched in order and every poison record is in the DLQ, in order
    expect(dispatched).toEqual(['good-1', 'refused', 'good-2']);
    const bodies = letters.map((r) => JSON.parse(r.value?.toString() ?? '') as DeadLetterMessage);
    for (const b of bodies) expect(formatIssues(validateAgainstSchema(DeadLetterSchema, b))).toBe('');
    expect(bodies.map((b) => [b.sourceOffset, b.reason])).toEqual([
      ['1', expect.stringMatching(/^not JSON/)],
      ['2', 'not a command: /type: expected string, got integer'],
      ['3', 'not a command: /commandId: required property is missing'],
      ['4', expect.stringMatching(/^record is \d+ bytes: commands are at most 1048576 bytes$/)],
      ['5', 'type: unknown command UnknownCommand'],
    ]);
    // each says what went wrong as a code a program can act on, and names the fields at fault where known
    expect(bodies.map((b) => b.code)).toEqual(['not_json', 'not_a_command', 'not_a_command', 'record_too_large', 'invalid_command']);
    expect(bodies[1]?.errors).toEqual([{ field: '/type', expected: 'expected string, got integer' }]);
    expect(bodies[2]?.errors).toEqual([{ field: '/commandId', expected: 'required property is missing' }]);
    expect(bodies[4]?.errors).toEqual([{ field: 'type', expected: 'a known command type' }]);
    // the original bytes come back whole, or cut and flagged when oversized
    expect(Buffer.from(bodies[0]?.value ?? '', 'base64').toString()).toBe(records[1]);
    expect(bodies[3]).toMatchObject({ valueTruncated: true, valueBytes: Buffer.byteLength(huge) });
    expect(bodies[4]).toMatchObject({ commandId: 'refused', sourceTopic: topics.commands, sourcePartition: 0, key: 'k' });
    expect(ingest.stats()).toMatchObject({ accepted: 2, deadLettered: 5, lag: 0 });
  });

  it('holds a command that failed for now, without committing, and retries it before the next', async () => {
    // given a store that is unavailable for the second command's first two attempts
    const { topics, send, groupId } = await setUp();
    await send([command('first'), command('flaky'), command('third')]);
    const attempts: string[] = [];
    const committedDuringOutage: (string | undefined)[] = [];
    const dispatch = async (envelope: CommandEnvelope): Promise<DispatchResult> => {
      attempts.push(envelope.commandId);
      if (envelope.commandId === 'flaky' && attempts.filter((a) => a === 'flaky').length <= 2) {
        committedDuringOutage.push(await committedOffset(groupId, topics.commands));
        return { ok: false, reason: 'event store unavailable', retryable: true };
      }
      return { ok: true };
    };

    // when the ingest runs
    const ingest = new CommandIngest({ kafka, topics, groupId, dispatch, retryBackoffMs: 50 });
    await runUntilCommitted(ingest, groupId, topics.commands, '3');

    // then the flaky command was retried in place, the offset never passed it while it failed, nothing was dead-lettered
    expect(attempts).toEqual(['first', 'flaky', 'flaky', 'flaky', 'third']);
    for (const offset of committedDuringOutage) expect(Number(offset ?? -1)).toBeLessThanOrEqual(1);
    expect(ingest.stats()).toMatchObject({ accepted: 3, deadLettered: 0, retries: 2 });
  });

  it('with concurrency, runs different keys side by side but each key in order, and commits the batch once all are done', async () => {
    // given 40 commands over 4 keys, one of them refused, on one partition
    const { topics, groupId } = await setUp();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const keys = ['k1', 'k2', 'k3', 'k4'];
    const messages = Array.from({ length: 40 }, (_, i) => ({ key: keys[i % 4] as string, value: command(`${keys[i % 4]}-${i}`, i === 13 ? 'UnknownCommand' : 'RecordTouchpoint') }));
    await producer.send({ topic: topics.commands, messages });
    await producer.disconnect();
    expect(await recordsOn(topics.commands)).toBe(messages.length);
    const order: string[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const dispatch = async (envelope: CommandEnvelope): Promise<DispatchResult> => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      // later keys answer sooner, so keeping the input order across keys would be a mistake
      await new Promise((r) => setTimeout(r, 5 * (5 - Number(envelope.commandId[1]))));
      inFlight -= 1;
      order.push(envelope.commandId);
      return envelope.type === 'UnknownCommand' ? { ok: false, reason: 'type: unknown command UnknownCommand', retryable: false } : { ok: true };
    };

    // when the ingest runs with 8 at once
    const ingest = new CommandIngest({ kafka, topics, groupId, dispatch, concurrency: 8 });
    await runUntilCommitted(ingest, groupId, topics.commands, '40');

    // then every command ran once, each key's commands in their order, several at a time
    expect(order).toHaveLength(40);
    for (const k of keys) {
      const mine = messages.filter((m) => m.key === k).map((m) => (JSON.parse(m.value) as CommandEnvelope).commandId);
      expect(order.filter((id) => id.startsWith(`${k}-`))).toEqual(mine);
    }
    expect(mostInFlight).toBeGreaterThan(1);
    expect(ingest.stats()).toMatchObject({ accepted: 39, deadLettered: 1 });
  });

  it('with several partitions at once, handles their batches side by side, each key still in order, and commits every partition', async () => {
    // given 60 commands over 12 keys on a topic of 3 partitions
    const admin = kafka.admin();
    await admin.connect();
    const topics = await ensureTopics(admin, { topicPrefix: uniquePrefix(), partitions: 3, replicationFactor: 1 });
    await admin.disconnect();
    const groupId = `ingest-${randomUUID()}`;
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`);
    const messages = Array.from({ length: 60 }, (_, i) => ({ key: keys[i % 12] as string, value: command(`${keys[i % 12]}/${i}`) }));
    await producer.send({ topic: topics.commands, messages });
    await producer.disconnect();
    expect(await recordsOn(topics.commands)).toBe(messages.length);
    const order: string[] = [];
    const keysBusy = new Map<string, number>();
    let mostKeysBusy = 0;
    const dispatch = async (envelope: CommandEnvelope): Promise<DispatchResult> => {
      const key = envelope.commandId.split('/')[0] as string;
      keysBusy.set(key, (keysBusy.get(key) ?? 0) + 1);
      mostKeysBusy = Math.max(mostKeysBusy, [...keysBusy.values()].filter((n) => n > 0).length);
      await new Promise((r) => setTimeout(r, 10));
      keysBusy.set(key, (keysBusy.get(key) ?? 1) - 1);
      order.push(envelope.commandId);
      return { ok: true };
    };

    // when the ingest runs one command at a time per partition, three partitions at once
    const ingest = new CommandIngest({ kafka, topics, groupId, dispatch, partitionsAtOnce: 3 });
    await ingest.start();
    const offsets = kafka.admin();
    await offsets.connect();
    const committed = async (): Promise<number> => {
      const [entry] = await offsets.fetchOffsets({ groupId, topics: [topics.commands] });
      return (entry?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
    };
    try {
      while ((await committed()) !== 60) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await ingest.stop();
      await offsets.disconnect();
    }

    // then every command ran once and each key's in order; with one at a time per partition, keys
    // busy together can only come from different partitions
    expect(order).toHaveLength(60);
    for (const k of keys) {
      const mine = messages.filter((m) => m.key === k).map((m) => (JSON.parse(m.value) as CommandEnvelope).commandId);
      expect(order.filter((id) => id.startsWith(`${k}/`))).toEqual(mine);
    }
    expect(mostKeysBusy).toBeGreaterThan(1);
    // a group of three partitions joins and rebalances slowly on a loaded machine
  }, 180_000);

  describe('in batches (dispatchBatch)', () => {
    it('dead-letters a poison record in the middle of a batch and hands the good commands around it to one dispatch, in offset order', async () => {
      // given good commands with a record that is not JSON and a command the application refuses among them
      const { topics, send, groupId } = await setUp();
      const records = [command('good-1'), command('good-2'), '{"type": "RecordTouchpoint", ', command('good-3'), command('refused', 'UnknownCommand'), command('good-4')];
      await send(records);
      const calls: string[][] = [];
      const dispatchBatch: CommandBatchDispatch = async (envelopes) => {
        calls.push(envelopes.map((e) => e.commandId));
        return envelopes.map((e) => (e.type === 'UnknownCommand' ? { ok: false, reason: 'type: unknown command UnknownCommand', retryable: false } : { ok: true }));
      };

      // when the ingest runs
      const ingest = new CommandIngest({ kafka, topics, groupId, dispatchBatch, now: () => new Date('2026-03-01T00:00:00.000Z') });
      await ingest.start();
      let letters;
      try {
        letters = await consumeUntil(kafka, [topics.commandsDeadLetter], (r) => r.length >= 2);
        while ((await committedOffset(groupId, topics.commands)) !== '6') await new Promise((r) => setTimeout(r, 50));
      } finally {
        await ingest.stop();
      }

      // then the good commands went to the application together, in order, and both bad records are dead letters, in order
      expect(calls).toEqual([['good-1', 'good-2', 'good-3', 'refused', 'good-4']]);
      const bodies = letters.map((r) => JSON.parse(r.value?.toString() ?? '') as DeadLetterMessage);
      for (const b of bodies) expect(formatIssues(validateAgainstSchema(DeadLetterSchema, b))).toBe('');
      expect(bodies.map((b) => [b.sourceOffset, b.reason])).toEqual([
        ['2', expect.stringMatching(/^not JSON/)],
        ['4', 'type: unknown command UnknownCommand'],
      ]);
      expect(Buffer.from(bodies[0]?.value ?? '', 'base64').toString()).toBe(records[2]);
      expect(bodies[1]).toMatchObject({ commandId: 'refused', sourceTopic: topics.commands, sourcePartition: 0, key: 'k', deadLetteredAt: '2026-03-01T00:00:00.000Z' });
      expect(ingest.stats()).toMatchObject({ accepted: 4, deadLettered: 2, lag: 0 });
    });

    it('commits the batch only once every command of it is stored, retrying what failed for now, in order, and a dispatch that threw', async () => {
      // given four commands; the store is down for the first call, then the second command fails for
      // now (holding the third, which the application did not run) while the others are stored
      const { topics, send, groupId } = await setUp();
      await send([command('c1'), command('c2'), command('c3'), command('c4')]);
      const calls: string[][] = [];
      const stored: string[] = [];
      const committedWhileUnstored: (string | undefined)[] = [];
      const dispatchBatch: CommandBatchDispatch = async (envelopes) => {
        calls.push(envelopes.map((e) => e.commandId));
        // give an early commit time to land, then look at what the group has committed
        await new Promise((r) => setTimeout(r, 300));
        committedWhileUnstored.push(await committedOffset(groupId, topics.commands));
        if (calls.length === 1) throw new Error('event store unavailable');
        return envelopes.map((e): DispatchResult => {
          if (calls.length === 2 && (e.commandId === 'c2' || e.commandId === 'c3')) return { ok: false, reason: 'internal_error: for now', retryable: true };
          stored.push(e.commandId);
          return { ok: true };
        });
      };

      // when the ingest runs
      const ingest = new CommandIngest({ kafka, topics, groupId, dispatchBatch, retryBackoffMs: 50 });
      await runUntilCommitted(ingest, groupId, topics.commands, '4');

      // then the whole batch was tried again after the exception, then only the two held commands, in
      // their order; while c1 was the only one stored, nothing past it was committed
      expect(calls).toEqual([['c1', 'c2', 'c3', 'c4'], ['c1', 'c2', 'c3', 'c4'], ['c2', 'c3']]);
      expect(stored).toEqual(['c1', 'c4', 'c2', 'c3']);
      for (const offset of committedWhileUnstored) expect(Number(offset ?? -1)).toBeLessThanOrEqual(1);
      expect(ingest.stats()).toMatchObject({ accepted: 4, deadLettered: 0, retries: 6 });
    });
  });
});
