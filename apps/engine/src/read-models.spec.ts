import { openApiAnswerErrors } from '@clientele/testing';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { ClienteleMetrics, ReferralProcessRunner, type OpenedStorage } from '@clientele/application';
import { allProjections, replayProjections, SqliteReadModelGenerations, SqliteReadModelStore, type ReadModelStore } from '@clientele/projections';
import { EngineReadModels, FOLLOW_BEHIND_MAX_MS, PROJECTOR_STALLED_MS } from './engine-read-models';
import { cursorMismatches, givenCursorCustomers, startTestEngine, type TestEngine } from './engine.test-support';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';
import type { EngineConfig } from './engine.config';

const line = (sku: string, category: string, quantity: number, unitPriceMinor: number) => ({ sku, category, quantity, unitPriceMinor, unitCostMinor: 100 });

describe('a process without the projector role following the generations another process makes current', () => {
  let engine: TestEngine;
  afterEach(async () => {
    jest.restoreAllMocks();
    await engine.close();
  });

  it('given a generation made current that is behind the one it serves, then it keeps serving its own until FOLLOW_BEHIND_MAX_MS passed, and then swaps', async () => {
    engine = await startTestEngine('follow-behind', { CLIENTELE_ROLES: 'http' });
    const { app, http, dir } = engine;
    const reader = app.get(EngineReadModels);
    const storage = app.get<OpenedStorage>(ENGINE_STORAGE);
    const generations = new SqliteReadModelGenerations(join(dir, 'read-models'));
    /** what a projector process does: the log up to `upTo` into a fresh generation, made current */
    const replayUpTo = async (upTo: number): Promise<void> => {
      const fresh = await generations.openFresh();
      await replayProjections({ readAll: (o) => storage.store.readAll(o), headPosition: async () => upTo }, fresh, allProjections());
      await generations.promote(fresh);
      await fresh.close();
    };
    const revenue = async () => (await reader.profiles.getProfile('ann', new Date()))?.value.revenueMinor;

    const sent = await http.post('/commands/batch').send({
      commands: [
        { type: 'RegisterProspect', commandId: 'r-ann', data: { customerId: 'ann', source: 'web', occurredAt: '2026-01-02T09:00:00Z' } },
        { type: 'RecordPurchase', commandId: 'p-ann', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } },
      ],
    }).expect(200);
    const registration = (sent.body.results as { result: { events: { position: number }[] } }[])[0]!.result.events[0]!.position;

    // a generation of the whole log: ahead of the empty one served, so it is served at once
    await replayUpTo(await storage.store.headPosition());
    await reader.followPromoted();
    expect(await revenue()).toBe(3000);

    // then one folded only up to the registration (a replay the projector has not caught up yet)
    await replayUpTo(registration);
    await reader.followPromoted();
    expect(await revenue()).toBe(3000);

    // still behind once FOLLOW_BEHIND_MAX_MS passed: served all the same
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + FOLLOW_BEHIND_MAX_MS + 1);
    await reader.followPromoted();
    expect(await revenue()).toBe(0);
  });

  it('given read models that stand still while events wait, then /health says degraded after PROJECTOR_STALLED_MS, naming the likely cause, and /metrics shows their lag', async () => {
    engine = await startTestEngine('follow-stalled', { CLIENTELE_ROLES: 'http' });
    const { app, http, dir } = engine;
    const storage = app.get<OpenedStorage>(ENGINE_STORAGE);
    const generations = new SqliteReadModelGenerations(join(dir, 'read-models'));
    await http.post('/commands').send({ type: 'RegisterProspect', commandId: 'r-ann', data: { customerId: 'ann', source: 'web', occurredAt: '2026-01-02T09:00:00Z' } }).expect(201);
    // a projector process folded the log once, then stopped
    const fresh = await generations.openFresh();
    await replayProjections(storage.store, fresh, allProjections());
    await generations.promote(fresh);
    await fresh.close();
    await app.get(EngineReadModels).followPromoted();
    await http.post('/commands').send({ type: 'RecordPurchase', commandId: 'p-ann', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 1, 1500)], occurredAt: '2026-01-03T09:00:00Z' } }).expect(201);

    // at first the lag is only a lag
    const first = (await http.get('/health').expect(200)).body;
    expect(first.status).toBe('ok');
    // the purchase and the conversion it caused
    expect(first.projections.every((p: { lag: number }) => p.lag === 2)).toBe(true);
    expect((await http.get('/metrics').expect(200)).text).toMatch(/clientele_projection_lag_events\{projection="profiles"\} 2/);

    // still standing after PROJECTOR_STALLED_MS
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + PROJECTOR_STALLED_MS + 1_000);
    const later = (await http.get('/health').expect(200)).body;
    expect(later.status).toBe('degraded');
    expect(later.projections[0].lastError).toMatch(/^no progress for 31 s while events wait: is a process with the projector role running\?$/);
  });
});

