import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

import { PostgresEventStore } from '@clientele/event-store';
import { describeWithServer, PostgresServer, tempDir } from '@clientele/testing';

import { cliInProcess, correctionJourneys, sameDayJourneys, type JourneySetup } from './cdnow-import.journeys';

// each journey imports a few rows several times through the whole command path
jest.setTimeout(120_000);

describeWithServer(PostgresServer, 'clientele import (journey, PostgreSQL store)', (url) => {
  const tmp = tempDir('clientele-cli-pg-');
  const masterKey = randomBytes(32).toString('base64');
  const schemas: string[] = [];
  const VARS = ['CLIENTELE_STORE', 'DATABASE_URL', 'CLIENTELE_PG_SCHEMA', 'CLIENTELE_MASTER_KEY'] as const;

  /** the CLI reads its store from the environment, as the engine does: set for the call only */
  const cliOn = async (schema: string, args: string[]) => {
    const saved = VARS.map((name) => [name, process.env[name]] as const);
    Object.assign(process.env, { CLIENTELE_STORE: 'postgres', DATABASE_URL: url, CLIENTELE_PG_SCHEMA: schema, CLIENTELE_MASTER_KEY: masterKey });
    try {
      return await cliInProcess([...args, '--data-dir', tmp.dir]);
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  };

  afterAll(async () => {
    const client = new Client({ connectionString: url });
    await client.connect();
    for (const name of schemas) await client.query(`drop schema if exists ${name} cascade`);
    await client.end();
    tmp.remove();
  });

  const postgres: JourneySetup = {
    dir: () => tmp.dir,
    store: async (name) => {
      const schema = `cli_import_${process.pid}_${name}`;
      schemas.push(schema);
      return {
        cli: (args) => cliOn(schema, args),
        events: async () => {
          const store = await PostgresEventStore.open({ connectionString: url, schema });
          try {
            return await store.readAll();
          } finally {
            await store.close();
          }
        },
      };
    },
  };
  describe('mixing --same-day policies', () => sameDayJourneys(postgres));
  describe('a corrected file imported again', () => correctionJourneys(postgres));
});
