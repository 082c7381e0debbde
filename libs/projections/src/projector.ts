import type { EventStore, EventSubscription, StoredEvent } from '@clientele/event-store';
import type { Projection, ReadModelQueries, ReadModelStore, ReadModelTransaction } from './read-model-store';
import { rebuildLog } from './read-ahead-log';
import { ReadModels } from './read-models';
import { CREATE_LOG_ANCHOR_TABLE, logAnchorMismatch, readLogAnchor, ReadModelsOfAnotherLogError, saveLogAnchor } from './log-anchor';

export const CHECKPOINTS_TABLE = 'projection_checkpoints';
export interface ProjectorOptions {
  /** events read and applied per read-model transaction; default 1000 */
  batchSize?: number;
  /**
   * events per transaction while rebuilding into a fresh store; default 25,000. Nobody reads that
   * store yet, so bigger transactions cost no latency, and a profile touched many times in one
   * batch is written once.
   */
  rebuildBatchSize?: number;
  /**
   * while rebuilding, the log is read in pages of this many events (default 1,000); projections
   * that fold page by page (`foldsPages`) take each page as it is read, so its events are freed
   * long before the batch's transaction commits. Capped at `rebuildBatchSize`.
   */
  rebuildPageSize?: number;
  /**
   * while rebuilding, read the log up to the head at the start of the rebuild ahead of the fold,
   * where the event store can (`readPagesAhead`: the embedded store reads and parses the next pages
   * on a worker thread while the event loop folds the current one); default true. The tail applied
   * under the projector's lock is read as usual.
   */
  rebuildReadAhead?: boolean;
  /**
   * the log as stored, for the check that the read models were folded from it (its events' hashes
   * only): give the undecrypted store when the projector reads through the personal-data layer, so
   * read models of another log, whose keys this engine cannot open, are refused with the reason
   * rather than a decryption error. Default: the events the projector folds.
   */
  storedLog?: Pick<EventStore, 'readAll' | 'headPosition'>;
  /**
   * this log as `clientele audit verify --store` takes it (`sqlite:<file>`, `postgres:<url>#<schema>`):
   * a refusal of read models that do not match the log then gives the whole command that checks it
   */
  auditStore?: string;
  /** opens an empty store to rebuild into; without it a changed projection is rebuilt in place */
  freshStore?: () => Promise<ReadModelStore>;
  /** told when a rebuilt store became the live one, e.g. to remember which file or schema is current */
  onSwap?: (store: ReadModelStore) => Promise<void>;
  /** after a swap, once the previous store is closed (e.g. to remove its generation) */
  afterSwap?: () => Promise<void>;
  /**
   * told after a batch committed to the store queries read from (not while rebuilding into a fresh
   * one), e.g. to publish the profiles it changed. Runs before the next batch; if it throws, the
   * batch stays applied and `run()` rejects, so keep it cheap and let it hand work elsewhere.
   */
  onBatchApplied?: (events: readonly StoredEvent[]) => Promise<void> | void;
}

export interface ProjectionStatus {
  name: string;
  version: number;
  /** global position of the last event folded into this read model */
  position: number;
  /** global position of the last stored event */
  head: number;
  lag: number;
}

export interface CheckpointRow {
  name: string;
  version: number;
  position: number;
}

/**
 * Folds the global log into read models. Each batch of events is applied by every projection in
 * one read-model transaction that also advances their checkpoints, so after a crash the store holds
 * either the whole batch or none of it, and the next run resumes exactly after the last commit.
 * Catch-up reads the log in batches; live mode follows `subscribeToAll` from the checkpoint.
 */
