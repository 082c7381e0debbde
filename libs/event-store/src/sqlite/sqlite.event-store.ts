import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { validateAppend, validateReadAll, validateReadStream } from '../append-validation';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventSubscription,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type SubscribeOptions,
} from '../event-store.port';
import { canonicalJson, chainHashOfCanonical, GENESIS_HASH } from '../hash-chain';
import { checkImport, type StoredEventImport } from '../import-stored';
import type { UpcasterRegistry } from '../serialization';

/**
 * `full`: an append is acknowledged only after its transaction is fsynced (survives power loss).
 * `normal`: acknowledged after the write reached the WAL file; a power cut (not a process crash)
 * may lose the last acknowledged transactions, never leaving one half-written.
 */
export type SqliteDurability = 'full' | 'normal';

export interface SqliteEventStoreOptions {
  /** the database file (created when missing) */
  file: string;
  /** default 'full' */
  durability?: SqliteDurability;
  /** how often a waiting subscription looks for events written by other processes; default 250 ms */
  pollIntervalMs?: number;
  /** the most appends written in one transaction; default 1000 */
  maxGroupSize?: number;
  /** applied to every event read (never to the stored bytes); leave out for audit reads */
  upcasters?: UpcasterRegistry;
}

const SCHEMA_VERSION = 1;
const REVISION_CACHE_SIZE = 100_000;
/** keeps one transaction (and the memory of its results) bounded when callers append big batches */
const MAX_GROUP_EVENTS = 10_000;

interface EventRow {
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

interface PendingAppend {
  streamId: string;
  events: NewEvent[];
  /** canonical JSON of each event's data and metadata: stored as is, and hashed */
  encoded: Array<{ data: string; metadata: string }>;
  expected: ExpectedRevision;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

type Outcome = { ok: true; result: AppendResult } | { ok: false; error: unknown };

interface ChainHead {
  position: number;
  hash: string;
}

/**
 * The embedded event store: one SQLite file in WAL mode.
 *
 * Appends are group-committed: every append requested while the event loop is busy is queued, and
 * the queue is written in ONE transaction (one fsync). Each append is checked on its own against
 * the stream as the transaction sees it (earlier appends of the group included) before any of its
 * events is written, so a conflicting append fails alone. A caller's promise settles only after the transaction holding its events
 * committed. One append is never split across transactions.
 *
 * Idempotency is checked like EventStoreDB does, against the stream and not through a global index
 * on event ids (the costliest thing an append could maintain): with an exact expected revision (or
 * `no_stream`) the events after that revision are compared; with `any`/`stream_exists` the stream
 * is searched for the first event's id. Reusing an id in a different stream is not detected.
 */
export class SqliteEventStore implements EventStore, StoredEventImport {
  private readonly db: Database.Database;
  private readonly pollIntervalMs: number;
  private readonly maxGroupSize: number;
  private readonly upcasters: UpcasterRegistry | undefined;
  private readonly queue: PendingAppend[] = [];
  private flushScheduled = false;
  private head: ChainHead = { position: 0, hash: GENESIS_HASH };
  /** last revision per stream (-1: no stream), trusted only while no other process writes the file */
  private readonly revisions = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private readonly subscriptions = new Set<SqliteSubscription>();
  private closed = false;

  private readonly st: {
    begin: Database.Statement;
    commit: Database.Statement;
    rollback: Database.Statement;
    head: Database.Statement;
    lastRevision: Database.Statement;
    insert: Database.Statement;
    tailAfter: Database.Statement;
    findId: Database.Statement;
    streamForwards: Database.Statement;
    streamBackwards: Database.Statement;
    streamBackwardsFromEnd: Database.Statement;
    all: Database.Statement;
  };

