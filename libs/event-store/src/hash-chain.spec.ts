import { createHash } from 'node:crypto';
import { canonicalJson, chainHash, chainHashOfCanonical, GENESIS_HASH, type HashedFields } from './hash-chain';

// The chain's first definition (sorted copy, then JSON.stringify, streaming sha256). The one-pass
// version must give the same bytes, or logs written before would no longer verify.
function referenceCanonical(value: unknown): string {
  const sortKeys = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map((x) => sortKeys(x) ?? null);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(v).sort()) {
        const x = sortKeys((v as Record<string, unknown>)[key]);
        if (x !== undefined) out[key] = x;
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(sortKeys(value));
}

function referenceHash(prevHash: string, e: HashedFields): string {
  const { id, streamId, revision, position, type, data, metadata, recordedAt } = e;
  const content = referenceCanonical({ id, streamId, revision, position, type, data, metadata, recordedAt });
  return createHash('sha256').update(prevHash).update('\n').update(content).digest('hex');
}

const samples: unknown[] = [
  null,
  0,
  -0,
  1.5e300,
  Number.NaN,
  'plain',
  'quotes " and \\ and \n and \u2028 and emoji 😀 and é',
  true,
  [],
  {},
  [1, 'two', null, undefined, { b: 1, a: [undefined] }],
  { z: 1, a: { y: [3, 2, 1], b: undefined, c: null }, 'ключ': 'значение', '10': 'ten', '9': 'nine', B: 'upper' },
  { nested: { deeper: { deepest: [{ k2: 2, k1: 1 }] } }, empty: '' },
];

const event: HashedFields = {
  id: '0190f7a4-0000-7000-8000-000000000001',
  streamId: 'customer-42',
  revision: 3,
  position: 17,
  type: 'PurchaseRecorded',
  data: { orderId: 'o-1', lines: [{ sku: 'cd-1', quantity: 2, unitPriceMinor: 1299 }], channel: 'web' },
  metadata: { occurredAt: '1997-03-14T00:00:00.000Z', schemaVersion: 1, commandId: 'cmd-1' },
  recordedAt: '2026-11-23T14:00:00.000Z',
};

describe('canonical JSON and the hash chain', () => {
  it.each(samples.map((s) => [s]))('writes %p exactly as the first definition did', (sample) => {
    expect(canonicalJson(sample)).toBe(referenceCanonical(sample));
  });

  it('gives the same hash as the first definition', () => {
    expect(chainHash(GENESIS_HASH, event)).toBe(referenceHash(GENESIS_HASH, event));
    expect(chainHash('ab'.repeat(32), event)).toBe(referenceHash('ab'.repeat(32), event));
    const awkward: HashedFields = { ...event, id: 'id "quoted" \\ é', streamId: 'customer/ü', type: 'Type\n' };
    expect(chainHash(GENESIS_HASH, awkward)).toBe(referenceHash(GENESIS_HASH, awkward));
  });

  it('gives the same hash from already canonical data and metadata', () => {
    const fromCanonical = chainHashOfCanonical(GENESIS_HASH, event, canonicalJson(event.data), canonicalJson(event.metadata));
    expect(fromCanonical).toBe(referenceHash(GENESIS_HASH, event));
  });

  it('does not depend on the order of object keys', () => {
    const reordered: HashedFields = { ...event, metadata: { commandId: 'cmd-1', schemaVersion: 1, occurredAt: '1997-03-14T00:00:00.000Z' } };
    expect(chainHash(GENESIS_HASH, reordered)).toBe(chainHash(GENESIS_HASH, event));
  });

  it('changes when one byte of content, the place in the log or the predecessor changes', () => {
    const base = chainHash(GENESIS_HASH, event);
    expect(chainHash(GENESIS_HASH, { ...event, data: { ...event.data, channel: 'wEb' } })).not.toBe(base);
    expect(chainHash(GENESIS_HASH, { ...event, position: 18 })).not.toBe(base);
    expect(chainHash('1'.repeat(64), event)).not.toBe(base);
  });
});
