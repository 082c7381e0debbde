import type { StoredEvent } from '@clientele/event-store';
import { inMemoryStoreOf, StoredEventLog, generateCustomerLog } from '@clientele/testing';
import { Projector } from './projector';
import { digest } from './read-model-digest';
import { ReadModels } from './read-models';
import { ReferralsProjection } from './referrals.projection';
import { ReferralQueries } from './referrals.queries';
import type { ReferralNode } from './referrals.queries';
import { SqliteReadModelStore } from './sqlite-read-model.store';

async function project(events: readonly StoredEvent[], batchSize = 1000) {
  const store = new SqliteReadModelStore(':memory:');
  const projector = new Projector(await inMemoryStoreOf(events), new ReadModels(store), [new ReferralsProjection()], { batchSize });
  await projector.start();
  await projector.catchUp();
  return { store, queries: new ReferralQueries(store) };
}

/** The graph as the test reads it from the events: plain maps, no tables. */
function expectedGraph(events: readonly StoredEvent[]) {
  const edges = new Map<string, { referrerId: string; refereeId: string; referredAt: string; creditedAt?: string; convertedAt?: string }>();
  const revenue = new Map<string, number>();
  const orders = new Map<string, number>();
  const link = (referrer: string, referee: string, at: string) => {
    if (referrer === referee) return undefined;
    const existing = edges.get(referee);
    if (existing) return existing.referrerId === referrer ? existing : undefined;
    const created: { referrerId: string; refereeId: string; referredAt: string; creditedAt?: string; convertedAt?: string } = {
      referrerId: referrer,
      refereeId: referee,
      referredAt: at,
    };
    edges.set(referee, created);
    return created;
  };
  for (const e of events) {
    const d = e.data as Record<string, string | number>;
    const at = e.metadata.occurredAt;
    if (e.type === 'ProspectRegistered' && d.referredBy) link(String(d.referredBy), String(d.customerId), at);
    if (e.type === 'PurchaseRecorded') {
      revenue.set(String(d.customerId), (revenue.get(String(d.customerId)) ?? 0) + Number(d.totalMinor));
      orders.set(String(d.customerId), (orders.get(String(d.customerId)) ?? 0) + 1);
    }
    if (e.type === 'ReferralCredited' || e.type === 'ReferralConverted') {
      const edge = link(String(d.customerId), String(d.refereeId), at);
      if (edge && e.type === 'ReferralCredited') edge.creditedAt ??= at;
      if (edge && e.type === 'ReferralConverted') edge.convertedAt ??= at;
    }
  }
  const byReferrer = new Map<string, { referees: number; convertedReferees: number; refereeRevenueMinor: number }>();
  for (const edge of edges.values()) {
    const a = byReferrer.get(edge.referrerId) ?? { referees: 0, convertedReferees: 0, refereeRevenueMinor: 0 };
    a.referees += 1;
    if (edge.convertedAt) a.convertedReferees += 1;
    a.refereeRevenueMinor += revenue.get(edge.refereeId) ?? 0;
    byReferrer.set(edge.referrerId, a);
  }
  const advocates = [...byReferrer.entries()]
    .map(([customerId, a]) => ({ customerId, ...a }))
    .sort((x, y) => y.convertedReferees - x.convertedReferees || y.refereeRevenueMinor - x.refereeRevenueMinor || (x.customerId < y.customerId ? -1 : 1));
  const tree = (root: string, depth: number): ReferralNode[] =>
    depth === 0
      ? []
      : [...edges.values()]
          .filter((e) => e.referrerId === root)
          .sort((a, b) => (a.refereeId < b.refereeId ? -1 : 1))
          .map((e) => ({
            customerId: e.refereeId,
            referredAt: e.referredAt,
            ...(e.creditedAt ? { creditedAt: e.creditedAt } : {}),
            ...(e.convertedAt ? { convertedAt: e.convertedAt } : {}),
            revenueMinor: revenue.get(e.refereeId) ?? 0,
            referees: tree(e.refereeId, depth - 1),
            // at the last level shown, how many they referred that the answer leaves out
            ...(depth === 1 && notShown(e.refereeId) > 0 ? { refereesNotShown: notShown(e.refereeId) } : {}),
          }));
  const notShown = (id: string) => [...edges.values()].filter((e) => e.referrerId === id).length;
  const converted = [...edges.values()].filter((e) => e.convertedAt).length;
  const customers = [...orders.values()].filter((n) => n > 0).length;
  return { edges, revenue, orders, advocates, tree, converted, customers };
}

