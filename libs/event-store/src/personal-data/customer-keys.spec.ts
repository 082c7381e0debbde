import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomFromPool, rememberKey, SqliteCustomerKeyStore, unwrapKey, wrapKey, WrongMasterKeyError } from './customer-keys';

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

describe('a master key other than the one that wrapped the keys', () => {
  it('is refused with the reason, naming the customer, instead of a cipher error', () => {
    const wrapped = wrapKey(randomBytes(32), randomBytes(32));
    expect(() => unwrapKey(randomBytes(32), wrapped, 'ann')).toThrow(WrongMasterKeyError);
    expect(() => unwrapKey(randomBytes(32), wrapped, 'ann')).toThrow(/cannot open the key of customer ann: they were wrapped with another one\. Start with the master key the store was written with/);
  });

  it('is found by checkMasterKey on the first stored key; an empty key table or erased keys alone pass any master key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-master-'));
    const file = join(dir, 'keys.db');
    const master = randomBytes(32);
    try {
      const empty = new SqliteCustomerKeyStore(file, randomBytes(32));
      await empty.checkMasterKey();
      await empty.destroyKey('gone', '2026-01-01T00:00:00.000Z');
      await empty.checkMasterKey();
      await empty.close();

      const writer = new SqliteCustomerKeyStore(file, master);
      const key = await writer.keyFor('ann');
      await writer.close();

      const right = new SqliteCustomerKeyStore(file, master);
      await right.checkMasterKey();
      expect(await right.existingKey('ann')).toEqual(key);
      await right.close();

      const wrong = new SqliteCustomerKeyStore(file, randomBytes(32));
      await expect(wrong.checkMasterKey()).rejects.toThrow(WrongMasterKeyError);
      await expect(wrong.existingKey('ann')).rejects.toThrow(/cannot open the key of customer ann/);
      await wrong.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
