import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { StoreUnreachableError } from '@clientele/application';
import { bootstrapEngine } from './bootstrap';
import { EngineReadModels } from './engine-read-models';
import { loadEngineConfig } from './engine.config';

/** an engine on `dataDir` (read models there), its log in `storeFile`, with `customers` registered (with a name when `personal`) */
async function engineWith(dataDir: string, storeFile: string, customers: string[], env: Record<string, string> = {}, personal = false) {
  const app = await bootstrapEngine(
    loadEngineConfig({ CLIENTELE_DATA_DIR: dataDir, CLIENTELE_SQLITE_FILE: storeFile, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent', ...env }),
  );
  const commands = customers.map((id) => ({
    type: 'RegisterProspect',
    commandId: `reg-${id}`,
    data: { customerId: id, source: 'web', channel: 'email', ...(personal ? { personal: { name: `Name of ${id}` } } : {}), occurredAt: '2026-01-02T09:00:00Z' },
  }));
  if (commands.length > 0) await request(app.getHttpServer()).post('/commands/batch').send({ commands }).expect(200);
  await app.get(EngineReadModels).catchUp();
  return app;
}

describe('an engine that cannot give right answers says why, instead of answering wrongly', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'clientele-rm-log-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('without the http role, answers GET /health and /metrics only, and a 404 saying why for the API', async () => {
    const app = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: dir(), CLIENTELE_DURABILITY: 'normal', CLIENTELE_ROLES: 'projector', CLIENTELE_OPS_PORT: '0', LOG_LEVEL: 'silent' }));
    try {
      const http = request(app.getHttpServer());
      expect((await http.get('/health').expect(200)).body).toMatchObject({ status: 'ok', projections: expect.any(Array) });
      expect((await http.get('/metrics').expect(200)).text).toContain('clientele_projection_lag_events');
      // each request made when its turn comes: supertest listens for each one and closes after it
      const requests = [() => http.get('/customers/ann'), () => http.get('/docs-json'), () => http.post('/commands').send({}), () => http.post('/health')];
      for (const refused of requests) {
        const answer = await refused().expect(404);
        expect(answer.body).toMatchObject({ code: 'not_found', detail: expect.stringContaining('without the http role') });
      }
    } finally {
      await app.close();
    }
  });

  it('refuses to start on a PostgreSQL server it cannot reach, naming DATABASE_URL (without its password) and the reason, not a driver stack', async () => {
    const refused = await bootstrapEngine(
      loadEngineConfig({ CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://app:s3cret@127.0.0.1:1/crm', CLIENTELE_DATA_DIR: dir(), LOG_LEVEL: 'silent' }),
    ).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StoreUnreachableError);
    expect((refused as Error).message).toBe('DATABASE_URL: cannot connect to PostgreSQL at postgres://app:…@127.0.0.1:1/crm: connect ECONNREFUSED 127.0.0.1:1');
  });

  it('refuses to start instead of folding a second log into them, and starts again on its own log', async () => {
    // given read models that folded the log of one store file (one master key for every instance here)
    const key = { CLIENTELE_MASTER_KEY: randomBytes(32).toString('base64') };
    const data = dir();
    const own = join(data, 'clientele.db');
    await (await engineWith(data, own, ['ann', 'bob', 'cyd'], key)).close();
    // and another log, of as many events, kept elsewhere
    const elsewhere = join(dir(), 'other.db');
    await (await engineWith(dir(), elsewhere, ['xia', 'yve', 'zed'], key)).close();

    // when the engine starts with those read models on the other log, then it refuses, saying why and what to do:
    // the anchor cannot tell another log from this one rewritten, so it gives the command that checks and warns off a replay
    const refusal = (await engineWith(data, elsewhere, [], key).catch((error: unknown) => error)) as Error;
    expect(refusal.message).toMatch(
      /^the read models do not match this log: the last event they folded, at position 3, had hash ([0-9a-f]{64}), and this log has hash [0-9a-f]{64} there\. Either they were folded from another log, or this log was altered or cut after they folded it\./,
    );
    const folded = /had hash ([0-9a-f]{64})/.exec(refusal.message)![1];
    expect(refusal.message).toContain(`\`clientele audit verify --store sqlite:${elsewhere} --expect 3:${folded}\``);
    expect(refusal.message).toContain('Do not replay before that: `clientele replay` replaces these read models, the only witness of the log they folded.');

    // and on its own log it starts, and answers from the read models it kept
    const app = await engineWith(data, own, [], key);
    const profiles = await request(app.getHttpServer()).get('/profiles').expect(200);
    expect((profiles.body as { items: { customerId: string }[] }).items.map((p) => p.customerId).sort()).toEqual(['ann', 'bob', 'cyd']);
    await app.close();
  });

  it('refuses to start on its own log cut after the read models folded it, naming that possibility and the check to run', async () => {
    // given read models that folded the whole log
    const key = { CLIENTELE_MASTER_KEY: randomBytes(32).toString('base64') };
    const data = dir();
    const own = join(data, 'clientele.db');
    await (await engineWith(data, own, ['ann', 'bob', 'cyd', 'dan'], key)).close();
    const db = new Database(own);
    const last = db.prepare('SELECT position, hash FROM events ORDER BY position DESC LIMIT 1').get() as { position: number; hash: string };
    // when the last two events are deleted from the log
    db.prepare('DELETE FROM events WHERE position > ?').run(last.position - 2);
    db.close();

    // then the engine does not start, and says the log may have been cut, with the check that proves it
    const refusal = (await engineWith(data, own, [], key).catch((error: unknown) => error)) as Error;
    expect(refusal.message).toContain(
      `the last event they folded, at position ${last.position}, had hash ${last.hash}, and this log has no event at that position (its head is ${last.position - 2})`,
    );
    expect(refusal.message).toContain('or this log was altered or cut after they folded it');
    expect(refusal.message).toContain(`\`clientele audit verify --store sqlite:${own} --expect ${last.position}:${last.hash}\``);
  });

  it('refuses to start with a master key other than the one its customer keys were wrapped with, and starts with the right one', async () => {
    // given a store written with the master key the engine generated in its data directory
    const data = dir();
    const store = join(data, 'clientele.db');
    await (await engineWith(data, store, ['ann'], {}, true)).close();
    const generated = readFileSync(join(data, 'master.key'), 'utf8').trim();

    // when an operator later sets CLIENTELE_MASTER_KEY to a new key, then the engine says so and does not start
    const other = randomBytes(32).toString('base64');
    await expect(engineWith(data, store, [], { CLIENTELE_MASTER_KEY: other })).rejects.toThrow(
      /^the master key in use cannot open this store's customer keys: they were wrapped with another one\. Start with the master key the store was written with/,
    );

    // and with the key the store was written with it starts and reads her name
    const app = await engineWith(data, store, [], { CLIENTELE_MASTER_KEY: generated });
    const profile = await request(app.getHttpServer()).get('/customers/ann/profile').expect(200);
    expect(profile.body).toMatchObject({ identity: { name: 'Name of ann' } });
    await app.close();
  });

  it('without the projector role, before any projector ran: reads answer 503 read_models_not_ready and /health says why; once a projector folded the log they answer', async () => {
    const data = dir();
    const http = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: data, CLIENTELE_ROLES: 'http', CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent' }));
    try {
      await request(http.getHttpServer())
        .post('/commands')
        .send({ type: 'RegisterProspect', commandId: 'reg-ann', data: { customerId: 'ann', source: 'web', channel: 'email', occurredAt: '2026-01-02T09:00:00Z' } })
        .expect(201);
      for (const path of ['/profiles', '/customers/ann/profile', '/statistics/stages', '/referrals/top-advocates']) {
        const res = await request(http.getHttpServer()).get(path);
        expect({ path, status: res.status, code: res.body.code, retryAfter: res.headers['retry-after'] }).toEqual({ path, status: 503, code: 'read_models_not_ready', retryAfter: '5' });
      }
      const health = await request(http.getHttpServer()).get('/health').expect(200);
      expect(health.body.status).toBe('degraded');
      expect(health.body.projections).toEqual(
        ['profiles', 'referrals', 'statistics'].map((name) => ({
          name,
          version: expect.any(Number),
          position: 0,
          head: 1,
          lag: 1,
          lastError: 'not created yet: a process with the projector role creates it from the log',
        })),
      );

      // when a process with the projector role has folded the log
      const projector = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: data, CLIENTELE_ROLES: 'projector', CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent' }));
      try {
        await projector.get(EngineReadModels).catchUp();
        // then the serving process answers from them, and its health shows them caught up
        const profile = await request(http.getHttpServer()).get('/customers/ann/profile').expect(200);
        expect(profile.body).toMatchObject({ customerId: 'ann', stage: 'prospect' });
        const after = await request(http.getHttpServer()).get('/health').expect(200);
        expect(after.body).toMatchObject({ status: 'ok' });
        expect((after.body.projections as { lag: number }[]).map((p) => p.lag)).toEqual([0, 0, 0]);
      } finally {
        await projector.close();
      }
    } finally {
      await http.close();
    }
  });
});
