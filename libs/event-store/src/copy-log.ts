import type { EventStore, StoredEvent } from './event-store.port';
import type { ImportTarget } from './import-stored';
import { eventsOfLog } from './read-in-batches';

/** The target already holds events that are not the source's: copying on would mix two logs. */
export class LogMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogMismatchError';
  }
}

export interface CopyLogProgress {
  /** events copied by this run */
  copied: number;
  /** events this run has to copy: the source's head when it started minus where the target stood */
  total: number;
  /** the target's head */
  position: number;
}

export interface CopyLogOptions {
  /** events read and written per transaction; default 5,000 */
  batchSize?: number;
  /** after each committed batch */
  onProgress?: (progress: CopyLogProgress) => void;
}

export interface CopyLogResult {
  /** where the target stood before this run (0 for a fresh target; more when resuming) */
  resumedAfter: number;
  copied: number;
  /** the target's head and its hash after the run */
  head: number;
  lastHash: string;
}

/**
 * Checks that the target's log is a prefix of the source's, so copying can continue after it.
 * Comparing the hash at the target's head is enough: that hash covers every event before it
 * (the final verification of the target then proves its chain is whole).
 */
export async function assertTargetContinuesSource(
  source: Pick<EventStore, 'readAll'> & Partial<Pick<EventStore, 'headPosition'>>,
  target: Pick<EventStore, 'readAll' | 'headPosition'>,
): Promise<number> {
  const head = await target.headPosition();
  if (head === 0) return 0;
  const [ours] = await target.readAll({ afterPosition: head - 1, maxCount: 1 });
  const [theirs] = await source.readAll({ afterPosition: head - 1, maxCount: 1 });
  if (!ours) throw new LogMismatchError(`the target reports head ${head} but holds no event there`);
  if (!theirs) {
    // the source's whole log at the start of the target's: the target went on (written to after an earlier migration)
    const sourceHead = (await source.headPosition?.()) ?? 0;
    const [sourceLast] = sourceHead > 0 ? await source.readAll({ afterPosition: sourceHead - 1, maxCount: 1 }) : [];
    const [targetThere] = sourceHead > 0 ? await target.readAll({ afterPosition: sourceHead - 1, maxCount: 1 }) : [];
    if (sourceLast && targetThere && sourceLast.hash === targetThere.hash && sourceLast.id === targetThere.id) {
      throw new LogMismatchError(
        `the target is ahead of the source: it holds ${head} events, the source ${sourceHead}, and the source's are its first ${sourceHead} ` +
          '(events were written to the target after an earlier migration); there is nothing to copy',
      );
    }
    throw new LogMismatchError(`the target already holds ${head} events and the source has no event at position ${head}: the target holds a different log`);
  }
  if (theirs.hash !== ours.hash || theirs.id !== ours.id) {
    throw new LogMismatchError(
      `the target already holds a different log: at position ${head} it has event ${ours.id} (hash ${ours.hash.slice(0, 12)}…), ` +
        `the source has ${theirs.id} (hash ${theirs.hash.slice(0, 12)}…)`,
    );
  }
  return head;
}

/**
 * Copies the source's log into the target verbatim (ids, positions, revisions, record times,
 * metadata, hashes), one transaction per batch. Resumable: a run continues after the target's
 * head once that head is shown to be the source's; an interrupted run leaves whole batches only.
 * Read the source through its raw store, never the personal-data view: the chain covers the
 * encrypted form.
 */
export async function copyLog(source: Pick<EventStore, 'readAll' | 'headPosition'>, target: ImportTarget, options: CopyLogOptions = {}): Promise<CopyLogResult> {
  const batchSize = options.batchSize ?? 5000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${String(batchSize)}`);
  const resumedAfter = await assertTargetContinuesSource(source, target);
  const total = Math.max(0, (await source.headPosition()) - resumedAfter);
  let copied = 0;
  let head = resumedAfter;
  let lastHash = '';
  let batch: StoredEvent[] = [];
  const flush = async (): Promise<void> => {
    await target.importStored(batch);
    const last = batch[batch.length - 1]!;
    copied += batch.length;
    head = last.position;
    lastHash = last.hash;
    batch = [];
    options.onProgress?.({ copied, total: Math.max(total, copied), position: head });
  };
  for await (const event of eventsOfLog(source, { afterPosition: resumedAfter, batchSize })) {
    batch.push(event);
    if (batch.length >= batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  if (lastHash === '' && head > 0) {
    const [last] = await target.readAll({ afterPosition: head - 1, maxCount: 1 });
    lastHash = last?.hash ?? '';
  }
  return { resumedAfter, copied, head, lastHash };
}
