import type { EventStore, StoredEvent } from './event-store.port';
import { chainHash, GENESIS_HASH } from './hash-chain';
import type { ChainBreak, ChainReport } from './verify-chain';

export interface VerifyStreamOptions {
  /**
   * every event must belong to this stream; an intact event of another one means the input is not
   * this stream's events (it throws, as for a whole-log export), one whose stream id was edited is altered
   */
  streamId?: string;
  /**
   * Where the stream's events sit in the global log. When given, each event is checked against its
   * neighbours there: the event before it must carry the hash it records as predecessor, and the
   * event after it must record its hash. Without it only the events' own hashes and revisions are checked.
   */
  log?: Pick<EventStore, 'readAll'>;
  onProgress?: (checked: number, position: number) => void;
}

/**
 * Verifies one stream without walking the whole log: each event's content against its recorded
 * hash, revisions contiguous from 0, positions increasing, and (given the log) the links to its
 * global neighbours. It cannot see an event cut from the end of the stream, or damage to other
 * streams; `verifyChain` over the whole log does.
 */
export async function verifyStreamEvents(
  events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>,
  options: VerifyStreamOptions = {},
): Promise<ChainReport> {
  let checked = 0;
  let lastPosition = 0;
  let lastHash = GENESIS_HASH;
  let nextRevision = 0;
  const broken = (firstBreak: ChainBreak): ChainReport => ({ ok: false, eventsChecked: checked, lastPosition, lastHash, firstBreak });

  for await (const e of events) {
    const at = { position: e.position, eventId: e.id, streamId: e.streamId };
    if (options.streamId !== undefined && e.streamId !== options.streamId) {
      // an intact event of another stream, first or later: the wrong file (a whole-log export) or a
      // mistyped stream id, not an alteration; only an event whose stream id was edited fails its hash
      if (chainHash(e.prevHash, e) === e.hash) {
        throw new Error(
          checked === 0
            ? `the events given start with stream ${e.streamId}, not ${options.streamId}: not the events of stream ${options.streamId} (a whole-log export is verified without --stream)`
            : `the events given hold an intact event of stream ${e.streamId} at position ${e.position}, after ${checked} of stream ${options.streamId}: not the events of stream ${options.streamId} alone (a whole-log export is verified without --stream)`,
        );
      }
      return broken({ kind: 'content_altered', ...at, detail: `belongs to stream ${e.streamId}, not ${options.streamId}` });
    }
    if (e.position < 1) {
      return broken({ kind: 'out_of_order', ...at, detail: `position ${e.position} is below 1, where every log begins: an event was put before the first` });
    }
    if (e.position <= lastPosition) {
      return broken({ kind: 'out_of_order', ...at, detail: `position ${e.position} came after ${lastPosition}` });
    }
    if (chainHash(e.prevHash, e) !== e.hash) {
      return broken({ kind: 'content_altered', ...at, detail: 'content does not match the recorded hash' });
    }
    if (e.revision !== nextRevision) {
      return broken({ kind: 'revision_gap', ...at, detail: `revision ${e.revision}, expected ${nextRevision}` });
    }
    if (options.log) {
      const linkBreak = await checkLinks(options.log, e);
      if (linkBreak) return broken(linkBreak);
    }
    checked += 1;
    lastPosition = e.position;
    lastHash = e.hash;
    nextRevision = e.revision + 1;
    if (options.onProgress && checked % 1000 === 0) options.onProgress(checked, e.position);
  }
  return { ok: true, eventsChecked: checked, lastPosition, lastHash };
}

async function checkLinks(log: Pick<EventStore, 'readAll'>, e: StoredEvent): Promise<ChainBreak | undefined> {
  const at = { position: e.position, eventId: e.id, streamId: e.streamId };
  const around = await log.readAll({ afterPosition: Math.max(0, e.position - 2), maxCount: 3 });
  const before = around.find((n) => n.position === e.position - 1);
  const self = around.find((n) => n.position === e.position);
  const after = around.find((n) => n.position === e.position + 1);
  // the first event after it in the log, wherever it is: a hole right after this event is a deletion
  const next = around.find((n) => n.position > e.position);
  if (!self || self.id !== e.id) {
    return { kind: 'content_altered', ...at, detail: `the log holds ${self ? `event ${self.id}` : 'no event'} at this position` };
  }
  const predecessor = e.position === 1 ? GENESIS_HASH : before?.hash;
  if (predecessor === undefined) {
    return { kind: 'position_gap', ...at, detail: `position ${e.position - 1} is missing from the log` };
  }
  if (e.prevHash !== predecessor) {
    return { kind: 'predecessor_mismatch', ...at, detail: `records predecessor ${e.prevHash.slice(0, 12)}…, the log has ${predecessor.slice(0, 12)}…` };
  }
  if (next !== undefined && next !== after) {
    return {
      kind: 'position_gap',
      position: next.position,
      eventId: next.id,
      streamId: next.streamId,
      detail:
        `positions ${e.position + 1}..${next.position - 1} are missing from the log after this stream's event at ${e.position}; ` +
        `the event after them records its predecessor's hash as ${next.prevHash} (search an earlier export for it)`,
    };
  }
  if (after && after.prevHash !== e.hash) {
    // the event after it is intact as recorded and names another hash for it: this event's content
    // and hash were replaced together, as the whole-log verification reports it
    if (chainHash(after.prevHash, after) === after.hash) {
      return {
        kind: 'rewritten',
        ...at,
        detail: `its content and hash were replaced: the next event in the log (position ${after.position}, intact) records its hash as ${after.prevHash.slice(0, 12)}…, it has ${e.hash.slice(0, 12)}…`,
      };
    }
    return {
      kind: 'predecessor_mismatch',
      position: after.position,
      eventId: after.id,
      streamId: after.streamId,
      detail: `the next event in the log does not record event ${e.id} as its predecessor`,
    };
  }
  return undefined;
}
