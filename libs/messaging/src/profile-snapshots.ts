import { Headers as H, MessageKinds, type ProfileSnapshotMessage } from '@clientele/contracts';
import type { Producer } from 'kafkajs';

export type PublishProfileSnapshot = (
  customerId: string,
  profile: Record<string, unknown> | null,
  options?: { position?: number },
) => Promise<void>;

/**
 * The hook the projections layer calls after a profile changed: the latest profile goes to the
 * compacted `profiles` topic keyed by customer id; `null` writes a tombstone, so after compaction
 * an erased customer's profile is gone from Kafka too. The producer should be idempotent.
 */
export function profileSnapshotPublisher(producer: Producer, profilesTopic: string): PublishProfileSnapshot {
  return async (customerId, profile, options = {}) => {
    if (!customerId) throw new Error('customerId: expected a non-empty string');
    let value: string | null = null;
    if (profile !== null) {
      const message: ProfileSnapshotMessage = { customerId, snapshotVersion: 1, profile };
      if (options.position !== undefined) message.position = options.position;
      value = JSON.stringify(message);
    }
    await producer.send({
      topic: profilesTopic,
      acks: -1,
      messages: [{ key: customerId, value, headers: { [H.messageKind]: MessageKinds.profileSnapshot, [H.contentType]: 'application/json' } }],
    });
  };
}
