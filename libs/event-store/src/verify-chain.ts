import { chainHash, GENESIS_HASH } from './hash-chain';
import type { StoredEvent } from './event-store.port';

export type ChainBreakKind =
  | 'content_altered' // the event's content no longer matches its recorded hash
  | 'rewritten' // the event's content and hash were replaced together: the next event records another hash for it
  | 'predecessor_mismatch' // its recorded predecessor hash is not the previous event's hash
  | 'position_gap' // a position is missing (an event was deleted)
  | 'out_of_order' // positions do not increase (events were swapped or moved)
  | 'revision_gap' // a stream's revisions are not contiguous
  | 'anchor_mismatch' // the event at a position the auditor noted earlier no longer has the hash noted (the log was re-chained)
  | 'truncated'; // the log ends before a position the auditor noted earlier (events were cut from the end)

export interface ChainBreak {
  kind: ChainBreakKind;
  position: number;
  eventId: string;
  streamId: string;
  detail: string;
}

export interface ChainReport {
  ok: boolean;
  eventsChecked: number;
  lastPosition: number;
  lastHash: string;
  firstBreak?: ChainBreak;
}

export interface VerifyOptions {
  /** verifying a part of the log: the position and hash the part continues from */
  afterPosition?: number;
  previousHash?: string;
  /** called every so many events, for progress bars */
  onProgress?: (checked: number, position: number) => void;
}

/**
 * Walks events in global order and reports the first one whose content, order or predecessor
 * does not match. Constant memory apart from one revision counter per stream seen.
 */
export async function verifyChain(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>, options: VerifyOptions = {}): Promise<ChainReport> {
  let expectedPosition = (options.afterPosition ?? 0) + 1;
  let prevHash = options.previousHash ?? GENESIS_HASH;
  let checked = 0;
  // the event before, and the hash before it: a predecessor found rewritten is reported as the break
  let previous: StoredEvent | undefined;
  let hashBeforePrevious = prevHash;
  const nextRevision = new Map<string, number>();
  const report = (firstBreak: ChainBreak): ChainReport => ({
    ok: false,
    eventsChecked: checked,
    lastPosition: expectedPosition - 1,
    lastHash: prevHash,
    firstBreak,
  });

  for await (const e of events) {
    const at = { position: e.position, eventId: e.id, streamId: e.streamId };
    if (e.position < 1) {
      return report({ kind: 'out_of_order', ...at, detail: `position ${e.position} is below 1, where every log begins: an event was put before the first` });
    }
    if (e.position < expectedPosition) {
      return report({ kind: 'out_of_order', ...at, detail: `position ${e.position} came after ${expectedPosition - 1}` });
    }
    if (e.position > expectedPosition) {
      return report({
        kind: 'position_gap',
        ...at,
        detail:
          `positions ${expectedPosition}..${e.position - 1} are missing here (deleted, or moved further on); ` +
          `the event after them records its predecessor's hash as ${e.prevHash} (search an earlier export for it)`,
      });
    }
    if (e.prevHash !== prevHash) {
      if (previous !== undefined && chainHash(prevHash, e) !== e.hash && chainHash(e.prevHash, e) === e.hash) {
        // this event is intact as recorded and names another hash for the event before it: that
        // event's content was replaced and its hash computed again, so it is the last one altered
        return {
          ok: false,
          eventsChecked: checked - 1,
          lastPosition: previous.position - 1,
          lastHash: hashBeforePrevious,
          firstBreak: {
            kind: 'rewritten',
            position: previous.position,
            eventId: previous.id,
            streamId: previous.streamId,
            detail: `its content and hash were replaced: the next event (position ${e.position}, intact) records its hash as ${e.prevHash.slice(0, 12)}…, it has ${prevHash.slice(0, 12)}…`,
          },
        };
      }
      const only = chainHash(prevHash, e) === e.hash ? ' (only that field was changed: the content hashes with the log\'s predecessor)' : '';
      return report({ kind: 'predecessor_mismatch', ...at, detail: `records predecessor ${e.prevHash.slice(0, 12)}…, the log has ${prevHash.slice(0, 12)}…${only}` });
    }
    if (chainHash(prevHash, e) !== e.hash) {
      return report({ kind: 'content_altered', ...at, detail: 'content does not match the recorded hash' });
    }
    const wantRevision = nextRevision.get(e.streamId) ?? (options.afterPosition ? e.revision : 0);
    if (e.revision !== wantRevision) {
      return report({ kind: 'revision_gap', ...at, detail: `revision ${e.revision}, expected ${wantRevision}` });
    }
    nextRevision.set(e.streamId, e.revision + 1);
    hashBeforePrevious = prevHash;
    previous = e;
    prevHash = e.hash;
    expectedPosition = e.position + 1;
    checked += 1;
    if (options.onProgress && checked % 10_000 === 0) options.onProgress(checked, e.position);
  }
  return { ok: true, eventsChecked: checked, lastPosition: expectedPosition - 1, lastHash: prevHash };
}
