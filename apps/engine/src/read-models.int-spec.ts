import { Client } from 'pg';
import { PostgresReadModelGenerations } from '@clientele/projections';
import { describeWithServer, PostgresServer } from '@clientele/testing';
import { cursorMismatches, givenCursorCustomers, startTestEngine, type TestEngine } from './engine.test-support';

describeWithServer(PostgresServer, 'engine read models on PostgreSQL over HTTP', (url) => {
  const schema = `rm_http_${process.pid}_${Date.now().toString(36)}`;
  let engine: TestEngine;

  // given to the engine's config only, not to the process environment: the projector opens the
  // read models the engine was configured with
  const env = { CLIENTELE_READ_MODELS: 'postgres', DATABASE_URL: url, CLIENTELE_READ_MODELS_PG_SCHEMA: schema };

  beforeAll(async () => {
    expect(process.env.CLIENTELE_READ_MODELS).toBeUndefined();
    engine = await startTestEngine('read-models-pg', env);
    await givenCursorCustomers(engine);
  });
  afterAll(async () => {
    await engine?.close();
    await new PostgresReadModelGenerations(url, schema).dropAll();
  });

  it('serves its read models from PostgreSQL, as configured by the environment the engine was given', async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const tables = await client.query(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'profiles' AND table_schema LIKE $1`, [`${schema}%`]);
      expect(tables.rowCount).toBe(1);
    } finally {
      await client.end();
    }
  });

  // before, PostgreSQL answered 500 for a text or fractional revenue (compared with its BIGINT column), and a page from nowhere for the rest
  it('given customers to page through, when a cursor is built by hand and holds nonsense for its list, then it answers 400 naming cursor and what was expected, as on SQLite; the cursors pages give walk every order', async () => {
    expect(await cursorMismatches(engine.http)).toEqual([]);
  });
});
