import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchItemResult, CommandService } from '@clientele/application';
import { generateSyntheticCommands } from '@clientele/generator';
import { SpecEngines } from '@clientele/testing';
import { SqliteEventStore, type EventStore } from '@clientele/event-store';

const at = '2026-01-10T09:00:00.000Z';
const line = { sku: 'book-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };
type Envelope = { type: string; commandId: string; data: Record<string, unknown> };
const command = (type: string, commandId: string, data: Record<string, unknown>): Envelope => ({ type, commandId, data: { occurredAt: at, ...data } });
const registered = (customerId: string): Envelope[] => [
  command('RegisterProspect', `reg-${customerId}`, { customerId, source: 'web', occurredAt: '2025-01-02T09:00:00.000Z' }),
  command('RecordPurchase', `buy-${customerId}`, { customerId, orderId: `o-${customerId}`, lines: [line], occurredAt: '2025-01-03T09:00:00.000Z' }),
];

/** One command of each type a caller may send, what it needs stored first, and one field changed. */
const REUSES: { type: string; setup: Envelope[]; data: Record<string, unknown>; changed: Record<string, unknown>; field: string }[] = [
  { type: 'RegisterProspect', setup: [], data: { customerId: 'c1', source: 'web', channel: 'email' }, changed: { source: 'store' }, field: 'data.source' },
  {
    type: 'RecordTouchpoint',
    setup: registered('c2'),
    data: { customerId: 'c2', channel: 'email', direction: 'outbound', kind: 'newsletter' },
    changed: { direction: 'inbound' },
    field: 'data.direction',
  },
  {
    type: 'RecordPurchase',
    setup: registered('c3'),
    data: { customerId: 'c3', orderId: 'o-2', lines: [line] },
    changed: { lines: [{ ...line, quantity: 2 }] },
    field: 'data.lines',
  },
  {
    type: 'RecordFeedback',
    setup: registered('c4'),
    data: { customerId: 'c4', feedbackId: 'f-1', score: 9, kind: 'praise' },
    changed: { score: 3 },
    field: 'data.score',
  },
  { type: 'ThankCustomer', setup: registered('c5'), data: { customerId: 'c5', gesture: 'card', reason: 'loyal' }, changed: { valueMinor: 500 }, field: 'data.valueMinor' },
  {
    type: 'UpdateProfile',
    setup: registered('c6'),
    data: { customerId: 'c6', preferences: { colour: 'blue' } },
    changed: { preferences: { colour: 'red' } },
    field: 'data.preferences',
  },
  { type: 'MarkCustomerLost', setup: registered('c7'), data: { customerId: 'c7', reason: 'moved' }, changed: { reason: 'price' }, field: 'data.reason' },
  { type: 'ChurnIfInactive', setup: registered('c8'), data: { customerId: 'c8' }, changed: { occurredAt: '2026-01-11T09:00:00.000Z' }, field: 'data.occurredAt' },
  {
    type: 'EraseCustomerPersonalData',
    setup: registered('c9'),
    data: { customerId: 'c9', requestedBy: 'dpo' },
    changed: { requestedBy: 'support' },
    field: 'data.requestedBy',
  },
  { type: 'HireEmployee', setup: [], data: { employeeId: 'e1', name: 'Eve', role: 'clerk' }, changed: { role: undefined }, field: 'data.role' },
  {
    type: 'RecordEmployeeLeft',
    setup: [command('HireEmployee', 'hire-e2', { employeeId: 'e2', name: 'Ed', occurredAt: '2025-01-02T09:00:00.000Z' })],
    data: { employeeId: 'e2', reason: 'retired' },
    changed: { reason: 'moved' },
    field: 'data.reason',
  },
  {
    type: 'RecordCampaignSpend',
    setup: [],
    data: { campaignId: 'spring', spendId: 's-1', channel: 'email', amountMinor: 1000 },
    changed: { amountMinor: 2000 },
    field: 'data.amountMinor',
  },
];

const statusOf = (r: BatchItemResult): string => (r.ok ? r.result.status : r.failure.code);

describe('a command id sent again with other content', () => {
  let dir: string;
  const engines = new SpecEngines();
  const engine = (store: EventStore, closeOnShutdown = false): Promise<CommandService> => engines.commands(store, closeOnShutdown);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-reuse-'));
  });
  afterEach(async () => {
    await engines.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(REUSES)(
    'given a $type stored, when its command id comes again with $field changed, then every path refuses it as command_id_reused naming the field and stores nothing; sent unchanged it is a duplicate',
    async ({ type, setup, data, changed, field }) => {
      const store = new SqliteEventStore({ file: join(dir, `${type}.db`), durability: 'normal' });
      const first = await engine(store, true);
      for (const s of setup) expect((await first.execute(s)).status).toBe('applied');
      const original = command(type, `cmd-${type}`, data);
      expect((await first.execute(original)).status).toBe('applied');
      const reused = { ...original, data: { ...original.data, ...changed } };
      const head = await store.headPosition();

      // the process that stored it (its state cached), a new process one by one, a new process's bulk path
      const cached = await first.executeBatch([reused, original]);
      const fresh = await (await engine(store)).executeBatch([reused, original]);
      const bulk = await (await engine(store)).importBatch([reused]);

      for (const answers of [cached, fresh, bulk]) {
        expect(answers[0]).toMatchObject({ ok: false, failure: { kind: 'conflict', code: 'command_id_reused', field } });
        expect(answers[0]!.ok ? '' : answers[0]!.failure.message).toContain(`${field} differs from what it stored`);
      }
      expect([cached[1], fresh[1]].map((r) => statusOf(r!))).toEqual(['duplicate', 'duplicate']);
      expect(await store.headPosition()).toBe(head);
    },
  );

  it('given a purchase stored, when its command id comes again as feedback for the same customer, then it is refused naming the type', async () => {
    const store = new SqliteEventStore({ file: join(dir, 'type.db'), durability: 'normal' });
    const commands = await engine(store, true);
    const purchase = command('RecordPurchase', 'shared-id', { customerId: 'ann', orderId: 'o-1', lines: [line] });
    await commands.execute(purchase);

    const feedback = command('RecordFeedback', 'shared-id', { customerId: 'ann', feedbackId: 'f-1', score: 9, kind: 'praise' });
    const [answer] = await commands.executeBatch([feedback]);

    expect(answer).toMatchObject({ ok: false, failure: { code: 'command_id_reused', field: 'type' } });
    // named by the purchase the id stands for, not by the registration it made implicitly before it
    expect(answer!.ok ? '' : answer!.failure.message).toMatch(/it stored PurchaseRecorded at position 2, which a RecordFeedback does not record/);
    expect((await store.readStream('customer-ann')).map((e) => e.type)).not.toContain('FeedbackReceived');
  });

  it('given a registration stored, when it comes again with its time written with an offset, or with other personal data, then it is a duplicate (personal fields are not compared: they may have been erased since)', async () => {
    const store = new SqliteEventStore({ file: join(dir, 'same.db'), durability: 'normal' });
    const commands = await engine(store, true);
    const original = command('RegisterProspect', 'reg-ann', { customerId: 'ann', source: 'web', personal: { name: 'Ann' }, occurredAt: '2026-01-10T10:00:00+01:00' });
    await commands.execute(original);

    const answers = await (await engine(store)).executeBatch([
      { ...original, data: { ...original.data, occurredAt: '2026-01-10T09:00:00.000Z' } },
      { ...original, data: { ...original.data, personal: { name: 'Erased' } } },
    ]);

    expect(answers.map(statusOf)).toEqual(['duplicate', 'duplicate']);
  });

  it('given a seeded workload stored, when all of it is sent again to the same process, to a new one, and to a new one\'s bulk path, then every command that stored events is a duplicate', async () => {
    const store = new SqliteEventStore({ file: join(dir, 'workload.db'), durability: 'normal' });
    const workload = generateSyntheticCommands({ customers: 150, seed: 'reuse-spec', idPrefix: 'r' });
    const first = await engine(store, true);
    const stored = await first.executeBatch(workload);
    const applied = stored.flatMap((r, i) => (r.ok && r.result.status === 'applied' ? [i] : []));
    // the workload covers every type a caller sends but the erasure (in the table above)
    expect(new Set(applied.map((i) => (workload[i] as Envelope).type)).size).toBe(11);

    for (const again of [await first.executeBatch(workload), await (await engine(store)).executeBatch(workload), await (await engine(store)).importBatch(workload)]) {
      expect(applied.map((i) => statusOf(again[i]!)).filter((s) => s !== 'duplicate')).toEqual([]);
    }
  });
});
