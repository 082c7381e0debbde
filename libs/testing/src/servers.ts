import { createServer } from 'node:net';
/**
 * Tests against real servers (`*.int-spec.ts`). The jest global setup probes each server once and
 * leaves the verdict in the environment: in CI an unreachable server fails the run with a message
 * saying which server and how to start it; locally the suites that need it report that same
 * message as a to-do instead of running.
 */
export interface ServerRequirement {
  name: 'postgres' | 'kafka';
  /** the env var that holds the address when reachable */
  addressVar: string;
  /** the env var that holds the reason when unreachable */
  missingVar: string;
}

export const PostgresServer: ServerRequirement = {
  name: 'postgres',
  addressVar: 'CLIENTELE_TEST_PG_URL',
  missingVar: 'CLIENTELE_TEST_PG_MISSING',
};

export const KafkaServer: ServerRequirement = {
  name: 'kafka',
  addressVar: 'CLIENTELE_TEST_KAFKA_BROKERS',
  missingVar: 'CLIENTELE_TEST_KAFKA_MISSING',
};

export function serverAddress(server: ServerRequirement): string | undefined {
  return process.env[server.missingVar] ? undefined : process.env[server.addressVar];
}

/** `describe` when the server answered in global setup; otherwise one to-do that carries the reason. */
export function describeWithServer(server: ServerRequirement, name: string, body: (address: string) => void): void {
  const address = serverAddress(server);
  if (address) {
    describe(name, () => body(address));
    return;
  }
  const reason = process.env[server.missingVar] ?? `${server.name} was not probed (run through jest's global setup)`;
  describe(name, () => {
    it.todo(`not run: ${reason}`);
  });
}

/** A loopback port free at the moment of asking (nothing listens on it until someone does). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}
