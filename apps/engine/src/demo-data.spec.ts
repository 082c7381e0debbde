import type { NestExpressApplication } from '@nestjs/platform-express';
import { CommandService, EVENT_STORE, ReferralProcessRunner } from '@clientele/application';
import type { EventStore, StoredEvent } from '@clientele/event-store';
import { seedDemoData } from './demo-data';
import { startTestEngine, type TestEngine } from './engine.test-support';

describe('demo data on a first start', () => {
  let engine: TestEngine;
  let app: NestExpressApplication;

  beforeEach(async () => {
    engine = await startTestEngine('demo');
    ({ app } = engine);
  });
  afterEach(() => engine.close());

  it('fills an empty store, each referral credited and converted once, with the process manager running again', async () => {
    // given an engine on an empty store, its referral process manager running
    const runner = app.get(ReferralProcessRunner);
    expect(runner.running).toBe(true);

    const service = app.get(CommandService);
    const batch = service.executeBatch.bind(service);
    const reactingDuringBatches: boolean[] = [];
    jest.spyOn(service, 'executeBatch').mockImplementation((items, ...rest) => {
      reactingDuringBatches.push(runner.running);
      return batch(items, ...rest);
    });

    // when the demo data is seeded
    const report = await seedDemoData(app, 150);

    // then the process manager waited while the batches ran (beside them it lost revision races)
    expect(reactingDuringBatches.length).toBeGreaterThan(0);
    expect(reactingDuringBatches.every((reacting) => !reacting)).toBe(true);

    // and the store holds the workload, and the referrer of each referee has one credit for the
    // registration and one conversion for the first purchase, on the referrer's own stream
    const log: StoredEvent[] = await app.get<EventStore>(EVENT_STORE).readAll();
    expect(report).toMatchObject({ seeded: true, head: log.length });
    expect(log.length).toBeGreaterThan(500);
    const referrerOf = new Map(
      log.filter((e) => e.type === 'ProspectRegistered' && typeof e.data.referredBy === 'string').map((e) => [e.data.customerId as string, e.data.referredBy as string]),
    );
    const converted = log.filter((e) => e.type === 'CustomerConverted' && referrerOf.has(e.data.customerId as string)).map((e) => e.data.customerId as string);
    expect(referrerOf.size).toBeGreaterThan(0);
    expect(converted.length).toBeGreaterThan(0);
    const onReferrer = (type: string) =>
      log
        .filter((e) => e.type === type)
        .map((e) => `${e.streamId} ${String(e.data.refereeId)}`)
        .sort();
    expect(onReferrer('ReferralCredited')).toEqual([...referrerOf].map(([referee, referrer]) => `customer-${referrer} ${referee}`).sort());
    expect(onReferrer('ReferralConverted')).toEqual(converted.map((referee) => `customer-${referrerOf.get(referee)!} ${referee}`).sort());
    // and the process manager runs again: its own reactions are the last events it has to read
    expect(runner.running).toBe(true);
    await runner.catchUp();
    expect(await runner.status()).toMatchObject({ running: true, head: log.length, lag: 0 });

    // and a second start leaves the store as it is
    expect(await seedDemoData(app, 150)).toEqual({ seeded: false, commands: 0, head: log.length });
  });
});
