import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { Client, Pool, types as pgTypes, type PoolClient, type PoolConfig, type QueryConfig } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type AppendOptions,
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type EventSubscription,
  type ExpectedRevision,
  type JsonObject,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StoredEvent,
  type SubscribeOptions,
} from '../event-store.port';
import { classifyReplay, revisionMatches } from '../append-rules';
import { validateAppend, validateReadAll, validateReadStream } from '../append-validation';
import { canonicalJson, chainEnvelopeAroundPosition, chainHashOfCanonical, GENESIS_HASH } from '../hash-chain';
import { checkImport, ImportRefusedError, type ImportRow, type StoredEventImport } from '../import-stored';
import { CustomerKeyTakenError, type CustomerKeyCarrier, type NewKeyRow } from '../personal-data/customer-keys';
import { LogChangeSignal, PolledSubscription } from '../polled-subscription';
import { jsonbText, payloadAsHashed } from '../stored-payload';
import type { ChainBreak } from '../verify-chain';
import { assertMigrated, assertSchemaName, migrate } from './postgres.migrations';
import { READ_ONLY_SESSION } from './read-only-session';

export interface PostgresEventStoreOptions {
  /** e.g. postgres://user@host:5432/db */
  connectionString: string;
  /** every table lives in this schema; created on start */
  schema: string;
  /** connections in the pool (appends use one at a time, reads the rest); default 8 */
  poolSize?: number;
  /**
   * Open to read only, as an auditor does: no migration runs (the schema must hold every migration
   * this build reads with) and every transaction of the pool is read-only, so a role that may only
   * SELECT can verify, and nothing is written whatever is called.
   */
  readOnly?: boolean;
  /** most events one group commit carries; default 10,000 */
  maxEventsPerCommit?: number;
  /**
   * Most rows a group commit inserts with one statement; a larger group is written inside one
   * transaction by one COPY, fed this many rows at a time, each piece hashed while the server reads
   * the one before; default 100 (COPY costs the server about half of what the INSERT does per row, and
   * smaller pieces shorten the stretches at the start and the end where only one side works)
   */
  rowsPerStatement?: number;
  /** how often a waiting subscription reads even without a notification; default 1,000 ms */
  pollIntervalMs?: number;
  /** injectable record clock (tests); default: the system clock */
  now?: () => Date;
  /**
   * Called in every append attempt after the log state was read and before rows are written
   * (inside the transaction on the locked path). Tests use it to widen race windows; leave it
   * unset in production.
   */
  beforeWrite?: () => Promise<void>;
  /**
   * When a group commit has the server number and hash its rows (append_server_sealed, migration
   * 5): `when-contended` (default) for small groups during a second after another process moved
   * the head under this store's guess; `always` for every small group (tests); `never`.
   */
  sealOnServer?: 'when-contended' | 'always' | 'never';
}

function sealOnServerSetting(options: PostgresEventStoreOptions): 'when-contended' | 'always' | 'never' {
  const setting = options.sealOnServer ?? 'when-contended';
  if (setting !== 'when-contended' && setting !== 'always' && setting !== 'never') {
    throw new Error(`sealOnServer: expected 'when-contended', 'always' or 'never', got ${JSON.stringify(setting)}`);
  }
  return setting;
}

/** How long a store keeps having the server seal its groups after it found another process writing. */
const CONTENTION_MEMORY_MS = 1_000;

/**
 * The PostgreSQL event store.
 *
 * Gap safety. Readers page the log by position ("everything after my checkpoint"), so a position
 * must never become visible before every lower position is. Sequences do not give that: two
 * transactions can take positions 7 and 8 and commit 8 first, and a reader at that moment would
 * move its checkpoint past 7 for ever. Here every append transaction first takes a transaction-
 * scoped advisory lock (one per schema), then reads the head of the log, assigns the next positions
 * and chain hashes, inserts, and commits; the lock is released only after the commit is visible.
 * So positions commit strictly in order, across any number of processes, and a reader can trust
 * that what it sees is a prefix of the log. The global hash chain needs the predecessor's hash at
 * append time anyway, which demands this serialisation. A rolled-back append leaves no hole either:
 * positions come from the committed head, not from a sequence.
 *
 * Throughput under that lock comes from group commit: concurrent appends in one process queue up
 * and the next transaction carries all of them (each validated on its own, so one append's wrong
 * revision does not fail its neighbours). While one batch commits, the next one gathers. A batch
 * takes the first of three paths that works:
 * 1. one round trip: decide from what this store remembers (the head it last wrote or read, the
 *    stream revisions it last saw, or for an unseen stream the revision the caller expects), then
 *    one call that checks all of that under the lock before it writes (append_checked);
 * 2. two round trips: read the log state without the lock, decide, and the same checked call;
 * 3. decide while holding the lock, when another process keeps getting in between.
 * The memory is only ever a guess that the server checks, so several processes on one schema stay
 * safe; a wrong guess costs one round trip. Every path writes under the lock, so the ordering
 * argument above holds for all of them. A group larger than rowsPerStatement is written in pieces
 * inside one transaction by one COPY, hashed piece by piece while the server reads (copyInPieces).
 */
export class PostgresEventStore implements EventStore, StoredEventImport, CustomerKeyCarrier {
  private readonly queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  /** the head after this store's last write or read (a guess: checked on write); unset when a write's outcome is unknown */
  private knownHead: { position: number; hash: string } | undefined;
  /** last revision of recently appended streams (a guess: checked on write); oldest entries make room */
  private readonly knownRevisions = new Map<string, number>();
  private readonly signal = new LogChangeSignal();
  private readonly subscriptions = new Set<PolledSubscription>();
  private listener: Client | undefined;
  private listenerStarting: Promise<void> | undefined;
  private closed = false;
  private readonly table: string;
  private readonly channel: string;
  private readonly appendLockKey: string;
  private readonly maxEventsPerCommit: number;
  private readonly rowsPerStatement: number;
  private readonly pollIntervalMs: number;
  private readonly now: () => Date;
  private readonly sealOnServer: 'when-contended' | 'always' | 'never';
  /** until when (ms since the epoch) small groups are sealed by the server: another process was writing */
  private contendedUntil = 0;

