import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  ClienteleModule,
  CommandService,
  ClienteleMetrics,
  eventIdFor,
  type ClienteleOptions,
} from '@clientele/application';
import { DomainError, type RecordPurchase } from '@clientele/domain';
import { SqliteEventStore, WrongExpectedRevisionError, type EventStore } from '@clientele/event-store';

const at = '2026-01-10T09:00:00.000Z';
const line = { sku: 'book-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };
const purchase = (commandId: string, orderId: string, customerId = 'ann') => ({
  type: 'RecordPurchase',
  commandId,
  data: { customerId, orderId, lines: [line], occurredAt: at },
});

describe('DomainCommandHandler', () => {
  let dir: string;
  let store: SqliteEventStore;
  let app: TestingModule;

  async function start(options: Partial<ClienteleOptions> = {}, over: EventStore = store): Promise<CommandService> {
    app = await Test.createTestingModule({
      imports: [ClienteleModule.forRoot({ store: over, processManager: false, ...options })],
    }).compile();
    await app.init();
    return app.get(CommandService);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-handler-'));
    store = new SqliteEventStore({ file: join(dir, 'events.db'), durability: 'normal' });
  });
  afterEach(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given two commands racing on one stream, when both append at the same revision, then the loser retries and both succeed', async () => {
    const commands = await start();
    await commands.execute({ type: 'RegisterProspect', commandId: 'reg', data: { customerId: 'ann', source: 'web', occurredAt: at } });

    // Sent in the same tick, both read revision 0; the store's group commit then refuses the second.
    const [first, second] = await Promise.all([
      commands.execute(purchase('p-1', 'o-1')),
      commands.execute(purchase('p-2', 'o-2')),
    ]);

    expect([first.status, second.status]).toEqual(['applied', 'applied']);
    const stream = await store.readStream('customer-ann');
    expect(stream.map((e) => e.type)).toEqual([
      'ProspectRegistered',
      'PurchaseRecorded',
      'CustomerConverted',
      'PurchaseRecorded',
      'RepeatBuyerQualified',
    ]);
    const conflicts = await app.get(ClienteleMetrics).conflicts.get();
    expect(conflicts.values[0]?.value).toBeGreaterThanOrEqual(1);
  });

  it('given a stream that changes on every attempt, when retries run out, then a concurrency_conflict is raised and nothing is stored', async () => {
    let appends = 0;
    const busy: EventStore = {
      appendToStream: async (streamId) => {
        appends++;
        throw new WrongExpectedRevisionError(streamId, 'no_stream', 0);
      },
      readStream: (id, o) => store.readStream(id, o),
      readAll: (o) => store.readAll(o),
      subscribeToAll: (o) => store.subscribeToAll(o),
      headPosition: () => store.headPosition(),
      close: () => store.close(),
    };
    const commands = await start({ maxAttempts: 3 }, busy);

    const outcome = commands.execute(purchase('p-1', 'o-1'));

    await expect(outcome).rejects.toBeInstanceOf(DomainError);
    await expect(outcome).rejects.toMatchObject({ code: 'concurrency_conflict' });
    expect(appends).toBe(3);
    expect(await store.headPosition()).toBe(0);
  });

  it('given a stored command, when the same command id arrives again, then the same events are answered and none added', async () => {
    const commands = await start();
    const first = await commands.execute(purchase('p-1', 'o-1'));

    const again = await commands.execute(purchase('p-1', 'o-1'));

    expect(first.status).toBe('applied');
    expect(again).toEqual({ ...first, status: 'duplicate' });
    expect(await store.headPosition()).toBe(first.events.length);
  });

  it('given a concurrent repeat of one command id, then it is stored once', async () => {
    const commands = await start();

    const results = await Promise.all([commands.execute(purchase('p-1', 'o-1')), commands.execute(purchase('p-1', 'o-1'))]);

    expect(results.map((r) => r.status).sort()).toEqual(['applied', 'duplicate']);
    expect(results[0]?.events).toEqual(results[1]?.events);
    expect((await store.readStream('customer-ann')).length).toBe(3);
  });

  it('given one command id used for two customers, then each gets its own events and no two events share an id', async () => {
    const commands = await start();
    const register = (customerId: string) => ({
      type: 'RegisterProspect' as const,
      commandId: 'msg-42',
      data: { customerId, source: 'web', occurredAt: at },
    });
    const first = await commands.execute(register('carol'));
    const second = await commands.execute(register('dave'));
    expect([first.status, second.status]).toEqual(['applied', 'applied']);
    expect(first.events[0]?.id).not.toBe(second.events[0]?.id);
    const ids = (await store.readAll()).map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('given a decision with facts and transitions, then ids come from the stream and the command id and each transition names the fact that caused it', async () => {
    const commands = await start();

    await commands.execute({ ...purchase('p-1', 'o-1'), correlationId: 'campaign-42' });

    const [registered, bought, converted] = await store.readStream('customer-ann');
    expect([registered?.id, bought?.id, converted?.id]).toEqual([eventIdFor('customer-ann', 'p-1', 0), eventIdFor('customer-ann', 'p-1', 1), eventIdFor('customer-ann', 'p-1', 2)]);
    expect(registered?.metadata).toEqual({ occurredAt: at, schemaVersion: 1, commandId: 'p-1', correlationId: 'campaign-42', causationId: 'p-1' });
    expect(bought?.metadata.causationId).toBe('p-1');
    expect(converted?.metadata.causationId).toBe(bought?.id);
  });

  it('given an order already recorded under another command id, then the answer is no_op, the same every time', async () => {
    const commands = await start();
    await commands.execute(purchase('p-1', 'o-1'));

    const replays = [await commands.execute(purchase('p-9', 'o-1')), await commands.execute(purchase('p-9', 'o-1'))];

    expect(replays).toEqual([
      { commandId: 'p-9', streamId: 'customer-ann', status: 'no_op', events: [] },
      { commandId: 'p-9', streamId: 'customer-ann', status: 'no_op', events: [] },
    ]);
  });

  it('given a batch, then each item is answered at its index and items of one customer keep their order', async () => {
    const commands = await start({ batchConcurrency: 4 });
    const register = (customerId: string, referredBy?: string) => ({
      type: 'RegisterProspect',
      commandId: `reg-${customerId}`,
      data: { customerId, source: 'web', occurredAt: at, ...(referredBy ? { referredBy } : {}) },
    });

    const results = await commands.executeBatch([
      register('bob'),
      purchase('b-1', 'o-1', 'bob'),
      { type: 'RecordPurchase', commandId: 'bad', data: {} },
      register('cid', 'cid'),
      purchase('b-2', 'o-2', 'bob'),
    ]);

    expect(results.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(['applied', 'applied', 'invalid', 'rule', 'applied']);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(results[3]).toMatchObject({ ok: false, commandId: 'reg-cid', failure: { code: 'self_referral' } });
    const types = (await store.readStream('customer-bob')).map((e) => e.type);
    expect(types).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted', 'PurchaseRecorded', 'RepeatBuyerQualified']);
    expect(await store.readStream('customer-cid')).toEqual([]);
  });

  describe('with the stream state kept between commands', () => {
    // A second engine on the same store (another process in production): its writes never pass
    // through the first one's cache, which is exactly what the cache must survive.
    let otherApp: TestingModule;
    async function otherWriter(): Promise<CommandService> {
      otherApp = await Test.createTestingModule({
        imports: [ClienteleModule.forRoot({ store, processManager: false, closeOnShutdown: false })],
      }).compile();
      await otherApp.init();
      return otherApp.get(CommandService);
    }
    afterEach(async () => {
      await otherApp?.close();
    });
    const register = (commandId: string, customerId = 'ann') => ({
      type: 'RegisterProspect',
      commandId,
      data: { customerId, source: 'web', occurredAt: at },
    });

    it('given another writer appended after the state was kept, when a command arrives, then it is decided on the stream as stored', async () => {
      const commands = await start();
      const other = await otherWriter();
      await commands.execute(register('reg'));
      await other.execute(purchase('elsewhere-1', 'o-1'));

      const second = await commands.execute(purchase('p-2', 'o-2'));

      expect(second.events.map((e) => e.type)).toEqual(['PurchaseRecorded', 'RepeatBuyerQualified']);
      expect((await store.readStream('customer-ann')).map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
    });

    it('given a kept state that would decide nothing, when another writer changed the stream, then the command is decided again on the stored stream', async () => {
      const commands = await start();
      const other = await otherWriter();
      await commands.execute(register('reg'));
      await other.execute(purchase('elsewhere-1', 'o-1'));

      const churn = await commands.execute({
        type: 'ChurnIfInactive',
        commandId: 'sweep-1',
        data: { customerId: 'ann', occurredAt: '2026-12-01T00:00:00.000Z' },
      });

      expect(churn.status).toBe('applied');
      expect(churn.events.map((e) => e.type)).toEqual(['CustomerChurned']);
    });

    it('given a kept state that refuses a command, when another writer changed the stream, then the command is decided again on the stored stream', async () => {
      const commands = await start();
      const other = await otherWriter();
      const leave = (commandId: string) => ({
        type: 'RecordEmployeeLeft',
        commandId,
        data: { employeeId: 'e-7', occurredAt: at },
      });
      await expect(commands.execute(leave('left-1'))).rejects.toMatchObject({ code: 'employee_not_hired' });
      await other.execute({ type: 'HireEmployee', commandId: 'hire', data: { employeeId: 'e-7', name: 'Grace', occurredAt: at } });

      const left = await commands.execute(leave('left-2'));

      expect(left.status).toBe('applied');
      expect(left.events.map((e) => e.type)).toEqual(['EmployeeLeft']);
    });

    it('given a command whose stream was forgotten by the cache, when its id arrives again, then it is still answered as a duplicate', async () => {
      const commands = await start({ stateCacheStreams: 1 });
      const first = await commands.execute(purchase('p-1', 'o-1'));
      await commands.execute(purchase('p-bob', 'o-9', 'bob'));

      const again = await commands.execute(purchase('p-1', 'o-1'));

      expect(again).toEqual({ ...first, status: 'duplicate' });
      expect(await store.headPosition()).toBe(first.events.length * 2);
    });

    it('given a registration this engine has not seen stored, when it arrives again, then it is answered as a duplicate and nothing is added', async () => {
      const commands = await start();
      const other = await otherWriter();
      const first = await other.execute(register('reg'));

      const again = await commands.execute(register('reg'));

      expect(again).toEqual({ ...first, status: 'duplicate' });
      expect(await store.headPosition()).toBe(first.events.length);
    });

    it('given a registration repeated after the stream moved on, then it is answered as a duplicate', async () => {
      const commands = await start();
      const other = await otherWriter();
      const first = await other.execute(register('reg'));
      await other.execute(purchase('p-1', 'o-1'));

      const again = await commands.execute(register('reg'));

      expect(again).toEqual({ ...first, status: 'duplicate' });
    });

    it('given a registration repeated with other content after the stream moved on, then it is refused as a reused command id naming the field', async () => {
      const commands = await start();
      const other = await otherWriter();
      await other.execute(register('reg'));
      await other.execute(purchase('p-1', 'o-1'));
      const head = await store.headPosition();

      // Same command id, another source: decided on an empty stream it would store other content.
      const again = commands.execute({ ...register('reg'), data: { customerId: 'ann', source: 'store', occurredAt: at } });

      await expect(again).rejects.toMatchObject({ code: 'command_id_reused', message: expect.stringContaining('data.source differs') });
      expect(await store.headPosition()).toBe(head);
    });

    it('given a customer registered by another writer, when the registration arrives again under a new id, then it is decided on the stored stream', async () => {
      const commands = await start();
      const other = await otherWriter();
      await other.execute(register('reg'));
      await other.execute(purchase('p-1', 'o-1'));

      // On an empty stream this would register ann; on the stored stream she is known: nothing to do.
      const again = await commands.execute(register('reg-again'));

      expect(again.status).toBe('no_op');
      expect((await store.readStream('customer-ann')).map((e) => e.type)).toEqual([
        'ProspectRegistered',
        'PurchaseRecorded',
        'CustomerConverted',
      ]);
      const conflicts = await app.get(ClienteleMetrics).conflicts.get();
      expect(conflicts.values[0]?.value ?? 0).toBe(0);
    });

    it('given a new stream registered without reading it, then the next command is decided on the kept state', async () => {
      const commands = await start();
      await commands.execute(register('reg'));

      const bought = await commands.execute(purchase('p-1', 'o-1'));

      expect(bought.events.map((e) => e.type)).toEqual(['PurchaseRecorded', 'CustomerConverted']);
      expect(bought.events.map((e) => e.revision)).toEqual([1, 2]);
    });

    it('given the cache turned off, then commands are decided on the stored stream each time', async () => {
      const commands = await start({ stateCacheStreams: 0 });

      const results = [
        await commands.execute(register('reg')),
        await commands.execute(purchase('p-1', 'o-1')),
        await commands.execute(purchase('p-1', 'o-1')),
      ];

      expect(results.map((r) => r.status)).toEqual(['applied', 'applied', 'duplicate']);
    });
  });
});