export class Projector {
  private readonly batchSize: number;
  private readonly rebuildBatchSize: number;
  private readonly rebuildPageSize: number;
  private subscription: EventSubscription | undefined;
  private stopped = false;
  private rebuilding = false;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly events: EventStore,
    readonly readModels: ReadModels,
    private readonly projections: readonly Projection[],
    private readonly options: ProjectorOptions = {},
  ) {
    this.batchSize = positive('batchSize', options.batchSize ?? 1000);
    this.rebuildBatchSize = positive('rebuildBatchSize', options.rebuildBatchSize ?? 25_000);
    this.rebuildPageSize = Math.min(this.rebuildBatchSize, positive('rebuildPageSize', options.rebuildPageSize ?? 1_000));
    const names = new Set<string>();
    for (const p of projections) {
      if (names.has(p.name)) throw new Error(`projection name ${p.name} is used twice`);
      names.add(p.name);
    }
  }

  /**
   * Creates missing tables and checkpoints; a projection whose stored version differs from its code
   * is rebuilt (into a fresh store when `freshStore` is given, in place otherwise).
   */
  async start(): Promise<void> {
    const outdated = await this.prepare(this.readModels.current);
    // a rebuild into a fresh store reads this log from position 0 whatever the current store holds
    if (outdated.length === 0 || !this.options.freshStore) await this.checkSameLog(this.readModels.current);
    if (outdated.length === 0) return;
    if (this.options.freshStore) {
      await this.rebuild();
      return;
    }
    await this.exclusive(() =>
      this.readModels.current.transaction(async (tx) => {
        for (const p of outdated) {
          for (const table of p.tables) await tx.exec(`DROP TABLE IF EXISTS ${table}`);
          await p.migrate(tx);
          await tx.run(`UPDATE ${CHECKPOINTS_TABLE} SET version = ?, position = 0 WHERE name = ?`, [p.version, p.name]);
        }
      }),
    );
  }

  /** applies every stored event after the checkpoints; answers the position reached */
  async catchUp(): Promise<number> {
    return this.exclusive(() => this.catchUpStore(this.readModels.current));
  }

  /** start, catch up, then follow the log live until `stop()`; rejects when a batch fails */
  async run(): Promise<void> {
    this.stopped = false;
    await this.start();
    const from = await this.catchUp();
    if (this.stopped) return;
    const subscription = this.events.subscribeToAll({ afterPosition: from, batchSize: this.batchSize });
    this.subscription = subscription;
    try {
      for await (const batch of microBatches(subscription, this.batchSize)) {
        await this.exclusive(() => this.applyBatch(this.readModels.current, batch));
        if (this.stopped) break;
        await this.settleWhileIdle(batch[batch.length - 1]?.position ?? 0);
      }
    } finally {
      this.subscription = undefined;
      await subscription.close();
    }
  }

  /** true while a rebuild fills a fresh store */
  get isRebuilding(): boolean {
    return this.rebuilding;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.subscription?.close();
  }

  /**
   * Replays the whole log into a fresh store while the live one keeps serving queries, then makes
   * it live. The tail is applied under the projector's lock so no live batch slips between.
   */
  async rebuild(): Promise<void> {
    const open = this.options.freshStore;
    if (!open) throw new Error('projector: rebuild needs a freshStore option');
    if (this.rebuilding) throw new Error('projector: a rebuild is already running');
    this.rebuilding = true;
    try {
      await this.rebuildInto(await open());
    } finally {
      this.rebuilding = false;
    }
  }

  private async rebuildInto(fresh: ReadModelStore): Promise<void> {
    let swapped: Promise<void> | undefined;
    try {
      await fresh.beginBulkLoad?.();
      await this.prepare(fresh);
      const projections = this.projections.map((p) => p.forRebuild?.() ?? p);
      await this.rebuildBatches(fresh, projections, await this.events.headPosition());
      await this.exclusive(async () => {
        await this.rebuildBatches(fresh, projections);
        await flushRebuild(fresh, projections);
        await fresh.endBulkLoad?.();
        await this.options.onSwap?.(fresh);
        // the swap itself is immediate; closing the old store waits for its running queries, so
        // that wait happens outside the lock
        swapped = this.readModels.swap(fresh);
      });
      await swapped;
      await this.options.afterSwap?.();
    } catch (err) {
      if (this.readModels.current !== fresh) await fresh.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Makes `next` the live store: a generation another process rebuilt and made current
   * (`clientele replay`), while this projector kept folding the one it had. Under the projector's
   * lock, `next` gets any missing tables, is checked to be folded from this log, is caught up to
   * the head and swapped in, so no live batch falls between the two stores; batches the
   * subscription delivers afterwards that `next` already holds are skipped by its checkpoints.
   * Answers false, and leaves `next` open for the caller, when this projector is rebuilding or a
   * read model in `next` was folded by another version of its code (this process would rebuild it).
   */
  async adopt(next: ReadModelStore): Promise<boolean> {
    if (this.rebuilding || next === this.readModels.current) return false;
    let swapped: Promise<void> | undefined;
    const adopted = await this.exclusive(async () => {
      if ((await this.prepare(next)).length > 0) return false;
      await this.checkSameLog(next);
      await this.catchUpStore(next);
      swapped = this.readModels.swap(next);
      return true;
    });
    if (!adopted) return false;
    await swapped;
    // erasures folded while catching up were not purged from its files (it was not live yet)
    await next.purgeOldPages?.();
    await this.options.afterSwap?.();
    return true;
  }

  async status(): Promise<ProjectionStatus[]> {
    return projectionStatuses(this.projections, await readCheckpoints(this.readModels), await this.events.headPosition());
  }

  /** tables and checkpoint rows; answers the projections whose stored version is not the code's */
  private async prepare(store: ReadModelStore): Promise<Projection[]> {
    return store.transaction(async (tx) => {
      // Two engines starting on one PostgreSQL schema would otherwise race on CREATE TABLE IF NOT
      // EXISTS (PostgreSQL answers the loser with a duplicate key on its catalogue): take turns.
      if (tx.dialect === 'postgres') await tx.get(`SELECT pg_advisory_xact_lock(hashtext('clientele.read-models.prepare'))`);
      await tx.exec(
        `CREATE TABLE IF NOT EXISTS ${CHECKPOINTS_TABLE} (name TEXT PRIMARY KEY, version BIGINT NOT NULL, position BIGINT NOT NULL)`,
      );
      await tx.exec(CREATE_LOG_ANCHOR_TABLE);
      const stored = await readCheckpoints(tx);
      const outdated = foldedByOtherVersions(this.projections, stored);
      for (const p of this.projections) {
        if (outdated.includes(p)) continue;
        await p.migrate(tx);
        if (!stored.has(p.name)) await tx.run(`INSERT INTO ${CHECKPOINTS_TABLE} (name, version, position) VALUES (?, ?, 0)`, [p.name, p.version]);
      }
      return outdated;
    });
  }

  private async catchUpStore(store: ReadModelStore, batchSize = this.batchSize, projections = this.projections): Promise<number> {
    let after = await minCheckpoint(store, projections);
    for (;;) {
      // stopping (SIGTERM) does not wait for a long backlog: the checkpoints say where to resume
      if (this.stopped && store === this.readModels.current) return after;
      const batch = await this.events.readAll({ afterPosition: after, maxCount: batchSize });
      const last = batch[batch.length - 1];
      if (!last) {
        // caught up: one step of deferred work, then look at the log again
        if (await settleStep(store, projections)) continue;
        return after;
      }
      await this.applyBatch(store, batch, projections);
      after = last.position;
    }
  }

  /**
   * Catch-up into a store being rebuilt: one transaction per `rebuildBatchSize` events, as
   * `catchUpStore`, but the log is read page by page inside it. Projections that fold pages
   * (`foldsPages`) take each page at once; the others get the whole batch in one `apply` after the
   * last page. The checkpoints move at the end of the transaction either way, so a failed batch
   * leaves nothing of itself behind. Up to `readAheadUpTo`, the log is read ahead where the store
   * can (`rebuildReadAhead`). Answers the position reached.
   */
  private async rebuildBatches(store: ReadModelStore, projections: readonly Projection[], readAheadUpTo = 0): Promise<number> {
    let after = await minCheckpoint(store, projections);
    const log = rebuildLog(this.events, after, readAheadUpTo, this.rebuildPageSize, this.options.rebuildReadAhead ?? true);
    try {
      for (;;) {
        const reached = await store.transaction(async (tx) => {
          const checkpoints = await readCheckpoints(tx);
          const from = (p: Projection) => Number(checkpoints.get(p.name)?.position ?? 0);
          let lastEvent: StoredEvent | undefined;
          const last = await foldBatchInPages(log, after, this.rebuildBatchSize, this.rebuildPageSize, projections, (p, events) => {
            lastEvent = events[events.length - 1] ?? lastEvent;
            return applyPast(p, from(p), events, tx);
          });
          if (last === after) return undefined;
          for (const p of projections) {
            if (from(p) < last) await tx.run(`UPDATE ${CHECKPOINTS_TABLE} SET position = ? WHERE name = ?`, [last, p.name]);
          }
          if (lastEvent?.position === last) await saveLogAnchor(tx, lastEvent);
          return last;
        });
        if (reached === undefined) return after;
        after = reached;
      }
    } finally {
      await log.close();
    }
  }

  /** one transaction: each projection folds the events past its own checkpoint, then the checkpoints move */
  private async applyBatch(store: ReadModelStore, batch: readonly StoredEvent[], projections = this.projections): Promise<void> {
    const last = batch[batch.length - 1];
    if (!last) return;
    const moved = await store.transaction(async (tx) => {
      const checkpoints = await readCheckpoints(tx);
      let moved = false;
      for (const p of projections) {
        const from = Number(checkpoints.get(p.name)?.position ?? 0);
        if (from >= last.position) continue;
        await applyPast(p, from, batch, tx);
        await tx.run(`UPDATE ${CHECKPOINTS_TABLE} SET position = ? WHERE name = ?`, [last.position, p.name]);
        moved = true;
      }
      if (moved) await saveLogAnchor(tx, last);
      return moved;
    });
    if (store !== this.readModels.current) return;
    // Erased personal data is gone from the rows once committed; this takes it off the disk too.
    // A rebuild never comes here: its store is not the current one until it is complete.
    if (moved && store.purgeOldPages && batch.some((e) => e.type === 'PersonalDataErased')) await store.purgeOldPages();
    await this.options.onBatchApplied?.(batch);
  }

  /** settle steps while nothing was stored after `position`; stops at the first newer event */
  private async settleWhileIdle(position: number): Promise<void> {
    if (!this.projections.some((p) => p.settle)) return;
    while (!this.stopped && (await this.events.headPosition()) <= position) {
      if (!(await this.exclusive(() => settleStep(this.readModels.current, this.projections)))) return;
    }
  }

  /**
   * Refuses read models folded from another log (a store file restored from elsewhere, two logs
   * given one read-model schema), or from this log before it was altered or cut: the last event they
   * folded must still be in this log, unchanged. Read models that folded nothing yet, or were
   * written before the anchor existed, pass.
   */
  private async checkSameLog(store: ReadModelStore): Promise<void> {
    const anchor = await readLogAnchor(store);
    if (!anchor) return;
    const mismatch = await logAnchorMismatch(anchor, this.options.storedLog ?? this.events);
    if (mismatch) throw new ReadModelsOfAnotherLogError(mismatch, this.options.auditStore !== undefined ? { store: this.options.auditStore } : {});
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.lock.then(work);
    this.lock = result.catch(() => undefined);
    return result;
  }
}

function positive(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`projector ${name}: expected a positive integer, got ${String(value)}`);
  return value;
}