  constructor(options: SqliteEventStoreOptions) {
    const durability = options.durability ?? 'full';
    if (durability !== 'full' && durability !== 'normal') {
      throw new Error(`durability: expected 'full' or 'normal', got ${String(durability)}`);
    }
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.maxGroupSize = options.maxGroupSize ?? 1000;
    this.upcasters = options.upcasters;

    if (options.file !== ':memory:') mkdirSync(dirname(options.file), { recursive: true });
    this.db = new Database(options.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${durability === 'full' ? 'FULL' : 'NORMAL'}`);
    // Another process may hold the write lock for a moment; wait instead of failing at once.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('cache_size = -32000');
    this.migrate();

    const db = this.db;
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
      streamForwards: db.prepare(
        'SELECT * FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision ASC LIMIT ?',
      ),
      streamBackwards: db.prepare(
        'SELECT * FROM events WHERE stream_id = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
      ),
      // Loading the tail of a stream is the hot read of the command path: no bound to compare.
      streamBackwardsFromEnd: db.prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY revision DESC LIMIT ?'),
      all: db.prepare('SELECT * FROM events WHERE position > ? ORDER BY position ASC LIMIT ?'),
    };
    this.loadHead();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`event store schema version ${version} is newer than this build understands (${SCHEMA_VERSION})`);
    }
    if (version === SCHEMA_VERSION) return;
    this.db.exec(`
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

  /** The chain head is read from the last row: at open, and again at each write transaction in case another process appended. */
  private loadHead(): void {
    const row = this.st.head.get() as ChainHead | undefined;
    this.head = row ? { position: row.position, hash: row.hash } : { position: 0, hash: GENESIS_HASH };
  }

  appendToStream(streamId: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      if (this.closed) throw new Error('the event store is closed');
      const expected = validateAppend(streamId, events, options);
      const encoded = events.map((e) => ({ data: canonicalJson(e.data), metadata: canonicalJson(e.metadata) }));
      this.queue.push({ streamId, events, encoded, expected, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate (not a microtask): callers that continue after an earlier commit get to queue first.
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0) return;
    const group = this.takeGroup();
    if (this.queue.length > 0) this.scheduleFlush();

    let outcomes: Outcome[];
    try {
      outcomes = this.writeGroup(group);
    } catch (error) {
      for (const p of group) p.reject(error);
      return;
    }
    let wrote = false;
    group.forEach((p, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) {
        wrote ||= !outcome.result.duplicate;
        p.resolve(outcome.result);
      } else {
        p.reject(outcome.error);
      }
    });
    if (wrote) this.notify();
  }

  /**
   * The whole group in one transaction. The checks (revision, retried ids) come before any write
   * of an append, so a refused append is an outcome and writes nothing. Anything else failing
   * (the disk, a constraint) undoes the transaction; the group is then written one append per
   * transaction, so the failure stays with the append that caused it.
   */
  /** Up to `maxGroupSize` appends and about MAX_GROUP_EVENTS events; always at least one append. */
  private takeGroup(): PendingAppend[] {
    let count = 0;
    let events = 0;
    while (count < this.queue.length && count < this.maxGroupSize) {
      const next = this.queue[count]!;
      if (count > 0 && events + next.events.length > MAX_GROUP_EVENTS) break;
      events += next.events.length;
      count += 1;
    }
    return this.queue.splice(0, count);
  }

  private writeGroup(group: PendingAppend[]): Outcome[] {
    try {
      return this.writeTransaction(group);
    } catch (error) {
      if (group.length === 1) return [{ ok: false, error }];
      return group.map((p) => {
        try {
          return this.writeTransaction([p])[0]!;
        } catch (alone) {
          return { ok: false, error: alone };
        }
      });
    }
  }

  private writeTransaction(group: PendingAppend[]): Outcome[] {
    const outcomes: Outcome[] = [];
    this.st.begin.run();
    try {
      this.refreshHead();
      const recordedAt = new Date().toISOString();
      for (const p of group) {
        try {
          outcomes.push({ ok: true, result: this.writeOne(p, recordedAt) });
        } catch (error) {
          if (!(error instanceof WrongExpectedRevisionError || error instanceof DuplicateEventIdError)) throw error;
          outcomes.push({ ok: false, error });
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
   * Inside the write lock: if the last row is not the head this instance wrote, another process
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

  private writeOne(p: PendingAppend, recordedAt: string): AppendResult {
    const { streamId, events, encoded, expected } = p;
    const last = this.lastRevision(streamId);

    const retried = this.findRetry(p, last);
    if (retried) return retried;

    const allowed =
      expected === 'any' ||
      (expected === 'no_stream' && last === null) ||
      (expected === 'stream_exists' && last !== null) ||
      expected === last;
    if (!allowed) throw new WrongExpectedRevisionError(streamId, expected, last ?? 'no_stream');

    const stored: StoredEvent[] = [];
    let revision = last ?? -1;
    events.forEach((e, i) => {
      const { data, metadata } = encoded[i]!;
      revision += 1;
      const event: StoredEvent = {
        id: e.id,
        type: e.type,
        data: e.data,
        metadata: e.metadata,
        streamId,
        revision,
        position: this.head.position + 1,
        recordedAt,
        hash: '',
        prevHash: this.head.hash,
      };
      event.hash = chainHashOfCanonical(event.prevHash, event, data, metadata);
      this.st.insert.run(
        event.position,
        streamId,
        revision,
        e.id,
        e.type,
        data,
        metadata,
        recordedAt,
        event.hash,
        event.prevHash,
      );
      this.head = { position: event.position, hash: event.hash };
      stored.push(event);
    });
    this.rememberRevision(streamId, revision);
    return { nextExpectedRevision: revision, position: this.head.position, events: stored, duplicate: false };
  }

  /**
   * An earlier identical append answers again with what it stored. The same ids with other content
   * (or only some of them) is a DuplicateEventIdError.
   */
  private findRetry(p: PendingAppend, last: number | null): AppendResult | undefined {
    if (last === null) return undefined;
    const { streamId, events, encoded, expected } = p;
    const first = events[0]!;
    let after: number;
    if (typeof expected === 'number' || expected === 'no_stream') {
      after = expected === 'no_stream' ? -1 : expected;
      if (last <= after) return undefined;
    } else {
      const found = this.st.findId.get(streamId, first.id) as { revision: number } | undefined;
      if (!found) return undefined;
      after = found.revision - 1;
    }
    const tail = this.st.tailAfter.all(streamId, after, events.length) as EventRow[];
    if (tail[0]?.id !== first.id) {
      const reused = events.find((e) => tail.some((s) => s.id === e.id));
      if (reused) throw new DuplicateEventIdError(reused.id);
      return undefined;
    }
    events.forEach((e, i) => {
      const s = tail[i];
      if (!s || s.id !== e.id || !sameContent(s, e, encoded[i]!)) throw new DuplicateEventIdError(e.id);
    });
    const lastStored = tail[tail.length - 1]!;
    // The revision and position of the retried append, as the first answer gave them.
    return {
      nextExpectedRevision: lastStored.revision,
      position: lastStored.position,
      events: tail.map(toStoredEvent),
      duplicate: true,
    };
  }

  /**
   * Events recorded elsewhere, verbatim, in one transaction (see StoredEventImport). Synchronous
   * between BEGIN and COMMIT, so no group commit of this instance can interleave; other processes
   * wait on the file's write lock.
   */
  async importStored(events: readonly StoredEvent[]): Promise<void> {
    this.assertOpen();
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
    this.notify();
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    validateReadStream(streamId, options);
    const limit = options?.maxCount ?? -1;
    const from = options?.fromRevision;
    const rows =
      options?.direction === 'backwards'
        ? from === undefined
          ? this.st.streamBackwardsFromEnd.all(streamId, limit)
          : this.st.streamBackwards.all(streamId, from, limit)
        : this.st.streamForwards.all(streamId, from ?? 0, limit);
    return this.present(rows as EventRow[]);
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    validateReadAll(options);
    const rows = this.st.all.all(options?.afterPosition ?? 0, options?.maxCount ?? -1) as EventRow[];
    return this.present(rows);
  }

  subscribeToAll(options?: SubscribeOptions): EventSubscription {
    this.assertOpen();
    const subscription = new SqliteSubscription(this, options ?? {}, this.pollIntervalMs, (s) =>
      this.subscriptions.delete(s),
    );
    this.subscriptions.add(subscription);
    return subscription;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    const row = this.st.head.get() as ChainHead | undefined;
    return row?.position ?? 0;
  }

  /** Resolves at the next append through this instance, after `timeoutMs`, or when `cancel` is called. */
  waitForAppend(timeoutMs: number): { done: Promise<void>; cancel(): void } {
    let cancel: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(finish, timeoutMs);
      const waiters = this.waiters;
      function finish(): void {
        clearTimeout(timer);
        waiters.delete(finish);
        resolve();
      }
      waiters.add(finish);
      cancel = finish;
    });
    return { done, cancel };
  }

  private notify(): void {
    for (const wake of [...this.waiters]) wake();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted are written before the file closes.
    while (this.queue.length > 0) this.flush();
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.notify();
    this.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the event store is closed');
  }

  private present(rows: EventRow[]): StoredEvent[] {
    const events = rows.map(toStoredEvent);
    const upcasters = this.upcasters;
    return upcasters && upcasters.size > 0 ? events.map((e) => upcasters.upcast(e)) : events;
  }
}

/**
 * Pull-based: the next batch is read (through the store's `readAll`) only when the consumer has
 * taken every event of the previous one, so at most one batch is held in memory.
 */
class SqliteSubscription implements EventSubscription, AsyncIterator<StoredEvent> {
  private checkpoint: number;
  private readonly batchSize: number;
  private readonly eventTypes: ReadonlySet<string> | undefined;
  private buffer: StoredEvent[] = [];
  private closed = false;
  private cancelWait: (() => void) | undefined;

  constructor(
    private readonly store: SqliteEventStore,
    options: SubscribeOptions,
    private readonly pollIntervalMs: number,
    private readonly onClose: (s: SqliteSubscription) => void,
  ) {
    validateReadAll({ afterPosition: options.afterPosition, maxCount: options.batchSize });
    this.checkpoint = options.afterPosition ?? 0;
    this.batchSize = Math.max(1, options.batchSize ?? 500);
    this.eventTypes = options.eventTypes;
  }

  [Symbol.asyncIterator](): AsyncIterator<StoredEvent> {
    return this;
  }

  async next(): Promise<IteratorResult<StoredEvent>> {
    for (;;) {
      if (this.closed) return { done: true, value: undefined };
      const buffered = this.buffer.shift();
      if (buffered) return { done: false, value: buffered };

      const batch = await this.store.readAll({ afterPosition: this.checkpoint, maxCount: this.batchSize });
      if (this.closed) return { done: true, value: undefined };
      const lastEvent = batch[batch.length - 1];
      if (!lastEvent) {
        const wait = this.store.waitForAppend(this.pollIntervalMs);
        this.cancelWait = wait.cancel;
        await wait.done;
        this.cancelWait = undefined;
        continue;
      }
      // Skipped types still advance the checkpoint, so a quiet filter does not re-read the log.
      this.checkpoint = lastEvent.position;
      const types = this.eventTypes;
      this.buffer = types ? batch.filter((e) => types.has(e.type)) : batch;
    }
  }

  async return(): Promise<IteratorResult<StoredEvent>> {
    await this.close();
    return { done: true, value: undefined };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.buffer = [];
    this.cancelWait?.();
    this.onClose(this);
  }
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    type: row.type,
    data: JSON.parse(row.data) as StoredEvent['data'],
    metadata: JSON.parse(row.metadata) as StoredEvent['metadata'],
    streamId: row.stream_id,
    revision: row.revision,
    position: row.position,
    recordedAt: row.recorded_at,
    hash: row.hash,
    prevHash: row.prev_hash,
  };
}

/** Rows hold canonical JSON, so equal content is equal text. */
function sameContent(row: EventRow, event: NewEvent, encoded: { data: string; metadata: string }): boolean {
  return row.type === event.type && row.data === encoded.data && row.metadata === encoded.metadata;
}

/**
 * The embedded store's settings from the environment, for the apps:
 * `CLIENTELE_SQLITE_FILE` (default `data/clientele.db`), `CLIENTELE_SQLITE_DURABILITY`
 * (`full` | `normal`, default `full`), `CLIENTELE_SQLITE_POLL_MS` (default 250).
 */
export function sqliteEventStoreOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): SqliteEventStoreOptions {
  const durability = env.CLIENTELE_SQLITE_DURABILITY ?? 'full';
  if (durability !== 'full' && durability !== 'normal') {
    throw new Error(`CLIENTELE_SQLITE_DURABILITY: expected 'full' or 'normal', got '${durability}'`);
  }
  const poll = env.CLIENTELE_SQLITE_POLL_MS ?? '250';
  const pollIntervalMs = Number(poll);
  if (!/^\d+$/.test(poll) || pollIntervalMs < 1) {
    throw new Error(`CLIENTELE_SQLITE_POLL_MS: expected a whole number of milliseconds ≥ 1, got '${poll}'`);
  }
  return { file: env.CLIENTELE_SQLITE_FILE || 'data/clientele.db', durability, pollIntervalMs };
}
