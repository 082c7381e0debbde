import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  ChurnSweep,
  ClienteleModule,
  CommandService,
  ReferralProcessRunner,
  SqliteCheckpointStore,
} from '@clientele/application';
import { DuplicateEventIdError, SqliteEventStore, WrongExpectedRevisionError, type EventStore, type ExpectedRevision } from '@clientele/event-store';

const at = (day: number) => `2026-02-${String(day).padStart(2, '0')}T10:00:00.000Z`;
const line = { sku: 'tea', category: 'food', quantity: 1, unitPriceMinor: 800, unitCostMinor: 300 };

/** Wraps a store so that appends of Ann's referral credit fail with `error` while `failures.left` lasts (counting down past 0). */
function failingAnnsCredit(
  failures: { left: number },
  error: (streamId: string, expected: ExpectedRevision, firstId: string) => Error,
): (store: EventStore) => EventStore {
  return (store) =>
    new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'appendToStream') return Reflect.get(target, property, receiver) as unknown;
        const append: EventStore['appendToStream'] = (streamId, events, options) =>
          streamId === 'customer-ann' && events.some((e) => e.type === 'ReferralCredited') && failures.left-- > 0
            ? Promise.reject(error(streamId, options?.expectedRevision ?? 'any', events[0]!.id))
            : target.appendToStream(streamId, events, options);
        return append;
      },
    });
}