  private constructor(
    private readonly pool: Pool,
    private readonly options: PostgresEventStoreOptions,
  ) {
    this.table = `${options.schema}.events`;
    // channel names are identifiers (at most 63 bytes); a clash would only cost an extra read
    this.channel = `clientele_events_${options.schema}`.slice(0, 63);
    this.appendLockKey = advisoryKey(`clientele.append:${options.schema}`);
    this.maxEventsPerCommit = options.maxEventsPerCommit ?? 10_000;
    this.rowsPerStatement = Math.max(1, options.rowsPerStatement ?? 100);
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.now = options.now ?? (() => new Date());
    // checked by open, before anything connects
    this.sealOnServer = options.sealOnServer ?? 'when-contended';
  }

  /** Connects, runs pending migrations (safe when several processes start at once), and opens the store. */
  static async open(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    assertSchemaName(options.schema);
    sealOnServerSetting(options);
    const pool = new Pool(poolConfig(options.connectionString, options.poolSize ?? 8, options.readOnly === true));
    try {
      if (options.readOnly) await assertMigrated(pool, options.schema);
      else await migrate(pool, options.schema);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresEventStore(pool, options);
  }

  appendToStream(streamId: string, events: NewEvent[], options: AppendOptions = {}): Promise<AppendResult> {
    return this.append(streamId, events, options, undefined);
  }

  /**
   * See CustomerKeyCarrier: the key is inserted (store_customer_keys, migration 6) by the statement
   * that writes the group holding these events, only when the events are written.
   */
  appendWithCustomerKey(streamId: string, events: NewEvent[], options: AppendOptions | undefined, key: NewKeyRow): Promise<AppendResult> {
    return this.append(streamId, events, options ?? {}, key);
  }

  /** The schema's keys table, which this store writes new customers' keys to (see appendWithCustomerKey). */
  get customerKeysTable(): string {
    return `${this.options.schema}.customer_keys`;
  }

  private append(streamId: string, events: NewEvent[], options: AppendOptions, customerKey: NewKeyRow | undefined): Promise<AppendResult> {
    if (this.closed) return Promise.reject(new Error('the event store is closed'));
    let expected: ExpectedRevision;
    try {
      expected = validateAppend(streamId, events, options);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ streamId, events, expected, customerKey, resolve, reject });
      // flushQueue clears `flushing` in the same tick it sees the queue empty, so an append queued
      // later always starts a new flush (a `.finally` would leave a window where none runs)
      this.flushing ??= this.flushQueue();
    });
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<StoredEvent[]> {
    validateReadStream(streamId, options);
    const backwards = options.direction === 'backwards';
    const from = options.fromRevision ?? (backwards ? 2 ** 31 - 1 : 0);
    const result = await this.pool.query<EventRow>(
      `select ${COLUMNS} from ${this.table}
        where stream_id = $1 and revision ${backwards ? '<=' : '>='} $2
        order by revision ${backwards ? 'desc' : 'asc'} limit $3`,
      [streamId, from, options.maxCount ?? null],
    );
    return result.rows.map(toStoredEvent);
  }

  /** Safe to page by position at any time: what is visible is always a gap-free prefix (see the class comment). */
  async readAll(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    validateReadAll(options);
    const result = await this.pool.query<EventRow>(
      `select ${COLUMNS} from ${this.table} where position > $1 order by position limit $2`,
      [options.afterPosition ?? 0, options.maxCount ?? null],
    );
    return result.rows.map(toStoredEvent);
  }

  /**
   * For verification: `readAll` as stored. `data` and `metadata` are read as the text the table
   * holds and parsed only when it is the canonical JSON the chain hashed (or PostgreSQL's own
   * rendering of the same values, which rows written before migration 4 hold); any other text is
   * handed on as `{ $unreadable: <text> }`, which fails its hash (see payloadAsHashed). `readAll`
   * parses the text, so a payload rewritten with a key repeated, or `3e3` for `3000`, reads as the
   * hashed values there while SQL reading the table sees other ones.
   */
  async readAllAsStored(options: ReadAllOptions = {}): Promise<StoredEvent[]> {
    validateReadAll(options);
    const result = await this.pool.query<StoredTextRow>(
      `select ${STORED_TEXT_COLUMNS} from ${this.table} where position > $1 order by position limit $2`,
      [options.afterPosition ?? 0, options.maxCount ?? null],
    );
    return result.rows.map(toStoredEventAsStored);
  }

  /** For verification: `readStream` forwards, as stored (see readAllAsStored). */
  async readStreamAsStored(streamId: string, options: Pick<ReadStreamOptions, 'fromRevision' | 'maxCount'> = {}): Promise<StoredEvent[]> {
    validateReadStream(streamId, options);
    const result = await this.pool.query<StoredTextRow>(
      `select ${STORED_TEXT_COLUMNS} from ${this.table} where stream_id = $1 and revision >= $2 order by revision asc limit $3`,
      [streamId, options.fromRevision ?? 0, options.maxCount ?? null],
    );
    return result.rows.map(toStoredEventAsStored);
  }

  /**
   * For verification: the lowest-placed row the position-ordered walk cannot judge, if any. A row
   * below position 1 is skipped by every read of the log from its start (yet read in its stream),
   * and a record time with digits below the millisecond is read rounded to the millisecond the hash
   * covers; the engine writes neither, so either is an edit of the table.
   */
  async rowOutsideTheChain(): Promise<ChainBreak | undefined> {
    const { rows } = await this.pool.query<{ position: number; event_id: string; stream_id: string; below_one: boolean }>(
      `select position, event_id, stream_id, position < 1 as below_one from ${this.table}
        where position < 1 or (extract(microseconds from recorded_at)::bigint % 1000) <> 0
        order by position limit 1`,
    );
    const row = rows[0];
    if (!row) return undefined;
    const at = { position: Number(row.position), eventId: row.event_id, streamId: row.stream_id };
    return row.below_one
      ? { kind: 'out_of_order', ...at, detail: `position ${at.position} is below 1, where every log begins: an event was put before the first` }
      : { kind: 'content_altered', ...at, detail: 'its recorded time has digits below the millisecond, which the engine never writes: it was changed after the event was stored' };
  }

  subscribeToAll(options: SubscribeOptions = {}): EventSubscription {
    const subscription: PolledSubscription = new PolledSubscription(
      {
        readAll: (o) => this.readAll(o),
        signal: this.signal,
        pollIntervalMs: this.pollIntervalMs,
        onClose: () => this.subscriptions.delete(subscription),
      },
      options,
    );
    this.subscriptions.add(subscription);
    void this.startListener();
    return subscription;
  }

  async headPosition(): Promise<number> {
    const result = await this.pool.query<{ head: number }>(`select coalesce(max(position), 0)::bigint as head from ${this.table}`);
    return result.rows[0]?.head ?? 0;
  }

  /**
   * Events recorded elsewhere, verbatim, in one transaction (see StoredEventImport). Under the same
   * advisory lock as every append, so positions stay gap-free and in commit order across processes.
   */
  async importStored(events: readonly StoredEvent[]): Promise<void> {
    if (this.closed) throw new Error('the event store is closed');
    if (events.length === 0) return;
    for (const e of events) {
      // timestamptz keeps the instant, and reads back as toISOString: any other spelling would
      // come back different and no longer match the hash
      if (Number.isNaN(Date.parse(e.recordedAt)) || new Date(e.recordedAt).toISOString() !== e.recordedAt) {
        throw new ImportRefusedError(e.position, `recordedAt: expected an ISO-8601 UTC time with milliseconds, got ${JSON.stringify(e.recordedAt)}`);
      }
    }
    await this.inTransaction(async (client) => {
      await client.query(`select pg_advisory_xact_lock(${this.appendLockKey})`);
      const head = await client.query<{ position: number; hash: string }>(`select position, hash from ${this.table} order by position desc limit 1`);
      const rows = checkImport(head.rows[0] ?? { position: 0, hash: GENESIS_HASH }, events);
      await client.query(insertAndNotifySql(this.table), [this.channel, rowsJson(rows)]);
    });
    // the head moved under any append being decided right now; its checked write will notice
    this.knownHead = undefined;
    this.signal.notify();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    while (this.flushing) await this.flushing;
    await this.listenerStarting?.catch(() => undefined);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.pool.end();
  }

  // ---- group commit ----

  private async flushQueue(): Promise<void> {
    // Each group starts one turn of the event loop later (which also lets `flushing` be assigned
    // before the loop can finish). Callers answered by a commit decide their next command and
    // append it from the microtasks that follow the answer; starting the next group at once took
    // only the first few of them and sent the rest one flush later, so eight callers filled groups
    // of four. After the turn, every append those microtasks issued is in the queue.
    await nextTurn();
    try {
      while (this.queue.length > 0) {
        const batch: PendingAppend[] = [];
        let size = 0;
        while (this.queue.length > 0) {
          const next = this.queue[0]!;
          if (batch.length > 0 && size + next.events.length > this.maxEventsPerCommit) break;
          batch.push(this.queue.shift()!);
          size += next.events.length;
        }
        await this.commitBatch(batch);
        await nextTurn();
      }
    } finally {
      // same synchronous step as the empty check above: no append can slip in between
      this.flushing = undefined;
    }
  }

  private async commitBatch(batch: PendingAppend[]): Promise<void> {
    let outcomes: Outcome[] | undefined;
    try {
      // large groups keep the usual paths: the server would hash their rows one by one
      const small = batch.reduce((events, p) => events + p.events.length, 0) <= this.rowsPerStatement;
      const serverSeals = small && (this.sealOnServer === 'always' || (this.sealOnServer === 'when-contended' && Date.now() < this.contendedUntil));
      outcomes =
        (serverSeals ? await this.appendServerSealed(batch) : await this.appendFromMemory(batch)) ??
        (await this.appendOptimistically(batch)) ??
        (await this.inTransaction((client) => this.appendUnderLock(client, batch)));
    } catch (err) {
      // the outcome is unknown (a commit may have happened before the connection broke): forget
      this.knownHead = undefined;
      // Decisions never throw, so a failure here is the server's (connection lost, disk full, a
      // constraint we did not foresee). Retrying each append alone keeps one bad append from
      // failing the others that happened to share its transaction.
      if (batch.length > 1) {
        for (const pending of batch) await this.commitBatch([pending]);
      } else {
        const pending = batch[0];
        pending?.reject(pending.customerKey && isKeyTaken(err) ? new CustomerKeyTakenError(pending.customerKey.customerId) : err);
      }
      return;
    }
    this.signal.notify();
    batch.forEach((pending, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) pending.resolve(outcome.result);
      else pending.reject(outcome.error);
    });
  }

  /**
   * One round trip: decide from memory (see knownHead, knownRevisions; a stream this store has
   * not seen is guessed from what the caller expects, see assumedRevision) and write with a call
   * that checks those guesses under the lock. Answers undefined, having written nothing, when it
   * cannot decide from memory or a guess was wrong. A refusal is never answered from memory: the
   * append might be a retry of one already stored, which only a read of its ids can tell.
   */
  private async appendFromMemory(batch: PendingAppend[]): Promise<Outcome[] | undefined> {
    const head = this.knownHead;
    if (!head) return undefined;
    const assumed = this.guessedRevisions(batch);
    if (!assumed) return undefined;
    const log: LogState = {
      headPosition: head.position,
      headHash: head.hash,
      streamRevisions: new Map([...assumed].filter(([, revision]) => revision >= 0)),
      byId: new Map(),
    };
    const outcomes = this.decideAll(batch, log);
    if (outcomes.some((o) => !o.ok || o.result.duplicate)) return undefined;
    try {
      const written = await this.writeChecked(head, assumed, log, outcomes, carriedKeys(batch, outcomes));
      // most often another process moved the head: for a while, let the server seal (see appendServerSealed)
      if (!written) this.contendedUntil = Date.now() + CONTENTION_MEMORY_MS;
      return written ? outcomes : undefined;
    } catch (err) {
      // an id already stored (a retry) or a stream revision taken: nothing was written; decide again from a read
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  /**
   * One round trip while other processes keep moving the head: decided from the stream revisions
   * this store remembers or assumes (as appendFromMemory does), but numbered and hashed by the
   * server from the head it finds under the lock (append_server_sealed, migration 5), so no guess
   * about the head can be wrong and the lock is held for one statement and its commit. Each row
   * carries the hashed text around its position; the server answers the head it started from and
   * the hashes, which are then filled in here. Undefined, having written nothing, when a stream
   * guess was wrong or an id is already stored (then the usual paths read and decide again).
   * Only for groups of at most rowsPerStatement events (commitBatch): the server hashes rows one
   * by one.
   */
  private async appendServerSealed(batch: PendingAppend[]): Promise<Outcome[] | undefined> {
    const assumed = this.guessedRevisions(batch);
    if (!assumed) return undefined;
    // numbered from 0 here; shifted by the head the server reports once it has written them
    const log: LogState = {
      headPosition: 0,
      headHash: GENESIS_HASH,
      streamRevisions: new Map([...assumed].filter(([, revision]) => revision >= 0)),
      byId: new Map(),
    };
    const outcomes = this.decideAll(batch, log);
    if (outcomes.some((o) => !o.ok || o.result.duplicate)) return undefined;
    const events = freshEvents(outcomes);
    await this.options.beforeWrite?.();
    let answer: string | null;
    const keys = carriedKeys(batch, outcomes);
    const call = `${this.options.schema}.append_server_sealed($1, $2, $3::text[], $4::integer[], $5::json)`;
    const values: unknown[] = [this.appendLockKey, this.channel, [...assumed.keys()], [...assumed.values()], serverSealedRowsJson(events)];
    try {
      const result = await this.pool.query<{ sealed: string | null }>(
        this.writeStatement('clientele_append_server_sealed', call, 'sealed', 'a.sealed is not null', values, keys),
      );
      answer = result.rows[0]?.sealed ?? null;
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
    if (answer === null) return undefined;
    const parts = answer.split(':');
    if (parts.length !== events.length + 2) {
      // written, but not as this store expects to hear it: forget the head and fail the group
      this.knownHead = undefined;
      throw new Error(`append_server_sealed answered ${parts.length - 2} hashes for ${events.length} events`);
    }
    const start = Number(parts[0]);
    let prevHash = parts[1]!;
    events.forEach((e, i) => {
      e.position += start;
      e.prevHash = prevHash;
      e.hash = parts[i + 2]!;
      prevHash = e.hash;
    });
    for (const o of outcomes) if (o.ok) o.result.position += start;
    log.headPosition += start;
    log.headHash = prevHash;
    this.remember(log);
    return outcomes;
  }

  /**
   * The named statement that calls a writing function (`call`, answering `column`), and, when the
   * group carries customer keys, stores them in the same statement once `written` says the call
   * wrote (store_customer_keys, migration 6): a refused key then fails the statement, events and
   * all. Two names, one per text, so each is parsed and planned once per connection.
   */
  private writeStatement(name: string, call: string, column: string, written: string, values: unknown[], keys: CarriedKeyRows): QueryConfig {
    if (keys.ids.length === 0) return { name, text: `select ${call} as ${column}`, values };
    const ids = values.length + 1;
    return {
      name: `${name}_keys`,
      text: `with a as materialized (select ${call} as ${column})
             select a.${column}, case when ${written} then ${this.options.schema}.store_customer_keys($${ids}::text[], $${ids + 1}::bytea[]) end as keys from a`,
      values: [...values, keys.ids, keys.wrapped],
    };
  }

  /** The last revision of each of the batch's streams as remembered or assumed (see assumedRevision); none when one cannot be guessed. */
  private guessedRevisions(batch: PendingAppend[]): Map<string, number> | undefined {
    const assumed = new Map<string, number>();
    for (const { streamId, expected } of batch) {
      if (assumed.has(streamId)) continue;
      const revision = this.knownRevisions.get(streamId) ?? assumedRevision(expected);
      if (revision === undefined) return undefined;
      assumed.set(streamId, revision);
    }
    return assumed;
  }

  /**
   * Two round trips: read the log state without a lock, decide and hash, then the checked call
   * (its checks now confirm that nothing was appended since the read). Answers undefined when
   * another process appended in between; the caller then takes the locked path, which always
   * makes progress.
   */
  private async appendOptimistically(batch: PendingAppend[]): Promise<Outcome[] | undefined> {
    const log = await this.readLogState(this.pool, batch);
    const snapshotHead = { position: log.headPosition, hash: log.headHash };
    const read = new Map([...new Set(batch.map((p) => p.streamId))].map((s) => [s, log.streamRevisions.get(s) ?? -1]));
    const outcomes = this.decideAll(batch, log);
    if (freshEvents(outcomes).length === 0) {
      this.remember(log);
      return outcomes;
    }
    return (await this.writeChecked(snapshotHead, read, log, outcomes, carriedKeys(batch, outcomes))) ? outcomes : undefined;
  }

  /**
   * The rows of the accepted appends, by append_checked (migration 4), which checks the guesses
   * they were decided on, and the customer keys they carry (store_customer_keys, in the same
   * statement and only once append_checked has written); remembers the new head when written. A group of more than
   * rowsPerStatement events goes inside one transaction: the checked call takes the lock (carrying
   * no rows), and one COPY follows while it is held (copyInPieces).
   */
  private async writeChecked(
    expectedHead: { position: number; hash: string },
    streams: Map<string, number>,
    log: LogState,
    outcomes: Outcome[],
    keys: CarriedKeyRows,
  ): Promise<boolean> {
    await this.options.beforeWrite?.();
    const events = freshEvents(outcomes);
    const call = `${this.options.schema}.append_checked($1, $2, $3, $4, $5::text[], $6::integer[], $7::json)`;
    const checked = async (db: Pool | PoolClient, rows: string): Promise<boolean> => {
      // A named statement: each connection has the server parse and plan it once, not on every
      // group commit (measured 5–20% more appends/s with 8 callers). One store, one schema per
      // pool, so a name never stands for two texts on one connection.
      const values: unknown[] = [this.appendLockKey, expectedHead.position, expectedHead.hash, this.channel, [...streams.keys()], [...streams.values()], rows];
      const result = await db.query<{ appended: boolean }>(this.writeStatement('clientele_append_checked', call, 'appended', 'a.appended', values, keys));
      return result.rows[0]?.appended === true;
    };
    let appended: boolean;
    if (events.length <= this.rowsPerStatement) {
      const sealed = sealRows(events, 0, events.length, expectedHead.hash);
      appended = await checked(this.pool, sealed.rows);
      if (appended) log.headHash = sealed.lastHash;
    } else {
      // The checked call carries no rows: it takes the lock and checks while the first piece is
      // hashed. A refused check writes nothing and starts no COPY; committing the empty
      // transaction then only releases the lock the check may have taken.
      appended = await this.inTransaction((client) => this.copyInPieces(client, events, expectedHead.hash, log, checked(client, '[]')));
    }
    if (appended) this.remember(log);
    else this.knownHead = undefined;
    return appended;
  }

  /**
   * Writes `events` on `client`, inside its transaction, with one COPY fed rowsPerStatement rows at
   * a time: each piece is hashed while the server still reads the one before, so the store's CPU
   * and the server's overlap instead of taking turns. `ready` is the statement sent before (the
   * check and lock, or the notification): the first piece is hashed while it runs, and nothing is
   * copied when it answers false. Sets the log's head hash when every row is in.
   */
  private async copyInPieces(
    client: PoolClient,
    events: readonly StoredEvent[],
    prevHash: string,
    log: LogState,
    ready: Promise<boolean>,
  ): Promise<boolean> {
    const size = this.rowsPerStatement;
    let sealed: { rows: string; lastHash: string };
    try {
      sealed = sealCopyRows(events, 0, Math.min(size, events.length), prevHash);
    } catch (err) {
      await ready.catch(() => undefined);
      throw err;
    }
    if (!(await ready)) return false;
    const copy = copyFrom(copySql(this.table));
    // the server's refusal (or a lost connection) arrives as the stream's 'error'; from then on
    // the COPY is over and nothing more may be written to it
    let refused: unknown;
    copy.on('error', (err: unknown) => {
      refused ??= err;
    });
    const done = finished(copy);
    done.catch(() => undefined);
    void client.query(copy);
    try {
      for (let from = size; ; from += size) {
        // written before the server is ready, a piece waits in the stream and goes when it is
        const more = copy.write(sealed.rows);
        if (from >= events.length) break;
        // a full stream: wait until the socket took what it holds; otherwise let the socket take
        // the piece just written. Either way an early server error can arrive meanwhile
        if (more) await nextTurn();
        else await drained(copy);
        if (refused !== undefined) break;
        sealed = sealCopyRows(events, from, Math.min(from + size, events.length), sealed.lastHash);
      }
    } catch (err) {
      if (refused !== undefined) throw refused;
      // an event this store cannot write (see copyText): destroying the stream sends CopyFail, so
      // the server keeps nothing of the COPY and answers with an error; the client stays usable
      copy.destroy(err instanceof Error ? err : new Error(String(err)));
      await done.catch(() => undefined);
      throw err;
    }
    if (refused !== undefined) throw refused;
    copy.end();
    // 'finish' comes once the server has answered (its ReadyForQuery); a refusal rejects instead
    await done;
    log.headHash = sealed.lastHash;
    return true;
  }

  /** What the log looks like after a batch that was written (or needed no write), as guesses for the next one. */
  private remember(log: LogState): void {
    this.knownHead = { position: log.headPosition, hash: log.headHash };
    for (const [streamId, revision] of log.streamRevisions) {
      this.knownRevisions.delete(streamId);
      this.knownRevisions.set(streamId, revision);
    }
    for (const oldest of this.knownRevisions.keys()) {
      if (this.knownRevisions.size <= REMEMBERED_STREAMS) break;
      this.knownRevisions.delete(oldest);
    }
  }

  private async inTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const result = await work(client);
      await client.query('commit');
      return result;
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The slow path: decide while holding the lock, so nobody can move the log under us. */
  private async appendUnderLock(client: PoolClient, batch: PendingAppend[]): Promise<Outcome[]> {
    // Held until commit; every other writer to this schema, in any process, waits here.
    await client.query(`select pg_advisory_xact_lock(${this.appendLockKey})`);
    // A separate statement on purpose: under READ COMMITTED each statement takes a fresh snapshot,
    // and only one taken after the lock was granted sees the commit of the previous holder.
    const log = await this.readLogState(client, batch);
    const outcomes = this.decideAll(batch, log);
    const fresh = freshEvents(outcomes);
    if (fresh.length > 0) {
      await this.options.beforeWrite?.();
      if (fresh.length <= this.rowsPerStatement) {
        const sealed = sealRows(fresh, 0, fresh.length, log.headHash);
        await client.query(insertAndNotifySql(this.table), [this.channel, sealed.rows]);
        log.headHash = sealed.lastHash;
      } else {
        // COPY notifies nobody: the notification is queued first and delivered with the commit
        const notified = client.query('select pg_notify($1, $2)', [this.channel, String(log.headPosition)]).then(() => true);
        await this.copyInPieces(client, fresh, log.headHash, log, notified);
      }
      const keys = carriedKeys(batch, outcomes);
      if (keys.ids.length > 0) {
        await client.query(`select ${this.options.schema}.store_customer_keys($1::text[], $2::bytea[])`, [keys.ids, keys.wrapped]);
      }
    }
    // remembered before the commit is known; a failed commit throws and commitBatch forgets it again
    this.remember(log);
    return outcomes;
  }

  /** Head, the batch's streams' last revisions and any stored events with the batch's ids, from one snapshot. */
  private async readLogState(db: Pool | PoolClient, batch: PendingAppend[]): Promise<LogState> {
    const streamIds = [...new Set(batch.map((p) => p.streamId))];
    const eventIds = batch.flatMap((p) => p.events.map((e) => e.id));
    const state = await db.query<{ head: { position: number; hash: string } | null; streams: StreamRow[] | null; existing: EventRow[] | null }>(
      `select
         (select json_build_object('position', position, 'hash', hash)
            from ${this.table} order by position desc limit 1) as head,
         (select json_agg(s) from (select stream_id, max(revision) as revision
            from ${this.table} where stream_id = any($1::text[]) group by stream_id) s) as streams,
         (select json_agg(e) from (select ${COLUMNS} from ${this.table}
            where event_id = any($2::text[])) e) as existing`,
      [streamIds, eventIds],
    );
    const row = state.rows[0]!;
    return {
      headPosition: row.head?.position ?? 0,
      headHash: row.head?.hash ?? GENESIS_HASH,
      streamRevisions: new Map((row.streams ?? []).map((s) => [s.stream_id, s.revision])),
      byId: new Map((row.existing ?? []).map((e) => [e.event_id, toStoredEvent(e)])),
    };
  }

  private decideAll(batch: PendingAppend[], log: LogState): Outcome[] {
    const recordedAt = this.now().toISOString();
    return batch.map((pending) => decide(pending, log, recordedAt));
  }

  // ---- live notifications ----

  /** One LISTEN connection per store; subscriptions poll anyway, so a lost listener only slows them. */
  private startListener(): Promise<void> {
    if (this.closed || this.listener || this.listenerStarting) return this.listenerStarting ?? Promise.resolve();
    const client = new Client(poolConfig(this.options.connectionString, 1));
    const drop = (): void => {
      if (this.listener === client) this.listener = undefined;
      void client.end().catch(() => undefined);
      // reconnect on the next poll tick if anyone still listens
      if (!this.closed && this.subscriptions.size > 0) setTimeout(() => void this.startListener(), this.pollIntervalMs).unref();
    };
    this.listenerStarting = (async () => {
      try {
        await client.connect();
        client.on('notification', () => this.signal.notify());
        client.on('error', drop);
        await client.query(`listen ${this.channel}`);
        if (this.closed) await client.end();
        else this.listener = client;
      } catch {
        drop();
      } finally {
        this.listenerStarting = undefined;
      }
    })();
    return this.listenerStarting;
  }
}

// ---- deciding one append against the log state (pure, no I/O) ----

interface PendingAppend {
  streamId: string;
  events: NewEvent[];
  expected: ExpectedRevision;
  /** a new customer key written with the events (see appendWithCustomerKey) */
  customerKey: NewKeyRow | undefined;
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
}

/**
 * `fresh`: the events an accepted append writes (none for a duplicate), numbered but not yet
 * sealed: their hashes are filled in by sealRows, in position order, when they are written.
 */
type Outcome = { ok: true; result: AppendResult; fresh: StoredEvent[] } | { ok: false; error: Error };

interface LogState {
  headPosition: number;
  /** the hash at headPosition once the batch's events are sealed (deciding leaves it alone) */
  headHash: string;
  /** last revision per stream; absent = no stream */
  streamRevisions: Map<string, number>;
  /** stored events whose ids this batch mentions, plus what the batch has accepted so far */
  byId: Map<string, StoredEvent>;
}

/**
 * Idempotency first (a retry must answer its first result even after the stream moved on), then
 * the revision. Accepted events get their positions and revisions here; hashing them is left to
 * sealRows, so that a large group can be hashed piece by piece while the server inserts.
 */
export function decide(pending: Pick<PendingAppend, 'streamId' | 'events' | 'expected'>, log: LogState, recordedAt: string): Outcome {
  const { streamId, events, expected } = pending;
  const replay = classifyReplay(streamId, events, (id) => log.byId.get(id));
  if (replay.kind === 'clash') return { ok: false, error: new DuplicateEventIdError(replay.eventId) };
  if (replay.kind === 'duplicate') {
    const last = replay.events[replay.events.length - 1]!;
    return { ok: true, result: { duplicate: true, events: replay.events, nextExpectedRevision: last.revision, position: last.position }, fresh: [] };
  }

  const current = log.streamRevisions.get(streamId);
  if (!revisionMatches(expected, current)) {
    return { ok: false, error: new WrongExpectedRevisionError(streamId, expected, current ?? 'no_stream') };
  }

  let revision = current ?? -1;
  const fresh: StoredEvent[] = events.map((e) => {
    revision += 1;
    log.headPosition += 1;
    const event: StoredEvent = {
      id: e.id,
      streamId,
      revision,
      position: log.headPosition,
      type: e.type,
      data: e.data,
      metadata: e.metadata,
      recordedAt,
      hash: '',
      prevHash: '',
    };
    log.byId.set(e.id, event);
    return event;
  });
  log.streamRevisions.set(streamId, revision);
  return { ok: true, result: { duplicate: false, events: fresh, nextExpectedRevision: revision, position: log.headPosition }, fresh };
}

/**
 * Fills in the chain hashes of `events[from..to)` (consecutive positions, the first one after the
 * event whose hash is `prevHash`) and answers them as rows for json_to_recordset, with the hash of
 * the last. Each event's data and metadata are serialised once, for the hash and the row.
 */
export function sealRows(events: readonly StoredEvent[], from: number, to: number, prevHash: string): { rows: string; lastHash: string } {
  const sealed = seal(events, from, to, prevHash, rowJson, ',');
  return { rows: `[${sealed.rows}]`, lastHash: sealed.lastHash };
}

/** The same, with the rows as lines of COPY's text format, in the column order of copySql. */
export function sealCopyRows(events: readonly StoredEvent[], from: number, to: number, prevHash: string): { rows: string; lastHash: string } {
  return seal(events, from, to, prevHash, copyLine, '');
}

function seal(
  events: readonly StoredEvent[],
  from: number,
  to: number,
  prevHash: string,
  row: (e: StoredEvent, data: string, metadata: string) => string,
  separator: string,
): { rows: string; lastHash: string } {
  let rows = '';
  let prev = prevHash;
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    const data = canonicalJson(e.data);
    const metadata = canonicalJson(e.metadata);
    e.prevHash = prev;
    e.hash = chainHashOfCanonical(prev, e, data, metadata);
    rows += (i > from ? separator : '') + row(e, data, metadata);
    prev = e.hash;
  }
  return { rows, lastHash: prev };
}

/**
 * A guess at the last revision of a stream the store has not seen: where the caller expects it,
 * or for `any` a new stream (the usual case; a wrong guess costs a read). None for
 * `stream_exists`, which names no revision.
 */
function assumedRevision(expected: ExpectedRevision): number | undefined {
  if (expected === 'no_stream' || expected === 'any') return -1;
  return typeof expected === 'number' ? expected : undefined;
}

/** The customer keys carried by the appends a group writes (accepted, not a retry), one row per customer. */
interface CarriedKeyRows {
  ids: string[];
  wrapped: Buffer[];
}

function carriedKeys(batch: readonly PendingAppend[], outcomes: readonly Outcome[]): CarriedKeyRows {
  const rows: CarriedKeyRows = { ids: [], wrapped: [] };
  const seen = new Set<string>();
  batch.forEach(({ customerKey }, i) => {
    const outcome = outcomes[i];
    if (!customerKey || !outcome?.ok || outcome.fresh.length === 0 || seen.has(customerKey.customerId)) return;
    seen.add(customerKey.customerId);
    rows.ids.push(customerKey.customerId);
    rows.wrapped.push(Buffer.from(customerKey.wrappedKey.buffer, customerKey.wrappedKey.byteOffset, customerKey.wrappedKey.byteLength));
  });
  return rows;
}

/** store_customer_keys refused: a customer of the group has another key (migration 6). */
function isKeyTaken(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'CK001';
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

// ---- rows ----

function freshEvents(outcomes: Outcome[]): StoredEvent[] {
  return outcomes.flatMap((o) => (o.ok ? o.fresh : []));
}

/**
 * Inserts the rows of `rowsJson` ($2) and wakes subscribers with the highest position ($1 is the
 * channel), in one statement: appends and verbatim imports write the same way.
 */
function insertAndNotifySql(table: string): string {
  return `with inserted as (
     insert into ${table}
       (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash)
     select p, s, r, i, t, d, m, a, h, v
       from json_to_recordset($2::json) as x(p bigint, s text, r integer, i text, t text,
                                              d json, m json, a timestamptz, h text, v text)
     returning position)
   select pg_notify($1, (select max(position) from inserted)::text)`;
}

/**
 * Rows as one JSON array (the shape json_to_recordset reads above and in append_checked). Data and
 * metadata go in as the canonical JSON already written for the hash; one text parameter costs far
 * less to send than ten arrays whose every element pg escapes on its own.
 */
function rowsJson(rows: readonly ImportRow[]): string {
  let out = '[';
  for (let i = 0; i < rows.length; i++) {
    const { event, data, metadata } = rows[i]!;
    out += (i > 0 ? ',' : '') + rowJson(event, data, metadata);
  }
  return out + ']';
}

/**
 * One row of that array; `data` and `metadata` are canonical JSON. The record time (toISOString)
 * and the hashes (hex) never need escaping; the caller's strings go through JSON.stringify.
 */
function rowJson(e: StoredEvent, data: string, metadata: string): string {
  return (
    `{"p":${e.position},"s":${JSON.stringify(e.streamId)},"r":${e.revision},"i":${JSON.stringify(e.id)}` +
    `,"t":${JSON.stringify(e.type)},"d":${data},"m":${metadata},"a":"${e.recordedAt}"` +
    `,"h":"${e.hash}","v":"${e.prevHash}"}`
  );
}

/**
 * The rows append_server_sealed reads: each event's row without position and hashes, and the
 * hashed text before (`x`) and after (`y`) its position, built from the same canonical JSON that
 * goes into `d` and `m`.
 */
function serverSealedRowsJson(events: readonly StoredEvent[]): string {
  let out = '[';
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const data = canonicalJson(e.data);
    const metadata = canonicalJson(e.metadata);
    const { before, after } = chainEnvelopeAroundPosition(e, data, metadata);
    out +=
      (i > 0 ? ',' : '') +
      `{"s":${JSON.stringify(e.streamId)},"r":${e.revision},"i":${JSON.stringify(e.id)},"t":${JSON.stringify(e.type)}` +
      `,"d":${data},"m":${metadata},"a":"${e.recordedAt}","x":${JSON.stringify(before)},"y":${JSON.stringify(after)}}`;
  }
  return out + ']';
}

/** COPY of the events table, reading the lines copyLine writes. Notifies nobody: see its callers. */
function copySql(table: string): string {
  return `copy ${table} (position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash) from stdin`;
}

/** One line of COPY's text format: tab-separated columns, `data` and `metadata` the canonical JSON. */
function copyLine(e: StoredEvent, data: string, metadata: string): string {
  return (
    `${e.position}\t${copyText(e.streamId)}\t${e.revision}\t${copyText(e.id)}\t${copyText(e.type)}` +
    `\t${copyJson(data)}\t${copyJson(metadata)}\t${e.recordedAt}\t${e.hash}\t${e.prevHash}\n`
  );
}

/** What COPY's text format gives a meaning to in a value, and what pg cannot send as UTF-8. */
const COPY_SPECIAL = /[\\\t\n\r\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * A text value as COPY reads it back unchanged. A lone surrogate has no UTF-8 spelling (the bytes
 * would carry U+FFFD instead, and the row would no longer match its hash): such a value is refused,
 * as the INSERT path's server refuses it. A NUL goes through and the server refuses it.
 */
function copyText(value: string): string {
  if (!COPY_SPECIAL.test(value)) return value;
  if (LONE_SURROGATE.test(value)) throw new Error(`PostgreSQL cannot store ${JSON.stringify(value)}: it holds a lone surrogate`);
  return value.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!);
}

/** Canonical JSON escapes every control character and lone surrogate: only its backslashes need doubling. */
function copyJson(json: string): string {
  return json.includes('\\') ? json.replace(/\\/g, '\\\\') : json;
}

/** Resolves when `stream` can take more; rejects with its error if it fails first. */
async function drained(stream: Writable): Promise<void> {
  await once(stream, 'drain');
}

/** Resolves after the current turn of the event loop, its microtasks included, has run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** How many streams' last revisions a store keeps as guesses (a forgotten one costs a read, nothing more). */
const REMEMBERED_STREAMS = 10_000;

const COLUMNS = 'position, stream_id, revision, event_id, type, data, metadata, recorded_at, hash, prev_hash';

interface EventRow {
  position: number;
  stream_id: string;
  revision: number;
  event_id: string;
  type: string;
  data: JsonObject;
  metadata: EventMetadata;
  recorded_at: Date | string;
  hash: string;
  prev_hash: string;
}
interface StreamRow {
  stream_id: string;
  revision: number;
}

/** The columns with `data` and `metadata` as the text stored (`json` keeps the text it was given). */
const STORED_TEXT_COLUMNS = 'position, stream_id, revision, event_id, type, data::text as data, metadata::text as metadata, recorded_at, hash, prev_hash';

type StoredTextRow = Omit<EventRow, 'data' | 'metadata'> & { data: string; metadata: string };

/** PostgreSQL's own rendering of the values the chain hashed (rows stored as `jsonb`, before migration 4). */
const renderedByJsonb = (value: JsonObject, text: string): boolean => jsonbText(value) === text;

function toStoredEventAsStored(row: StoredTextRow): StoredEvent {
  return {
    ...toStoredEvent({ ...row, data: {}, metadata: {} as EventMetadata }),
    data: payloadAsHashed(row.data, renderedByJsonb),
    metadata: payloadAsHashed(row.metadata, renderedByJsonb) as EventMetadata,
  };
}

function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    streamId: row.stream_id,
    revision: row.revision,
    position: Number(row.position),
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    recordedAt: new Date(row.recorded_at).toISOString(),
    hash: row.hash,
    prevHash: row.prev_hash,
  };
}

/** A pool whose BIGINTs arrive as numbers (positions stay far below 2^53), without touching pg's global parsers. */
function poolConfig(connectionString: string, max: number, readOnly = false): PoolConfig {
  return {
    connectionString,
    max,
    ...(readOnly ? { options: READ_ONLY_SESSION } : {}),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === pgTypes.builtins.INT8 ? parseSafeInteger : pgTypes.getTypeParser(oid, format)) as typeof pgTypes.getTypeParser,
    },
  };
}

function parseSafeInteger(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`bigint ${text} does not fit a JavaScript number`);
  return value;
}

/** A stable signed 64-bit advisory-lock key for a name, written as a SQL literal. */
function advisoryKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}
