import { chainHash, GENESIS_HASH } from './hash-chain';
import type { StoredEvent } from './event-store.port';
import { verifyChain } from './verify-chain';

/** A correctly chained log of `n` events over two streams, built the way a store builds it. */
function chainedLog(n: number): StoredEvent[] {
  const log: StoredEvent[] = [];
  const revisions = new Map<string, number>();
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const streamId = i % 2 ? 'customer-a' : 'customer-b';
    const revision = revisions.get(streamId) ?? 0;
    revisions.set(streamId, revision + 1);
    const base = {
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      type: 'TouchpointRecorded',
      data: { customerId: streamId.slice(9), channel: 'email', n: i },
      metadata: { occurredAt: '2026-01-01T00:00:00.000Z', schemaVersion: 1 },
      streamId,
      revision,
      position: i,
      recordedAt: '2026-01-01T00:00:01.000Z',
    };
    const hash = chainHash(prev, base);
    log.push({ ...base, hash, prevHash: prev });
    prev = hash;
  }
  return log;
}

describe('verifyChain', () => {
  it('accepts an untouched log', async () => {
    const report = await verifyChain(chainedLog(20));
    expect(report).toMatchObject({ ok: true, eventsChecked: 20, lastPosition: 20 });
  });

  it('catches one changed byte of content at that event', async () => {
    const log = chainedLog(20);
    const e = log[6]!;
    log[6] = { ...e, data: { ...e.data, channel: 'emaim' } };
    const report = await verifyChain(log);
    expect(report.firstBreak).toMatchObject({ kind: 'content_altered', position: 7 });
  });

  it('catches a deleted event at the position after the hole', async () => {
    const log = chainedLog(20);
    log.splice(9, 1);
    const report = await verifyChain(log);
    expect(report.firstBreak).toMatchObject({ kind: 'position_gap', position: 11 });
  });

  it('names the deleted event by the hash the next one records for it, so an earlier export can say which it was', async () => {
    const log = chainedLog(20);
    const [deleted] = log.splice(9, 1);
    const report = await verifyChain(log);
    expect(report.firstBreak?.detail).toContain(`records its predecessor's hash as ${deleted!.hash}`);
  });

  it('given an event whose content was changed and its hash computed again, then that event is the break and the one before it the last good', async () => {
    const log = chainedLog(20);
    const e = log[6]!;
    const data = { ...e.data, n: 700 };
    log[6] = { ...e, data, hash: chainHash(e.prevHash, { ...e, data }) };
    const report = await verifyChain(log);
    expect(report).toMatchObject({ ok: false, eventsChecked: 6, lastPosition: 6, lastHash: log[5]!.hash });
    expect(report.firstBreak).toMatchObject({ kind: 'rewritten', position: 7, eventId: e.id, streamId: e.streamId });
  });

  it('given only the recorded predecessor of an event changed, then the break is at that event and says so', async () => {
    const log = chainedLog(20);
    log[7] = { ...log[7]!, prevHash: 'f'.repeat(64) };
    const report = await verifyChain(log);
    expect(report).toMatchObject({ ok: false, eventsChecked: 7, lastPosition: 7 });
    expect(report.firstBreak).toMatchObject({ kind: 'predecessor_mismatch', position: 8 });
    expect(report.firstBreak?.detail).toContain('only that field was changed');
  });

  it('catches a deleted event even when positions were renumbered to hide the hole', async () => {
    const log = chainedLog(20);
    log.splice(9, 1);
    const renumbered = log.map((e, i) => ({ ...e, position: i + 1 }));
    const report = await verifyChain(renumbered);
    expect(report.ok).toBe(false);
    expect(report.firstBreak?.position).toBe(10);
  });

  it('catches two swapped events at the first of them', async () => {
    const log = chainedLog(20);
    const a = log[3]!;
    const b = log[4]!;
    // swap content but keep positions, as an edit of two rows would
    log[3] = { ...b, position: a.position };
    log[4] = { ...a, position: b.position };
    const report = await verifyChain(log);
    expect(report.ok).toBe(false);
    expect(report.firstBreak?.position).toBe(4);
  });

  it('continues a verification from a known position and hash', async () => {
    const log = chainedLog(10);
    const report = await verifyChain(log.slice(5), { afterPosition: 5, previousHash: log[4]!.hash });
    expect(report).toMatchObject({ ok: true, eventsChecked: 5, lastPosition: 10 });
  });
});
