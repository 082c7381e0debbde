import { rememberKey } from './customer-keys';

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
