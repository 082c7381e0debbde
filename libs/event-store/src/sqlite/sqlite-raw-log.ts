import { existsSync } from 'node:fs';
import type { EventStore, JsonObject, ReadAllOptions, StoredEvent } from '../event-store.port';
import { payloadAsHashed } from '../stored-payload';
import { openSqliteReadOnly, type ReadOnlySqlite } from './sqlite-read-only';

/**
 * Reads the events table of an embedded store file for verification, without the adapter: opened
 * read-only, writing nothing to the file or its folder (see openSqliteReadOnly), no migration, no
 * upcasting. A damaged row never stops the walk: a payload that is no
 * longer the canonical JSON the chain hashed (not JSON at all, or JSON written another way: a
 * duplicated key, `3e3` for `3000`, an escaped letter) is handed on as `{ $unreadable: <text> }`,
 * which cannot match its recorded hash, so `verifyChain` reports it as altered at its position
 * instead of the reader crashing or a reader of the stored text seeing other values than the
 * hash covers. Without `afterPosition` the walk starts at the lowest position stored, so a row
 * slipped in below position 1 is met (and reported) first.
 */
export async function* readSqliteLogRaw(file: string, options: { batchSize?: number; afterPosition?: number } = {}): AsyncGenerator<StoredEvent> {
  const opened = openRaw(file);
  try {
    const page = opened.db.prepare('SELECT * FROM events WHERE position > ? ORDER BY position ASC LIMIT ?');
    const first = opened.db.prepare('SELECT * FROM events ORDER BY position ASC LIMIT ?');
    yield* pages(opened, (after, batchSize) => (after === undefined ? first.all(batchSize) : page.all(after, batchSize)) as RawRow[], options);
  } finally {
    opened.close();
  }
}

/**
 * The rows of one stream, read as `readSqliteLogRaw` reads the log (a payload not exactly the
 * canonical JSON that was hashed comes as `{ $unreadable: <text> }`), in position order from the
 * lowest stored, for `verifyStreamEvents`: an adapter would parse a rewritten payload into the
 * values the hash covers, and refuse one that is no longer JSON.
 */
export async function* readSqliteStreamRaw(file: string, streamId: string, options: { batchSize?: number } = {}): AsyncGenerator<StoredEvent> {
  const opened = openRaw(file);
  try {
    const page = opened.db.prepare('SELECT * FROM events WHERE stream_id = ? AND position > ? ORDER BY position ASC LIMIT ?');
    const first = opened.db.prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY position ASC LIMIT ?');
    yield* pages(opened, (after, batchSize) => (after === undefined ? first.all(streamId, batchSize) : page.all(streamId, after, batchSize)) as RawRow[], options);
  } finally {
    opened.close();
  }
}

/** The log of an embedded store file read raw by position, for the neighbour links `verifyStreamEvents` checks. */
export interface SqliteRawLog extends Pick<EventStore, 'readAll'> {
  close(): void;
}

/** Opens the events table read-only, as `readSqliteLogRaw` does; close it when done. */
export function openSqliteLogRaw(file: string): SqliteRawLog {
  const opened = openRaw(file);
  const page = opened.db.prepare('SELECT * FROM events WHERE position > ? ORDER BY position ASC LIMIT ?');
  return {
    readAll(options: ReadAllOptions = {}) {
      const rows = page.all(options.afterPosition ?? 0, options.maxCount ?? -1) as RawRow[];
      opened.assertUnchanged();
      return Promise.resolve(rows.map(fromRawRow));
    },
    close() {
      opened.close();
    },
  };
}

function openRaw(file: string): ReadOnlySqlite {
  if (!existsSync(file)) throw new Error(`store file ${file} does not exist`);
  const opened = openSqliteReadOnly(file);
  try {
    const table = opened.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").get();
    if (!table) throw new Error(`${file} has no events table: not a Clientele store`);
  } catch (error) {
    opened.close();
    throw error;
  }
  return opened;
}

function* pages(
  opened: ReadOnlySqlite,
  read: (after: number | undefined, batchSize: number) => RawRow[],
  options: { batchSize?: number; afterPosition?: number },
): Generator<StoredEvent> {
  const batchSize = options.batchSize ?? 1000;
  let after = options.afterPosition;
  for (;;) {
    const rows = read(after, batchSize);
    // a page read from a file that another process wrote meanwhile may mix two states
    opened.assertUnchanged();
    for (const row of rows) yield fromRawRow(row);
    const last = rows[rows.length - 1];
    if (!last || rows.length < batchSize) return;
    after = Number(last.position);
  }
}

interface RawRow {
  position: unknown;
  stream_id: unknown;
  revision: unknown;
  id: unknown;
  type: unknown;
  data: unknown;
  metadata: unknown;
  recorded_at: unknown;
  hash: unknown;
  prev_hash: unknown;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return String(value);
}

function tolerantJson(value: unknown): JsonObject {
  return payloadAsHashed(text(value));
}

function fromRawRow(row: RawRow): StoredEvent {
  return {
    id: text(row.id),
    type: text(row.type),
    data: tolerantJson(row.data),
    metadata: tolerantJson(row.metadata) as StoredEvent['metadata'],
    streamId: text(row.stream_id),
    revision: Number(row.revision),
    position: Number(row.position),
    recordedAt: text(row.recorded_at),
    hash: text(row.hash),
    prevHash: text(row.prev_hash),
  };
}
