import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type Database from 'better-sqlite3';
import { validateAppend, validateReadAll, validateReadStream } from '../append-validation';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventSubscription,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  StoredEvent,
  SubscribeOptions,
} from '../event-store.port';
import { canonicalJson } from '../hash-chain';
import type { StoredEventImport } from '../import-stored';
import type { CustomerKeyCarrier, NewKeyRow, StoredKeyRow } from '../personal-data/customer-keys';
import { pagesThroughReadAll, type LogPages, type LogReadAhead, type ReadAheadOptions } from '../read-ahead';
import type { UpcasterRegistry } from '../serialization';
import { openSqliteReadOnly, type ReadOnlySqlite } from './sqlite-read-only';
import {
  assertReadableStore,
  openStoreFile,
  SqliteWriter,
  type EventRow,
  type SqliteDurability,
  type WireGroup,
  OUTCOME_FIELDS,
  RETRIED,
  WRITTEN,
  type WriteOutcomes,
} from './sqlite-writer';
import { fromWireError, type WireError } from './sqlite-writer.protocol';
import { EVENT_COLUMNS, fromColumns, SqliteReadAhead, storedJson, type EventColumns } from './sqlite-read-ahead';
import { WriterThread, type WriterAnswer } from './sqlite-writer.thread';

export type { SqliteDurability } from './sqlite-writer';

/**
 * `thread`: a worker thread owns the write connection (inserts, chain hashes, COMMIT and its
 * fsync), so the event loop keeps serving callers while a group is synced, and the next group is
 * formed meanwhile. `inline`: the same writer on the event loop, sharing one connection with the
 * reads; the only choice for `:memory:`, which another thread cannot open.
 */
export type SqliteWriterMode = 'thread' | 'inline';

export interface SqliteEventStoreOptions {
  /** the database file (created when missing) */
  file: string;
  /** default 'full' */
  durability?: SqliteDurability;
  /** default 'thread' for a file, 'inline' for ':memory:' */
  writer?: SqliteWriterMode;
  /** how often a waiting subscription looks for events written by other processes; default 250 ms */
  pollIntervalMs?: number;
  /** the most appends written in one transaction; default 1000 */
  maxGroupSize?: number;
  /** applied to every event read (never to the stored bytes); leave out for audit reads */
  upcasters?: UpcasterRegistry;
  /**
   * Read only, for audits of a file that must stay as it was: opened with openSqliteReadOnly (nothing
   * written to the file or its folder, no migration; a file written by another process while it is read
   * without locks fails the read), and every write refused. Default false.
   */
  readOnly?: boolean;
}

/**
 * Requests the writer thread may hold at once: while it commits one group, the next one waits in
 * its message queue, so it starts that group as soon as the commit returns instead of waiting for
 * the event loop to take the answer (which it does only after the microtasks of the callers it is
 * resuming, often a whole cohort's next commands).
 */
const WRITER_DEPTH = 2;

/** keeps one transaction (and the memory of its results) bounded when callers append big batches */
const MAX_GROUP_EVENTS = 10_000;

