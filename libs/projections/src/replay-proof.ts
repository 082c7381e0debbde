import type { EventStore, StoredEvent } from '@clientele/event-store';
import { CREATE_LOG_ANCHOR_TABLE, saveLogAnchor } from './log-anchor';
import { CHECKPOINTS_TABLE, flushRebuild, foldBatchInPages } from './projector';
import { rebuildLog } from './read-ahead-log';
import { digest, tableRows, type CanonicalRow } from './read-model-digest';
import type { Projection, ReadModelQueries, ReadModelStore } from './read-model-store';

export interface CheckpointPosition {
  version: number;
  position: number;
}

/** The checkpoint of every read model in a store: which projection version folded the log up to where. */
export async function readCheckpointPositions(store: ReadModelQueries): Promise<Map<string, CheckpointPosition>> {
  const exists =
    store.dialect === 'sqlite'
      ? await store.get(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`, [CHECKPOINTS_TABLE])
      : await store.get(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`, [CHECKPOINTS_TABLE]);
  if (!exists) return new Map();
  const rows = await store.all<{ name: string; version: number | string; position: number | string }>(
    `SELECT name, version, position FROM ${CHECKPOINTS_TABLE}`,
  );
  return new Map(rows.map((r) => [r.name, { version: Number(r.version), position: Number(r.position) }]));
}

export interface ReplayOptions {
  /**
   * the last global position each projection folds (by projection name); a projection missing
   * from the map folds the whole log. Default: the whole log for every projection.
   */
  upTo?: ReadonlyMap<string, number>;
  /** events read per transaction; default 25,000 as in a projector rebuild */
  batchSize?: number;
  /**
   * the log is read this many events at a time within a transaction (default 1,000, at most
   * `batchSize`); projections that fold pages (`foldsPages`) take each page as it is read, as in a
   * projector rebuild
   */
  pageSize?: number;
  /**
   * read the log ahead of the fold where the event store can (`readPagesAhead`, as a projector
   * rebuild does); default true
   */
  readAhead?: boolean;
  onProgress?: (position: number) => void;
}

export interface ReplayedProjection {
  name: string;
  version: number;
  /** events of the log handed to this projection (it skips the types it does not fold) */
  eventsRead: number;
  /** the global position of the last of them (0 for an empty log) */
  position: number;
}

const NOT_EMPTY = 'replay: the scratch store already holds read models; replay needs an empty store';

/**
 * Folds the log from position 0 into an empty store, each projection up to its own position, the
 * way the projector does: consecutive batches in global order, each batch one transaction that
 * also writes the checkpoints (so the store can be promoted as a generation afterwards).
 */