/**
 * writes what rebuild instances still hold, in one transaction, then runs every settle step: the
 * store is complete, and the same whatever the batches were, after it
 */
export async function flushRebuild(store: ReadModelStore, projections: readonly Projection[]): Promise<void> {
  if (projections.some((p) => p.flush)) {
    await store.transaction(async (tx) => {
      for (const p of projections) await p.flush?.(tx);
    });
  }
  while (await settleStep(store, projections));
}

/** one transaction in which every projection that has deferred work does one step; true while any has more */
export async function settleStep(store: ReadModelStore, projections: readonly Projection[]): Promise<boolean> {
  if (!projections.some((p) => p.settle)) return false;
  return store.transaction(async (tx) => {
    let more = false;
    for (const p of projections) if (p.settle && (await p.settle(tx))) more = true;
    return more;
  });
}

/**
 * Reads up to `batchSize` events after `after`, `pageSize` at a time, and folds them: projections
 * that fold pages (`foldsPages`) get each page as it is read, the others the whole batch in one
 * `fold` after the last page. Answers the position of the last event read; when the log has
 * nothing past `after`, that is `after` and nothing was folded.
 */
export async function foldBatchInPages(
  events: Pick<EventStore, 'readAll'>,
  after: number,
  batchSize: number,
  pageSize: number,
  projections: readonly Projection[],
  fold: (p: Projection, events: readonly StoredEvent[]) => Promise<void>,
): Promise<number> {
  const keep = projections.some((p) => !p.foldsPages);
  const held: StoredEvent[] = [];
  let last = after;
  let read = 0;
  while (read < batchSize) {
    const page = await events.readAll({ afterPosition: last, maxCount: Math.min(pageSize, batchSize - read) });
    const end = page[page.length - 1];
    if (!end) break;
    for (const p of projections) if (p.foldsPages) await fold(p, page);
    if (keep) for (const e of page) held.push(e);
    last = end.position;
    read += page.length;
  }
  if (last !== after) for (const p of projections) if (!p.foldsPages) await fold(p, held);
  return last;
}

