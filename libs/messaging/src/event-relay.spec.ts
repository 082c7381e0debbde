import { InMemoryEventStore } from '@clientele/testing';
import type { Kafka, ProducerBatch } from 'kafkajs';
import { InMemoryCheckpointStore } from './checkpoint.store';
import { EventRelay } from './event-relay';
import { newEvent } from './kafka-test-helpers';
import { topicNames } from './topics';

/**
 * A producer stand-in that records what each sendBatch carried and answers when the spec says so,
 * to observe the relay between a send and its acknowledgement. The relay uses only producer()
 * (connect, sendBatch, disconnect) of the client, hence the cast.
 */
class ScriptedBroker {
  readonly sends: { positions: number[]; settle: (error?: Error) => void }[] = [];
  private started: (() => void) | undefined;

  readonly kafka = {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      sendBatch: (batch: ProducerBatch) =>
        new Promise<void>((resolve, reject) => {
          const events = batch.topicMessages?.find((t) => t.topic === topics.events)?.messages ?? [];
          const positions = events.map((m) => Number(m.headers?.['clientele-position']));
          this.sends.push({ positions, settle: (error) => (error ? reject(error) : resolve()) });
          this.started?.();
        }),
    }),
  } as unknown as Kafka;

  /** resolves once `count` sends have started */
  async sendsStarted(count: number): Promise<void> {
    while (this.sends.length < count) await new Promise<void>((resolve) => (this.started = resolve));
  }
}

const topics = topicNames('spec.');
const settleSoon = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('EventRelay', () => {
  async function storeWith(events: number): Promise<InMemoryEventStore> {
    const store = new InMemoryEventStore();
    for (let i = 0; i < events; i++) await store.appendToStream(`customer-c${i % 3}`, [newEvent('TouchpointRecorded', `c${i % 3}`)]);
    return store;
  }

  it('given a batch out, when the broker has not acknowledged it, then the next batch waits and the checkpoint stays', async () => {
    const store = await storeWith(25);
    const checkpoints = new InMemoryCheckpointStore();
    const broker = new ScriptedBroker();
    const relay = new EventRelay({ store, kafka: broker.kafka, topics, checkpoints, batchSize: 10, lingerMs: 1 });
    relay.start();

    await broker.sendsStarted(1);
    await settleSoon();
    expect(broker.sends.map((s) => s.positions)).toEqual([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
    expect(await checkpoints.load('kafka-relay')).toBe(0);

    broker.sends[0]?.settle();
    await broker.sendsStarted(2);
    expect(await checkpoints.load('kafka-relay')).toBe(10);
    expect(broker.sends[1]?.positions).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);

    broker.sends[1]?.settle();
    await broker.sendsStarted(3);
    broker.sends[2]?.settle();
    await relay.waitForPosition(25, 5_000);
    await relay.stop();
    expect(broker.sends.map((s) => s.positions.length)).toEqual([10, 10, 5]);
    expect(await checkpoints.load('kafka-relay')).toBe(25);
  });

  it('given a batch the broker refused, then no later batch goes out before it, and it is sent again from the checkpoint', async () => {
    const store = await storeWith(20);
    const checkpoints = new InMemoryCheckpointStore();
    const broker = new ScriptedBroker();
    const warnings: string[] = [];
    const logger = { warn: (_detail: object, message: string) => void warnings.push(message) };
    const relay = new EventRelay({ store, kafka: broker.kafka, topics, checkpoints, batchSize: 10, lingerMs: 1, retryBackoffMs: 10, logger });
    relay.start();

    await broker.sendsStarted(1);
    broker.sends[0]?.settle();
    await broker.sendsStarted(2);
    // the second batch fails while the relay has already read past it
    broker.sends[1]?.settle(new Error('broker gone'));
    await broker.sendsStarted(3);
    // failing now, as /health says, until a send is acknowledged again
    expect((await relay.stats()).failingSends).toBe(1);
    broker.sends[2]?.settle();
    await relay.waitForPosition(20, 5_000);
    await relay.stop();
    expect((await relay.stats()).failingSends).toBe(0);
    expect(warnings.at(-1)).toBe('relay publishing again after failed sends');

    expect(broker.sends.map((s) => [s.positions[0], s.positions.at(-1)])).toEqual([
      [1, 10],
      [11, 20],
      [11, 20],
    ]);
    expect((await relay.stats()).failedSends).toBe(1);
    expect(await checkpoints.load('kafka-relay')).toBe(20);
  });

  it('given a batch the broker refuses as too large, then the batch is halved until one fits, and grows back once past', async () => {
    const store = await storeWith(60);
    const checkpoints = new InMemoryCheckpointStore();
    const broker = new ScriptedBroker();
    const relay = new EventRelay({ store, kafka: broker.kafka, topics, checkpoints, batchSize: 8, lingerMs: 20, retryBackoffMs: 1 });
    relay.start();

    // kafkajs' refusal, as the broker words it
    const tooLarge = () => Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE' });
    await broker.sendsStarted(1);
    broker.sends[0]?.settle(tooLarge());
    await broker.sendsStarted(2);
    broker.sends[1]?.settle(tooLarge());
    // after two refusals a request holds 2 events, and the relay moves on with them
    let settled = 2;
    while ((await relay.stats()).position < 60) {
      if (broker.sends.length > settled) broker.sends[settled++]?.settle();
      else await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await relay.stop();

    expect(broker.sends.slice(0, 3).map((s) => s.positions)).toEqual([
      [1, 2, 3, 4, 5, 6, 7, 8],
      [1, 2, 3, 4],
      [1, 2],
    ]);
    // nothing lost, each event acknowledged once the sizes fit
    const acknowledged = broker.sends.slice(2).flatMap((s) => s.positions);
    expect(acknowledged).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // twenty acknowledged requests of 2 later, they hold 4 again (the one formed meanwhile still 2)
    expect(broker.sends.slice(2, 22).every((send) => send.positions.length === 2)).toBe(true);
    expect(broker.sends.slice(22).some((send) => send.positions.length === 4)).toBe(true);
    expect((await relay.stats()).failedSends).toBe(2);
  });
});