export async function replayProjections(
  events: Pick<EventStore, 'readAll' | 'headPosition'>,
  scratch: ReadModelStore,
  readModels: readonly Projection[],
  options: ReplayOptions = {},
): Promise<ReplayedProjection[]> {
  const batchSize = options.batchSize ?? 25_000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`replay batchSize: expected a positive integer, got ${String(batchSize)}`);
  // checked before anything is written: a refusal leaves the scratch store untouched
  const pageSize = Math.min(batchSize, options.pageSize ?? 1000);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new Error(`replay pageSize: expected a positive integer, got ${String(options.pageSize)}`);
  const head = await events.headPosition();
  // an empty store nobody reads yet, folded from position 0: the same fast path as a projector rebuild
  const projections = readModels.map((p) => p.forRebuild?.() ?? p);
  const limits = projections.map((p) => Math.min(options.upTo?.get(p.name) ?? head, head));
  const counts = projections.map(() => 0);
  const reached = projections.map(() => 0);
  // bulk mode trades crash safety for speed, so only once the store is known to hold no read models
  if ((await readCheckpointPositions(scratch)).size > 0) throw new Error(NOT_EMPTY);
  await scratch.beginBulkLoad?.();
  await scratch.transaction(async (tx) => {
    await tx.exec(`CREATE TABLE IF NOT EXISTS ${CHECKPOINTS_TABLE} (name TEXT PRIMARY KEY, version BIGINT NOT NULL, position BIGINT NOT NULL)`);
    const present = await tx.get<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${CHECKPOINTS_TABLE}`);
    if (Number(present?.n ?? 0) > 0) throw new Error(NOT_EMPTY);
    // the last event folded, as the projector records it: the generation knows which log it was folded from
    await tx.exec(CREATE_LOG_ANCHOR_TABLE);
    for (const p of projections) {
      await p.migrate(tx);
      await tx.run(`INSERT INTO ${CHECKPOINTS_TABLE} (name, version, position) VALUES (?, ?, 0)`, [p.name, p.version]);
    }
  });
  const end = Math.max(0, ...limits);
  let after = 0;
  const log = rebuildLog(events, after, head, pageSize, options.readAhead ?? true);
  try {
    await replayBatches();
  } finally {
    await log.close();
  }
  await flushRebuild(scratch, projections);
  await scratch.endBulkLoad?.();
  return projections.map((p, i) => ({ name: p.name, version: p.version, eventsRead: counts[i] ?? 0, position: reached[i] ?? 0 }));

  async function replayBatches(): Promise<void> {
    while (after < end) {
      const last = await scratch.transaction(async (tx) => {
        const before = [...reached];
        let lastFolded: StoredEvent | undefined;
        /** the events up to the projection's own limit */
        const fold = async (i: number, p: Projection, batch: readonly StoredEvent[]) => {
          const limit = limits[i] ?? 0;
          const lastOfBatch = batch[batch.length - 1];
          const mine = !lastOfBatch || lastOfBatch.position <= limit ? batch : batch.filter((e) => e.position <= limit);
          const lastOfMine = mine[mine.length - 1];
          if (!lastOfMine) return;
          await p.apply(mine, tx);
          counts[i] = (counts[i] ?? 0) + mine.length;
          reached[i] = lastOfMine.position;
          if (!lastFolded || lastOfMine.position > lastFolded.position) lastFolded = lastOfMine;
        };
        const reachedNow = await foldBatchInPages(log, after, batchSize, pageSize, projections, (p, batch) => fold(projections.indexOf(p), p, batch));
        for (const [i, p] of projections.entries()) {
          if (reached[i] !== before[i]) await tx.run(`UPDATE ${CHECKPOINTS_TABLE} SET position = ? WHERE name = ?`, [reached[i] ?? 0, p.name]);
        }
        if (lastFolded) await saveLogAnchor(tx, lastFolded);
        return reachedNow;
      });
      if (last === after) break;
      after = last;
      options.onProgress?.(Math.min(after, end));
    }
  }
}

export type CanonicalValue = string | number | null;

/** The first row where two stores disagree; a row missing on one side is `undefined` there. */
export interface RowDifference {
  table: string;
  key: Record<string, CanonicalValue>;
  live?: Record<string, CanonicalValue>;
  replayed?: Record<string, CanonicalValue>;
}

/**
 * Walks each table of the projection in both stores side by side, in primary-key order, and
 * answers the first row that is missing on one side or differs in any column.
 */
export async function firstDifference(
  live: ReadModelQueries,
  replayed: ReadModelQueries,
  projection: Pick<Projection, 'tables'>,
): Promise<RowDifference | undefined> {
  for (const table of projection.tables) {
    const left = tableRows(live, table);
    const right = tableRows(replayed, table);
    const [l, r] = await Promise.all([left.columns, right.columns]);
    const liveIt = left[Symbol.asyncIterator]();
    const replayedIt = right[Symbol.asyncIterator]();
    const named = (names: string[], row: CanonicalRow) => Object.fromEntries(names.map((n, i) => [n, row.values[i] ?? null]));
    if (JSON.stringify(l.names) !== JSON.stringify(r.names)) {
      return { table, key: {}, live: { columns: l.names.join(',') }, replayed: { columns: r.names.join(',') } };
    }
    let a = await liveIt.next();
    let b = await replayedIt.next();
    while (!a.done || !b.done) {
      const order = a.done ? 1 : b.done ? -1 : compareKeys(a.value.key, b.value.key, l.key);
      if (order < 0 && !a.done) {
        await closeBoth(liveIt, replayedIt);
        return { table, key: a.value.key, live: named(l.names, a.value) };
      }
      if (order > 0 && !b.done) {
        await closeBoth(liveIt, replayedIt);
        return { table, key: b.value.key, replayed: named(r.names, b.value) };
      }
      if (!a.done && !b.done) {
        if (JSON.stringify(a.value.values) !== JSON.stringify(b.value.values)) {
          await closeBoth(liveIt, replayedIt);
          return { table, key: a.value.key, live: named(l.names, a.value), replayed: named(r.names, b.value) };
        }
      }
      a = await liveIt.next();
      b = await replayedIt.next();
    }
  }
  return undefined;
}

async function closeBoth(a: AsyncIterator<unknown>, b: AsyncIterator<unknown>): Promise<void> {
  await Promise.all([a.return?.(), b.return?.()]);
}

/** the stores' own order: numbers numerically, text bytewise (PostgreSQL is read with COLLATE "C") */
function compareKeys(a: Record<string, CanonicalValue>, b: Record<string, CanonicalValue>, key: string[]): number {
  for (const k of key) {
    const x = a[k] ?? null;
    const y = b[k] ?? null;
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    return Buffer.compare(Buffer.from(String(x)), Buffer.from(String(y)));
  }
  return 0;
}

export interface ReplayComparison {
  name: string;
  /** the projection version that folded the live store, and the code's */
  liveVersion: number | undefined;
  version: number;
  eventsRead: number;
  position: number;
  liveDigest: string;
  replayedDigest: string;
  match: boolean;
  firstDifference?: RowDifference;
}

/**
 * The replay proof: reads the live checkpoints, folds exactly the same events (each projection up
 * to its own checkpoint) into the empty `scratch` store, and compares digests; where they differ,
 * finds the first differing row. A match proves the live read models are what the log says.
 */
/**
 * The live read models say they folded events past the end of the log: events were removed from
 * the end of the log (or the read models belong to another log). A replay cannot reproduce what is
 * no longer there, so it is a finding about the log, made before any replay.
 */
export class LogEndsBeforeReadModelsError extends Error {
  constructor(
    readonly head: number,
    readonly readModels: readonly { name: string; position: number }[],
  ) {
    super(
      `the log ends at position ${head}, but the live read models folded it up to ${readModels.map((r) => `${r.position} (${r.name})`).join(', ')}: ` +
        'events were cut from the end of the log, or these read models belong to another one; run audit verify with --read-models (the anchor these read models keep) or --expect at a position noted earlier',
    );
    this.name = 'LogEndsBeforeReadModelsError';
  }
}

export async function proveReplay(
  events: Pick<EventStore, 'readAll' | 'headPosition'>,
  live: ReadModelQueries,
  scratch: ReadModelStore,
  projections: readonly Projection[],
  options: Omit<ReplayOptions, 'upTo'> = {},
): Promise<ReplayComparison[]> {
  const checkpoints = await readCheckpointPositions(live);
  const missing = projections.filter((p) => !checkpoints.has(p.name)).map((p) => p.name);
  if (missing.length > 0) {
    throw new Error(`the live read models have no checkpoint for ${missing.join(', ')}: the projector has not built them yet`);
  }
  // a replay runs every settle step, so a live store that still holds deferred work would differ in those rows only
  for (const p of projections) {
    if (await p.unsettled?.(live)) {
      throw new Error(`the live read model ${p.name} still holds work the projector does after catching up (e.g. stale month-end snapshots): start the engine, let it catch up with the log, then run again`);
    }
  }
  const upTo = new Map([...checkpoints].map(([name, c]) => [name, c.position]));
  // read models that folded further than the log now goes: the log lost its end, not the read models their way
  const head = await events.headPosition();
  const ahead = [...upTo].filter(([, position]) => position > head);
  if (ahead.length > 0) {
    throw new LogEndsBeforeReadModelsError(head, ahead.map(([name, position]) => ({ name, position })));
  }
  const replayed = await replayProjections(events, scratch, projections, { ...options, upTo });
  const results: ReplayComparison[] = [];
  const moved = async (): Promise<void> => {
    const now = await readCheckpointPositions(live);
    for (const [name, c] of checkpoints) {
      if (now.get(name)?.position !== c.position) {
        throw new Error(`the live read model ${name} moved from position ${c.position} to ${String(now.get(name)?.position)} during the replay: stop the projector (or run again when the log is quiet)`);
      }
    }
  };
  await moved();
  for (const [i, p] of projections.entries()) {
    const run = replayed[i];
    const liveCheckpoint = checkpoints.get(p.name);
    const [liveDigest, replayedDigest] = await Promise.all([digest(live, p), digest(scratch, p)]);
    const match = liveDigest === replayedDigest;
    const difference = match ? undefined : await firstDifference(live, scratch, p);
    results.push({
      name: p.name,
      liveVersion: liveCheckpoint?.version,
      version: p.version,
      eventsRead: run?.eventsRead ?? 0,
      position: liveCheckpoint?.position ?? 0,
      liveDigest,
      replayedDigest,
      match,
      ...(difference ? { firstDifference: difference } : {}),
    });
  }
  // a live store that moved while it was read would be compared at no single position
  await moved();
  return results;
}
