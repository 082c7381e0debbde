import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventSubscription,
  JsonObject,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StoredEvent,
  SubscribeOptions,
} from '../event-store.port';
import { canReadAhead, pagesThroughReadAll, type LogPages, type LogReadAhead, type ReadAheadOptions } from '../read-ahead';
import type { CustomerKeyStore } from './customer-keys';
import {
  customerOfStream,
  decryptField,
  encryptField,
  ERASED_FIELD,
  isEncryptedField,
  PERSONAL_FIELDS,
} from './personal-data.cipher';

export const PERSONAL_DATA_ERASED = 'PersonalDataErased';

/**
 * Wraps any event store so personal fields are encrypted with the customer's key before they are
 * stored, and decrypted when read. Once the key is destroyed those fields read as absent and the
 * event carries `personalDataErased: true`. The hash chain is computed by the inner store over the
 * encrypted form, so it still verifies after an erasure; auditors verify through `inner`.
 */
export class PersonalDataEventStore implements EventStore, LogReadAhead {
  constructor(
    readonly inner: EventStore,
    private readonly keys: CustomerKeyStore,
  ) {}

  async appendToStream(streamId: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult> {
    const customerId = customerOfStream(streamId);
    if (customerId !== undefined && events.some((e) => e.type === PERSONAL_DATA_ERASED)) {
      // Key first: if the process dies before the append, the data is already unreadable and the
      // retried command records the fact; the other order could leave a recorded erasure undone.
      const at = events.find((e) => e.type === PERSONAL_DATA_ERASED)?.metadata.occurredAt ?? '';
      await this.keys.destroyKey(customerId, at);
    }
    const stored = customerId === undefined ? events : await Promise.all(events.map((e) => this.encrypt(customerId, e)));
    const result = await this.inner.appendToStream(streamId, stored, options);
    return { ...result, events: await Promise.all(result.events.map((e) => this.decrypt(e))) };
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    return Promise.all((await this.inner.readStream(streamId, options)).map((e) => this.decrypt(e)));
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    return Promise.all((await this.inner.readAll(options)).map((e) => this.decrypt(e)));
  }

  /** the inner store's read-ahead (or its `readAll`, page by page), decrypted on the event loop */
  readPagesAhead(options: ReadAheadOptions): LogPages {
    if (!canReadAhead(this.inner)) return pagesThroughReadAll(this, options);
    const pages = this.inner.readPagesAhead(options);
    const decrypt = (e: StoredEvent): Promise<StoredEvent> => this.decrypt(e);
    return {
      close: () => pages.close(),
      async *[Symbol.asyncIterator]() {
        for await (const page of pages) yield await Promise.all(page.map(decrypt));
      },
    };
  }

  subscribeToAll(options?: SubscribeOptions): EventSubscription {
    const inner = this.inner.subscribeToAll(options);
    const decrypt = (e: StoredEvent): Promise<StoredEvent> => this.decrypt(e);
    return {
      close: () => inner.close(),
      async *[Symbol.asyncIterator]() {
        for await (const e of inner) yield await decrypt(e);
      },
    };
  }

  headPosition(): Promise<number> {
    return this.inner.headPosition();
  }

  async close(): Promise<void> {
    await this.inner.close();
    await this.keys.close();
  }

  /** whether the customer's personal data was erased (their key destroyed) */
  async isErased(customerId: string): Promise<boolean> {
    return (await this.keys.existingKey(customerId)) === 'erased';
  }

  private async encrypt(customerId: string, event: NewEvent): Promise<NewEvent> {
    const fields = PERSONAL_FIELDS[event.type]?.filter((f) => event.data[f] !== undefined) ?? [];
    if (fields.length === 0) return event;
    const key = await this.keys.keyFor(customerId);
    const data: JsonObject = { ...event.data };
    for (const field of fields) {
      const value = event.data[field];
      if (value === undefined) continue;
      data[field] = key === 'erased' ? { ...ERASED_FIELD } : encryptField(key, value, `${event.id}:${field}`);
    }
    return { ...event, data };
  }

  private async decrypt(event: StoredEvent): Promise<StoredEvent> {
    const fields = PERSONAL_FIELDS[event.type]?.filter((f) => isEncryptedField(event.data[f])) ?? [];
    const customerId = customerOfStream(event.streamId);
    if (fields.length === 0 || customerId === undefined) return event;
    const key = await this.keys.existingKey(customerId);
    const data: JsonObject = { ...event.data };
    let erased = false;
    for (const field of fields) {
      const value = event.data[field];
      if (!isEncryptedField(value)) continue;
      if (key instanceof Buffer && value.$personal !== ERASED_FIELD.$personal) {
        data[field] = decryptField(key, value, `${event.id}:${field}`);
      } else {
        delete data[field];
        erased = true;
      }
    }
    if (erased) data.personalDataErased = true;
    return { ...event, data };
  }
}
