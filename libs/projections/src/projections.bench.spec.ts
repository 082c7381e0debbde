import { benchRebuild, nextSeed } from './projections.bench';

describe('rebuild benchmark workload', () => {
  it('steps its seed exactly as seed · 1103515245 + 12345 mod 2³¹', () => {
    let exact = 42n;
    let seed = 42;
    for (let i = 0; i < 5000; i += 1) {
      exact = (exact * 1103515245n + 12345n) % 2147483648n;
      seed = nextSeed(seed);
      expect(BigInt(seed)).toBe(exact);
    }
  });

  it('reaches every customer of the workload, not a fraction of them', () => {
    const customers = 16_666;
    const touched = new Set<number>();
    let seed = 42;
    for (let i = 0; i < 200_000; i += 1) {
      seed = nextSeed(seed);
      touched.add(Math.floor((seed / 2147483648) * customers));
    }
    expect(touched.size).toBe(customers);
  });

  it('given a number of customers that is not a positive integer, then the bench refuses it naming the option', async () => {
    await expect(benchRebuild(100, { customers: 0, lookups: 0 })).rejects.toThrow('rebuild bench customers: expected a positive integer, got 0');
    await expect(benchRebuild(100, { customers: 2.5, lookups: 0 })).rejects.toThrow('got 2.5');
  });
});