describe('engine read models over HTTP', () => {
  let engine: TestEngine;
  let dir: string;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;

  beforeEach(async () => {
    engine = await startTestEngine('read-models');
    ({ dir, app, http } = engine);
  });
  afterEach(() => engine.close());

  async function given(commands: object[]): Promise<void> {
    const res = await http.post('/commands/batch').send({ commands }).expect(200);
    for (const item of res.body.results as { status: number }[]) expect(item.status).toBeLessThan(300);
    await app.get(ReferralProcessRunner).catchUp();
    await app.get(EngineReadModels).catchUp();
  }

  const ann = { customerId: 'ann', source: 'web', channel: 'email', personal: { name: 'Ann Smith', email: 'ann@example.com', birthday: '1990-02-10' } };

  /** what `clientele replay` does from its own process: the whole log into a fresh generation, made current */
  async function replayElsewhere(alter?: (fresh: ReadModelStore) => Promise<unknown>): Promise<void> {
    const generations = new SqliteReadModelGenerations(join(dir, 'read-models'));
    const fresh = await generations.openFresh();
    await replayProjections(app.get<OpenedStorage>(ENGINE_STORAGE).store, fresh, allProjections());
    await alter?.(fresh);
    await generations.promote(fresh);
    await fresh.close();
  }

  /** a process without the projector role on the engine's data, as `CLIENTELE_ROLES=http` starts one */
  async function startReader(): Promise<EngineReadModels> {
    const config = app.get<EngineConfig>(ENGINE_CONFIG);
    const reader = new EngineReadModels({ ...config, roles: { ...config.roles, projector: false } }, app.get<OpenedStorage>(ENGINE_STORAGE), new ClienteleMetrics());
    await reader.onModuleInit();
    return reader;
  }

  it('given a generation another process replayed and made current while the engine runs, then the engine serves it, folds new events into it, and removes the old one', async () => {
    await given([
      { type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } },
    ]);
    const readModelsDir = join(dir, 'read-models');
    const old = join(readModelsDir, 'read-models-1.sqlite');
    expect(existsSync(old)).toBe(true);
    await replayElsewhere();
    expect(readFileSync(join(readModelsDir, 'CURRENT'), 'utf8').trim()).toBe('read-models-2.sqlite');

    // the engine looks every couple of seconds; the old generation's file goes once it serves the new one
    for (let waited = 0; existsSync(old); waited += 100) {
      if (waited > 15_000) throw new Error('the engine still serves the old generation after 15 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await given([{ type: 'RecordPurchase', commandId: 'p-ann-2', data: { customerId: 'ann', orderId: 'A2', lines: [line('mu-1', 'music', 1, 900)], occurredAt: '2026-01-20T10:00:00Z' } }]);

    const profile = (await http.get('/customers/ann/profile').expect(200)).body;
    expect(profile).toMatchObject({ stage: 'repeat_buyer', value: { revenueMinor: 2 * 1500 + 900 } });
    const served = new SqliteReadModelStore(join(readModelsDir, 'read-models-2.sqlite'));
    try {
      const head = (await http.get('/customers/ann/events').expect(200)).body as { events: { position: number }[] };
      const last = Math.max(...head.events.map((e) => e.position));
      const checkpoints = await served.all<{ position: number }>('SELECT position FROM projection_checkpoints');
      expect(checkpoints.length).toBe(allProjections().length);
      for (const c of checkpoints) expect(Number(c.position)).toBeGreaterThanOrEqual(last);
    } finally {
      await served.close();
    }
  }, 30_000);

  it('given a process without the projector role on the same data, when the projector process moves to another generation, then that process follows it and answers what is folded there', async () => {
    await given([{ type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } }]);
    const reader = await startReader();
    try {
      await replayElsewhere();
      await app.get(EngineReadModels).followPromoted();
      await reader.followPromoted();

      await given([{ type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } }]);

      expect(await reader.profiles.getProfile('ann', new Date())).toMatchObject({ stage: 'customer', value: { revenueMinor: 3000 } });
    } finally {
      await reader.onApplicationShutdown();
    }
  });

  it('given a generation made current that holds a read model of another version, then neither the projector nor a process without the role serves it, and both keep answering from their own', async () => {
    await given([{ type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } }]);
    const reader = await startReader();
    try {
      // replayed by another build, whose profiles projection has another version
      await replayElsewhere((fresh) => fresh.transaction((tx) => tx.run("UPDATE projection_checkpoints SET version = version + 1 WHERE name = 'profiles'")));
      await app.get(EngineReadModels).followPromoted();
      await reader.followPromoted();

      await given([{ type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } }]);

      expect(await reader.profiles.getProfile('ann', new Date())).toMatchObject({ stage: 'customer', value: { revenueMinor: 3000 } });
      expect((await http.get('/customers/ann/profile').expect(200)).body).toMatchObject({ stage: 'customer', value: { revenueMinor: 3000 } });
      expect(existsSync(join(dir, 'read-models', 'read-models-1.sqlite'))).toBe(true);
    } finally {
      await reader.onApplicationShutdown();
    }
  });

  it('given purchases and a converted referral, the profile and the referral graph answer from the read models', async () => {
    await given([
      { type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-2', data: { customerId: 'ann', orderId: 'A2', lines: [line('mu-1', 'music', 1, 900)], occurredAt: '2026-01-20T10:00:00Z' } },
      { type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'referral', referredBy: 'ann', occurredAt: '2026-01-21T09:00:00Z' } },
    ]);
    await given([{ type: 'RecordPurchase', commandId: 'p-ben-1', data: { customerId: 'ben', orderId: 'B1', lines: [line('bk-2', 'books', 1, 4000)], occurredAt: '2026-01-25T10:00:00Z' } }]);

    const profile = (await http.get('/customers/ann/profile?asOf=2026-02-01').expect(200)).body;
    expect(profile).toMatchObject({
      customerId: 'ann',
      identity: { name: 'Ann Smith', email: 'ann@example.com' },
      stage: 'advocate',
      acquisition: { source: 'web', channel: 'email' },
      birthday: '1990-02-10',
      daysToNextBirthday: 9,
      value: { revenueMinor: 2 * 1500 + 900 },
    });
    expect(profile.stageHistory.map((s: { stage: string }) => s.stage)).toEqual(['prospect', 'customer', 'repeat_buyer', 'advocate']);
    // the profile names each change as the customer's own history does: the transition event and its cause
    const history = (await http.get('/customers/ann').expect(200)).body.stageHistory as { stage: string; at: string; eventId: string; causationId?: string }[];
    expect(profile.stageHistory).toEqual(history.map(({ stage, at, eventId, causationId }) => ({ stage, at, eventId, causationId })));
    expect(profile.stageHistory[0].causationId).toBe('r-ann');
    expect(profile.habits.topCategories[0]).toEqual({ category: 'books', quantity: 2 });
    expect(profile.referees).toEqual([expect.objectContaining({ customerId: 'ben' })]);

    const page = (await http.get('/profiles?sort=revenue&direction=desc&limit=1').expect(200)).body;
    expect(page.items.map((p: { customerId: string }) => p.customerId)).toEqual(['ben']);
    const next = (await http.get(`/profiles?sort=revenue&direction=desc&limit=1&cursor=${encodeURIComponent(page.nextCursor)}`).expect(200)).body;
    expect(next.items.map((p: { customerId: string }) => p.customerId)).toEqual(['ann']);

    const birthdays = (await http.get('/birthdays?asOf=2026-02-01&withinDays=14').expect(200)).body;
    expect(birthdays.items.map((b: { customerId: string }) => b.customerId)).toEqual(['ann']);
    expect(birthdays.nextCursor).toBeUndefined();

    const advocates = (await http.get('/referrals/top-advocates').expect(200)).body;
    expect(advocates.items[0]).toMatchObject({ customerId: 'ann' });
    expect(advocates.nextCursor).toBeUndefined();
    const dot = await http.get('/referrals/graph.dot').expect(200);
    expect(dot.text).toContain('"ann" -> "ben"');

    const stages = (await http.get('/statistics/stages').expect(200)).body;
    expect(stages.stages).toMatchObject({ advocate: 1, customer: 1, prospect: 0 });
    const repeat = (await http.get('/statistics/repeat-rate').expect(200)).body;
    expect(repeat).toMatchObject({ buyers: 2, repeatBuyers: 1 });
    const earlier = (await http.get('/statistics/stages?asOf=2026-01-04').expect(200)).body;
    // on 4 January Ann was registered (2 Jan) but had not bought yet (5 Jan); Ben did not exist
    expect(earlier).toMatchObject({ total: 1, stages: { prospect: 1, customer: 0, advocate: 0 } });
  });

  it('pages upcoming birthdays by cursor', async () => {
    const people = ['cy', 'di', 'ed', 'fa', 'gu'];
    await given(people.map((id, i) => ({ type: 'RegisterProspect', commandId: `r-${id}`, data: { customerId: id, source: 'web', personal: { name: id, birthday: `1990-02-0${2 + (i % 2)}` }, occurredAt: '2026-01-02T09:00:00Z' } })));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await http.get(`/birthdays?asOf=2026-02-01&withinDays=14&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).expect(200)).body;
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((b: { customerId: string }) => b.customerId));
      cursor = page.nextCursor;
    } while (cursor);
    // Feb 2 first (cy, ed, gu), then Feb 3 (di, fa), each day by customer id
    expect(seen).toEqual(['cy', 'ed', 'gu', 'di', 'fa']);
  });

  it('describes every query parameter and the main answers in the served OpenAPI document, from the same rules that check them', async () => {
    await given([
      { type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } },
      { type: 'ThankCustomer', commandId: 't-ann-1', data: { customerId: 'ann', gesture: 'card', reason: 'first order', occurredAt: '2026-01-06T10:00:00Z' } },
      { type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'referral', referredBy: 'ann', occurredAt: '2026-01-21T09:00:00Z' } },
    ]);
    const doc = (await http.get('/docs-json').expect(200)).body;
    const params = (path: string) =>
      Object.fromEntries((doc.paths[path].get.parameters as { name: string; in: string; schema: { type?: string; enum?: string[] }; description?: string }[])
        .filter((p) => p.in === 'query')
        .map((p) => [p.name, { ...(p.schema.enum ? { enum: p.schema.enum } : { type: p.schema.type }), description: p.description }]));
    expect(Object.keys(params('/birthdays')).sort()).toEqual(['asOf', 'cursor', 'limit', 'withinDays']);
    expect(params('/birthdays')['limit']).toEqual({ type: 'integer', description: 'an integer from 1 to 1000' });
    expect(params('/statistics/churn')['per']).toEqual({ enum: ['month', 'quarter', 'year'], description: 'month, quarter or year' });
    expect(Object.keys(params('/statistics/golden')).sort()).toEqual(['channel', 'from', 'segment', 'source', 'to']);
    expect(Object.keys(params('/customers/{id}/events')).sort()).toEqual(['fromRevision', 'limit']);
    expect(params('/profiles')['sort']).toEqual({ enum: ['customerId', 'revenue', 'orders', 'lastPurchase'], description: 'one of customerId, revenue, orders, lastPurchase' });
    // the answers are as the document describes them, field for field (schemas are closed)
    const profile = (await http.get('/customers/ann/profile').expect(200)).body;
    expect(profile.stageHistory.length).toBeGreaterThan(0);
    expect(openApiAnswerErrors(doc, '/customers/{id}/profile', 'get', profile)).toEqual([]);
    expect(openApiAnswerErrors(doc, '/customers/{id}/profile', 'get', { ...profile, colour: 'red' })).toEqual(['(answer) must NOT have additional properties: colour']);
    expect(openApiAnswerErrors(doc, '/profiles', 'get', (await http.get('/profiles?limit=1').expect(200)).body)).toEqual([]);
    expect(openApiAnswerErrors(doc, '/birthdays', 'get', (await http.get('/birthdays?asOf=2026-02-01&withinDays=14').expect(200)).body)).toEqual([]);
    expect(openApiAnswerErrors(doc, '/customers/{id}', 'get', (await http.get('/customers/ann').expect(200)).body)).toEqual([]);
    expect(openApiAnswerErrors(doc, '/customers/{id}', 'get', (await http.get('/customers/ann?asOf=2026-01-03').expect(200)).body)).toEqual([]);
    expect(openApiAnswerErrors(doc, '/customers/{id}/events', 'get', (await http.get('/customers/ann/events?limit=1').expect(200)).body)).toEqual([]);
    // what the document says is what is checked: a value outside the described set is refused with the same words
    const refused = await http.get('/statistics/churn?per=decade').expect(400);
    expect(refused.body.errors).toEqual([{ field: 'per', expected: params('/statistics/churn')['per']!.description }]);
  });

  it('a bad statistics filter answers 400 naming the field', async () => {
    const bad = await http.get('/statistics/churn?from=yesterday').expect(400);
    expect(bad.body.errors[0].field).toBe('from');
    // the errors entry says what is expected, once
    const reversed = await http.get('/statistics/golden?from=2026-01-01&to=2025-01-01').expect(400);
    expect(reversed.body.errors).toEqual([{ field: 'to', expected: 'a date on or after from (2026-01-01)' }]);
    // a parameter given twice is said to be given twice, not only what one value must be
    const twice = await http.get('/statistics/stages?source=web&source=store').expect(400);
    expect(twice.body.errors).toEqual([{ field: 'source', expected: expect.stringMatching(/, given once \(it was given 2 times\)$/) }]);
    const week = await http.get('/statistics/churn?per=week').expect(400);
    expect(week.body.errors).toEqual([{ field: 'per', expected: 'month, quarter or year' }]);
    const quarters = (await http.get('/statistics/churn?per=quarter').expect(200)).body;
    expect(quarters).toEqual({ months: expect.any(Array), periods: expect.any(Array), reasons: expect.any(Array) });
    const unknown = await http.get('/statistics/churn?period=quarter').expect(400);
    expect(unknown.body.errors).toEqual([{ field: 'period', expected: expect.stringMatching(/^no such parameter \(this query takes .*\bfrom\b.*\bto\b/) }]);
    // a parameter another statistic takes is no parameter of this one, and the answer lists only this one's
    for (const path of ['/statistics/campaigns?foo=1', '/statistics/campaigns?asOf=2026-01-01']) {
      const refused = await http.get(path).expect(400);
      expect(refused.body.errors).toEqual([{ field: path.split('?')[1]!.split('=')[0], expected: 'no such parameter (this query takes from, to)' }]);
    }
    const notTaken = await http.get('/statistics/stages?from=2026-01-01&source=').expect(400);
    expect(notTaken.body.errors[0]).toEqual({ field: 'from', expected: 'no such parameter (this query takes asOf, channel, segment, source)' });
    const dimension = await http.get('/statistics/profitability/colour').expect(400);
    expect(dimension.body.errors[0].field).toBe('by');
    await http.get('/statistics/profitability/channel').expect(200);
  });

  it('given customers to page through, when a cursor is built by hand and holds nonsense for its list, then it answers 400 naming cursor and what was expected; the cursors pages give walk every order', async () => {
    await givenCursorCustomers(engine);
    expect(await cursorMismatches(http)).toEqual([]);
  });

  it('a bad filter answers 400 naming it, an unknown customer 404, and nothing is changed', async () => {
    const bad = await http.get('/profiles?limit=0&stage=vip&colour=red').expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['colour', 'limit', 'stage']);
    // a cursor no page gave is the caller's mistake, named, not a server error
    // a date that does not exist is refused wherever asOf is taken, not rolled over into the next month
    for (const path of ['/birthdays?asOf=2025-02-30', '/customers/ann/profile?asOf=2025-02-30', '/statistics/stages?asOf=2025-02-30']) {
      const impossible = await http.get(path).expect(400);
      expect(impossible.body.errors).toEqual([{ field: 'asOf', expected: expect.stringMatching(/calendar date/) }]);
    }
    for (const path of ['/profiles?cursor=bad', '/birthdays?cursor=bad', '/referrals/top-advocates?cursor=bad']) {
      const badCursor = await http.get(path).expect(400);
      expect(badCursor.body).toMatchObject({ code: 'invalid_query', errors: [{ field: 'cursor', expected: 'the nextCursor of a previous page' }] });
    }
    // endpoints without parameters refuse them too, instead of ignoring a filter the caller meant
    for (const path of ['/referrals/graph?limit=2', '/referrals/graph.dot?depth=1', '/referrals/viral-coefficient?from=2026-01-01', '/projections?name=profiles', '/health?verbose=1', '/metrics?name=x']) {
      const ignored = await http.get(path).expect(400);
      expect(ignored.body.errors).toEqual([{ field: expect.any(String), expected: 'no such parameter (this query takes none)' }]);
    }
    // so do the command routes, before anything is written: a caller who meant a dry run gets no write
    const register = { type: 'RegisterProspect', commandId: 'r-dry', data: { customerId: 'dry', source: 'web', occurredAt: '2026-01-02T09:00:00Z' } };
    const dryRun = await http.post('/commands?dryRun=true').send(register).expect(400);
    expect(dryRun.body.errors).toEqual([{ field: 'dryRun', expected: 'no such parameter (this query takes none)' }]);
    await http.post('/commands/batch?validateOnly=1').send({ commands: [register] }).expect(400);
    await http.post('/sweeps/churn?customer=dry').send({ asOf: '2026-01-03T00:00:00Z' }).expect(400);
    await http.get('/customers/dry').expect(404);
    // profitability takes asOf only by segment, and says so
    const notBySegment = await http.get('/statistics/profitability/channel?bogus=1').expect(400);
    expect(notBySegment.body.errors).toEqual([{ field: 'bogus', expected: 'no such parameter (this query takes channel, from, segment, source, to)' }]);
    await http.get('/statistics/profitability/segment?asOf=2026-01-31').expect(200);
    // a cursor and an offset together: refused, not the offset silently ignored
    const both = await http.get('/profiles?limit=1').expect(200);
    const mixed = await http.get(`/profiles?limit=1&offset=1&cursor=${encodeURIComponent(String(both.body.nextCursor))}`).expect(400);
    expect(mixed.body.errors).toEqual([{ field: 'offset', expected: expect.stringContaining('no offset with a cursor') }]);
    // a rule checked by several validators is said once
    const limit = await http.get('/profiles?limit=abc').expect(400);
    expect(limit.body.errors).toEqual([{ field: 'limit', expected: 'an integer from 1 to 1000' }]);
    await http.get('/referrals/tree/nobody').expect(404);
    const unknown = await http.get('/customers/nobody/profile').expect(404);
    expect(unknown.body.code).toBe('unknown_customer');
  });

  it('personal data is sealed at rest, and after erasure the profile no longer shows it while the figures stay', async () => {
    await given([
      { type: 'RegisterProspect', commandId: 'r-ann', data: { ...ann, occurredAt: '2026-01-02T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2026-01-05T10:00:00Z' } },
    ]);
    expect(readFileSync(join(dir, 'clientele.db')).includes('ann@example.com')).toBe(false);
    await given([{ type: 'EraseCustomerPersonalData', commandId: 'erase-ann', data: { customerId: 'ann', occurredAt: '2026-03-01T00:00:00Z' } }]);

    const profile = (await http.get('/customers/ann/profile').expect(200)).body;
    expect(JSON.stringify(profile)).not.toContain('ann@example.com');
    expect(JSON.stringify(profile)).not.toContain('Ann Smith');
    expect(profile).toMatchObject({ erased: true });
    expect(profile.identity).toEqual({});
    expect(profile.value.revenueMinor).toBe(3000);
    const history = (await http.get('/customers/ann/events').expect(200)).body.events;
    expect(JSON.stringify(history)).not.toContain('ann@example.com');
    expect(history.map((e: { type: string }) => e.type)).toContain('PersonalDataErased');
  });
});
