import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteReadModelStore, benchStatistics } from '@clientele/projections';
import { customerDatasetChunks } from '@clientele/testing';

/**
 * Prints build throughput and p50/p99 latency of every statistic over a large synthetic log.
 * Not part of the suite (jest only collects *.spec.ts); run it on purpose:
 *   STAT_BENCH_CUSTOMERS=100000 npx jest --roots='<rootDir>/test' --testMatch='**' '/bench/statistics.bench-driver.ts' --testTimeout=3600000
 */
const customers = Number(process.env.STAT_BENCH_CUSTOMERS ?? 100_000);
const runs = Number(process.env.STAT_BENCH_RUNS ?? 15);
/** keep the read-model file at this path instead of a temporary one */
const keep = process.env.STAT_BENCH_FILE;
const reuse = Boolean(keep && process.env.STAT_BENCH_REUSE);

it(`prints statistics figures for ${customers} customers`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'clientele-stat-bench-'));
  if (keep && !reuse) rmSync(keep, { force: true });
  const store = new SqliteReadModelStore(keep ?? join(dir, 'read-models.sqlite'));
  const lines: string[] = [];
  const log = (line: string): void => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  try {
    const result = await benchStatistics({
      store,
      // STAT_BENCH_REUSE=1 with STAT_BENCH_FILE times the read model already in that file
      chunks: reuse ? undefined : customerDatasetChunks({ seed: 1, customers, months: 36, start: '2023-01-01', repeatProbability: 0.88 }, 2_000),
      runs,
      log: (l) => (l.startsWith('applied') && !l.endsWith('000 events') ? undefined : log(l)),
    });
    log(JSON.stringify({ ...result, queries: undefined }));
    expect(result.customers).toBe(customers);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
