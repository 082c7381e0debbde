import type { StoredEvent } from './event-store.port';
import type { ChainReport } from './verify-chain';

/**
 * A position and hash an auditor wrote down after an earlier verification. The chain alone cannot
 * show events cut from the end of the log, nor a log rewritten and re-chained from scratch; a
 * noted anchor can: the event at that position must still be there with that hash.
 */
export interface ChainAnchor {
  position: number;
  hash: string;
}

export function parseChainAnchor(text: string, field = '--expect'): ChainAnchor {
  const match = /^(\d+):([0-9a-f]{64})$/.exec(text.trim());
  if (!match || Number(match[1]) < 1) {
    throw new Error(`${field}: expected <position>:<64 hex digit hash> as printed by an earlier verification, got ${JSON.stringify(text)}`);
  }
  return { position: Number(match[1]), hash: match[2]! };
}

/** Watches the events a verification walks and judges its report against the anchor. */
export function anchorWatch(anchor: ChainAnchor): {
  tap(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): AsyncIterable<StoredEvent>;
  judge(report: ChainReport): ChainReport;
} {
  let seen: StoredEvent | undefined;
  return {
    async *tap(events) {
      for await (const e of events) {
        if (e.position === anchor.position) seen = e;
        yield e;
      }
    },
    judge(report) {
      // a break before the anchor is the first thing wrong; report it as it is
      if (!report.ok && report.firstBreak && report.firstBreak.position <= anchor.position) return report;
      if (seen === undefined) {
        return {
          ...report,
          ok: false,
          firstBreak: {
            kind: 'truncated',
            position: anchor.position,
            eventId: '',
            streamId: '',
            detail: `the log ends at position ${report.lastPosition}, before the noted position ${anchor.position}`,
          },
        };
      }
      if (seen.hash !== anchor.hash) {
        // the walk went past the anchor; the report stops before it, where the chain rules last held
        return {
          ok: false,
          eventsChecked: Math.min(report.eventsChecked, anchor.position - 1),
          lastPosition: anchor.position - 1,
          lastHash: seen.prevHash,
          firstBreak: {
            kind: 'anchor_mismatch',
            position: anchor.position,
            eventId: seen.id,
            streamId: seen.streamId,
            detail: `hash ${seen.hash.slice(0, 12)}…, noted ${anchor.hash.slice(0, 12)}…: the log up to here was rewritten`,
          },
        };
      }
      return report;
    },
  };
}

/**
 * Several noted anchors at once (each `--expect`): every one is checked, and the report is judged
 * by the first, in log order, that fails; two different hashes noted for one position are refused.
 */
export function anchorsWatch(anchors: readonly ChainAnchor[]): ReturnType<typeof anchorWatch> {
  const byPosition = new Map<number, ChainAnchor>();
  for (const anchor of anchors) {
    const noted = byPosition.get(anchor.position);
    if (noted && noted.hash !== anchor.hash) {
      throw new Error(`--expect: position ${anchor.position} is noted twice, with hashes ${noted.hash} and ${anchor.hash}; give the one noted from the run you trust`);
    }
    byPosition.set(anchor.position, anchor);
  }
  const watches = [...byPosition.values()].sort((a, b) => a.position - b.position).map(anchorWatch);
  return {
    tap(events) {
      return watches.reduce<AsyncIterable<StoredEvent> | Iterable<StoredEvent>>((tapped, w) => w.tap(tapped), events) as AsyncIterable<StoredEvent>;
    },
    judge(report) {
      for (const w of watches) {
        const judged = w.judge(report);
        if (judged !== report) return judged;
      }
      return report;
    },
  };
}
