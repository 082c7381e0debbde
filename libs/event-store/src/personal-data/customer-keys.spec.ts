import { randomFromPool, rememberKey } from './customer-keys';

describe('rememberKey', () => {
  it('keeps up to 100,000 customers\' keys and forgets the longest-kept one first, a key used again counting as new', () => {
    const cache = new Map<string, Buffer | 'erased'>();
    const key = Buffer.alloc(32, 1);
    for (let i = 0; i < 100_000; i++) rememberKey(cache, `c${i}`, key);
    rememberKey(cache, 'c0', 'erased'); // c0 again: now the newest
    rememberKey(cache, 'new', key);

    expect(cache.size).toBe(100_000);
    expect(cache.get('c0')).toBe('erased');
    expect(cache.has('c1')).toBe(false);
    expect(cache.get('new')).toBe(key);
  });
});

describe('randomFromPool', () => {
  it('hands out bytes that are never handed out again nor changed when the pool is refilled', () => {
    const first = randomFromPool(32);
    const copy = Buffer.from(first);
    const seen = new Set<string>([first.toString('hex')]);
    // more than one 64 KiB pool of 32-byte keys and 12-byte nonces
    for (let i = 0; i < 4_000; i++) {
      const key = randomFromPool(32);
      const nonce = randomFromPool(12);
      expect(key).toHaveLength(32);
      expect(nonce).toHaveLength(12);
      seen.add(key.toString('hex'));
    }
    expect(seen.size).toBe(4_001);
    expect(first.equals(copy)).toBe(true);
  });
});
