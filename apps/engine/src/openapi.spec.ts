import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { ReferralProcessRunner } from '@clientele/application';
import { openApiAnswerErrors } from '@clientele/testing';
import { bootstrapEngine } from './bootstrap';
import { seedDemoData } from './demo-data';
import { EngineReadModels } from './engine-read-models';
import { loadEngineConfig } from './engine.config';

/** routes whose answer is not JSON, or is for operators rather than generated clients */
const WITHOUT_SCHEMA = new Set(['/health', '/metrics', '/referrals/graph.dot']);

describe('the served OpenAPI document, against real answers', () => {
  let dir: string;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-openapi-'));
    app = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent' }));
    http = request(app.getHttpServer());
    // the demo's synthetic customers: stages, referrals, churn, campaigns, staff and complaints
    await seedDemoData(app, 150);
    await app.get(ReferralProcessRunner).catchUp();
    await app.get(EngineReadModels).catchUp();
  });
  afterAll(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every JSON GET route a 200 schema, and every answer, with and without parameters, is as it describes', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, Record<string, unknown>> };
    const gets = Object.keys(doc.paths).filter((p) => doc.paths[p]!['get'] !== undefined && !WITHOUT_SCHEMA.has(p));
    const undescribed = gets.filter((p) => openApiAnswerErrors(doc, p, 'get', null)[0]?.startsWith('the document has no') ?? false);
    expect(undescribed).toEqual([]);

    const advocate = ((await http.get('/referrals/top-advocates?limit=1').expect(200)).body as { customerId: string }[])[0]!.customerId;
    const someone = ((await http.get('/profiles?sort=revenue&direction=desc&limit=1').expect(200)).body as { items: { customerId: string }[] }).items[0]!.customerId;
    const asked: Record<string, string[]> = {
      '/customers/{id}': [`/customers/${someone}`, `/customers/${someone}?asOf=2025-06-30`, `/customers/${advocate}`],
      '/customers/{id}/events': [`/customers/${someone}/events`, `/customers/${advocate}/events?fromRevision=1&limit=3`],
      '/customers/{id}/profile': [`/customers/${someone}/profile`, `/customers/${advocate}/profile?asOf=2025-06-30`],
      '/profiles': ['/profiles?limit=20', '/profiles?stage=churned&sort=lastPurchase&direction=desc'],
      '/birthdays': ['/birthdays?withinDays=366&limit=20'],
      '/referrals/tree/{id}': [`/referrals/tree/${advocate}?depth=5`],
      '/statistics/churn': ['/statistics/churn', '/statistics/churn?per=quarter', '/statistics/churn?per=year&segment=lost'],
      '/statistics/value': ['/statistics/value', '/statistics/value?per=year&source=social'],
      '/statistics/profitability/{by}': ['segment', 'channel', 'source', 'category', 'location'].map((by) => `/statistics/profitability/${by}`),
      '/statistics/stages': ['/statistics/stages', '/statistics/stages?asOf=2025-06-30'],
      '/statistics/rfm': ['/statistics/rfm', '/statistics/rfm?asOf=2025-06-15'],
    };
    const problems: Record<string, string[]> = {};
    const sizes: Record<string, number> = {};
    for (const path of gets) {
      for (const url of asked[path] ?? [path]) {
        const answer = (await http.get(url).expect(200)).body as unknown;
        sizes[url] = Array.isArray(answer) ? answer.length : Object.keys(answer as object).length;
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

  it('documents for each statistic exactly the filters it takes: each documented one is answered, each other refused by name', async () => {
    const doc = (await http.get('/docs-json').expect(200)).body as { paths: Record<string, { get?: { parameters?: { name: string; in: string }[] } }> };
    const sample: Record<string, string> = { from: '2025-01-01', to: '2025-12-31', asOf: '2025-06-30', source: 'social', channel: 'email', segment: 'lost' };
    const routes = Object.keys(doc.paths).filter((p) => p.startsWith('/statistics/'));
    expect(routes.length).toBeGreaterThan(10);
    for (const route of routes) {
      const documented = new Set((doc.paths[route]!.get!.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name));
      const path = route.replace('{by}', 'segment');
      for (const [name, value] of Object.entries(sample)) {
        const res = await http.get(`${path}?${name}=${value}`);
        expect({ route, name, status: res.status }).toEqual({ route, name, status: documented.has(name) ? 200 : 400 });
        if (!documented.has(name)) expect(res.body.errors[0].field).toBe(name);
      }
    }
  });
});
