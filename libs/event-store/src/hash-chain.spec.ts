import { createHash } from 'node:crypto';
import { canonicalJson, chainEnvelopeAroundPosition, chainHash, chainHashOfCanonical, GENESIS_HASH, type HashedFields } from './hash-chain';

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

// Code units where JSON.stringify's output differs from the text or its neighbours: controls, the
// quote, the backslash, both ends of the surrogate ranges (paired and alone), U+2028, U+007F.
const CODE_UNITS = [0x00, 0x08, 0x0a, 0x1f, 0x20, 0x22, 0x2f, 0x30, 0x39, 0x41, 0x5c, 0x61, 0x7f, 0xe9, 0x2028, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd];
const NUMBERS = [0, -0, 1, -1, 42, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e21, 123e-20, 0.1, -2.5, 1 / 3, Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN, Infinity, -Infinity];

/** Values built from a seed, to compare the one-pass writer with the first definition on many shapes. */
function generatedValue(next: () => number, depth: number): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const text = (): string => {
    const length = Math.floor(next() * 6);
    let out = '';
    for (let i = 0; i < length; i++) out += String.fromCharCode(next() < 0.5 ? pick(CODE_UNITS) : 0x61 + Math.floor(next() * 26));
    return next() < 0.1 ? String(Math.floor(next() * 20)) : out;
  };
  const kind = depth > 2 ? Math.floor(next() * 5) : Math.floor(next() * 7);
  switch (kind) {
    case 0:
      return text();
    case 1:
      return pick(NUMBERS);
    case 2:
      return pick([true, false, null, undefined]);
    case 3:
      return Math.floor(next() * 1e9) * (next() < 0.5 ? 1 : -1);
    case 4:
      return `${text()}-${Math.floor(next() * 1e6)}`;
    case 5:
      return Array.from({ length: Math.floor(next() * 4) }, () => generatedValue(next, depth + 1));
    default: {
      const record: Record<string, unknown> = {};
      const size = Math.floor(next() * 6);
      for (let i = 0; i < size; i++) record[text()] = generatedValue(next, depth + 1);
      return record;
    }
  }
}

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

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

  it('writes thousands of generated values (every escaped code unit, integers and other numbers, index keys) as the first definition did', () => {
    const next = seeded(20261130);
    for (let i = 0; i < 5000; i++) {
      const value = { [`k${i}`]: generatedValue(next, 0), nested: [generatedValue(next, 1)] };
      expect(canonicalJson(value)).toBe(referenceCanonical(value));
    }
    for (const unit of CODE_UNITS) {
      const alone = String.fromCharCode(unit);
      expect(canonicalJson({ [alone]: alone, [`a${alone}b`]: [`a${alone}b`] })).toBe(referenceCanonical({ [alone]: alone, [`a${alone}b`]: [`a${alone}b`] }));
    }
    for (const n of NUMBERS) expect(canonicalJson({ n, list: [n] })).toBe(referenceCanonical({ n, list: [n] }));
  });

  it('writes what JSON has no form for, and keys JSON.stringify treats specially, as the one-pass writer did', () => {
    const nullPrototype = Object.assign(Object.create(null) as Record<string, unknown>, { b: 2, a: 1 });
    expect(canonicalJson({ z: nullPrototype })).toBe('{"z":{"a":1,"b":2}}');
    // an own key named __proto__ (JSON.parse makes one) is written like any other key
    expect(canonicalJson(JSON.parse('{"b":1,"__proto__":{"y":2,"x":1}}'))).toBe('{"__proto__":{"x":1,"y":2},"b":1}');
    // a toJSON function is not called and its key is left out, as a function value is
    expect(canonicalJson({ b: 1, toJSON: () => 'replaced', a: { toJSON: () => 'inner' } })).toBe('{"a":{},"b":1}');
    expect(canonicalJson({ toJSON: 'kept', a: 1 })).toBe('{"a":1,"toJSON":"kept"}');
    expect(canonicalJson({ f: () => 1, s: Symbol('s'), u: undefined, list: [() => 1, Symbol('t'), undefined, , 1] })).toBe('{"list":[null,null,null,null,1]}');
    // objects that are not plain are written from their own keys, without their toJSON
    expect(canonicalJson({ at: new Date(0), map: new Map([['k', 1]]) })).toBe('{"at":{},"map":{}}');
    expect(canonicalJson(Buffer.from([2, 1]))).toBe('{"0":2,"1":1}');
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
    expect(canonicalJson(undefined)).toBeUndefined();
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

  it('splits the hashed text around the position for a writer that learns the position later', () => {
    const awkward: HashedFields = { ...event, id: 'id "quoted" \\ é', streamId: 'customer/ü', type: 'Type\n', position: 1234567 };
    const { before, after } = chainEnvelopeAroundPosition(awkward, canonicalJson(awkward.data), canonicalJson(awkward.metadata));
    const hashed = createHash('sha256').update(`${'cd'.repeat(32)}\n${before}${awkward.position}${after}`).digest('hex');
    expect(hashed).toBe(referenceHash('cd'.repeat(32), awkward));
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