describe('ReferralProcessRunner', () => {
  let dir: string;
  let file: string;
  let app: TestingModule | undefined;

  async function start(processManager: boolean, wrap: (store: EventStore) => EventStore = (store) => store): Promise<TestingModule> {
    app = await Test.createTestingModule({
      imports: [
        ClienteleModule.forRoot({
          store: () => wrap(new SqliteEventStore({ file, durability: 'normal' })),
          checkpoints: () => new SqliteCheckpointStore({ file, durability: 'normal' }),
          processManager,
        }),
      ],
    }).compile();
    await app.init();
    return app;
  }

  async function stop(): Promise<void> {
    await app?.close();
    app = undefined;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-runner-'));
    file = join(dir, 'clientele.sqlite');
  });
  afterEach(async () => {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function storedTypes(customerId: string): Promise<string[]> {
    const store = new SqliteEventStore({ file });
    try {
      return (await store.readStream(`customer-${customerId}`)).map((e) => e.type);
    } finally {
      await store.close();
    }
  }

  it('given a referee who registered and bought while no runner ran, when the runner starts, then the referrer is credited, converted and recognised', async () => {
    const commands = (await start(false)).get(CommandService);
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-ann', data: { customerId: 'ann', orderId: 'a1', lines: [line], occurredAt: at(1) } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'friend', referredBy: 'ann', occurredAt: at(2) } });
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-ben', data: { customerId: 'ben', orderId: 'b1', lines: [line], occurredAt: at(3) } });
    await stop();

    const running = await start(true);
    await running.get(ReferralProcessRunner).catchUp();
    await stop();

    expect(await storedTypes('ann')).toEqual([
      'ProspectRegistered',
      'PurchaseRecorded',
      'CustomerConverted',
      'ReferralCredited',
      'ReferralConverted',
      'AdvocateRecognized',
    ]);
    const checkpoints = new SqliteCheckpointStore({ file });
    expect(await checkpoints.load(ReferralProcessRunner.checkpointName)).toBeGreaterThan(0);
    await checkpoints.close();
  });

  it('given the referrer\'s stream keeps changing longer than the handler retries, when the runner reacts, then it tries the reaction again later instead of dropping it', async () => {
    const commands = (await start(false)).get(CommandService);
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-ann', data: { customerId: 'ann', orderId: 'a1', lines: [line], occurredAt: at(1) } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'friend', referredBy: 'ann', occurredAt: at(2) } });
    await stop();

    // a store on which the first six appends of Ann's credit find her stream moved (more than the
    // handler's five attempts), as when another process keeps writing to it
    const refusals = { left: 6 };
    const busyAnn = failingAnnsCredit(refusals, (streamId, expected) => new WrongExpectedRevisionError(streamId, expected, 99));
    const running = await start(true, busyAnn);
    await running.get(ReferralProcessRunner).catchUp();
    await stop();

    expect(refusals.left).toBeLessThan(0);
    expect(await storedTypes('ann')).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted', 'ReferralCredited']);
  });

  it('given a reaction whose id is already used for other content (a verdict), when the runner reacts, then it records the refusal and goes on instead of stalling', async () => {
    const commands = (await start(false)).get(CommandService);
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-ann', data: { customerId: 'ann', orderId: 'a1', lines: [line], occurredAt: at(1) } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'friend', referredBy: 'ann', occurredAt: at(2) } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-cy', data: { customerId: 'cy', source: 'friend', referredBy: 'ann', occurredAt: at(3) } });
    await stop();

    // a store that answers Ann's first credit as ids already stored with other content, once
    const clashing = failingAnnsCredit({ left: 1 }, (_streamId, _expected, firstId) => new DuplicateEventIdError(firstId));
    const running = await start(true, clashing);
    await running.get(ReferralProcessRunner).catchUp();
    await stop();

    // Ben's credit was refused for good and Cy's (a later event) was stored: the runner went on
    expect(await storedTypes('ann')).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted', 'ReferralCredited']);
  });

  it('given reactions stored but the checkpoint lost (a crash in between), when the runner replays from 0, then nothing is stored twice', async () => {
    const first = await start(true);
    const commands = first.get(CommandService);
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-ann', data: { customerId: 'ann', source: 'web', occurredAt: at(1) } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-ben', data: { customerId: 'ben', source: 'friend', referredBy: 'ann', occurredAt: at(2) } });
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-ben', data: { customerId: 'ben', orderId: 'b1', lines: [line], occurredAt: at(3) } });
    await first.get(ReferralProcessRunner).catchUp();
    await stop();
    const before = await storedTypes('ann');
    const checkpoints = new SqliteCheckpointStore({ file });
    await checkpoints.save(ReferralProcessRunner.checkpointName, 0);
    await checkpoints.close();

    const again = await start(true);
    await again.get(ReferralProcessRunner).catchUp();
    const status = await again.get(ReferralProcessRunner).status();
    await stop();

    expect(before).toEqual(['ProspectRegistered', 'ReferralCredited', 'ReferralConverted']);
    expect(await storedTypes('ann')).toEqual(before);
    expect(status).toMatchObject({ running: true, lag: 0 });
    expect(status).not.toHaveProperty('lastError');
  });

  it('given customers and no process manager, when the churn sweep runs twice as of one date, then the inactive are churned once', async () => {
    const running = await start(false);
    const commands = running.get(CommandService);
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-old', data: { customerId: 'old', orderId: 'o1', lines: [line], occurredAt: '2025-01-01T10:00:00Z' } });
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-new', data: { customerId: 'new', orderId: 'n1', lines: [line], occurredAt: '2025-06-01T10:00:00Z' } });
    await commands.execute({ type: 'RegisterProspect', commandId: 'r-pro', data: { customerId: 'pro', source: 'web', occurredAt: '2025-01-01T10:00:00Z' } });

    const sweep = running.get(ChurnSweep);
    const first = await sweep.sweepChurn('2025-08-01T00:00:00Z');
    const second = await sweep.sweepChurn('2025-08-01T00:00:00Z');
    await stop();

    expect(first).toEqual({ asOf: '2025-08-01T00:00:00.000Z', customers: 3, churned: 1, refused: 0, conflicts: 0 });
    expect(second).toEqual({ ...first, churned: 0 });
    expect(await storedTypes('old')).toContain('CustomerChurned');
    expect(await storedTypes('new')).not.toContain('CustomerChurned');
    const checkpoints = new SqliteCheckpointStore({ file });
    expect(await checkpoints.customers(undefined, 10)).toEqual(['new', 'old', 'pro']);
    expect(await checkpoints.customers('new', 1)).toEqual(['old']);
    await checkpoints.close();
  });

  it.each([
    ['every attempt of its first try', 5, { churned: 1, conflicts: 0 }],
    ['both tries', 10, { churned: 0, conflicts: 1 }],
  ])('given a customer whose stream keeps changing during %s, the sweep reports a conflict, not a refusal, and a second sweep churns them', async (_when, failing, expected) => {
    // given an inactive customer whose churn append loses the revision race `failing` times (5 attempts per try)
    const failures = { left: 0 };
    const racing = (store: EventStore): EventStore =>
      new Proxy(store, {
        get(target, property, receiver) {
          if (property !== 'appendToStream') return Reflect.get(target, property, receiver) as unknown;
          const append: EventStore['appendToStream'] = (streamId, events, options) =>
            streamId === 'customer-old' && events.some((e) => e.type === 'CustomerChurned') && failures.left-- > 0
              ? Promise.reject(new WrongExpectedRevisionError(streamId, options?.expectedRevision ?? 'any', 99))
              : target.appendToStream(streamId, events, options);
          return append;
        },
      });
    const running = await start(false, racing);
    const commands = running.get(CommandService);
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-old', data: { customerId: 'old', orderId: 'o1', lines: [line], occurredAt: '2025-01-01T10:00:00Z' } });
    await commands.execute({ type: 'RecordPurchase', commandId: 'p-new', data: { customerId: 'new', orderId: 'n1', lines: [line], occurredAt: '2025-06-01T10:00:00Z' } });
    failures.left = failing;

    // when the sweep runs, and again once the races are over
    const sweep = running.get(ChurnSweep);
    const first = await sweep.sweepChurn('2025-08-01T00:00:00Z');
    const second = await sweep.sweepChurn('2025-08-01T00:00:00Z');
    await stop();

    // then the first reports the customer as churned or as not judged, never as refused, and the customer ends up churned once
    expect(first).toEqual({ asOf: '2025-08-01T00:00:00.000Z', customers: 2, refused: 0, ...expected });
    expect(second).toEqual({ ...first, churned: 1 - expected.churned, conflicts: 0 });
    expect((await storedTypes('old')).filter((t) => t === 'CustomerChurned')).toHaveLength(1);
  });
});
