import Database from 'better-sqlite3';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type ExpectedRevision,
  type StoredEvent,
} from '../event-store.port';
import { canonicalJson, chainHashOfCanonical, GENESIS_HASH } from '../hash-chain';
import { checkImport } from '../import-stored';
import { CustomerKeyTakenError, storeCarriedKeyInSqlite, storeKeysInSqlite, type NewKeyRow, type StoredKeyRow } from '../personal-data/customer-keys';

/**
 * `full`: an append is acknowledged only after its transaction is fsynced (survives power loss).
 * `normal`: acknowledged after the write reached the WAL file; a power cut (not a process crash)
 * may lose the last acknowledged transactions, never leaving one half-written.
 */
export type SqliteDurability = 'full' | 'normal';

const SCHEMA_VERSION = 1;
const REVISION_CACHE_SIZE = 100_000;

export interface EventRow {
  position: number;
  stream_id: string;
  revision: number;
  id: string;
  type: string;
  data: string;
  metadata: string;
  recorded_at: string;
  hash: string;
  prev_hash: string;
}

/**
 * A group of appends as the writer takes it: one flat array, so that handing it to the writer
 * thread is one structured clone with no wrapper object per append or event. Per append: stream
 * id, expected revision, event count, the customer key carried with it (customer id and wrapped
 * key, or '' and 0: see CustomerKeyCarrier), then per event: id, type, data, metadata. Data and
 * metadata are their canonical JSON, made on the event loop, when the group goes to the writer
 * thread (the thread is the busier of the two), or the event's objects for the inline writer, which
 * then makes the canonical JSON itself.
 */
export type WireGroup = Array<string | number | object>;

/** The fields of one event in a WireGroup. */
export const WIRE_EVENT_FIELDS = 4;
/** The fields before an append's events in a WireGroup. */
const WIRE_APPEND_FIELDS = 5;

/**
 * What the writer answers: OUTCOME_FIELDS entries per append of the group, in order, in one flat
 * array (it crosses the thread boundary; a flat array of strings and numbers is the cheapest thing
 * to clone). The first entry says which:
 * - WRITTEN, position and revision of the first event written (the others follow by one),
 *   recordedAt, the chain head before the first event, the events' hashes joined (64 hex each);
 * - RETRIED (an identical earlier append), its rows as stored;
 * - REFUSED, the error (the thread sends a WireError in its place).
 */
export type WriteOutcomes = unknown[];
export const OUTCOME_FIELDS = 6;
export const WRITTEN = 0;
export const RETRIED = 1;
export const REFUSED = 2;

interface ChainHead {
  position: number;
  hash: string;
}

/** One append of a WireGroup: where its events start in the array. */
interface WireAppend {
  streamId: string;
  expected: ExpectedRevision;
  /** index of its first event's id */
  at: number;
  count: number;
  /** a new customer key written with the events, if any */
  key: NewKeyRow | undefined;
}

/** Opens (creating when missing) an embedded store file: WAL, the schema, and the connection settings. */
export function openStoreFile(file: string, durability: SqliteDurability): Database.Database {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    // Another process may hold the write lock for a moment; wait instead of failing at once.
    db.pragma('busy_timeout = 5000');
    db.pragma('cache_size = -32000');
    migrate(db);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/**
 * A store file opened to read only cannot be migrated: it must hold the events table, in a schema
 * this build understands.
 */
export function assertReadableStore(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`event store schema version ${version} is newer than this build understands (${SCHEMA_VERSION})`);
  }
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").get()) {
    throw new Error(`${file} is not a Clientele event store (it has no events table)`);
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`event store schema version ${version} is newer than this build understands (${SCHEMA_VERSION})`);
  }
  if (version === SCHEMA_VERSION) return;
  db.exec(`
    BEGIN IMMEDIATE;
    CREATE TABLE IF NOT EXISTS events (
      position    INTEGER PRIMARY KEY,
      stream_id   TEXT    NOT NULL,
      revision    INTEGER NOT NULL,
      id          TEXT    NOT NULL,
      type        TEXT    NOT NULL,
      data        TEXT    NOT NULL,
      metadata    TEXT    NOT NULL,
      recorded_at TEXT    NOT NULL,
      hash        TEXT    NOT NULL,
      prev_hash   TEXT    NOT NULL,
      UNIQUE (stream_id, revision)
    );
    PRAGMA user_version = ${SCHEMA_VERSION};
    COMMIT;
  `);
}

