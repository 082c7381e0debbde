import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { EVENT_STORE, ReferralProcessRunner } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import { commandSchemaName, EXTERNAL_COMMAND_TYPES, validateCommandEnvelope } from '@clientele/contracts';
import { openApiAnswerErrors } from '@clientele/testing';
import Ajv from 'ajv';
import { seedDemoData } from './demo-data';
import { EngineReadModels } from './engine-read-models';
import { startTestEngine, type TestEngine } from './engine.test-support';

/** routes whose answer is not JSON: the media type each one documents */
const NOT_JSON: Record<string, string> = { '/metrics': 'text/plain', '/referrals/graph.dot': 'text/vnd.graphviz' };

describe('the served OpenAPI document, against real answers', () => {
  let engine: TestEngine;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    engine = await startTestEngine('openapi');
    ({ app, http } = engine);
    // the demo's synthetic customers: stages, referrals, churn, campaigns, staff and complaints
    await seedDemoData(app, 150);
    await app.get(ReferralProcessRunner).catchUp();
    await app.get(EngineReadModels).catchUp();
  });
  afterAll(() => engine.close());

  it('is a document strict OpenAPI 3.0 validators take: no empty required list, no empty servers list', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as Record<string, unknown>;
    const empty: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (Array.isArray(value)) value.forEach((item, i) => walk(item, `${path}/${i}`));
      else if (typeof value === 'object' && value !== null) {
        for (const [key, inner] of Object.entries(value)) {
          if (key === 'required' && Array.isArray(inner) && inner.length === 0) empty.push(path);
          walk(inner, `${path}/${key}`);
        }
      }
    };
    walk(doc, '#');

    expect(doc['openapi']).toMatch(/^3\.0\./);
    expect(empty).toEqual([]);
    expect(doc['servers'] === undefined || (doc['servers'] as unknown[]).length > 0).toBe(true);
    // the schemas it was built from keep their meaning: a personal-data object still needs no field
    expect((doc as { components: { schemas: Record<string, { required?: string[] }> } }).components.schemas['PersonalData']?.required).toBeUndefined();
  });

  it('gives every JSON GET route a 200 schema, and every answer, with and without parameters, is as it describes', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, Record<string, unknown>> };
    const gets = Object.keys(doc.paths).filter((p) => doc.paths[p]!['get'] !== undefined && NOT_JSON[p] === undefined);
    const undescribed = gets.filter((p) => openApiAnswerErrors(doc, p, 'get', null)[0]?.startsWith('the document has no') ?? false);
    expect(undescribed).toEqual([]);

    const advocate = ((await http.get('/referrals/top-advocates?limit=1').expect(200)).body as { items: { customerId: string }[] }).items[0]!.customerId;
    const someone = ((await http.get('/profiles?sort=revenue&direction=desc&limit=1').expect(200)).body as { items: { customerId: string }[] }).items[0]!.customerId;
    const asked: Record<string, string[]> = {
      // a page with a next cursor, and the page it leads to
      '/referrals/top-advocates': ['/referrals/top-advocates', '/referrals/top-advocates?limit=1'],
      '/customers/{id}': [`/customers/${someone}`, `/customers/${someone}?asOf=2025-06-30`, `/customers/${advocate}`],
      '/customers/{id}/events': [`/customers/${someone}/events`, `/customers/${advocate}/events?fromRevision=1&limit=3`],
      '/customers/{id}/profile': [`/customers/${someone}/profile`, `/customers/${advocate}/profile?asOf=2025-06-30`],
      '/profiles': ['/profiles?limit=20', '/profiles?stage=churned&sort=lastPurchase&direction=desc'],
      '/birthdays': ['/birthdays?withinDays=366&limit=20'],
      '/referrals/tree/{id}': [`/referrals/tree/${advocate}?depth=5`],
      '/statistics/churn': ['/statistics/churn', '/statistics/churn?per=quarter', '/statistics/churn?per=year&segment=lost'],
      '/statistics/value': ['/statistics/value', '/statistics/value?per=year&source=social'],
      '/statistics/profitability/segment': ['/statistics/profitability/segment', '/statistics/profitability/segment?asOf=2025-06-30'],
      '/statistics/profitability/{by}': ['channel', 'source', 'category', 'location'].map((by) => `/statistics/profitability/${by}`),
      '/statistics/stages': ['/statistics/stages', '/statistics/stages?asOf=2025-06-30'],
      '/statistics/rfm': ['/statistics/rfm', '/statistics/rfm?asOf=2025-06-15'],
    };
    const problems: Record<string, string[]> = {};
    const sizes: Record<string, number> = {};
    for (const path of gets) {
      for (const url of asked[path] ?? [path]) {
        const answer = (await http.get(url).expect(200)).body as unknown;
        const items = (answer as { items?: unknown }).items;
        sizes[url] = Array.isArray(answer) ? answer.length : Array.isArray(items) ? items.length : Object.keys(answer as object).length;
        const errors = openApiAnswerErrors(doc, path, 'get', answer);
        if (errors.length > 0) problems[url] = errors;
      }
    }
    expect(problems).toEqual({});
    // the demo data fills the lists, so the item schemas were exercised, not only empty arrays
    for (const url of ['/statistics/cohorts', '/statistics/value', '/statistics/rfm', '/statistics/campaigns', '/statistics/employees/complaints', '/referrals/top-advocates']) {
      expect({ url, size: sizes[url] }).toEqual({ url, size: expect.any(Number) });
      expect(sizes[url]).toBeGreaterThan(0);
    }
  });

  it('describes the problems of every GET route as they are served: a bad query parameter (400) everywhere, an unknown customer (404), a customer before registration', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, Record<string, unknown>> };
    const problems: Record<string, string[]> = {};
    for (const path of Object.keys(doc.paths).filter((p) => doc.paths[p]!['get'] !== undefined)) {
      const url = path.replace('{id}', 'nobody-here').replace('{by}', 'channel');
      const answer = await http.get(`${url}?colour=red`).expect(400);
      const errors = openApiAnswerErrors(doc, path, 'get', answer.body, 400);
      if (errors.length > 0) problems[path] = errors;
    }
    for (const path of ['/customers/{id}', '/customers/{id}/events', '/customers/{id}/profile', '/referrals/tree/{id}']) {
      const answer = await http.get(path.replace('{id}', 'nobody-here')).expect(404);
      const errors = openApiAnswerErrors(doc, path, 'get', answer.body, 404);
      if (errors.length > 0) problems[`${path} 404`] = errors;
    }
    // as of a date before anyone registered: stage null
    const someone = ((await http.get('/profiles?limit=1').expect(200)).body as { items: { customerId: string }[] }).items[0]!.customerId;
    const before = (await http.get(`/customers/${someone}?asOf=1990-01-01`).expect(200)).body as { stage: unknown };
    expect(before.stage).toBeNull();
    expect(openApiAnswerErrors(doc, '/customers/{id}', 'get', before)).toEqual([]);
    expect(problems).toEqual({});
  });

  it('documents the media type of the answers that are not JSON, as they are served', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, { get?: { responses?: Record<string, { content?: object }> } }> };
    for (const [path, type] of Object.entries(NOT_JSON)) {
      expect({ path, documented: Object.keys(doc.paths[path]?.get?.responses?.['200']?.content ?? {}) }).toEqual({ path, documented: [type] });
      const served = await http.get(path).expect(200);
      expect({ path, served: String(served.headers['content-type']).split(';')[0] }).toEqual({ path, served: type });
      expect(served.text.length).toBeGreaterThan(0);
    }
  });

  it('describes /health when the store cannot be read: 503, status down, with the reason', async () => {
    const store = app.get<EventStore>(EVENT_STORE);
    const spy = jest.spyOn(store, 'headPosition').mockRejectedValueOnce(new Error('the store file cannot be read'));
    try {
      const down = await http.get('/health').expect(503);
      expect(down.body).toEqual({ status: 'down', store: { reachable: false, error: 'the store file cannot be read' }, processManager: { running: false } });
      const doc = (await http.get('/docs-json').expect(200)).body as unknown;
      expect(openApiAnswerErrors(doc, '/health', 'get', down.body, 503)).toEqual([]);
    } finally {
      spy.mockRestore();
    }
    await http.get('/health').expect(200);
  });

  it('describes the referral tree at every depth: a node three levels down is checked like the first', async () => {
    const at = '2025-03-01T10:00:00Z';
    const chain = ['oa-1', 'oa-2', 'oa-3', 'oa-4'];
    for (const [i, id] of chain.entries()) {
      const data = { customerId: id, source: 'referral', channel: 'web', occurredAt: at, ...(i > 0 ? { referredBy: chain[i - 1] } : {}) };
      await http.post('/commands').send({ type: 'RegisterProspect', commandId: `reg-${id}`, data }).expect(201);
    }
    await app.get(ReferralProcessRunner).catchUp();
    await app.get(EngineReadModels).catchUp();
    const doc = (await http.get('/docs-json').expect(200)).body as unknown;
    type Node = { customerId: string; referees: Node[] } & Record<string, unknown>;
    const tree = (await http.get('/referrals/tree/oa-1?depth=5').expect(200)).body as { customerId: string; referees: Node[] };
    expect(tree.referees[0]?.referees[0]?.referees[0]?.customerId).toBe('oa-4');
    expect(openApiAnswerErrors(doc, '/referrals/tree/{id}', 'get', tree)).toEqual([]);
    // a field the document does not describe, three levels down, is caught
    tree.referees[0]!.referees[0]!.referees[0]!['undescribed'] = 1;
    expect(openApiAnswerErrors(doc, '/referrals/tree/{id}', 'get', tree).join('; ')).toContain('must NOT have additional properties: undescribed');
  });

  it('describes the answers of the command routes as they are served: results, the batch, the sweep, and their problems', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as unknown;
    const at = '2025-04-01T10:00:00Z';
    const register = { type: 'RegisterProspect', commandId: 'oc-reg', data: { customerId: 'oc-1', source: 'web', occurredAt: at } };
    const applied = await http.post('/commands').send(register).expect(201);
    expect(openApiAnswerErrors(doc, '/commands', 'post', applied.body, 201)).toEqual([]);
    const duplicate = await http.post('/commands').send(register).expect(200);
    expect(openApiAnswerErrors(doc, '/commands', 'post', duplicate.body, 200)).toEqual([]);
    for (const [body, status] of [
      [{ ...register, data: { ...register.data, source: 42 } }, 400],
      [{ type: 'MarkCustomerLost', commandId: 'oc-lost', data: { customerId: 'oc-1', reason: 'moved', occurredAt: at } }, 422],
    ] as const) {
      const refused = await http.post('/commands').send(body).expect(status);
      expect(openApiAnswerErrors(doc, '/commands', 'post', refused.body, status)).toEqual([]);
    }
    const batch = await http
      .post('/commands/batch')
      .send({ commands: [{ ...register, commandId: 'oc-reg-2', data: { ...register.data, customerId: 'oc-2' } }, { type: 'Nope', commandId: 'x', data: {} }] })
      .expect(200);
    expect(batch.body.results.map((r: { status: number }) => r.status)).toEqual([201, 400]);
    expect(openApiAnswerErrors(doc, '/commands/batch', 'post', batch.body)).toEqual([]);
    const sweep = await http.post('/sweeps/churn').send({ asOf: '2025-05-01T00:00:00Z' }).expect(200);
    expect(openApiAnswerErrors(doc, '/sweeps/churn', 'post', sweep.body)).toEqual([]);
    const badSweep = await http.post('/sweeps/churn').send({ asOf: 'soon' }).expect(400);
    expect(openApiAnswerErrors(doc, '/sweeps/churn', 'post', badSweep.body, 400)).toEqual([]);
    // the read routes' 404s are described too
    for (const [path, route] of [['/customers/nobody/profile', '/customers/{id}/profile'], ['/referrals/tree/nobody', '/referrals/tree/{id}']] as const) {
      const unknown = await http.get(path).expect(404);
      expect(openApiAnswerErrors(doc, route, 'get', unknown.body, 404)).toEqual([]);
    }
  });

  it('documents for each statistic exactly the filters it takes: each documented one is answered, each other refused by name', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, { get?: { parameters?: { name: string; in: string }[] } }> };
    const sample: Record<string, string> = { from: '2025-01-01', to: '2025-12-31', asOf: '2025-06-30', source: 'social', channel: 'email', segment: 'lost' };
    const routes = Object.keys(doc.paths).filter((p) => p.startsWith('/statistics/'));
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) {
      const documented = new Set((doc.paths[route]!.get!.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name));
      const path = route.replace('{by}', 'channel');
      for (const [name, value] of Object.entries(sample)) {
        const res = await http.get(`${path}?${name}=${value}`);
        expect({ route, name, status: res.status }).toEqual({ route, name, status: documented.has(name) ? 200 : 400 });
        if (!documented.has(name)) expect(res.body.errors[0].field).toBe(name);
      }
    }
  });
  it('declares the bounds, sets and defaults of every query parameter, and answers as declared: the maximum and minimum accepted, one past either refused naming the parameter, each value of a set accepted, the default answered as when the parameter is left out', async () => {
    type Schema = { type?: string; minimum?: number; maximum?: number; default?: string | number; enum?: string[] };
    type Parameter = { name: string; in: string; schema: Schema };
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, { get?: { parameters?: Parameter[] } }> };
    const advocate = ((await http.get('/referrals/top-advocates?limit=1').expect(200)).body as { items: { customerId: string }[] }).items[0]!.customerId;
    const failures: unknown[] = [];
    const checked: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      const parameters = item.get?.parameters ?? [];
      const by = parameters.find((p) => p.name === 'by')?.schema.enum?.[0];
      const route = path.replace('{id}', advocate).replace('{by}', by ?? '');
      const ask = (name: string, value: string | number) => http.get(`${route}?${name}=${encodeURIComponent(String(value))}`);
      const accepted = async (name: string, value: string | number) => {
        const res = await ask(name, value);
        if (res.status !== 200) failures.push({ path, name, value, status: res.status, body: res.body as unknown });
      };
      const refused = async (name: string, value: string | number) => {
        const res = await ask(name, value);
        const fields = (res.body as { errors?: { field: string }[] }).errors?.map((e) => e.field);
        if (res.status !== 400 || fields?.join() !== name) failures.push({ path, name, value, status: res.status, fields });
      };
      for (const { name, in: where, schema } of parameters.filter((p) => p.in === 'query')) {
        if (schema.type === 'integer') {
          checked.push(`${path} ${name}`);
          // every integer parameter is bounded both ways: a generated client can check it before sending
          if (schema.minimum === undefined || schema.maximum === undefined) failures.push({ path, name, where, unbounded: schema });
          else {
            await accepted(name, schema.minimum);
            await accepted(name, schema.maximum);
            await refused(name, schema.minimum - 1);
            await refused(name, schema.maximum + 1);
            await refused(name, `${schema.minimum}.5`);
          }
        }
        if (schema.enum) {
          checked.push(`${path} ${name}`);
          for (const value of schema.enum) await accepted(name, value);
          await refused(name, 'none-of-these');
        }
        if (schema.default !== undefined) {
          const without = await http.get(route).expect(200);
          const given = await ask(name, schema.default);
          if (given.status !== 200 || JSON.stringify(given.body) !== JSON.stringify(without.body)) failures.push({ path, name, default: schema.default, status: given.status });
        }
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toEqual(
      expect.arrayContaining([
        '/customers/{id}/events fromRevision',
        '/customers/{id}/events limit',
        '/profiles limit',
        '/profiles offset',
        '/profiles stage',
        '/profiles sort',
        '/profiles direction',
        '/birthdays withinDays',
        '/birthdays limit',
        '/referrals/tree/{id} depth',
        '/referrals/top-advocates limit',
        '/statistics/churn per',
        '/statistics/value per',
        '/statistics/golden segment',
      ]),
    );
    const declared = (path: string, name: string) => doc.paths[path]!.get!.parameters!.find((p) => p.name === name)!.schema;
    expect(declared('/profiles', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 1000, default: 50 });
    expect(declared('/birthdays', 'withinDays')).toEqual({ type: 'integer', minimum: 0, maximum: 366, default: 30 });
    expect(declared('/statistics/churn', 'per')).toEqual({ type: 'string', enum: ['month', 'quarter', 'year'], default: 'month' });
    // a history without a limit is the whole history: no default is declared
    expect(declared('/customers/{id}/events', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 10_000 });
  });

  it('declares asOf for profitability by segment only, where it dates the segments, and refuses it by name for the groupings kept per month', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, { get?: { parameters?: { name: string; in: string; schema: { enum?: string[] } }[] } }> };
    const names = (path: string) => (doc.paths[path]?.get?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
    expect(names('/statistics/profitability/segment')).toContain('asOf');
    expect(names('/statistics/profitability/{by}')).not.toContain('asOf');
    const by = doc.paths['/statistics/profitability/{by}']!.get!.parameters!.find((p) => p.name === 'by')!.schema.enum;
    expect(by).toEqual(['channel', 'source', 'category', 'location']);
    const early = (await http.get('/statistics/profitability/segment?asOf=2025-03-31').expect(200)).body as unknown[];
    const now = (await http.get('/statistics/profitability/segment').expect(200)).body as unknown[];
    expect(early).not.toEqual(now);
    for (const grouping of by!) {
      const refused = await http.get(`/statistics/profitability/${grouping}?asOf=2025-03-31&colour=red`).expect(400);
      expect(refused.body.errors).toEqual([
        { field: 'asOf', expected: expect.stringMatching(new RegExp(`^no asOf by ${grouping}: its figures are kept per month, so ask for a period \\(from, to\\); asOf dates the segments of GET /statistics/profitability/segment$`)) },
        { field: 'colour', expected: expect.stringMatching(/^no such parameter/) },
      ]);
    }
  });

  it('types the command request bodies per command type, with a named schema for each, and every $ref in the document resolves', async () => {
    type Doc = { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };
    const doc = (await http.get('/docs-json').expect(200)).body as Doc;
    const single = doc.paths['/commands']!['post'].requestBody.content['application/json'].schema;
    const item = doc.paths['/commands/batch']!['post'].requestBody.content['application/json'].schema.properties.commands.items;
    const named = EXTERNAL_COMMAND_TYPES.map((type) => `#/components/schemas/${commandSchemaName(type)}`);
    for (const body of [single, item]) {
      expect(body.oneOf.map((s: { $ref: string }) => s.$ref)).toEqual(named);
      expect(Object.values(body.discriminator.mapping)).toEqual(named);
    }
    expect(doc.components.schemas['RecordPurchaseCommand'].properties.data).toEqual({ $ref: '#/components/schemas/RecordPurchaseData' });
    expect(doc.components.schemas['RecordPurchaseData'].properties.lines.items).toEqual({ $ref: '#/components/schemas/PurchaseLine' });
    // the document is OpenAPI 3.0, which has neither of these JSON Schema 2020-12 keywords
    expect(JSON.stringify(doc.components)).not.toMatch(/"(const|propertyNames|\$defs)":/);

    const unresolved: string[] = [];
    const refs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (typeof node === 'object' && node !== null) {
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') {
            refs.push(value);
            let target: unknown = doc;
            for (const part of value.replace(/^#\//, '').split('/')) target = (target as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
            if (!value.startsWith('#/') || target === undefined) unresolved.push(value);
          } else walk(value);
        }
      }
    };
    walk(doc);
    expect(unresolved).toEqual([]);
    expect(refs).toEqual(expect.arrayContaining([...named, '#/components/schemas/PersonalData', '#/components/schemas/CommandResult']));

    // the body schema as a client checking before sending reads it: the example passes, as it does the engine's validator;
    // data of another type, or a line of the wrong shape, does not
    const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile({ allOf: [single], components: doc.components });
    expect(validateCommandEnvelope(single.example).ok).toBe(true);
    expect(validate(single.example)).toBe(true);
    const purchase = single.example as { data: { lines: object[] } };
    expect(validate({ ...purchase, type: 'HireEmployee' })).toBe(false);
    expect(validate({ ...purchase, data: { ...purchase.data, lines: [{ ...purchase.data.lines[0], quantity: '1' }] } })).toBe(false);
  });
});
