import { Client } from 'pg';
import { startBroker, type RunningBroker } from '../infra/kafka/broker';

/**
 * Probes (PostgreSQL) or starts (Kafka) the servers the integration specs use, once per run. In CI
 * (`CI=true`) a missing server fails the run with what to do about it; locally its suites show as
 * to-dos with the same message.
 */
export default async function globalSetup(): Promise<void> {
  // as the CLI does (apps/cli/src/main.ts): SQLite reads `file:…?immutable=1` names only when told so
  // before its first connection, and a spec's own process.env is a copy that SQLite never sees
  process.env.SQLITE_USE_URI ??= '1';
  await probePostgres();
  await startKafka();
}

/** Where teardown finds the broker: jest runs global setup and teardown in the same process. */
export const KAFKA_HANDLE = Symbol.for('clientele.test.kafka');
type WithKafka = typeof globalThis & { [KAFKA_HANDLE]?: RunningBroker };

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

/**
 * One broker for the whole run, on free loopback ports, unless CLIENTELE_TEST_KAFKA_BROKERS already
 * names one (e.g. started with `npm run kafka:up`). The first run resolves the broker's jars with
 * Maven, which can take minutes; later runs start in seconds.
 */
async function startKafka(): Promise<void> {
  if (process.env.CLIENTELE_TEST_KAFKA_BROKERS) return;
  try {
    const broker = await startBroker({ startTimeoutMs: 10 * 60_000 });
    (globalThis as WithKafka)[KAFKA_HANDLE] = broker;
    process.env.CLIENTELE_TEST_KAFKA_BROKERS = broker.brokers;
    // a crashed or interrupted run must not leave a JVM behind
    process.once('exit', () => {
      try {
        process.kill(broker.pid, 'SIGKILL');
      } catch {
        // already stopped by teardown
      }
    });
  } catch (err) {
    const message =
      `Kafka could not be started for the tests (${(err as Error).message.split('\n')[0]}). ` +
      `The test run starts a single KRaft broker itself (infra/kafka/broker.ts), which needs Java 17+ and Maven ` +
      `with access to Maven Central on the first run; or start one with \`npm run kafka:up\` and set ` +
      `CLIENTELE_TEST_KAFKA_BROKERS to the address it prints.`;
    if (process.env.CI === 'true') throw new Error(`${message}\n${(err as Error).message}`);
    process.env.CLIENTELE_TEST_KAFKA_MISSING = message;
  }
}
