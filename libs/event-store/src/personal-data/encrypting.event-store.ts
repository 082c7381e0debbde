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
import { customerStream } from '@clientele/domain';
import { eventsOfStream } from '../read-in-batches';
import { CustomerKeyTakenError, type CarriedKeys, type CustomerKeyStore } from './customer-keys';
import { holdsEncryptedPersonalData } from './key-coverage';
import {
  customerOfStream,
  decryptField,
  encryptField,
  ERASED_FIELD,
  hasPersonalFields,
  isEncryptedField,
  PERSONAL_DATA_ERASED,
  PERSONAL_FIELDS,
} from './personal-data.cipher';


/** Personal data refused for a customer whose earlier personal data is encrypted with a key that is missing. */
export class CustomerKeyMissingError extends Error {
  constructor(
    readonly customerId: string,
    readonly encryptedEvents: number,
    readonly firstPosition: number,
  ) {
    super(
      `customer ${customerId}: ${encryptedEvents} of their events hold personal data encrypted with a key that is missing ` +
        `(no customer key row, no erasure recorded; the first at position ${firstPosition}); new personal data for them is refused, ` +
        `nothing was written, so that their earlier data is not left unreadable for good under a new key: restore the store's customer keys from a backup`,
    );
    this.name = 'CustomerKeyMissingError';
  }
}

