import type { StoredEvent } from './event-store.port';
import { chainHash, GENESIS_HASH } from './hash-chain';
import { anchorWatch, parseChainAnchor } from './verify-anchor';
import { verifyChain } from './verify-chain';

function chained(n: number, tweak = -1): StoredEvent[] {
  const log: StoredEvent[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const base = {
      id: `e${i}`,
      type: 'TouchpointRecorded',
      data: { n: i === tweak ? -i : i },
      metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 },
      streamId: 'customer-a',
      revision: i - 1,
      position: i,
      recordedAt: '2026-01-01T00:00:01.000Z',
    };
    const hash = chainHash(prev, base);
    log.push({ ...base, hash, prevHash: prev });
    prev = hash;
  }
  return log;
}

async function verifyAgainst(log: StoredEvent[], anchorOf: StoredEvent) {
  const watch = anchorWatch({ position: anchorOf.position, hash: anchorOf.hash });
  return watch.judge(await verifyChain(watch.tap(log)));
}

describe('verification against a noted anchor', () => {
  const original = chained(10);

  it('passes when the noted event is still there with its hash', async () => {
    expect(await verifyAgainst(original, original[6]!)).toMatchObject({ ok: true, eventsChecked: 10 });
  });

  it('reports a log cut before the noted position as truncated', async () => {
    const report = await verifyAgainst(original.slice(0, 5), original[9]!);
    expect(report).toMatchObject({ ok: false, firstBreak: { kind: 'truncated', position: 10 } });
  });

  it('reports a log re-chained from scratch at the noted position', async () => {
    // given the same log rebuilt with event 3 changed: consistent with itself
    const rebuilt = chained(10, 3);
    expect((await verifyChain(rebuilt)).ok).toBe(true);
    const report = await verifyAgainst(rebuilt, original[6]!);
    expect(report).toMatchObject({ ok: false, firstBreak: { kind: 'anchor_mismatch', position: 7, eventId: 'e7' } });
    // and the counts stop before the break they report, not at the end of the walk
    expect(report).toMatchObject({ eventsChecked: 6, lastPosition: 6, lastHash: rebuilt[5]!.hash });
  });

  it('keeps an earlier break as the first thing wrong', async () => {
    const damaged = original.filter((e) => e.position !== 4);
    const report = await verifyAgainst(damaged, original[8]!);
    expect(report.firstBreak).toMatchObject({ kind: 'position_gap', position: 5 });
  });

  it('reads an anchor as printed, and refuses anything else naming the option', () => {
    const hash = 'a'.repeat(64);
    expect(parseChainAnchor(`12:${hash}`)).toEqual({ position: 12, hash });
    expect(() => parseChainAnchor(`0:${hash}`)).toThrow(/--expect: expected <position>:<64 hex digit hash>/);
    expect(() => parseChainAnchor('12')).toThrow(/got "12"/);
  });
});