interface PendingAppend {
  kind: 'append';
  streamId: string;
  events: NewEvent[];
  expected: ExpectedRevision;
  /** a new customer key written in the same transaction (see CustomerKeyCarrier) */
  customerKey: NewKeyRow | undefined;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/**
 * A request that goes to the writer alone, in its turn (an import, customer keys): `send` hands it
 * to the link, whose answer sends the next request (next), settles the caller, then settled().
 */
interface PendingRequest {
  kind: 'request';
  send(): void;
}

type Pending = PendingAppend | PendingRequest;

/** The write side as the store drives it: inline, or the writer thread. Answers come in request order. */
interface WriteLink {
  /** true when the answer comes before the request returns (the inline writer) */
  readonly inline: boolean;
  /** `writeMs`: the writer thread's time for the group */
  writeGroup(group: WireGroup, done: (outcomes: WriteOutcomes | Error, writeMs?: number) => void): void;
  importStored(events: readonly StoredEvent[], done: (error?: unknown) => void): void;
  storeCustomerKeys(rows: readonly NewKeyRow[], done: (error: unknown, stored?: StoredKeyRow[]) => void): void;
  close(): Promise<void>;
}

/**
 * The embedded event store: one SQLite file in WAL mode.
 *
 * Appends are group-committed: every append requested while the event loop is busy is queued, and
 * the queue is written in ONE transaction (one fsync) by the writer (see SqliteWriter for the write
 * rules). A caller's promise settles only after the transaction holding its events committed.
 * Requests reach the writer in the order they were made (appends and imports alike), so appends
 * are written in that order.
 *
 * With the writer thread, up to two groups are in the writer at a time (WRITER_DEPTH): while one is
 * being synced, the callers answered by the previous group go on and queue the next one, which is
 * sent as soon as it is formed, so it waits in the thread for the commit rather than for the event
 * loop to take the commit's answer. With many callers two cohorts alternate, each group written
 * while the other is being prepared. Reads (streams, the log, subscriptions,
 * the head) use the event loop's own connection: WAL lets them run beside the writer, and a commit
 * becomes visible to them only once it is synced at `full` durability.
 */
export class SqliteEventStore implements EventStore, StoredEventImport, LogReadAhead, CustomerKeyCarrier {
  private readonly db: Database.Database;
  private readonly file: string;
  /** set when opened with `readOnly` */
  private readonly readOnly: ReadOnlySqlite | undefined;
  /** read-aheads not yet closed: closing the store ends their threads */
  private readonly readAheads = new Set<LogPages>();
  private readonly link: WriteLink;
  /** the writer thread, once started (kept for the specs that make it fail) */
  private writerThread: WriterThread | undefined;
  private readonly pollIntervalMs: number;
  private readonly maxGroupSize: number;
  private readonly upcasters: UpcasterRegistry | undefined;
  private readonly queue: Pending[] = [];
  private flushScheduled = false;
  /** requests sent to the writer and not yet answered */
  private inFlight = 0;
  /** how long the writer thread takes to commit a group once sent (moving average, ms) */
  private writeMs = 1;
  /** when the first append of the queue was requested while the writer thread was idle */
  private burstStart = 0;
  private drained: (() => void) | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly subscriptions = new Set<SqliteSubscription>();
  private closing = false;
  private closed = false;