/** See PersonalDataEventStore.personalDataState. */
export type PersonalDataState =
  | { kind: 'readable' }
  | { kind: 'erased' }
  | { kind: 'key_missing'; encryptedEvents: number; firstPosition: number; firstEventId: string };

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
    const carried = this.keys.carried;
    if (
      customerId !== undefined &&
      carried !== undefined &&
      (carried.carrier as unknown) === this.inner &&
      options?.expectedRevision === 'no_stream' &&
      carried.kept(customerId) === undefined &&
      events.some((e) => hasPersonalFields(e.type, e.data))
    ) {
      const result = await this.appendCarryingKey(carried, customerId, streamId, events, options);
      if (result) return result;
    }
    if (customerId !== undefined && options?.expectedRevision !== 'no_stream' && events.some((e) => personalFieldsOf(e).length > 0)) {
      await this.refuseOverMissingKey(customerId);
    }
    const stored = customerId === undefined ? events : await Promise.all(events.map((e) => this.encrypt(customerId, e)));
    return this.decrypted(await this.inner.appendToStream(streamId, stored, options));
  }

  /**
   * A new stream's events encrypted with a new key that the inner store writes in the same
   * transaction (see CustomerKeyCarrier): a registration waits for one commit, not for its key's
   * and then its own. Undefined, nothing written, when the customer turns out to have a key already
   * (made by another process, or a stream that was never written): the caller then encrypts with
   * that one.
   */
  private async appendCarryingKey(
    carried: CarriedKeys,
    customerId: string,
    streamId: string,
    events: NewEvent[],
    options: AppendOptions,
  ): Promise<AppendResult | undefined> {
    const provisional = carried.provisional(customerId);
    let result: AppendResult;
    try {
      result = await carried.carrier.appendWithCustomerKey(
        streamId,
        events.map((e) => encryptWith(provisional.key, e)),
        options,
        provisional.row,
      );
    } catch (error) {
      carried.settle(customerId, provisional, false);
      if (error instanceof CustomerKeyTakenError) return undefined;
      throw error;
    }
    // an identical append stored earlier (a retry) was encrypted with the key stored then
    carried.settle(customerId, provisional, !result.duplicate);
    return this.decrypted(result);
  }

  /** An append's answer with its events as the caller reads them. */
  private async decrypted(result: AppendResult): Promise<AppendResult> {
    return { ...result, events: await this.decryptAll(result.events) };
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    return this.decryptAll(await this.inner.readStream(streamId, options));
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    return this.decryptAll(await this.inner.readAll(options));
  }

  /**
   * Events read together: a customer whose erasure is among them (recorded by this process or by
   * another one) has every personal field of the read as erased, earlier events included, whatever
   * key this process still keeps.
   */
  private decryptAll(events: readonly StoredEvent[]): Promise<StoredEvent[]> {
    for (const e of events) this.noteErasure(e);
    return Promise.all(events.map((e) => this.decrypt(e)));
  }

  private noteErasure(event: StoredEvent): void {
    if (event.type !== PERSONAL_DATA_ERASED) return;
    const customerId = customerOfStream(event.streamId);
    if (customerId !== undefined) this.keys.noteErased?.(customerId);
  }

  /** the inner store's read-ahead (or its `readAll`, page by page), decrypted on the event loop */
  readPagesAhead(options: ReadAheadOptions): LogPages {
    if (!canReadAhead(this.inner)) return pagesThroughReadAll(this, options);
    const pages = this.inner.readPagesAhead(options);
    const decryptAll = (page: readonly StoredEvent[]): Promise<StoredEvent[]> => this.decryptAll(page);
    return {
      close: () => pages.close(),
      async *[Symbol.asyncIterator]() {
        for await (const page of pages) yield await decryptAll(page);
      },
    };
  }

  subscribeToAll(options?: SubscribeOptions): EventSubscription {
    const inner = this.inner.subscribeToAll(options);
    const decrypt = (e: StoredEvent): Promise<StoredEvent> => {
      this.noteErasure(e);
      return this.decrypt(e);
    };
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

  /**
   * What can be read of a customer's personal data: `readable` (their key is there, or the log holds
   * none of their personal data encrypted), `erased` (their key row is marked erased, or their
   * stream records PersonalDataErased), or `key_missing`: the log holds their personal data
   * encrypted, but there is no key row for them and no erasure was recorded. That data was not
   * erased; its key is missing (deleted, or kept in another key store), and a read shows its
   * fields as absent with `personalDataKeyMissing: true`, never as erased.
   */
  async personalDataState(customerId: string): Promise<PersonalDataState> {
    const key = await this.keys.existingKey(customerId);
    if (key === 'erased') return { kind: 'erased' };
    if (key !== undefined) return { kind: 'readable' };
    let encrypted: { events: number; position: number; eventId: string } | undefined;
    for await (const e of eventsOfStream(this.inner, customerStream(customerId))) {
      if (e.type === PERSONAL_DATA_ERASED) {
        // the reads that follow show every personal field of theirs as erased, as the engine does
        this.keys.noteErased?.(customerId);
        return { kind: 'erased' };
      }
      if (holdsEncryptedPersonalData(e)) encrypted = encrypted ? { ...encrypted, events: encrypted.events + 1 } : { events: 1, position: e.position, eventId: e.id };
    }
    if (encrypted === undefined) return { kind: 'readable' };
    return { kind: 'key_missing', encryptedEvents: encrypted.events, firstPosition: encrypted.position, firstEventId: encrypted.eventId };
  }

  /**
   * Personal data for a customer whose earlier personal data is encrypted with a key that is missing
   * (no key row, no erasure recorded) is refused: a new key would be made for it, their earlier data
   * would stay unreadable for good, and the key row would hide that anything is missing (an audit
   * verify reports customers without one). Looked at only when no key row exists: a customer's
   * first personal data, which needs no look at their stream when it opens it.
   */
  private async refuseOverMissingKey(customerId: string): Promise<void> {
    if ((await this.keys.existingKey(customerId)) !== undefined) return;
    const state = await this.personalDataState(customerId);
    if (state.kind === 'key_missing') throw new CustomerKeyMissingError(customerId, state.encryptedEvents, state.firstPosition);
  }

  private async encrypt(customerId: string, event: NewEvent): Promise<NewEvent> {
    const fields = personalFieldsOf(event);
    if (fields.length === 0) return event;
    return encryptWith(await this.keys.keyFor(customerId), event, fields);
  }

  private async decrypt(event: StoredEvent): Promise<StoredEvent> {
    const fields = PERSONAL_FIELDS[event.type]?.filter((f) => isEncryptedField(event.data[f])) ?? [];
    const customerId = customerOfStream(event.streamId);
    if (fields.length === 0 || customerId === undefined) return event;
    const key = await this.keys.existingKey(customerId);
    const data: JsonObject = { ...event.data };
    let erased = false;
    let keyMissing = false;
    for (const field of fields) {
      const value = event.data[field];
      if (!isEncryptedField(value)) continue;
      if (key instanceof Buffer && value.$personal !== ERASED_FIELD.$personal) {
        data[field] = decryptField(key, value, `${event.id}:${field}`);
        continue;
      }
      delete data[field];
      // no key row at all is no erasure: an erased key keeps its row, marked (see personalDataState)
      if (key === undefined && value.$personal !== ERASED_FIELD.$personal) keyMissing = true;
      else erased = true;
    }
    if (erased) data.personalDataErased = true;
    if (keyMissing) data.personalDataKeyMissing = true;
    return { ...event, data };
  }
}

/** The personal fields the event carries. */
function personalFieldsOf(event: NewEvent): readonly string[] {
  return PERSONAL_FIELDS[event.type]?.filter((f) => event.data[f] !== undefined) ?? [];
}

/** The event with its personal fields (`fields`) encrypted with the customer's key (or marked erased). */
function encryptWith(key: Buffer | 'erased', event: NewEvent, fields = personalFieldsOf(event)): NewEvent {
  if (fields.length === 0) return event;
  const data: JsonObject = { ...event.data };
  for (const field of fields) {
    const value = event.data[field]!;
    data[field] = key === 'erased' ? { ...ERASED_FIELD } : encryptField(key, value, `${event.id}:${field}`);
  }
  return { ...event, data };
}
