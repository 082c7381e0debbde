import type { EventStore, StoredEvent } from '@clientele/event-store';
import type { ReadModelQueries, ReadModelTransaction } from './read-model-store';

/** the last event the read models folded, as the log had it: a log that differs there is another log, or was altered */
export const LOG_ANCHOR_TABLE = 'projection_log_anchor';

export const CREATE_LOG_ANCHOR_TABLE = `CREATE TABLE IF NOT EXISTS ${LOG_ANCHOR_TABLE} (id INTEGER PRIMARY KEY, position BIGINT NOT NULL, hash TEXT NOT NULL)`;

/**
 * Records `event` as the last one folded, in the transaction that moves the checkpoints past it;
 * moved forward only (engines sharing read models may commit out of order).
 */
export async function saveLogAnchor(tx: ReadModelTransaction, event: Pick<StoredEvent, 'position' | 'hash'>): Promise<void> {
  await tx.run(
    `INSERT INTO ${LOG_ANCHOR_TABLE} (id, position, hash) VALUES (1, ?, ?)
     ON CONFLICT (id) DO UPDATE SET position = excluded.position, hash = excluded.hash WHERE ${LOG_ANCHOR_TABLE}.position < excluded.position`,
    [event.position, event.hash],
  );
}

/** The position and hash of the last event a set of read models folded. */
export interface LogAnchor {
  position: number;
  hash: string;
}

/**
 * How a log departs from the anchor of read models folded from it: another hash at the anchor's
 * position, or no event there because the log ends before it.
 */
export type LogAnchorMismatch =
  | { kind: 'other_hash'; anchor: LogAnchor; hash: string }
  | { kind: 'ends_before'; anchor: LogAnchor; head: number };

/**
 * The anchor a read-model store keeps; `undefined` when it folded nothing yet or was written before
 * the anchor existed (no table). Reads only: a store that has no anchor table is not given one.
 */
export async function readLogAnchor(store: ReadModelQueries): Promise<LogAnchor | undefined> {
  const table =
    store.dialect === 'sqlite'
      ? await store.get(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`, [LOG_ANCHOR_TABLE])
      : await store.get(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`, [LOG_ANCHOR_TABLE]);
  if (!table) return undefined;
  const row = await store.get<{ position: number | string; hash: string }>(`SELECT position, hash FROM ${LOG_ANCHOR_TABLE} WHERE id = 1`);
  return row ? { position: Number(row.position), hash: row.hash } : undefined;
}

/** whether the event at the anchor's position is still in `log` with the anchor's hash; the mismatch when it is not */
export async function logAnchorMismatch(anchor: LogAnchor, log: Pick<EventStore, 'readAll' | 'headPosition'>): Promise<LogAnchorMismatch | undefined> {
  const [event] = await log.readAll({ afterPosition: anchor.position - 1, maxCount: 1 });
  if (event?.position === anchor.position) return event.hash === anchor.hash ? undefined : { kind: 'other_hash', anchor, hash: event.hash };
  return { kind: 'ends_before', anchor, head: await log.headPosition() };
}

/** what a refusal over a mismatched anchor tells the operator to do next */
export interface LogAnchorAdvice {
  /**
   * this log as `clientele audit verify --store` takes it (`sqlite:<file>`, `postgres:<url>#<schema>`),
   * so the refusal gives the whole command; without it the command relies on the environment
   */
  store?: string;
  /**
   * who refuses: the engine (the default: it does not start, or does not serve a generation) or
   * `clientele replay` (which names its option to go ahead)
   */
  refusedBy?: 'engine' | 'replay';
}

/**
 * The read models were folded from a log that is not this one as it stands: another log, or this
 * log altered or cut after they folded it. The anchor cannot tell the two apart; `audit verify`
 * with the anchor as `--expect` shows where the log departs from it, and the read models are the
 * only witness of the log they folded, so the message says to verify before any replay.
 */
export class ReadModelsOfAnotherLogError extends Error {
  /** the position of the last event the read models folded */
  readonly position: number;
  /** its hash when they folded it */
  readonly expectedHash: string;
  /** what this log has there, in words */
  readonly found: string;

  constructor(
    readonly mismatch: LogAnchorMismatch,
    advice: LogAnchorAdvice = {},
  ) {
    super(logAnchorMismatchMessage(mismatch, advice));
    this.name = 'ReadModelsOfAnotherLogError';
    this.position = mismatch.anchor.position;
    this.expectedHash = mismatch.anchor.hash;
    this.found = foundText(mismatch);
  }
}

/** the command that holds this log to the anchor, as an auditor types it */
export function verifyAgainstAnchorCommand(anchor: LogAnchor, store?: string): string {
  return `clientele audit verify${store !== undefined ? ` --store ${store}` : ''} --expect ${anchor.position}:${anchor.hash}`;
}

function foundText(mismatch: LogAnchorMismatch): string {
  return mismatch.kind === 'other_hash'
    ? `has hash ${mismatch.hash} there`
    : `has no event at that position (its head is ${mismatch.head})`;
}

/**
 * One message, for a log line: what differs, both explanations, the command that checks, and why
 * a replay must wait for that check.
 */
export function logAnchorMismatchMessage(mismatch: LogAnchorMismatch, advice: LogAnchorAdvice = {}): string {
  const { anchor } = mismatch;
  const byReplay = advice.refusedBy === 'replay';
  return (
    `the read models do not match this log: the last event they folded, at position ${anchor.position}, had hash ${anchor.hash}, ` +
    `and this log ${foundText(mismatch)}. Either they were folded from another log, or this log was altered or cut after they folded it. ` +
    `Check this log before anything else: \`${verifyAgainstAnchorCommand(anchor, advice.store)}\` reports where it departs from what they folded. ` +
    (byReplay
      ? 'A replay replaces these read models, the only witness of the log they folded: once the check shows this log is the one to serve, run `clientele replay --accept-other-log`; ' +
        "if they are another log's read models, point CLIENTELE_DATA_DIR or CLIENTELE_READ_MODELS_PG_SCHEMA at this log's instead"
      : "Do not replay before that: `clientele replay` replaces these read models, the only witness of the log they folded. If they are another log's read models, " +
        "point the engine at this log's (CLIENTELE_DATA_DIR, CLIENTELE_READ_MODELS_PG_SCHEMA)")
  );
}