  private readonly st: {
    head: Database.Statement;
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
    const memory = options.file === ':memory:';
    const mode = options.writer ?? (memory ? 'inline' : 'thread');
    if (mode !== 'thread' && mode !== 'inline') {
      throw new Error(`writer: expected 'thread' or 'inline', got ${String(mode)}`);
    }
    if (mode === 'thread' && memory) throw new Error("writer: a ':memory:' database cannot be written from a thread, use 'inline'");
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.maxGroupSize = options.maxGroupSize ?? 1000;
    this.upcasters = options.upcasters;
    this.file = options.file;

    if (options.readOnly) {
      if (memory) throw new Error("readOnly: a ':memory:' database has nothing to read");
      this.readOnly = openSqliteReadOnly(options.file);
      this.db = this.readOnly.db;
      try {
        assertReadableStore(this.db, options.file);
      } catch (error) {
        this.readOnly.close();
        throw error;
      }
      this.link = readOnlyLink(options.file);
    } else {
      if (!memory) mkdirSync(dirname(options.file), { recursive: true });
      // Opened (and migrated) here, synchronously: the store can be read as soon as it is constructed.
      this.db = openStoreFile(options.file, durability);
      try {
        // Started at the first write: a store opened to read (verify, export, replay) never starts it.
        const startThread = (): WriterThread => (this.writerThread ??= new WriterThread(options.file, durability));
        this.link = mode === 'thread' ? threadLink(startThread, () => this.writerThread) : inlineLink(new SqliteWriter(this.db));
      } catch (error) {
        this.db.close();
        throw error;
      }
    }

    const db = this.db;
    this.st = {
      head: db.prepare('SELECT position FROM events ORDER BY position DESC LIMIT 1'),
      streamForwards: db.prepare(
        'SELECT * FROM events WHERE stream_id = ? AND revision >= ? ORDER BY revision ASC LIMIT ?',
      ),
      streamBackwards: db.prepare(
        'SELECT * FROM events WHERE stream_id = ? AND revision <= ? ORDER BY revision DESC LIMIT ?',
      ),
      // Loading the tail of a stream is the hot read of the command path: no bound to compare.
      streamBackwardsFromEnd: db.prepare('SELECT * FROM events WHERE stream_id = ? ORDER BY revision DESC LIMIT ?'),
      // The global read (catch-up, rebuilds, replays) takes rows as arrays: better-sqlite3 then
      // builds no object with ten named properties per row, which was half the cost of a page.
      all: db.prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position ASC LIMIT ?`).raw(true),
    };
  }

  appendToStream(streamId: string, events: NewEvent[], options?: AppendOptions): Promise<AppendResult> {
    return this.append(streamId, events, options, undefined);
  }

  /** See CustomerKeyCarrier: the key goes in the transaction of the group that writes these events. */
  appendWithCustomerKey(streamId: string, events: NewEvent[], options: AppendOptions | undefined, key: NewKeyRow): Promise<AppendResult> {
    return this.append(streamId, events, options, key);
  }

  private append(streamId: string, events: NewEvent[], options: AppendOptions | undefined, customerKey: NewKeyRow | undefined): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.assertAccepting();
      const expected = validateAppend(streamId, events, options);
      this.queue.push({ kind: 'append', streamId, events, expected, customerKey, resolve, reject });
      if (!this.link.inline && this.inFlight === 0) {
        // The writer thread is idle while callers keep appending: once preparing the queue has
        // taken as long as the writer takes for a group, the queue goes now, and the rest of the
        // burst becomes the next group, prepared while this one is written (see the class).
        const now = performance.now();
        if (this.queue.length === 1) this.burstStart = now;
        else if (now - this.burstStart >= this.writeMs) {
          this.flush();
          return;
        }
      }
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate (not a microtask): callers that continue after an earlier commit get to queue first.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Sends the next request, unless the writer already holds as many as it may (see WRITER_DEPTH). */
  private flush(): void {
    if (this.inFlight >= (this.link.inline ? 1 : WRITER_DEPTH) || this.queue.length === 0) return;
    const first = this.queue[0]!;
    this.inFlight += 1;
    if (first.kind === 'request') {
      this.queue.shift();
      first.send();
      return;
    }
    const group = this.takeGroup();
    // A thread that is writing another group is the busier side: the canonical JSON is made here.
    // An idle thread makes it itself while the event loop goes on, as the inline writer does.
    if (!this.link.inline && this.inFlight > 1) {
      this.sendEncoded(group);
      return;
    }
    const wire: WireGroup = [];
    for (const p of group) {
      pushAppendFields(wire, p);
      for (const e of p.events) wire.push(e.id, e.type, e.data, e.metadata);
    }
    try {
      this.sendGroup(group, wire);
    } catch {
      // content the structured clone refuses (a function): encoded here, an append without a JSON form failing alone
      this.sendEncoded(group);
    }
  }

  private sendGroup(group: PendingAppend[], wire: WireGroup): void {
    this.link.writeGroup(wire, (outcomes, writeMs) => {
      if (writeMs !== undefined) this.writeMs = 0.8 * this.writeMs + 0.2 * writeMs;
      this.next();
      this.answer(group, outcomes);
      this.settled();
    });
  }

  /**
   * The group for the writer thread, its data and metadata as canonical JSON made here: a thread
   * busy with another group then only hashes and inserts strings, and a group of strings is
   * cheaper for it to receive than the objects (see docs/perf.md). An append whose content has no
   * JSON form fails alone, as with the inline writer.
   */
  private sendEncoded(group: PendingAppend[]): void {
    const sendable: PendingAppend[] = [];
    const wire: WireGroup = [];
    for (const p of group) {
      const start = wire.length;
      try {
        pushAppendFields(wire, p);
        for (const e of p.events) wire.push(e.id, e.type, canonicalJson(e.data), canonicalJson(e.metadata));
        sendable.push(p);
      } catch (error) {
        wire.length = start;
        p.reject(error);
      }
    }
    try {
      if (sendable.length === 0) throw new Error('nothing to send');
      this.sendGroup(sendable, wire);
    } catch (error) {
      for (const p of sendable) p.reject(error);
      this.next();
      this.settled();
    }
  }

  /**
   * A request was answered. The writer thread gets the next group at once, before the callers of
   * this one are resumed (they will form the group after it). The inline writer writes it at the
   * next turn of the event loop, as the thread would have had to wait for it.
   */
  private next(): void {
    this.inFlight -= 1;
    if (this.queue.length === 0) return;
    if (this.link.inline) this.scheduleFlush();
    else this.flush();
  }

  /** Up to `maxGroupSize` appends and about MAX_GROUP_EVENTS events; always at least one append, never an import. */
  private takeGroup(): PendingAppend[] {
    let count = 0;
    let events = 0;
    while (count < this.queue.length && count < this.maxGroupSize) {
      const next = this.queue[count]!;
      if (next.kind !== 'append') break;
      if (count > 0 && events + next.events.length > MAX_GROUP_EVENTS) break;
      events += next.events.length;
      count += 1;
    }
    return this.queue.splice(0, count) as PendingAppend[];
  }

  private answer(group: PendingAppend[], outcomes: WriteOutcomes | Error): void {
    if (outcomes instanceof Error) {
      for (const p of group) p.reject(outcomes);
      return;
    }
    let wrote = false;
    group.forEach((p, i) => {
      const at = i * OUTCOME_FIELDS;
      const kind = outcomes[at];
      if (kind === WRITTEN) {
        wrote = true;
        p.resolve(
          storedResult(p, outcomes[at + 1] as number, outcomes[at + 2] as number, outcomes[at + 3] as string, outcomes[at + 4] as string, outcomes[at + 5] as string),
        );
      } else if (kind === RETRIED) {
        const events = (outcomes[at + 1] as EventRow[]).map(toStoredEvent);
        const last = events[events.length - 1]!;
        // The revision and position of the retried append, as the first answer gave them.
        p.resolve({ nextExpectedRevision: last.revision, position: last.position, events, duplicate: true });
      } else {
        const error = outcomes[at + 1];
        p.reject(isWireError(error) ? fromWireError(error) : error);
      }
    });
    if (wrote) this.notify();
  }

  private settled(): void {
    if (this.inFlight === 0 && this.queue.length === 0) this.drained?.();
  }

  /**
   * Events recorded elsewhere, verbatim, in one transaction (see StoredEventImport). The writer
   * takes it in its turn among the appends requested before and after; other processes wait on the
   * file's write lock.
   */
  importStored(events: readonly StoredEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.assertAccepting();
      if (events.length === 0) {
        resolve();
        return;
      }
      this.request(() =>
        this.link.importStored(events, (error) => {
          this.next();
          if (error === undefined) {
            resolve();
            this.notify();
          } else {
            reject(error);
          }
          this.settled();
        }),
      );
    });
  }

  /**
   * Customers' new wrapped data keys, written by the writer in its turn (one transaction; see
   * SqliteWriter.storeCustomerKeys), answering each customer's key row as stored. The customer key
   * store sends a tick's new keys here, so creating them never waits for the file's write lock on
   * the event loop, and a key is synced before any event encrypted with it is appended.
   */
  storeCustomerKeys(rows: readonly NewKeyRow[]): Promise<StoredKeyRow[]> {
    return new Promise<StoredKeyRow[]>((resolve, reject) => {
      this.assertAccepting();
      if (rows.length === 0) {
        resolve([]);
        return;
      }
      this.request(() =>
        this.link.storeCustomerKeys(rows, (error, stored) => {
          this.next();
          if (error === undefined && stored) resolve(stored);
          else reject(error ?? new Error('the SQLite writer stored no customer keys'));
          this.settled();
        }),
      );
    });
  }

  /** Queues a request for the writer alone, sent in its turn (see PendingRequest). */
  private request(send: () => void): void {
    this.queue.push({ kind: 'request', send });
    this.scheduleFlush();
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
    this.readOnly?.assertUnchanged();
    return this.present((rows as EventRow[]).map(toStoredEvent));
  }

  async readAll(options?: ReadAllOptions): Promise<StoredEvent[]> {
    this.assertOpen();
    validateReadAll(options);
    const rows = this.st.all.all(options?.afterPosition ?? 0, options?.maxCount ?? -1) as EventColumns[];
    this.readOnly?.assertUnchanged();
    return this.present(rows.map((row) => fromColumns(row)));
  }

  /**
   * The pages of `(afterPosition, upTo]` read on a worker thread through its own read-only
   * connection while the caller folds the previous ones (see SqliteReadAhead); upcasters apply on
   * the event loop as in `readAll`. A `:memory:` store, which no other thread can open, reads them
   * through `readAll`.
   */
  readPagesAhead(options: ReadAheadOptions): LogPages {
    this.assertOpen();
    // the read-ahead thread opens the file its own way; a read-only store reads through readAll
    const pages =
      this.file === ':memory:' || this.readOnly
        ? pagesThroughReadAll(this, options)
        : new SqliteReadAhead(this.file, options, (events) => this.present(events));
    this.readAheads.add(pages);
    const untrack = () => this.readAheads.delete(pages);
    return {
      async *[Symbol.asyncIterator]() {
        try {
          yield* pages;
        } finally {
          untrack();
        }
      },
      close: () => {
        untrack();
        return pages.close();
      },
    };
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
    const row = this.st.head.get() as { position: number } | undefined;
    this.readOnly?.assertUnchanged();
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

  /** Writes every append already accepted, then closes. Appends requested meanwhile are refused. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.link.inline) {
      while (this.queue.length > 0) this.flush();
    } else if (this.inFlight > 0 || this.queue.length > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      this.flush();
      await drained;
    }
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await Promise.all([...this.readAheads].map((r) => r.close()));
    this.notify();
    await this.link.close();
    this.db.close();
  }

  private assertAccepting(): void {
    if (this.closing) throw new Error('the event store is closed');
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the event store is closed');
  }

  private present(events: StoredEvent[]): StoredEvent[] {
    const upcasters = this.upcasters;
    return upcasters && upcasters.size > 0 ? events.map((e) => upcasters.upcast(e)) : events;
  }
}

function inlineLink(writer: SqliteWriter): WriteLink {
  return {
    inline: true,
    writeGroup: (group, done) => done(writer.writeGroup(group)),
    importStored: (events, done) => {
      try {
        writer.importStored(events);
      } catch (error) {
        done(error);
        return;
      }
      done();
    },
    storeCustomerKeys: (rows, done) => {
      let stored: StoredKeyRow[];
      try {
        stored = writer.storeCustomerKeys(rows);
      } catch (error) {
        done(error);
        return;
      }
      done(undefined, stored);
    },
    // The connection is the store's read connection too: the store closes it.
    close: async () => undefined,
  };
}

/** The write side of a store opened to read only: every write refused, nothing started. */
function readOnlyLink(file: string): WriteLink {
  const refused = (): Error => new Error(`the event store ${file} was opened read-only: nothing can be written to it`);
  return {
    inline: true,
    writeGroup: (_group, done) => done(refused()),
    importStored: (_events, done) => done(refused()),
    storeCustomerKeys: (_rows, done) => done(refused()),
    close: async () => undefined,
  };
}

function threadLink(thread: () => WriterThread, started: () => WriterThread | undefined): WriteLink {
  const failed = (answer: WriterAnswer): Error | undefined => (answer.t === 'failed' ? answer.error : undefined);
  return {
    inline: false,
    writeGroup: (group, done) =>
      thread().send({ t: 'group', group, sentAt: performance.timeOrigin + performance.now() }, (answer) =>
        answer.t === 'group' ? done(answer.outcomes, answer.ms) : done(failed(answer) ?? unexpected(answer)),
      ),
    importStored: (events, done) =>
      thread().send({ t: 'import', events }, (answer) => {
        if (answer.t === 'import') done(answer.error ? fromWireError(answer.error) : undefined);
        else done(failed(answer) ?? unexpected(answer));
      }),
    storeCustomerKeys: (rows, done) =>
      thread().send({ t: 'keys', rows }, (answer) => {
        if (answer.t === 'keys') done(answer.error ? fromWireError(answer.error) : undefined, answer.stored);
        else done(failed(answer) ?? unexpected(answer));
      }),
    close: async () => started()?.close(),
  };
}

/** An append's fields before its events in a WireGroup: stream, expected revision, count, the key it carries ('' and 0 for none). */
function pushAppendFields(wire: WireGroup, p: PendingAppend): void {
  wire.push(p.streamId, p.expected, p.events.length, p.customerKey?.customerId ?? '', p.customerKey?.wrappedKey ?? 0);
}

function unexpected(answer: WriterAnswer): Error {
  return new Error(`the SQLite writer thread answered out of turn (${answer.t})`);
}

function isWireError(error: unknown): error is WireError {
  return typeof error === 'object' && error !== null && !(error instanceof Error) && 'kind' in error;
}

/** The append's events as stored, from what the writer assigned: positions, revisions, record time, hashes. */
function storedResult(
  p: PendingAppend,
  position: number,
  revision: number,
  recordedAt: string,
  prevHash: string,
  hashes: string,
): AppendResult {
  const count = p.events.length;
  const events: StoredEvent[] = new Array<StoredEvent>(count);
  for (let i = 0; i < count; i++) {
    const e = p.events[i]!;
    const hash = hashes.slice(i * 64, i * 64 + 64);
    events[i] = {
      id: e.id,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      streamId: p.streamId,
      revision: revision + i,
      position: position + i,
      recordedAt,
      hash,
      prevHash,
    };
    prevHash = hash;
  }
  return { nextExpectedRevision: revision + count - 1, position: position + count - 1, events, duplicate: false };
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
    data: storedJson(row.data, 'data', row.position, row.id) as StoredEvent['data'],
    metadata: storedJson(row.metadata, 'metadata', row.position, row.id) as StoredEvent['metadata'],
    streamId: row.stream_id,
    revision: row.revision,
    position: row.position,
    recordedAt: row.recorded_at,
    hash: row.hash,
    prevHash: row.prev_hash,
  };
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
