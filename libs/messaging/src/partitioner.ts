import { Partitioners, type ICustomPartitioner } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`) over a key's UTF-8 bytes, in 32-bit integer
 * arithmetic. kafkajs computes the same hash with a 64-bit Long emulation that allocates several
 * objects per 4 bytes; at tens of thousands of records a second that was a measurable share of the
 * relay's CPU.
 */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = (data[i4] ?? 0) | ((data[i4 + 1] ?? 0) << 8) | ((data[i4 + 2] ?? 0) << 16) | ((data[i4 + 3] ?? 0) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= (data[tail + 2] ?? 0) << 16;
    if (rest >= 2) h ^= (data[tail + 1] ?? 0) << 8;
    h ^= data[tail] ?? 0;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * kafkajs' `Partitioners.DefaultPartitioner` (the Java client's choice for keyed records:
 * `toPositive(murmur2(key)) % partitions`), computed faster. It must pick exactly the partition the
 * default does, or a key's records written before and after a change would sit in two partitions and
 * lose their order; the spec compares both over many keys. Records without a key, or with an explicit
 * partition, are left to the default itself.
 */
export const KeyHashPartitioner: ICustomPartitioner = () => {
  const fallback = Partitioners.DefaultPartitioner();
  return (args) => {
    const { message, partitionMetadata } = args;
    const key = message.key;
    if (key === null || key === undefined || (message.partition !== null && message.partition !== undefined)) return fallback(args);
    const bytes = Buffer.isBuffer(key) ? key : Buffer.from(key);
    return (murmur2(bytes) & 0x7fffffff) % partitionMetadata.length;
  };
};
