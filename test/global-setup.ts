import { Client } from 'pg';

/**
 * Probes the servers the integration specs use, once per run. In CI (`CI=true`) a missing server
 * fails the run with what to do about it; locally its suites show as to-dos with the same message.
 */
export default async function globalSetup(): Promise<void> {
  await probePostgres();
}

async function probePostgres(): Promise<void> {
  const url = process.env.CLIENTELE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  process.env.CLIENTELE_TEST_PG_URL = url;
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    const message =
      `PostgreSQL is not reachable at ${url} (${(err as Error).message}). ` +
      `Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start ` +
      `(or set CLIENTELE_TEST_PG_URL to another server).`;
    if (process.env.CI === 'true') throw new Error(message);
    process.env.CLIENTELE_TEST_PG_MISSING = message;
  } finally {
    await client.end().catch(() => undefined);
  }
}
