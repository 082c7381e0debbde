import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { ReferralProcessRunner } from '@clientele/application';
import { handBuiltCursors } from '@clientele/testing';
import { bootstrapEngine } from './bootstrap';
import { EngineReadModels } from './engine-read-models';
import { loadEngineConfig } from './engine.config';

/** An engine for the specs, in a data directory of its own. */
export interface TestEngine {
  dir: string;
  app: NestExpressApplication;
  http: ReturnType<typeof request>;
  /** stops the engine and deletes its directory */
  close(): Promise<void>;
}

/**
 * Starts the whole engine on a fresh temporary data directory (`clientele-<name>-…`), durability
 * `normal` and no logs, with `env` on top of that.
 */
export async function startTestEngine(name: string, env: Record<string, string> = {}): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), `clientele-${name}-`));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    const app = await bootstrapEngine(loadEngineConfig({ CLIENTELE_DATA_DIR: dir, CLIENTELE_DURABILITY: 'normal', LOG_LEVEL: 'silent', ...env }));
    return {
      dir,
      app,
      http: request(app.getHttpServer()),
      async close() {
        await app.close();
        remove();
      },
    };
  } catch (error) {
    remove();
    throw error;
  }
}

/** the birthdays window the cursor specs page through: CURSOR_CUSTOMERS have birthdays in it */
const CURSOR_WINDOW = { from: '2026-02-01', withinDays: 14 };

/**
 * Customers to page through in every order: revenues, order counts and last purchases that differ
 * and tie, one who never bought (an empty last purchase), birthdays in CURSOR_WINDOW.
 */
export async function givenCursorCustomers(engine: TestEngine): Promise<void> {
  const commands: object[] = [];
  for (let i = 0; i < 9; i += 1) {
    const customerId = `cur-${i}`;
    const personal = { name: customerId, birthday: `1990-02-0${2 + (i % 3)}` };
    commands.push({ type: 'RegisterProspect', commandId: `r-${customerId}`, data: { customerId, source: 'web', personal, occurredAt: '2026-01-02T09:00:00Z' } });
    for (let o = 0; o < i % 4; o += 1) {
      const lines = [{ sku: `sku-${o}`, category: 'books', quantity: 1, unitPriceMinor: 1000 * (1 + (i % 3)), unitCostMinor: 100 }];
      commands.push({ type: 'RecordPurchase', commandId: `p-${customerId}-${o}`, data: { customerId, orderId: `${customerId}-${o}`, lines, occurredAt: `2026-01-1${o}T10:00:00Z` } });
    }
  }
  const res = await engine.http.post('/commands/batch').send({ commands }).expect(200);
  const refused = (res.body.results as { status: number }[]).filter((r) => r.status >= 300);
  if (refused.length > 0) throw new Error(`the cursor customers were refused: ${JSON.stringify(refused)}`);
  await engine.app.get(ReferralProcessRunner).catchUp();
  await engine.app.get(EngineReadModels).catchUp();
}

/**
 * What the paged lists answer against what they should, over HTTP: each hand-built cursor
 * (libs/testing) refused 400 invalid_query naming cursor and what was expected, and the cursors
 * pages give walking every order of /profiles and the birthdays of CURSOR_WINDOW without gaps or
 * repeats. An empty answer is right.
 */
export async function cursorMismatches(http: ReturnType<typeof request>): Promise<unknown[]> {
  const mismatches: unknown[] = [];
  const birthdays = `/birthdays?asOf=${CURSOR_WINDOW.from}&withinDays=${CURSOR_WINDOW.withinDays}`;
  for (const c of handBuiltCursors('cur-1', CURSOR_WINDOW)) {
    const list = c.list === 'birthdays' ? birthdays : `/profiles?sort=${c.list.sort}&direction=${c.list.direction}`;
    const res = await http.get(`${list}&cursor=${encodeURIComponent(c.cursor)}`);
    const body = res.body as { code?: string; errors?: { field: string; expected: string }[] };
    const [error, ...more] = body.errors ?? [];
    const right = res.status === 400 && body.code === 'invalid_query' && more.length === 0 && error?.field === 'cursor' && c.expected.test(error.expected);
    if (!right) mismatches.push({ why: c.why, status: res.status, body });
  }
  const walk = async (list: string, limit: number): Promise<string[]> => {
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await http.get(`${list}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (res.status !== 200) return [...seen, `answered ${res.status}: ${JSON.stringify(res.body)}`];
      const page = res.body as { items: { customerId: string }[]; nextCursor?: string };
      seen.push(...page.items.map((i) => i.customerId));
      cursor = page.nextCursor;
    } while (cursor);
    return seen;
  };
  const lists = [birthdays];
  for (const sort of ['customerId', 'revenue', 'orders', 'lastPurchase']) for (const direction of ['asc', 'desc']) lists.push(`/profiles?sort=${sort}&direction=${direction}`);
  for (const list of lists) {
    const whole = await walk(list, 1000);
    const paged = await walk(list, 2);
    if (whole.length < 5 || JSON.stringify(paged) !== JSON.stringify(whole)) mismatches.push({ list, whole, paged });
  }
  return mismatches;
}
