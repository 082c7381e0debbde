import { GENESIS_HASH, chainHash } from '@clientele/event-store';
import type { EventMetadata, JsonObject, StoredEvent } from '@clientele/event-store';
import { InMemoryEventStore } from './in-memory-event-store';

/**
 * Builds `StoredEvent`s the way a store would (ids, revisions per stream, global positions, the hash
 * chain), so read-model tests can feed projections without a real store. Business time comes from
 * `data.occurredAt` when the payload has it, else from a fixture clock that moves one minute per event.
 */
export class StoredEventLog {
  private readonly stored: StoredEvent[] = [];
  private readonly revisions = new Map<string, number>();
  private clock: number;

  constructor(startAt = '2026-01-01T00:00:00.000Z') {
    this.clock = Date.parse(startAt);
  }

  /** appends one event; the stream defaults to the owner named in the payload (`customer-…`, `employee-…`, `campaign-…`) */
  append(
    type: string,
    data: JsonObject,
    options: { streamId?: string; id?: string; metadata?: Partial<EventMetadata> } = {},
  ): StoredEvent {
    const streamId = options.streamId ?? streamOf(data);
    const occurredAt = typeof data.occurredAt === 'string' ? data.occurredAt : this.tick();
    const revision = (this.revisions.get(streamId) ?? -1) + 1;
    this.revisions.set(streamId, revision);
    const position = this.stored.length + 1;
    const prevHash = this.stored[this.stored.length - 1]?.hash ?? GENESIS_HASH;
    const metadata: EventMetadata = { schemaVersion: 1, ...options.metadata, occurredAt };
    const fields = {
      id: options.id ?? `evt-${String(position).padStart(8, '0')}`,
      streamId,
      revision,
      position,
      type,
      data: { ...data, occurredAt },
      metadata,
      recordedAt: occurredAt,
    };
    const event: StoredEvent = { ...fields, hash: chainHash(prevHash, fields), prevHash };
    this.stored.push(event);
    return event;
  }

  get events(): readonly StoredEvent[] {
    return this.stored;
  }

  get head(): number {
    return this.stored.length;
  }

  private tick(): string {
    const at = new Date(this.clock).toISOString();
    this.clock += 60_000;
    return at;
  }
}

/** A log from a list of `{ type, data }` facts, in order. */
export function storedEvents(facts: ReadonlyArray<{ type: string; data: JsonObject; streamId?: string }>): StoredEvent[] {
  const log = new StoredEventLog();
  for (const f of facts) log.append(f.type, f.data, { streamId: f.streamId });
  return [...log.events];
}

function streamOf(data: JsonObject): string {
  if (typeof data.customerId === 'string') return `customer-${data.customerId}`;
  if (typeof data.employeeId === 'string') return `employee-${data.employeeId}`;
  if (typeof data.campaignId === 'string') return `campaign-${data.campaignId}`;
  throw new Error('fixture event: data must name customerId, employeeId or campaignId, or pass streamId');
}

/** an in-memory event store holding these events at the same positions (record time is its own) */
export async function inMemoryStoreOf(events: readonly StoredEvent[]): Promise<InMemoryEventStore> {
  const store = new InMemoryEventStore();
  for (const e of events) {
    await store.appendToStream(e.streamId, [{ id: e.id, type: e.type, data: e.data, metadata: e.metadata }]);
  }
  return store;
}
