import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bootstrapEngine } from './bootstrap';
import { EngineReadModels } from './engine-read-models';
import { loadEngineConfig } from './engine.config';

/** an engine on `dataDir` (read models there), its log in `storeFile`, with `customers` registered */
async function engineWith(dataDir: string, storeFile: string, customers: string[]) {
  const app = await bootstrapEngine(
    loadEngineConfig({ CLIENTELE_DATA_DIR: dataDir, CLIENTELE_SQLITE_FILE: storeFile, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent' }),
  );
  const commands = customers.map((id) => ({ type: 'RegisterProspect', commandId: `reg-${id}`, data: { customerId: id, source: 'web', channel: 'email', occurredAt: '2026-01-02T09:00:00Z' } }));
  if (commands.length > 0) await request(app.getHttpServer()).post('/commands/batch').send({ commands }).expect(200);
  await app.get(EngineReadModels).catchUp();
  return app;
}

describe('an engine pointed at read models of another log', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'clientele-rm-log-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('refuses to start instead of folding a second log into them, and starts again on its own log', async () => {
    // given read models that folded the log of one store file
    const data = dir();
    const own = join(data, 'clientele.db');
    await (await engineWith(data, own, ['ann', 'bob', 'cyd'])).close();
    // and another log, of as many events, kept elsewhere
    const elsewhere = join(dir(), 'other.db');
    await (await engineWith(dir(), elsewhere, ['xia', 'yve', 'zed'])).close();

    // when the engine starts with those read models on the other log, then it refuses, saying why and what to do
    await expect(engineWith(data, elsewhere, [])).rejects.toThrow(/read models were folded from another log: the last event they folded, at position 3, had hash [0-9a-f]{64}, and this log has hash [0-9a-f]{64} there/);

    // and on its own log it starts, and answers from the read models it kept
    const app = await engineWith(data, own, []);
    const profiles = await request(app.getHttpServer()).get('/profiles').expect(200);
    expect((profiles.body as { items: { customerId: string }[] }).items.map((p) => p.customerId).sort()).toEqual(['ann', 'bob', 'cyd']);
    await app.close();
  });
});