describe('ReferralsProjection', () => {
  const log = generateCustomerLog({ seed: 11, customers: 400 });
  const expected = expectedGraph(log.events);

  it('given a generated log, then advocates, viral coefficient, trees and the exported graph match the plain fold', async () => {
    const { store, queries } = await project(log.events, 61);

    expect(expected.advocates.length).toBeGreaterThan(10);
    expect(await queries.topAdvocates({ limit: 1000 })).toEqual({ items: expected.advocates });
    expect((await queries.topAdvocates({ limit: 5 })).items).toEqual(expected.advocates.slice(0, 5));
    // the whole ranking, page by page: every advocate once, in order
    const walked: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = await queries.topAdvocates({ limit: 7, ...(cursor !== undefined ? { cursor } : {}) });
      walked.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(walked).toEqual(expected.advocates);
    expect(await queries.viralCoefficient()).toEqual({
      convertedReferees: expected.converted,
      customers: expected.customers,
      coefficient: expected.converted / expected.customers,
    });
    for (const advocate of expected.advocates.slice(0, 10)) {
      expect(await queries.treeBelow(advocate.customerId, 3)).toEqual(expected.tree(advocate.customerId, 3));
      expect(await queries.treeBelow(advocate.customerId, 1)).toEqual(expected.tree(advocate.customerId, 1));
    }
    // the log has chains deep enough that a depth-1 tree leaves someone's referees out, and says so
    const cut = await Promise.all(expected.advocates.slice(0, 10).map((a) => queries.treeBelow(a.customerId, 1)));
    expect(cut.flat().some((n) => (n.refereesNotShown ?? 0) > 0)).toBe(true);
    const graph = await queries.exportGraph();
    expect(graph.edges).toEqual(
      [...expected.edges.values()]
        .sort((a, b) => (a.referrerId < b.referrerId ? -1 : a.referrerId > b.referrerId ? 1 : a.refereeId < b.refereeId ? -1 : 1))
        .map((e) => ({ ...e, refereeRevenueMinor: expected.revenue.get(e.refereeId) ?? 0 })),
    );
    expect(graph.nodes.map((n) => n.customerId)).toEqual([...new Set(graph.edges.flatMap((e) => [e.referrerId, e.refereeId]))].sort());
    await store.close();
  });

  it('given a cursor no page of the ranking gave, then the query is refused naming cursor and what was expected', async () => {
    const { store, queries } = await project(log.events);
    const first = await queries.topAdvocates({ limit: 2 });
    expect(first.nextCursor).toBeDefined();
    const forged = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
    const refused = async (cursor: string) => {
      const failure = await queries.topAdvocates({ cursor }).then(() => undefined, (e: unknown) => e as { field?: string; message: string });
      expect(failure?.field).toBe('cursor');
      return failure!.message;
    };
    expect(await refused('not a cursor')).toContain('the nextCursor of a previous page');
    expect(await refused(forged(['revenue desc', 10, 'ada', '']))).toContain('in the same order (this one came from a list in the order revenue desc, not top-advocates)');
    expect(await refused(forged(['top-advocates', 'one:2', 'ada', '']))).toContain('whose position is converted referees and their referees\' revenue in minor units');
    expect(await refused(forged(['top-advocates', '1:2', '', '']))).toContain('whose customer id is a non-empty string');
    await store.close();
  });

  it('draws the graph in DOT with one edge line per referral, dashed until converted', async () => {
    const { store, queries } = await project(log.events);
    const dot = await queries.toDot();
    const edgeLines = dot.split('\n').filter((l) => l.includes('->'));
    expect(dot.startsWith('digraph referrals {')).toBe(true);
    expect(edgeLines).toHaveLength(expected.edges.size);
    expect(edgeLines.filter((l) => l.includes('style=dashed'))).toHaveLength(expected.edges.size - expected.converted);
    await store.close();
  });

  it('gives equal digests for the same events in different batch sizes', async () => {
    const a = await project(log.events, 1000);
    const b = await project(log.events, 17);
    expect(await digest(b.store, new ReferralsProjection())).toBe(await digest(a.store, new ReferralsProjection()));
    await Promise.all([a.store.close(), b.store.close()]);
  });
});

describe('ReferralsProjection scenarios', () => {
  it('counts a referee’s purchases made before the credit arrived, ignores self-referral and a second referrer', async () => {
    const log = new StoredEventLog();
    log.append('ProspectRegistered', { customerId: 'ada', source: 'web', personal: {}, implicit: false });
    log.append('ProspectRegistered', { customerId: 'bob', source: 'web', personal: {}, implicit: false });
    log.append('ProspectRegistered', { customerId: 'cat', source: 'web', personal: {}, implicit: false });
    log.append('PurchaseRecorded', { customerId: 'bob', orderId: 'b1', lines: [], totalMinor: 700, costMinor: 0 });
    log.append('ReferralCredited', { customerId: 'ada', refereeId: 'bob' });
    log.append('ReferralConverted', { customerId: 'ada', refereeId: 'bob', orderId: 'b1' });
    log.append('ReferralCredited', { customerId: 'cat', refereeId: 'bob' }); // bob was referred already
    log.append('ReferralCredited', { customerId: 'cat', refereeId: 'cat' }); // self-referral
    log.append('PurchaseRecorded', { customerId: 'bob', orderId: 'b2', lines: [], totalMinor: 300, costMinor: 0 });
    log.append('PurchaseRecorded', { customerId: 'ada', orderId: 'a1', lines: [], totalMinor: 50, costMinor: 0 });
    const { store, queries } = await project(log.events, 2);

    expect((await queries.topAdvocates({ limit: 10 })).items).toEqual([{ customerId: 'ada', referees: 1, convertedReferees: 1, refereeRevenueMinor: 1000 }]);
    expect(await queries.treeBelow('cat', 2)).toEqual([]);
    expect(await queries.treeBelow('ada', 1)).toEqual([
      { customerId: 'bob', referredAt: log.events[4]!.metadata.occurredAt, creditedAt: log.events[4]!.metadata.occurredAt, convertedAt: log.events[5]!.metadata.occurredAt, revenueMinor: 1000, referees: [] },
    ]);
    expect(await queries.viralCoefficient()).toEqual({ convertedReferees: 1, customers: 2, coefficient: 0.5 });
    await expect(queries.treeBelow('ada', 0)).rejects.toThrow('depth: expected an integer from 1 to 20, got 0');
    await store.close();
  });
});
