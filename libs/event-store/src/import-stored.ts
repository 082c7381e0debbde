import type { EventStore, StoredEvent } from './event-store.port';
import { canonicalJson, chainHashOfCanonical } from './hash-chain';

/**
 * A store that can take events another store already recorded, verbatim: ids, positions,
 * revisions, record times and hashes as they are. Only for moving a log between stores; the
 * command path always appends (which assigns positions, times and hashes itself).
 */
export interface StoredEventImport {
  /**
   * Writes the events in one transaction, or nothing. Refused (ImportRefusedError) unless they
   * continue the log exactly: the first at head + 1, positions consecutive, each `prevHash` the
   * hash before it, and each hash right for its content. So an import can never break the chain.
   */
  importStored(events: readonly StoredEvent[]): Promise<void>;
}

export type ImportTarget = Pick<EventStore, 'readAll' | 'headPosition'> & StoredEventImport;

/** The events do not continue the target's log: nothing was written. */
export class ImportRefusedError extends Error {
  constructor(
    readonly position: number,
    detail: string,
  ) {
    super(`import refused at position ${position}: ${detail}`);
    this.name = 'ImportRefusedError';
  }
}

export interface ImportRow {
  event: StoredEvent;
  /** canonical JSON, as the stores keep it and the chain hashes it */
  data: string;
  metadata: string;
}

/**
 * Checks that `events` continue the log whose last event is `head`, and answers each with its
 * canonical JSON (computed once, for the check and the row). Pure; the adapters call it inside
 * the transaction that holds their write lock, so the head cannot move in between.
 */
export function checkImport(head: { position: number; hash: string }, events: readonly StoredEvent[]): ImportRow[] {
  let position = head.position;
  let hash = head.hash;
  return events.map((event) => {
    const at = event.position;
    if (at !== position + 1) {
      throw new ImportRefusedError(at, `expected position ${position + 1} (the log's head is ${head.position})`);
    }
    if (event.prevHash !== hash) {
      throw new ImportRefusedError(at, `its predecessor hash ${event.prevHash.slice(0, 12)}… is not the log's ${hash.slice(0, 12)}…`);
    }
    if (!Number.isSafeInteger(event.revision) || event.revision < 0) {
      throw new ImportRefusedError(at, `revision: expected an integer ≥ 0, got ${String(event.revision)}`);
    }
    const data = canonicalJson(event.data);
    const metadata = canonicalJson(event.metadata);
    if (chainHashOfCanonical(hash, event, data, metadata) !== event.hash) {
      throw new ImportRefusedError(at, `event ${event.id}: its content does not match its hash`);
    }
    position = at;
    hash = event.hash;
    return { event, data, metadata };
  });
}
