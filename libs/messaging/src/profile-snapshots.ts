import { Headers as H, MessageKinds, type ProfileSnapshotMessage } from '@clientele/contracts';
import type { EventStore, StoredEvent } from '@clientele/event-store';
import type { Producer } from 'kafkajs';
import type { CheckpointStore } from './checkpoint.store';
import type { RelayLogger } from './event-relay';

/** One customer's latest profile; `null` writes a tombstone (the profile is erased). */
export interface ProfileSnapshot {
  customerId: string;
  profile: Record<string, unknown> | null;
  /** global position of the customer's last event known to be folded into the profile */
  position?: number;
  /** when the profile was read: its date-relative figures (recency, orders per 30 days) are as of then */
  asOf?: string;
}

export type PublishProfileSnapshot = (
  customerId: string,
  profile: Record<string, unknown> | null,
  options?: { position?: number },
) => Promise<void>;

/**
 * Sends snapshots to the compacted `profiles` topic keyed by customer id, in one acknowledged
 * request; a `null` profile writes a tombstone, so after compaction an erased customer's profile is
 * gone from Kafka too. The producer should be idempotent and partition like the relay (default
 * partitioner), so a snapshot and the relay's tombstone for one customer share a partition.
 */
export async function publishProfileSnapshots(producer: Producer, profilesTopic: string, snapshots: readonly ProfileSnapshot[]): Promise<void> {
  if (snapshots.length === 0) return;
  const messages = snapshots.map(({ customerId, profile, position, asOf }) => {
    if (!customerId) throw new Error('customerId: expected a non-empty string');
    let value: string | null = null;
    if (profile !== null) {
      const message: ProfileSnapshotMessage = { customerId, snapshotVersion: 1, profile };
      if (position !== undefined) message.position = position;
      if (asOf !== undefined) message.asOf = asOf;
      value = JSON.stringify(message);
    }
    return { key: customerId, value, headers: { [H.messageKind]: MessageKinds.profileSnapshot, [H.contentType]: 'application/json' } };
  });
  await producer.send({ topic: profilesTopic, acks: -1, messages });
}

/** One snapshot at a time, for callers that publish a single profile. */
export function profileSnapshotPublisher(producer: Producer, profilesTopic: string): PublishProfileSnapshot {
  return (customerId, profile, options = {}) =>
    publishProfileSnapshots(producer, profilesTopic, [{ customerId, profile, ...(options.position !== undefined && { position: options.position }) }]);
}

/** Where the snapshot feed reads profiles and hears about projected batches (the engine's read models). */
export interface ProfileSource {
  /**
   * the customer's current profile without personal fields, its date-relative figures as of `asOf`;
   * `null` when erased; undefined when unknown
   */
  load(customerId: string, asOf: Date): Promise<Record<string, unknown> | null | undefined>;
  /** global position the profile read model has folded up to */
  position(): Promise<number>;
  /** `listener` hears every batch after it committed to the read model; answers an unsubscribe */
  onBatchApplied(listener: (events: readonly StoredEvent[]) => void): () => void;
}

export interface ProfileSnapshotFeedOptions {
  source: ProfileSource;
  /** the log, read on start to find customers whose snapshot may not have gone out before a crash */
  store: EventStore;
  checkpoints: CheckpointStore;
  publish: (snapshots: readonly ProfileSnapshot[]) => Promise<void>;
  /** checkpoint name; default `kafka-profile-snapshots` */
  name?: string;
  /** profiles read and sent per request; default 500 */
  batchSize?: number;
  /** first pause after a failed send, doubled up to 30 s; default 500 ms */
  retryBackoffMs?: number;
  logger?: RelayLogger;
  /** the clock that dates each request's profiles (tests) */
  now?: () => Date;
}

export interface ProfileSnapshotStats {
  /** checkpoint: every customer touched up to here has had a snapshot (or tombstone) acknowledged since */
  position: number;
  /** customers waiting for their snapshot */
  pending: number;
  publishedSnapshots: number;
  failedSends: number;
}

/**
 * Publishes the latest profile of every customer a projected batch touched, after the batch
 * committed. Delivery is at least once and the state sent is the read model's current one, so a
 * late or repeated snapshot is never older than one sent before it for the same key.
 *
 * Crash safety: a checkpoint (in the engine's checkpoint store) says up to which global position
 * every touched customer's snapshot was acknowledged. It moves only after a send succeeded; on start
 * the customers of the events between it and the read model's position are published again, so a
 * crash between the read-model commit and the send costs a repeat, never a lost snapshot.
 *
 * Erasure: an erased profile is published as a tombstone (the relay writes one too). Because this
 * feed reads the profile when it sends, a snapshot read just before the erasure was projected can
 * land after the relay's tombstone; the erasure's own batch then makes this feed send a tombstone
 * after it, so the last word for the key is always `null`.
 */
