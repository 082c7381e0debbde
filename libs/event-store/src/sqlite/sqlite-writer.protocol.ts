import { DuplicateEventIdError, WrongExpectedRevisionError, type ExpectedRevision, type StoredEvent } from '../event-store.port';
import { ImportRefusedError } from '../import-stored';
import { CustomerKeyTakenError, type NewKeyRow, type StoredKeyRow } from '../personal-data/customer-keys';
import { OUTCOME_FIELDS, REFUSED, type SqliteDurability, type WireGroup, type WriteOutcomes } from './sqlite-writer';

/** What the writer thread is started with. */
export interface WriterThreadData {
  file: string;
  durability: SqliteDurability;
}

/** Requests are answered in the order they were sent, one reply each. */
export type WriterRequest =
  /** `sentAt`: performance.timeOrigin + performance.now() when sent (one clock in both threads) */
  | { t: 'group'; group: WireGroup; sentAt: number }
  | { t: 'import'; events: readonly StoredEvent[] }
  | { t: 'keys'; rows: readonly NewKeyRow[] }
  | { t: 'close' };

export type WriterReply =
  /**
   * `ms`: from sending to the commit, as the thread saw it (waiting for the thread to run, the
   * transaction, the sync), to time the next group
   */
  | { t: 'group'; outcomes: WriteOutcomes; ms: number }
  | { t: 'import'; error?: WireError }
  | { t: 'keys'; stored?: StoredKeyRow[]; error?: WireError }
  | { t: 'closed' };

/**
 * An error as it crosses the thread boundary: the store's typed refusals keep their fields (so the
 * caller gets the same class and message as inline), anything else keeps name, message and code.
 */
export type WireError =
  | { kind: 'revision'; streamId: string; expected: ExpectedRevision; actual: number | 'no_stream' }
  | { kind: 'event-id'; eventId: string }
  | { kind: 'import'; position: number; message: string }
  | { kind: 'key'; customerId: string }
  | { kind: 'other'; name: string; message: string; code?: string; stack?: string };

export function toWireError(error: unknown): WireError {
  if (error instanceof WrongExpectedRevisionError) {
    return { kind: 'revision', streamId: error.streamId, expected: error.expected, actual: error.actual };
  }
  if (error instanceof DuplicateEventIdError) return { kind: 'event-id', eventId: error.eventId };
  if (error instanceof ImportRefusedError) return { kind: 'import', position: error.position, message: error.message };
  if (error instanceof CustomerKeyTakenError) return { kind: 'key', customerId: error.customerId };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { kind: 'other', name: error.name, message: error.message, code: typeof code === 'string' ? code : undefined, stack: error.stack };
  }
  return { kind: 'other', name: 'Error', message: String(error) };
}

export function fromWireError(wire: WireError): Error {
  switch (wire.kind) {
    case 'revision':
      return new WrongExpectedRevisionError(wire.streamId, wire.expected, wire.actual);
    case 'event-id':
      return new DuplicateEventIdError(wire.eventId);
    case 'import': {
      const error = new ImportRefusedError(wire.position, '');
      error.message = wire.message;
      return error;
    }
    case 'key':
      return new CustomerKeyTakenError(wire.customerId);
    case 'other': {
      const error = new Error(wire.message);
      error.name = wire.name;
      if (wire.code !== undefined) Object.assign(error, { code: wire.code });
      if (wire.stack !== undefined) error.stack = `${wire.stack}\n    (in the SQLite writer thread)`;
      return error;
    }
  }
}

/** The outcomes as the thread sends them: each refusal's error as a WireError. */
export function toWireOutcomes(outcomes: WriteOutcomes): WriteOutcomes {
  for (let i = 0; i < outcomes.length; i += OUTCOME_FIELDS) {
    if (outcomes[i] === REFUSED) outcomes[i + 1] = toWireError(outcomes[i + 1]);
  }
  return outcomes;
}
