import { DomainError, lifecyclePolicy, type DomainCommand, type PurchaseLine } from '@clientele/domain';
import { asOfInstant, readCustomerAsOf } from './as-of';
import { runCommand, tempDir } from '@clientele/testing';
import { SqliteEventStore } from './sqlite/sqlite.event-store';

const line: PurchaseLine = { sku: 'cd-1', category: 'jazz', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };

/** register → first purchase → second purchase → churn sweep → win-back, written through the deciders */
const history: [string, DomainCommand][] = [
  ['cmd-register', { type: 'RegisterProspect', data: { customerId: 'ada', source: 'web', occurredAt: '2025-01-10T09:00:00Z' } }],
  ['cmd-order-1', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-1', lines: [line], occurredAt: '2025-02-01T10:00:00Z' } }],
  ['cmd-order-2', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-2', lines: [line], occurredAt: '2025-03-15T16:30:00Z' } }],
  ['cmd-sweep', { type: 'ChurnIfInactive', data: { customerId: 'ada', occurredAt: '2025-10-01T00:00:00Z' } }],
  ['cmd-order-3', { type: 'RecordPurchase', data: { customerId: 'ada', orderId: 'o-3', lines: [line], occurredAt: '2025-12-05T12:00:00Z' } }],
];

describe('customer as of a business date', () => {
  const tmp = tempDir('clientele-as-of-');
  let store: SqliteEventStore;

  beforeAll(async () => {
    store = new SqliteEventStore({ file: tmp.file('events.db'), durability: 'normal' });
    // some other customer's events interleave in the log
    await runCommand(store, 'other', { type: 'RegisterProspect', data: { customerId: 'bob', source: 'store', occurredAt: '2025-01-01T00:00:00Z' } });
    for (const [commandId, command] of history) {
      const result = await runCommand(store, commandId, command);
      expect(result?.events.length).toBeGreaterThan(0);
    }
  });

  afterAll(async () => {
    await store.close();
    tmp.remove();
  });

  it.each([
    ['2025-01-09', undefined, 0],
    ['2025-01-10', 'prospect', 0],
    ['2025-02-01T09:59:59Z', 'prospect', 0],
    ['2025-02-01', 'customer', 1],
    ['2025-03-14', 'customer', 1],
    ['2025-03-15', 'repeat_buyer', 2],
    ['2025-09-30', 'repeat_buyer', 2],
    ['2025-10-01', 'churned', 2],
    ['2025-12-04', 'churned', 2],
    ['2025-12-05', 'customer', 3],
    ['2026-06-01', 'customer', 3],
  ])('as of %s the stage is %s with %i orders', async (date, stage, orders) => {
    // given the scripted history; when asked as of the date
    const answer = await readCustomerAsOf(store, 'ada', date);

    // then the stage and order count are those of that time
    expect(answer.stage).toBe(stage);
    expect(answer.orders).toBe(orders);
  });

  it('lists the events used with positions and business times, counts the later ones, and cites the policy', async () => {
    // when asked as of the day of the second purchase
    const answer = await readCustomerAsOf(store, 'ada', '2025-03-15');

    // then the fold used registration, both purchases and their transitions, nothing later
    expect(answer.asOf).toBe('2025-03-15T23:59:59.999Z');
    expect(answer.eventsUsed.map((e) => e.type)).toEqual([
      'ProspectRegistered',
      'PurchaseRecorded',
      'CustomerConverted',
      'PurchaseRecorded',
      'RepeatBuyerQualified',
    ]);
    expect(answer.eventsUsed.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
    expect(answer.eventsUsed[0]).toMatchObject({ position: 2, occurredAt: '2025-01-10T09:00:00Z' });
    expect(answer.eventsLater).toBe(3);
    expect(answer.policy).toEqual({ repeatPurchaseThreshold: 2, advocateMinConvertedReferrals: 1, promoterMinScore: 9, churnAfterDays: 180 });
    expect(answer.stageHistory.map((s) => s.stage)).toEqual(['prospect', 'customer', 'repeat_buyer']);
    expect(answer).toMatchObject({ registeredAt: '2025-01-10T09:00:00Z', source: 'web', lastPurchaseAt: '2025-03-15T16:30:00Z', churnDue: false });
  });

  it('says when a customer was due for churn before the sweep recorded it', async () => {
    // when asked 199 days after the last purchase (the sweep ran at 200)
    const due = await readCustomerAsOf(store, 'ada', '2025-09-30');
    const notYet = await readCustomerAsOf(store, 'ada', '2025-09-10');

    // then the stage is still as recorded, and the answer says a sweep would churn them
    expect(due).toMatchObject({ stage: 'repeat_buyer', daysSinceLastPurchase: 199, churnDue: true });
    expect(notYet).toMatchObject({ stage: 'repeat_buyer', daysSinceLastPurchase: 179, churnDue: false });
    // and under a longer policy the same day is not due
    const lenient = await readCustomerAsOf(store, 'ada', '2025-09-30', lifecyclePolicy({ churnAfterDays: 365 }));
    expect(lenient).toMatchObject({ churnDue: false, policy: expect.objectContaining({ churnAfterDays: 365 }) });
  });

  it('counts an order dated before the conversion recorded later, while the stage is still the one the log gives', async () => {
    // given a customer who converted on March 1, then an order of February 10 recorded afterwards
    await runCommand(store, 'cy-reg', { type: 'RegisterProspect', data: { customerId: 'cy', source: 'web', occurredAt: '2025-02-01T09:00:00Z' } });
    await runCommand(store, 'cy-o2', { type: 'RecordPurchase', data: { customerId: 'cy', orderId: 'o-2', lines: [line], occurredAt: '2025-03-01T09:00:00Z' } });
    await runCommand(store, 'cy-o1', { type: 'RecordPurchase', data: { customerId: 'cy', orderId: 'o-1', lines: [line], occurredAt: '2025-02-10T09:00:00Z' } });

    // then as of February 20 the order is counted, the conversion not yet; on March 1 both orders
    expect(await readCustomerAsOf(store, 'cy', '2025-02-20')).toMatchObject({ stage: 'prospect', orders: 1 });
    expect(await readCustomerAsOf(store, 'cy', '2025-03-01')).toMatchObject({ stage: 'repeat_buyer', orders: 2 });
  });

  it('an unknown customer is unknown at every date', async () => {
    const answer = await readCustomerAsOf(store, 'nobody', '2030-01-01');
    expect(answer).toMatchObject({ stage: undefined, eventsUsed: [], eventsLater: 0, orders: 0 });
  });

  it('reads a date alone as the end of that UTC day and refuses what is not a date', () => {
    expect(asOfInstant('2025-02-28')).toBe('2025-02-28T23:59:59.999Z');
    expect(asOfInstant('2025-02-28T10:00:00+02:00')).toBe('2025-02-28T08:00:00.000Z');
    expect(() => asOfInstant('2025-02-30')).toThrow(DomainError);
    expect(() => asOfInstant('2025-02-28T10:00:00')).toThrow(/date must be an ISO-8601 date or date-time with a zone/);
    expect(() => asOfInstant('yesterday')).toThrow(/got "yesterday"/);
  });
});