export class ProfileSnapshotFeed {
  private readonly name: string;
  private readonly batchSize: number;
  private readonly retryBackoffMs: number;
  /** customer id → the lowest position that made it pending (for the checkpoint) and the highest (for the message) */
  private readonly pending = new Map<string, { since: number; last: number }>();
  /** customers taken out of `pending` for the send in progress: still not on the topic until it is acknowledged */
  private sending: readonly string[] = [];
  private seen = 0;
  private checkpoint = 0;
  private unsubscribe?: () => void;
  private loop?: Promise<void>;
  private running = false;
  /** ends the idle wait (new work or stop) */
  private wake: () => void = () => undefined;
  /** ends a retry pause (stop only: new work must not cut a backoff short) */
  private interrupt: () => void = () => undefined;
  private readonly counters = { publishedSnapshots: 0, failedSends: 0 };

  constructor(private readonly options: ProfileSnapshotFeedOptions) {
    this.name = options.name ?? 'kafka-profile-snapshots';
    this.batchSize = options.batchSize ?? 500;
    this.retryBackoffMs = options.retryBackoffMs ?? 500;
  }

  /** Listens for batches, queues what was projected but maybe not published, then publishes in the background. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    // listen first: a batch committed while the backlog is read is then queued twice, never missed
    this.unsubscribe = this.options.source.onBatchApplied((events) => this.touch(events));
    this.checkpoint = await this.options.checkpoints.load(this.name);
    this.seen = Math.max(this.seen, this.checkpoint);
    const projected = await this.options.source.position();
    if (!Number.isSafeInteger(projected) || projected < 0) throw new Error(`profile snapshots: the read model's position must be a safe integer, got ${projected}`);
    let after = this.checkpoint;
    while (after < projected) {
      const events = await this.options.store.readAll({ afterPosition: after, maxCount: 5000 });
      const inRange = events.filter((e) => e.position <= projected);
      this.touch(inRange);
      const last = events[events.length - 1];
      if (!last || last.position >= projected) break;
      after = last.position;
    }
    this.seen = Math.max(this.seen, projected);
    this.loop = this.publishLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.wake();
    this.interrupt();
    await this.loop;
    this.loop = undefined;
  }

  stats(): ProfileSnapshotStats {
    let sendingOnly = 0;
    for (const id of this.sending) if (!this.pending.has(id)) sendingOnly += 1;
    return { position: this.checkpoint, pending: this.pending.size + sendingOnly, ...this.counters };
  }

  /** resolves once every customer touched up to `position` has had its snapshot acknowledged */
  async waitForPosition(position: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.checkpoint < position) {
      if (Date.now() > deadline) throw new Error(`profile snapshots: position ${position} not reached within ${timeoutMs} ms (at ${this.checkpoint})`);
      await sleep(10);
    }
  }

  private touch(events: readonly StoredEvent[]): void {
    for (const e of events) {
      this.seen = Math.max(this.seen, e.position);
      const customerId = e.data.customerId;
      if (typeof customerId !== 'string' || customerId === '') continue;
      const entry = this.pending.get(customerId);
      if (entry) entry.last = Math.max(entry.last, e.position);
      else this.pending.set(customerId, { since: e.position, last: e.position });
    }
    this.wake();
  }

  private async publishLoop(): Promise<void> {
    let pause = this.retryBackoffMs;
    while (this.running) {
      if (this.pending.size === 0) {
        await this.saveCheckpoint();
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const taken = [...this.pending.entries()].slice(0, this.batchSize);
      for (const [id] of taken) this.pending.delete(id);
      this.sending = taken.map(([id]) => id);
      try {
        const snapshots: ProfileSnapshot[] = [];
        // one moment for the request: a snapshot says as of when its recency and frequency were counted
        const asOf = this.options.now?.() ?? new Date();
        for (const [customerId, { last }] of taken) {
          const profile = await this.options.source.load(customerId, asOf);
          if (profile === undefined) continue;
          snapshots.push(profile === null ? { customerId, profile: null } : { customerId, profile, position: last, asOf: asOf.toISOString() });
        }
        await this.options.publish(snapshots);
        this.counters.publishedSnapshots += snapshots.length;
        this.sending = [];
        pause = this.retryBackoffMs;
        await this.saveCheckpoint();
      } catch (err) {
        // put them back (a customer touched again meanwhile keeps the earliest cause) and retry later
        for (const [id, entry] of taken) {
          const now = this.pending.get(id);
          this.pending.set(id, now ? { since: Math.min(now.since, entry.since), last: Math.max(now.last, entry.last) } : entry);
        }
        this.sending = [];
        this.counters.failedSends += 1;
        this.options.logger?.warn({ err, pending: this.pending.size }, 'profile snapshots could not be sent; retrying');
        await this.interruptibleSleep(pause);
        pause = Math.min(pause * 2, 30_000);
      }
    }
  }

  /** everything before the earliest still-pending cause is published; with nothing pending, all seen is */
  private async saveCheckpoint(): Promise<void> {
    let upTo = this.seen;
    for (const { since } of this.pending.values()) upTo = Math.min(upTo, since - 1);
    if (upTo <= this.checkpoint) return;
    try {
      await this.options.checkpoints.save(this.name, upTo);
      this.checkpoint = upTo;
    } catch (err) {
      this.options.logger?.warn({ err }, 'profile snapshot checkpoint could not be saved; it is tried again after the next send');
    }
  }

  private interruptibleSleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.interrupt = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
