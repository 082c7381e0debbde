import { randomUUID } from 'node:crypto';
import { seededRandom } from '@clientele/testing';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { KeyHashPartitioner, murmur2 } from './partitioner';

const metadata = (partitions: number): PartitionerArgs['partitionMetadata'] =>
  Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));

describe('KeyHashPartitioner', () => {
  const random = seededRandom(7);
  const alphabet = 'abcXYZ019-_.:/ éü€漢😀';
  const randomKey = (): string => {
    let key = '';
    for (let n = Math.floor(random() * 40); n > 0; n--) key += alphabet[Math.floor(random() * alphabet.length)];
    return key;
  };
  // every remainder of the length mod 4, multi-byte UTF-8, the relay's real keys
  const keys = ['', 'a', 'ab', 'abc', 'abcd', 'customer-c1', 'customer-c123456', 'é', '😀x', randomUUID(),
    ...Array.from({ length: 3000 }, randomKey), ...Array.from({ length: 500 }, (_, i) => `customer-bench-${i}`)];

  it.each([1, 3, 6, 12, 50])('picks the partition kafkajs’ DefaultPartitioner picks, for every key (%i partitions)', (partitions) => {
    const ours = KeyHashPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    const partitionMetadata = metadata(partitions);
    const differing = keys.filter((key) => {
      const args = { topic: 't', partitionMetadata, message: { key, value: 'v' } };
      const expected = theirs(args);
      return ours(args) !== expected || ours({ ...args, message: { key: Buffer.from(key), value: 'v' } }) !== expected;
    });
    expect(differing).toEqual([]);
  });

  it('matches the Java client’s murmur2 on known values', () => {
    // values from Apache Kafka's UtilsTest.testMurmur2
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, hash] of cases) expect(murmur2(Buffer.from(key))).toBe(hash);
  });

  it('leaves an explicit partition and keyless records to the default', () => {
    const ours = KeyHashPartitioner();
    const partitionMetadata = metadata(6);
    expect(ours({ topic: 't', partitionMetadata, message: { key: 'customer-c1', partition: 4, value: 'v' } })).toBe(4);
    const keyless = new Set(Array.from({ length: 60 }, () => ours({ topic: 't', partitionMetadata, message: { value: 'v' } })));
    expect(keyless.size).toBeGreaterThan(1);
  });
});