/** the events of `batch` past `from`, the projection's checkpoint, if any */
async function applyPast(p: Projection, from: number, batch: readonly StoredEvent[], tx: ReadModelTransaction): Promise<void> {
  const first = batch[0];
  const last = batch[batch.length - 1];
  if (!first || !last || from >= last.position) return;
  await p.apply(first.position > from ? batch : batch.filter((e) => e.position > from), tx);
}

/** each projection's checkpoint row by name, read in a store or inside a transaction */
export async function readCheckpoints(source: Pick<ReadModelQueries, 'all'>): Promise<Map<string, CheckpointRow>> {
  const rows = await source.all<CheckpointRow>(`SELECT name, version, position FROM ${CHECKPOINTS_TABLE}`);
  return new Map(rows.map((r) => [r.name, r]));
}

/** the projections whose read model was folded by another version of their code (none stored yet is no other version) */
export function foldedByOtherVersions(projections: readonly Projection[], checkpoints: ReadonlyMap<string, CheckpointRow>): Projection[] {
  return projections.filter((p) => {
    const row = checkpoints.get(p.name);
    return row !== undefined && Number(row.version) !== p.version;
  });
}

/** where each projection stands against the log's head, from its checkpoint (position 0 without one) */
export function projectionStatuses(projections: readonly Projection[], checkpoints: ReadonlyMap<string, CheckpointRow>, head: number): ProjectionStatus[] {
  return projections.map((p) => {
    const position = Number(checkpoints.get(p.name)?.position ?? 0);
    return { name: p.name, version: p.version, position, head, lag: Math.max(0, head - position) };
  });
}

async function minCheckpoint(store: ReadModelStore, projections: readonly Projection[]): Promise<number> {
  const checkpoints = await readCheckpoints(store);
  let min = Number.MAX_SAFE_INTEGER;
  for (const p of projections) min = Math.min(min, Number(checkpoints.get(p.name)?.position ?? 0));
  return projections.length === 0 ? 0 : min;
}

const IDLE = Symbol('idle');

/**
 * Groups a one-at-a-time subscription into batches: whatever is already available (up to `max`)
 * goes in one batch, so a burst costs one transaction and a lone live event is applied at once.
 */
export async function* microBatches<T>(source: AsyncIterable<T>, max: number): AsyncGenerator<T[]> {
  const it = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined;
  for (;;) {
    const first = await (pending ?? it.next());
    pending = undefined;
    if (first.done) return;
    const batch: T[] = [first.value];
    while (batch.length < max) {
      const next = it.next();
      const ready = await Promise.race([next, new Promise<typeof IDLE>((resolve) => setImmediate(() => resolve(IDLE)))]);
      if (ready === IDLE) {
        pending = next;
        break;
      }
      if (ready.done) {
        yield batch;
        return;
      }
      batch.push(ready.value);
    }
    yield batch;
  }
}
