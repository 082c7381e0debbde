import { Test, type TestingModule } from '@nestjs/testing';
import { PostgresEventStore, dropPostgresSchema } from '@clientele/event-store';
import { describeWithServer, PostgresServer } from '@clientele/testing';
import { randomUUID } from 'node:crypto';
import { ClienteleModule } from './clientele.module';
import { CommandService } from './command.service';

const at = (day: number) => `2026-03-${String(day).padStart(2, '0')}T10:00:00.000Z`;
const purchase = (commandId: string, orderId: string, day: number) => ({
  type: 'RecordPurchase',
  commandId,
  data: { customerId: 'ann', orderId, lines: [{ sku: 'b-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 }], occurredAt: at(day) },
});

/**
 * Two engine processes on one PostgreSQL schema, each with its own memory of the streams it
 * handled: the PostgreSQL store checks an append's event ids before its expected revision, so a
 * command retried through the process whose memory is behind meets its own events stored with
 * other content.
 */
describeWithServer(PostgresServer, 'the command path of two processes on one PostgreSQL schema', (url) => {
  const schema = `two_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const apps: TestingModule[] = [];

  async function process(): Promise<CommandService> {
    const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 });
    const app = await Test.createTestingModule({ imports: [ClienteleModule.forRoot({ store, processManager: false })] }).compile();
    await app.init();
    apps.push(app);
    return app.get(CommandService);
  }

  afterAll(async () => {
    for (const app of apps) await app.close();
    await dropPostgresSchema(url, schema);
  });

  it('given a command stored through one process, when it is sent again through another whose memory of the customer is behind, then it answers duplicate with the stored events', async () => {
    const here = await process();
    const there = await process();
    // here remembers Ann as a prospect; there then makes her a customer and a repeat buyer
    await here.execute({ type: 'RegisterProspect', commandId: 'reg-ann', data: { customerId: 'ann', source: 'web', occurredAt: at(1) } });
    await there.execute(purchase('buy-1', 'o-1', 2));
    const stored = await there.execute(purchase('buy-2', 'o-2', 3));
    expect(stored.events.map((e) => e.type)).toEqual(['PurchaseRecorded', 'RepeatBuyerQualified']);

    // the client retries buy-2 through the other process, which would decide a conversion
    const retried = await here.execute(purchase('buy-2', 'o-2', 3));

    expect(retried).toEqual({ ...stored, status: 'duplicate' });
    // and nothing was written twice
    const again = await here.execute(purchase('buy-2', 'o-2', 3));
    expect(again.status).toBe('duplicate');
  });
});
