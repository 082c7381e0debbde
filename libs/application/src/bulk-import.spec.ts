import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BulkImporter, ClienteleMetrics, type CommandService, type BatchItemResult } from '@clientele/application';
import { validateCommandEnvelope } from '@clientele/contracts';
import { generateSyntheticCommands } from '@clientele/generator';
import { SpecEngines } from '@clientele/testing';
import { SqliteEventStore, type EventStore, type StoredEvent } from '@clientele/event-store';

const at = '2026-01-10T09:00:00.000Z';
const line = { sku: 'book-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 };
const register = (commandId: string, customerId: string, referredBy?: string) => ({
  type: 'RegisterProspect',
  commandId,
  data: { customerId, source: 'web', occurredAt: at, ...(referredBy ? { referredBy } : {}) },
});
const purchase = (commandId: string, orderId: string, customerId: string) => ({
  type: 'RecordPurchase',
  commandId,
  data: { customerId, orderId, lines: [line], occurredAt: at },
});
const lost = (commandId: string, customerId: string) => ({
  type: 'MarkCustomerLost',
  commandId,
  data: { customerId, reason: 'moved', occurredAt: at },
});

/** What a caller learns of an item, without the global positions (the two paths interleave streams differently). */
function answerOf(item: BatchItemResult): unknown {
  if (!item.ok) return { index: item.index, commandId: item.commandId, kind: item.failure.kind, code: item.failure.code };
  const { commandId, streamId, status, events } = item.result;
  return { index: item.index, commandId, streamId, status, events: events.map(({ id, type, revision }) => ({ id, type, revision })) };
}

/** Every stream as stored, stream by stream: what must be the same whichever path wrote it. */
async function streamsOf(store: EventStore): Promise<Record<string, unknown[]>> {
  const streams: Record<string, unknown[]> = {};
  for (const e of await store.readAll()) {
    (streams[e.streamId] ??= []).push({ revision: e.revision, id: e.id, type: e.type, data: e.data, metadata: e.metadata });
  }
  return streams;
}

/** The store, recording each append's stream as it is requested and how many appends were answered by then. */
function countingAppends(store: EventStore): { store: EventStore; requested: string[]; answeredAtRequest: number[]; answered: () => number } {
  const requested: string[] = [];
  const answeredAtRequest: number[] = [];
  let answered = 0;
  return {
    requested,
    answeredAtRequest,
    answered: () => answered,
    store: {
      appendToStream: (streamId, events, options) => {
        requested.push(streamId);
        answeredAtRequest.push(answered);
        return store.appendToStream(streamId, events, options).finally(() => (answered += 1));
      },
      readStream: (id, o) => store.readStream(id, o),
      readAll: (o) => store.readAll(o),
      subscribeToAll: (o) => store.subscribeToAll(o),
      headPosition: () => store.headPosition(),
      close: () => store.close(),
    },
  };
}

/** `store`, counting its stream reads */
function countingReads(store: EventStore): { store: EventStore; reads: () => number } {
  let reads = 0;
  return {
    reads: () => reads,
    store: {
      appendToStream: (id, events, o) => store.appendToStream(id, events, o),
      readStream: (id, o) => {
        reads += 1;
        return store.readStream(id, o);
      },
      readAll: (o) => store.readAll(o),
      subscribeToAll: (o) => store.subscribeToAll(o),
      headPosition: () => store.headPosition(),
      close: () => store.close(),
    },
  };
}

describe('CommandService.importBatch (the bulk path)', () => {
  let dir: string;
  const engines = new SpecEngines();
  const engine = (store: EventStore, closeOnShutdown = true): Promise<CommandService> => engines.commands(store, closeOnShutdown);
  const newStore = (name: string): SqliteEventStore =>
    new SqliteEventStore({ file: join(dir, `${name}.db`), durability: 'normal' });

  /** Ann registered through this process's engine, then bought through another writer's: this process has not seen the purchase. */
  async function annMovedByAnotherWriter(name: string): Promise<{ store: SqliteEventStore; commands: CommandService }> {
    const store = newStore(name);
    const commands = await engine(store);
    const other = await engine(store, false);
    await commands.importBatch([register('reg', 'ann')]);
    await other.execute(purchase('elsewhere', 'o-1', 'ann'));
    return { store, commands };
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'clientele-bulk-'));
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    await engines.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('given a seeded workload of more streams than one round, with invalid items, rule refusals, no-ops and repeated command ids, then every answer and every stream are those of executeBatch', async () => {
    const workload: unknown[] = generateSyntheticCommands({ customers: 300, seed: 'bulk-spec', idPrefix: 'w' });
    const first = workload[0];
    workload.splice(5, 0, { type: 'RecordPurchase', commandId: 'bad', data: {} });
    workload.push(register('self', 'zed', 'zed'));
    workload.push(register('reg-yan', 'yan'));
    workload.push(lost('lost-unknown', 'nobody'));
    workload.push(first); // the same command again, later in the same batch
    workload.push(purchase('twice', 'o-twice', 'yan'));
    workload.push(purchase('twice', 'o-twice', 'yan'));
    workload.push(purchase('same-order', 'o-twice', 'yan')); // no-op: order already recorded

    const one = newStore('one-by-one');
    const bulk = newStore('bulk');
    const oneByOne = await engine(one);
    const expected = await oneByOne.executeBatch(workload);
    const bulkCommands = await engine(bulk);
    const actual = await bulkCommands.importBatch(workload);

    expect(actual.map(answerOf)).toEqual(expected.map(answerOf));
    expect(await streamsOf(bulk)).toEqual(await streamsOf(one));
    const kinds = new Set(actual.map((r) => (r.ok ? r.result.status : r.failure.kind)));
    expect([...kinds].sort()).toEqual(['applied', 'duplicate', 'invalid', 'no_op', 'rule']);

    // A re-run changes nothing and answers every valid command as a duplicate or its refusal again.
    const head = await bulk.headPosition();
    const rerun = await bulkCommands.importBatch(workload);
    expect(await bulk.headPosition()).toBe(head);
    expect(rerun.filter((r) => r.ok && r.result.status === 'applied')).toEqual([]);
    expect(rerun.map(answerOf)).toEqual((await oneByOne.executeBatch(workload)).map(answerOf));
    // And so does a fresh process, which knows nothing of the streams but what it reads.
    const fresh = await engine(new SqliteEventStore({ file: join(dir, 'bulk.db'), durability: 'normal' }));
    const again = await fresh.importBatch(workload);
    expect(await bulk.headPosition()).toBe(head);
    expect(again.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(rerun.map((r) => (r.ok ? r.result.status : r.failure.kind)));
  });

  it('given many streams, then each stream is stored with one append and all appends are requested before any is answered', async () => {
    const { store: counting, requested, answeredAtRequest } = countingAppends(newStore('counted'));
    const commands = await engine(counting);
    const batch = ['a', 'b', 'c'].flatMap((c) => [register(`reg-${c}`, c), purchase(`p1-${c}`, 'o-1', c), purchase(`p2-${c}`, 'o-2', c)]);

    const results = await commands.importBatch(batch);

    expect(results.every((r) => r.ok && r.result.status === 'applied')).toBe(true);
    expect(requested).toEqual(['customer-a', 'customer-b', 'customer-c']);
    expect(answeredAtRequest.every((answered) => answered === 0)).toBe(true);
    const counted = (await engines.module(0).get(ClienteleMetrics).commands.get()).values.map((v) => [v.labels.type, v.labels.status, v.value]);
    expect(counted.sort()).toEqual([
      ['RecordPurchase', 'applied', 6],
      ['RegisterProspect', 'applied', 3],
    ]);
    const a = results.slice(0, 3).map((r) => (r.ok ? r.result.events.map((e) => `${e.type}@${e.revision}`) : []));
    expect(a).toEqual([['ProspectRegistered@0'], ['PurchaseRecorded@1', 'CustomerConverted@2'], ['PurchaseRecorded@3', 'RepeatBuyerQualified@4']]);
  });

  it('given more streams than one round, then the next round is decided and requested while the store still writes the one before, and the store holds at most two rounds', async () => {
    const { store: counting, requested, answeredAtRequest, answered } = countingAppends(newStore('rounds'));
    const commands = await engine(counting);
    // how many appends were answered when each stream was planned
    const answeredAtPlan: number[] = [];
    const importer = BulkImporter.prototype as unknown as { plan: (...args: unknown[]) => Promise<unknown> };
    const plan = importer.plan;
    jest.spyOn(importer, 'plan').mockImplementation(function (this: unknown, ...args: unknown[]) {
      answeredAtPlan.push(answered());
      return plan.apply(this, args);
    });
    // 900 customers: four rounds of at most 250 streams
    const customers = Array.from({ length: 900 }, (_, i) => `c${i}`);
    const batch = customers.flatMap((c) => [register(`reg-${c}`, c), purchase(`p-${c}`, 'o-1', c)]);

    const results = await commands.importBatch(batch);

    expect(results.every((r) => r.ok && r.result.status === 'applied')).toBe(true);
    expect(requested).toEqual(customers.map((c) => `customer-${c}`));
    // the second round was decided and requested before the first round's appends were all answered...
    expect(answeredAtPlan[250]).toBeLessThan(250);
    expect(answeredAtRequest[250]).toBeLessThan(250);
    // ...and the third and fourth only once the round two before them was written, so another
    // caller's append waits for two rounds at most
    expect(answeredAtRequest[500]).toBeGreaterThanOrEqual(250);
    expect(answeredAtRequest[750]).toBeGreaterThanOrEqual(500);
    // and each command was answered with its own stream's events
    for (const [i, c] of customers.entries()) {
      const buy = results[2 * i + 1]!;
      expect(buy.ok && [buy.result.streamId, ...buy.result.events.map((e) => `${e.type}@${e.revision}`)]).toEqual([
        `customer-${c}`,
        'PurchaseRecorded@1',
        'CustomerConverted@2',
      ]);
    }
  });

  it('given another writer moved a stream this process holds, then its append is refused whole and each command is decided again on the stream as stored', async () => {
    const { store, commands } = await annMovedByAnotherWriter('shared');

    const results = await commands.importBatch([purchase('p-2', 'o-2', 'ann'), purchase('p-3', 'o-1', 'ann'), lost('lost', 'ann')]);

    expect(results.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(['applied', 'no_op', 'applied']);
    const stored = (await store.readStream('customer-ann')).map((e: StoredEvent) => `${e.type}@${e.revision}`);
    expect(stored).toEqual([
      'ProspectRegistered@0',
      'PurchaseRecorded@1',
      'CustomerConverted@2',
      'PurchaseRecorded@3',
      'RepeatBuyerQualified@4',
      'CustomerChurned@5',
    ]);
  });

  it('given a batch sent again on streams longer than the state cache keeps, then each command answers duplicate with its events, and each stream is read a couple of times, not once per command', async () => {
    // a customer with 1,200 commands: more ids than the state cache keeps for one stream
    const touch = (i: number) => ({ type: 'RecordTouchpoint', commandId: `t-${i}`, data: { customerId: 'ann', channel: 'email', direction: 'outbound', kind: 'newsletter', occurredAt: at } });
    const batch = [register('reg-ann', 'ann'), ...Array.from({ length: 1200 }, (_, i) => touch(i))];
    const { store: counting, reads } = countingReads(newStore('again'));
    const commands = await engine(counting);
    const first = await commands.importBatch(batch);
    expect(first.every((r) => r.ok && r.result.status === 'applied')).toBe(true);

    const readsBefore = reads();
    const again = await commands.importBatch(batch);

    expect(again.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(batch.map(() => 'duplicate'));
    expect(again.map((r) => (r.ok ? r.result.events.map((e) => e.id) : []))).toEqual(first.map((r) => (r.ok ? r.result.events.map((e) => e.id) : [])));
    // before: every command went the one-by-one way, reading the whole stream each time
    expect(reads() - readsBefore).toBeLessThanOrEqual(2);
  });

  it('given a batch sent again to a new process with a purchase changed under its command id, then the bulk path answers the unchanged command duplicate and refuses the changed one as a reused id, reading each stream once', async () => {
    const { store: counting, reads } = countingReads(newStore('changed'));
    const first = [register('reg-ann', 'ann'), purchase('buy-ann', 'o-1', 'ann')];
    expect((await (await engine(counting, false)).importBatch(first)).every((r) => r.ok && r.result.status === 'applied')).toBe(true);
    const changed = [first[0], { ...first[1]!, data: { ...first[1]!.data, lines: [{ ...line, quantity: 2 }] } }];
    const readsBefore = reads();

    // a new process: nothing cached, so the registration's stream is assumed new and its ids are found stored
    const again = await (await engine(counting)).importBatch(changed);

    expect(again.map((r) => (r.ok ? r.result.status : r.failure.code))).toEqual(['duplicate', 'command_id_reused']);
    expect(again[0]?.ok ? again[0].stored?.map((e) => e.type) : undefined).toEqual(['ProspectRegistered']);
    expect(again[1]?.ok ? undefined : again[1]?.failure.message).toContain('data.lines differs from what it stored (PurchaseRecorded at position 2)');
    // before: the stored ids sent every command the one-by-one way, which reads the stream for each
    expect(reads() - readsBefore).toBe(1);
    const purchases = (await counting.readStream('customer-ann')).filter((e) => e.type === 'PurchaseRecorded');
    expect(purchases.map((e) => e.data['lines'])).toEqual([[line]]);
  });

  it('given the store fails a stream\'s first appends, when holding streams after a temporary failure (importBatch, or importValid as the CLI import calls it), then the stream\'s later commands are not run but answered as failed for now; without holding they run out of order', async () => {
    /** a store whose first two appends to Ann's stream fail, as in a short outage */
    const flaky = (name: string): { store: EventStore; ann: () => Promise<string[]> } => {
      const store = newStore(name);
      let failures = 2;
      return {
        store: {
          appendToStream: (streamId, events, options) =>
            streamId === 'customer-ann' && failures-- > 0 ? Promise.reject(new Error('disk I/O error')) : store.appendToStream(streamId, events, options),
          readStream: (id, o) => store.readStream(id, o),
          readAll: (o) => store.readAll(o),
          subscribeToAll: (o) => store.subscribeToAll(o),
          headPosition: () => store.headPosition(),
          close: () => store.close(),
        },
        ann: async () => (await store.readStream('customer-ann')).map((e) => e.type),
      };
    };
    const batch = [register('reg-ann', 'ann'), register('reg-bob', 'bob'), purchase('p-ann', 'o-1', 'ann'), purchase('p-bob', 'o-1', 'bob')];
    const outcome = (r: BatchItemResult) => (r.ok ? r.result.status : `${r.failure.kind}: ${r.failure.message}`);
    const holding = flaky('holding');
    const answering = flaky('answering');

    const validating = flaky('validated');
    const held = await (await engine(holding.store)).importBatch(batch, { holdStreamAfterTemporaryFailure: true });
    const unheld = await (await engine(answering.store)).importBatch(batch);
    // the CLI import's way in: lines validated as they are read, then importValid
    const valid = batch.map((envelope) => {
      const validation = validateCommandEnvelope(envelope);
      if (!validation.ok) throw new Error('the batch is valid');
      return validation.command;
    });
    const heldValid = await (await engine(validating.store)).importValid(valid, { holdStreamAfterTemporaryFailure: true });

    const expected = [
      'internal: the command could not be processed; it may be retried',
      'applied',
      'internal: not run: an earlier command of the same stream failed for now; it may be retried',
      'applied',
    ];
    expect(held.map(outcome)).toEqual(expected);
    expect(heldValid.map(outcome)).toEqual(expected);
    expect(await holding.ann()).toEqual([]);
    expect(await validating.ann()).toEqual([]);
    // without holding, Ann's purchase is stored (registering her as a purchase does) ahead of her own
    // registration, which a retry would then find already done
    expect(unheld.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(['internal', 'applied', 'applied', 'applied']);
    expect(await answering.ann()).toEqual(['ProspectRegistered', 'PurchaseRecorded', 'CustomerConverted']);
  });

  it('given a kept state that would refuse a command, when another writer changed the stream, then the refusal is not answered from the kept state', async () => {
    const { commands } = await annMovedByAnotherWriter('refusal');

    // From the kept state Ann is a prospect, who cannot be marked lost; as stored she is a customer.
    const [result] = await commands.importBatch([lost('lost', 'ann')]);

    expect(result).toMatchObject({ ok: true, result: { status: 'applied' } });
  });

  it('given an opening command for a stream that exists, when this process has not seen it, then it is answered as stored, not opened twice', async () => {
    const store = newStore('reopen');
    await (await engine(store, false)).importBatch([register('reg', 'ann'), purchase('p-1', 'o-1', 'ann')]);
    const fresh = await engine(store);

    const results = await fresh.importBatch([register('reg-again', 'ann'), purchase('p-2', 'o-2', 'ann')]);

    expect(results.map((r) => (r.ok ? r.result.status : r.failure.kind))).toEqual(['no_op', 'applied']);
    expect((await store.readStream('customer-ann')).map((e) => e.revision)).toEqual([0, 1, 2, 3, 4]);
  });
});