/**
 * The write side of the embedded store: it owns the write connection, the chain head and the
 * stream-revision cache. The same class runs inline (`:memory:`, or when asked) and inside the
 * writer thread, so the write rules exist once.
 *
 * A group is written in ONE transaction (one fsync). Each append is checked on its own against
 * the stream as the transaction sees it (earlier appends of the group included) before any of its
 * events is written, so a refused append is an outcome and writes nothing. Anything else failing
 * (the disk, a constraint) undoes the transaction; the group is then written one append per
 * transaction, so the failure stays with the append that caused it. One append is never split
 * across transactions.
 *
 * Idempotency is checked like EventStoreDB does, against the stream and not through a global index
 * on event ids (the costliest thing an append could maintain): with an exact expected revision (or
 * `no_stream`) the events after that revision are compared; with `any`/`stream_exists` the stream
 * is searched for the first event's id. Reusing an id in a different stream is not detected.
 */
export class SqliteWriter {
  private head: ChainHead = { position: 0, hash: GENESIS_HASH };
  /** last revision per stream (-1: no stream), trusted only while no other process writes the file */
  private readonly revisions = new Map<string, number>();
  private readonly st: {
    begin: Database.Statement;
    commit: Database.Statement;
    rollback: Database.Statement;
    head: Database.Statement;
    lastRevision: Database.Statement;
    insert: Database.Statement;
    tailAfter: Database.Statement;
    findId: Database.Statement;
  };

