import { generateSyntheticCommands } from '@clientele/generator';
import { PostgresServer, describeWithServer } from '@clientele/testing';
import { benchCommandPath } from './command-path.bench';

describeWithServer(PostgresServer, 'the command path bench on PostgreSQL', (url) => {
  it('runs every command through CommandService to a PostgreSQL store and counts what it stored', async () => {
    // given thirty customers' commands (registrations, purchases, referrals, …)
    const envelopes = generateSyntheticCommands({ customers: 30, seed: 'pg-bench-spec', idPrefix: 'pgbench' });

    // when eight callers send them, each waiting for its answer before the next
    const figure = await benchCommandPath({ envelopes, callers: 8, postgresUrl: url });

    // then each command was answered, the events counted are the store's, and an answer means on disk
    const { applied, duplicate, no_op, refused } = figure.outcomes;
    expect(applied + duplicate + no_op + refused).toBe(envelopes.length);
    expect(applied).toBeGreaterThan(0);
    expect(figure.events).toBeGreaterThanOrEqual(applied);
    expect(figure.durability).toBe('full');
    expect(figure.latencyMs?.p50).toBeGreaterThan(0);
  });
});
