import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { EngineReadModels } from './engine-read-models';
import { startTestEngine, type TestEngine } from './engine.test-support';

const line = (sku: string, category: string, quantity: number, unitPriceMinor: number) => ({ sku, category, quantity, unitPriceMinor, unitCostMinor: 100 });

/**
 * One scripted history asked about at several business dates. Every expected figure is worked out
 * by hand from the script below (default policy: repeat buyer at 2 orders, churn after 180 days).
 *   2025-01-10 09:00 registered (web)
 *   2025-02-01 10:00 order A1: 2 × books at 15.00           → customer, revenue 3000, cost 200
 *   2025-03-15 10:00 order A2: 1 × music at 9.00            → repeat buyer, revenue 3900, cost 300
 *   2025-10-01 00:00 churn sweep (199+ days without a purchase) → churned
 *   2025-11-20 10:00 order A3: 1 × music at 25.00           → win-back: customer, revenue 6400, cost 400
 */
describe('time travel over HTTP: GET /customers/:id?asOf= and GET /customers/:id/profile?asOf=', () => {
  let engine: TestEngine;
  let app: NestExpressApplication;
  let http: ReturnType<typeof request>;

  beforeAll(async () => {
    engine = await startTestEngine('time-travel');
    ({ app, http } = engine);
    const send = async (commands: object[]) => {
      const res = await http.post('/commands/batch').send({ commands }).expect(200);
      for (const item of res.body.results as { status: number }[]) expect(item.status).toBeLessThan(300);
    };
    await send([
      { type: 'RegisterProspect', commandId: 'r-ann', data: { customerId: 'ann', source: 'web', channel: 'email', personal: { name: 'Ann Smith' }, occurredAt: '2025-01-10T09:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-1', data: { customerId: 'ann', orderId: 'A1', lines: [line('bk-1', 'books', 2, 1500)], occurredAt: '2025-02-01T10:00:00Z' } },
      { type: 'RecordPurchase', commandId: 'p-ann-2', data: { customerId: 'ann', orderId: 'A2', lines: [line('mu-1', 'music', 1, 900)], occurredAt: '2025-03-15T10:00:00Z' } },
    ]);
    const sweep = await http.post('/sweeps/churn').send({ asOf: '2025-10-01T00:00:00Z' }).expect(200);
    expect(sweep.body).toMatchObject({ churned: 1 });
    await send([{ type: 'RecordPurchase', commandId: 'p-ann-3', data: { customerId: 'ann', orderId: 'A3', lines: [line('mu-2', 'music', 1, 2500)], occurredAt: '2025-11-20T10:00:00Z' } }]);
    await app.get(EngineReadModels).catchUp();
  });
  afterAll(() => engine.close());

  const at = async (date: string) => (await http.get(`/customers/ann?asOf=${encodeURIComponent(date)}`).expect(200)).body;
  const profileAt = async (date: string) => (await http.get(`/customers/ann/profile?asOf=${encodeURIComponent(date)}`).expect(200)).body;

  it('before registration: no stage yet, every event later; the profile does not exist yet', async () => {
    const before = await at('2025-01-09');
    // 1 registration, 3 purchases each with its transition (converted, qualified, reactivated), 1 churn
    expect(before).toMatchObject({ customerId: 'ann', stage: null, orders: 0, asOf: { at: '2025-01-09T23:59:59.999Z', events: [], eventsLater: 8 } });
    await http.get('/customers/ann/profile?asOf=2025-01-09').expect(404);
  });

  it('a prospect until the first purchase, to the minute', async () => {
    const prospect = await at('2025-02-01T09:59:59Z');
    expect(prospect).toMatchObject({ stage: 'prospect', orders: 0, registeredAt: '2025-01-10T09:00:00.000Z', source: 'web' });
    expect(prospect.asOf.events).toEqual([expect.objectContaining({ type: 'ProspectRegistered', occurredAt: '2025-01-10T09:00:00.000Z', position: expect.any(Number), id: expect.any(String) })]);
    expect(prospect.asOf.policy).toMatchObject({ repeatPurchaseThreshold: 2, churnAfterDays: 180 });
    const profile = await profileAt('2025-02-01T09:59:59Z');
    expect(profile).toMatchObject({ stage: 'prospect', value: { revenueMinor: 0, costMinor: 0, marginMinor: 0 }, rfm: { frequency: 0, monetaryMinor: 0 }, identity: { name: 'Ann Smith' } });
  });

  it('a customer at the end of the day of the first purchase', async () => {
    expect(await at('2025-02-01')).toMatchObject({ stage: 'customer', orders: 1, daysSinceLastPurchase: 0, churnDue: false });
    const profile = await profileAt('2025-02-01');
    expect(profile).toMatchObject({
      stage: 'customer',
      firstPurchaseAt: '2025-02-01T10:00:00.000Z',
      value: { revenueMinor: 3000, costMinor: 200, marginMinor: 2800 },
      rfm: { recencyDays: 0, frequency: 1, monetaryMinor: 3000 },
      habits: { topCategories: [{ category: 'books', quantity: 2 }], averageBasketMinor: 3000 },
    });
  });

  it('a repeat buyer on 2025-06-30, 107 days after the last purchase, not yet due for churn', async () => {
    expect(await at('2025-06-30')).toMatchObject({ stage: 'repeat_buyer', orders: 2, daysSinceLastPurchase: 107, churnDue: false });
    const profile = await profileAt('2025-06-30');
    expect(profile).toMatchObject({
      stage: 'repeat_buyer',
      lastPurchaseAt: '2025-03-15T10:00:00.000Z',
      value: { revenueMinor: 3900, costMinor: 300, marginMinor: 3600 },
      rfm: { recencyDays: 107, frequency: 2, monetaryMinor: 3900 },
      habits: { topCategories: [{ category: 'books', quantity: 2 }, { category: 'music', quantity: 1 }], averageBasketMinor: 1950 },
    });
    expect(profile.stageHistory.map((s: { stage: string }) => s.stage)).toEqual(['prospect', 'customer', 'repeat_buyer']);
  });

  it('still a repeat buyer the day before the sweep, but due for churn (199 days)', async () => {
    expect(await at('2025-09-30')).toMatchObject({ stage: 'repeat_buyer', daysSinceLastPurchase: 199, churnDue: true });
    expect((await profileAt('2025-09-30')).rfm).toEqual({ recencyDays: 199, frequency: 2, monetaryMinor: 3900 });
  });

  it('churned from the sweep date until the win-back purchase', async () => {
    const churned = await at('2025-11-19');
    expect(churned).toMatchObject({ stage: 'churned', orders: 2, churnDue: false });
    expect(churned.churnedAt.slice(0, 10)).toBe('2025-10-01');
    expect(churned.asOf.events.map((e: { type: string }) => e.type)).toContain('CustomerChurned');
    expect((await profileAt('2025-11-19')).stage).toBe('churned');
  });

  it('won back by year end: a customer again with three orders; the as-of profile equals the live one', async () => {
    const yearEnd = await at('2025-12-31');
    expect(yearEnd).toMatchObject({ stage: 'customer', orders: 3, daysSinceLastPurchase: 41, asOf: { eventsLater: 0 } });
    expect(yearEnd.stageHistory.map((s: { stage: string }) => s.stage)).toEqual(['prospect', 'customer', 'repeat_buyer', 'churned', 'customer']);
    const profile = await profileAt('2025-12-31');
    expect(profile).toMatchObject({
      stage: 'customer',
      value: { revenueMinor: 6400, costMinor: 400, marginMinor: 6000 },
      rfm: { recencyDays: 41, frequency: 3, monetaryMinor: 6400 },
      // 3 orders over 355.6 days of tenure (2025-01-10 09:00 to the end of 2025-12-31)
      habits: { ordersPer30Days: 0.25, averageBasketMinor: 2133 },
    });
    // the live read model, asked about the same instant, tells the same story
    const live = (await http.get('/customers/ann/profile').expect(200)).body;
    expect({ ...profile, rfm: undefined, habits: undefined, daysToNextBirthday: undefined }).toEqual({ ...live, rfm: undefined, habits: undefined, daysToNextBirthday: undefined });
  });

  it('statistics as of a date count the customer in the stage the history gives at that date', async () => {
    const stageOn = async (date: string) => {
      const body = (await http.get(`/statistics/stages?asOf=${date}`).expect(200)).body as { stages: Record<string, number>; total: number };
      return Object.entries(body.stages).filter(([, n]) => n > 0);
    };
    expect(await stageOn('2025-01-31')).toEqual([['prospect', 1]]);
    expect(await stageOn('2025-06-30')).toEqual([['repeat_buyer', 1]]);
    expect(await stageOn('2025-11-19')).toEqual([['churned', 1]]);
    expect(await stageOn('2025-12-31')).toEqual([['customer', 1]]);
  });

  it('without asOf the current answer is unchanged; a bad asOf is a 400 naming it; an unknown customer a 404', async () => {
    const current = (await http.get('/customers/ann').expect(200)).body;
    expect(current).toMatchObject({ customerId: 'ann', streamId: expect.any(String), stage: 'customer', orders: 3 });
    expect(current.asOf).toBeUndefined();
    const bad = await http.get('/customers/ann?asOf=31/12/2025').expect(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'asOf' })]);
    await http.get('/customers/ann/profile?asOf=2025-02-30T10:00').expect(400);
    await http.get('/customers/ann/profile?asOf=2025-02-30').expect(400);
    await http.get('/customers/ann?asOf=2025-02-30').expect(400);
    await http.get('/customers/nobody?asOf=2025-12-31').expect(404);
    // a sweep as of a date that does not exist is refused, not run as of the day it rolls over to
    for (const asOf of ['2025-02-30T00:00:00Z', '2025-06-31T00:00:00Z']) {
      const sweep = await http.post('/sweeps/churn').send({ asOf }).expect(400);
      expect(sweep.body.errors).toEqual([{ field: 'asOf', expected: expect.stringContaining('existing calendar date') }]);
    }
    // and one in the future, which would churn everyone
    const future = await http.post('/sweeps/churn').send({ asOf: '2206-01-01T00:00:00Z' }).expect(400);
    expect(future.body.errors).toEqual([{ field: 'asOf', expected: expect.stringContaining('a fact cannot be dated in the future') }]);
  });
});