  constructor(private readonly db: Database.Database) {
    this.st = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      head: db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1'),
      lastRevision: db.prepare('SELECT max(revision) AS revision FROM events WHERE stream_id = ?'),
      insert: db.prepare(
        `INSERT INTO events (position, stream_id, revision, id, type, data, metadata, recorded_at, hash, prev_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      tailAfter: db.prepare('SELECT * FROM events WHERE stream_id = ? AND revision > ? ORDER BY revision LIMIT ?'),
      findId: db.prepare('SELECT revision FROM events WHERE stream_id = ? AND id = ? LIMIT 1'),
    };
    this.loadHead();
  }

  /** The outcome of each append of the group, in order (see WriteOutcomes). Never throws: a failure is an outcome. */
  writeGroup(group: WireGroup): WriteOutcomes {
    const appends = parseGroup(group);
    try {
      return this.writeTransaction(group, appends);
    } catch (error) {
      if (appends.length === 1) return refused(error);
      const outcomes: WriteOutcomes = [];
      for (const append of appends) {
        let outcome: WriteOutcomes;
        try {
          outcome = this.writeTransaction(group, [append]);
        } catch (alone) {
          outcome = refused(alone);
        }
        for (const field of outcome) outcomes.push(field);
      }
      return outcomes;
    }
  }

  /**
   * Events recorded elsewhere, verbatim, in one transaction (see StoredEventImport), or nothing.
   * Checked against the head inside the write lock, so another process cannot move it in between.
   */
  importStored(events: readonly StoredEvent[]): void {
    if (events.length === 0) return;
    this.st.begin.run();
    try {
      this.loadHead();
      for (const { event: e, data, metadata } of checkImport(this.head, events)) {
        this.st.insert.run(e.position, e.streamId, e.revision, e.id, e.type, data, metadata, e.recordedAt, e.hash, e.prevHash);
      }
      this.st.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.st.rollback.run();
      throw error;
    } finally {
      this.revisions.clear();
      this.loadHead();
    }
  }

  /**
   * Customers' wrapped data keys, each inserted unless the customer has one already, in one
   * transaction (one sync for a whole tick's new customers), and each customer's row as stored:
   * the key another writer stored first wins. Written by the writer so that key creation never
   * waits for the write lock on the event loop (see SqliteCustomerKeyStore).
   */
  storeCustomerKeys(rows: readonly NewKeyRow[]): StoredKeyRow[] {
    return storeKeysInSqlite(this.db, rows);
  }

  close(): void {
    this.db.close();
  }

  /** The chain head is read from the last row: at open, and again at each write transaction in case another process appended. */
  private loadHead(): void {
    const row = this.st.head.get() as ChainHead | undefined;
    this.head = row ? { position: row.position, hash: row.hash } : { position: 0, hash: GENESIS_HASH };
  }

  private writeTransaction(group: WireGroup, appends: WireAppend[]): WriteOutcomes {
    const outcomes: WriteOutcomes = [];
    this.st.begin.run();
    try {
      this.refreshHead();
      const recordedAt = new Date().toISOString();
      for (const append of appends) {
        try {
          this.writeOne(group, append, recordedAt, outcomes);
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError || error instanceof DuplicateEventIdError || error instanceof CustomerKeyTakenError)) throw error;
          outcomes.push(REFUSED, error, 0, 0, 0, 0);
        }
      }
      this.st.commit.run();
      return outcomes;
    } catch (error) {
      if (this.db.inTransaction) this.st.rollback.run();
      this.revisions.clear();
      this.loadHead();
      throw error;
    }
  }

  /**
   * Inside the write lock: if the last row is not the head this writer wrote, another process
   * appended, and the cached stream revisions may be stale.
   */
  private refreshHead(): void {
    const known = this.head;
    this.loadHead();
    if (this.head.position !== known.position || this.head.hash !== known.hash) this.revisions.clear();
  }

  private lastRevision(streamId: string): number | null {
    const cached = this.revisions.get(streamId);
    if (cached !== undefined) return cached < 0 ? null : cached;
    const { revision } = this.st.lastRevision.get(streamId) as { revision: number | null };
    this.rememberRevision(streamId, revision ?? -1);
    return revision;
  }

  private rememberRevision(streamId: string, revision: number): void {
    if (this.revisions.size >= REVISION_CACHE_SIZE && !this.revisions.has(streamId)) {
      // Forget the oldest entry: a Map iterates in insertion order.
      const oldest = this.revisions.keys().next();
      if (!oldest.done) this.revisions.delete(oldest.value);
    }
    this.revisions.set(streamId, revision);
  }

  /** Writes the append, or finds it already written, and pushes its outcome; throws a refusal. */
  private writeOne(group: WireGroup, append: WireAppend, recordedAt: string, outcomes: WriteOutcomes): void {
    const { streamId, expected, at, count } = append;
    encodeInPlace(group, append);
    const last = this.lastRevision(streamId);

    const retried = this.findRetry(group, append, last);
    if (retried) {
      outcomes.push(RETRIED, retried, 0, 0, 0, 0);
      return;
    }

    const allowed =
      expected === 'any' ||
      (expected === 'no_stream' && last === null) ||
      (expected === 'stream_exists' && last !== null) ||
      expected === last;
    if (!allowed) throw new WrongExpectedRevisionError(streamId, expected, last ?? 'no_stream');
    // nothing of this append is written yet: a refused key leaves it unwritten, and its neighbours go on
    if (append.key && !storeCarriedKeyInSqlite(this.db, append.key)) throw new CustomerKeyTakenError(append.key.customerId);

    const first = { position: this.head.position + 1, revision: (last ?? -1) + 1, prevHash: this.head.hash };
    let hashes = '';
    let position = this.head.position;
    let prevHash = this.head.hash;
    let revision = last ?? -1;
    for (let i = 0; i < count; i++) {
      const f = at + i * WIRE_EVENT_FIELDS;
      const id = group[f] as string;
      const type = group[f + 1] as string;
      const data = group[f + 2] as string;
      const metadata = group[f + 3] as string;
      position += 1;
      revision += 1;
      const hash = chainHashOfCanonical(prevHash, { id, type, streamId, revision, position, recordedAt }, data, metadata);
      this.st.insert.run(position, streamId, revision, id, type, data, metadata, recordedAt, hash, prevHash);
      hashes += hash;
      prevHash = hash;
    }
    this.head = { position, hash: prevHash };
    this.rememberRevision(streamId, revision);
    outcomes.push(WRITTEN, first.position, first.revision, recordedAt, first.prevHash, hashes);
  }

  /**
   * An earlier identical append answers again with what it stored. The same ids with other content
   * (or only some of them) is a DuplicateEventIdError.
   */
  private findRetry(group: WireGroup, append: WireAppend, last: number | null): EventRow[] | undefined {
    if (last === null) return undefined;
    const { streamId, expected, at, count } = append;
    const idAt = (i: number): string => group[at + i * WIRE_EVENT_FIELDS] as string;
    const firstId = idAt(0);
    let after: number;
    if (typeof expected === 'number' || expected === 'no_stream') {
      after = expected === 'no_stream' ? -1 : expected;
      if (last <= after) return undefined;
    } else {
      const found = this.st.findId.get(streamId, firstId) as { revision: number } | undefined;
      if (!found) return undefined;
      after = found.revision - 1;
    }
    const tail = this.st.tailAfter.all(streamId, after, count) as EventRow[];
    if (tail[0]?.id !== firstId) {
      for (let i = 0; i < count; i++) {
        const id = idAt(i);
        if (tail.some((s) => s.id === id)) throw new DuplicateEventIdError(id);
      }
      return undefined;
    }
    for (let i = 0; i < count; i++) {
      const f = at + i * WIRE_EVENT_FIELDS;
      const s = tail[i];
      // Rows hold canonical JSON, so equal content is equal text.
      const same = s && s.id === group[f] && s.type === group[f + 1] && s.data === group[f + 2] && s.metadata === group[f + 3];
      if (!same) throw new DuplicateEventIdError(idAt(i));
    }
    return tail;
  }
}

/**
 * Replaces the append's data and metadata by their canonical JSON (stored as is, and hashed), once:
 * a group written again one append per transaction finds them done. Throws for content that has
 * no JSON form, which fails that append alone.
 */
function encodeInPlace(group: WireGroup, append: WireAppend): void {
  const end = append.at + append.count * WIRE_EVENT_FIELDS;
  for (let f = append.at; f < end; f += WIRE_EVENT_FIELDS) {
    if (typeof group[f + 2] !== 'string') group[f + 2] = canonicalJson(group[f + 2]);
    if (typeof group[f + 3] !== 'string') group[f + 3] = canonicalJson(group[f + 3]);
  }
}

function refused(error: unknown): WriteOutcomes {
  return [REFUSED, error, 0, 0, 0, 0];
}

function parseGroup(group: WireGroup): WireAppend[] {
  const appends: WireAppend[] = [];
  let i = 0;
  while (i < group.length) {
    const streamId = group[i] as string;
    const expected = group[i + 1] as ExpectedRevision;
    const count = group[i + 2] as number;
    const customerId = group[i + 3] as string;
    const key = customerId === '' ? undefined : { customerId, wrappedKey: group[i + 4] as Uint8Array };
    appends.push({ streamId, expected, at: i + WIRE_APPEND_FIELDS, count, key });
    i += WIRE_APPEND_FIELDS + count * WIRE_EVENT_FIELDS;
  }
  return appends;
}
