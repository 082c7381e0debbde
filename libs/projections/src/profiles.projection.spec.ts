import type { StoredEvent } from '@clientele/event-store';
import { inMemoryStoreOf, StoredEventLog, generateCustomerLog, handBuiltCursors } from '@clientele/testing';
import { Projector, flushRebuild } from './projector';
import { digest } from './read-model-digest';
import { ProfilesProjection, utcWeekdayAndHour } from './profiles.projection';
import { nextBirthday, PROFILE_SORTS, ProfileQueries } from './profiles.queries';
import { InvalidQueryError } from './query-errors';
import type { CustomerProfile } from './profiles.queries';
import { ReadModels } from './read-models';
import { SqliteReadModelStore } from './sqlite-read-model.store';

const DAY = 86_400_000;
const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const STAGES: Record<string, string> = {
  ProspectRegistered: 'prospect',
  CustomerConverted: 'customer',
  RepeatBuyerQualified: 'repeat_buyer',
  AdvocateRecognized: 'advocate',
  CustomerChurned: 'churned',
  CustomerReactivated: 'customer',
};

async function project(
  events: readonly StoredEvent[],
  batchSize = 1000,
  projection = new ProfilesProjection(),
): Promise<{ store: SqliteReadModelStore; queries: ProfileQueries }> {
  const store = new SqliteReadModelStore(':memory:');
  const projector = new Projector(await inMemoryStoreOf(events), new ReadModels(store), [projection], { batchSize });
  await projector.start();
  await projector.catchUp();
  // a rebuild instance holds profiles back until the rebuild's end; the projector's rebuild flushes them there
  await flushRebuild(store, [projection]);
  return { store, queries: new ProfileQueries(store) };
}

/**
 * The expected profile of one customer, folded straight from the events of the test: all events
 * in memory, no tables, no batches. Independent of the projection code on purpose.
 */
function expectedProfile(events: readonly StoredEvent[], customerId: string, asOf: string): CustomerProfile | undefined {
  const mine = events.filter((e) => e.data.customerId === customerId);
  if (mine.length === 0) return undefined;
  const now = Date.parse(asOf);
  const d = (e: StoredEvent) => e.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test fold reads loose payloads
  const erased = mine.some((e) => e.type === 'PersonalDataErased');
  const personal: Record<string, string> = {};
  let erasedYet = false;
  const prefs: Record<string, string> = {};
  const consents: Record<string, boolean> = {};
  for (const e of mine) {
    if (e.type === 'PersonalDataErased') erasedYet = true;
    if ((e.type === 'ProspectRegistered' || e.type === 'ProfileUpdated') && !erasedYet) Object.assign(personal, d(e).personal ?? {});
    if (e.type === 'ProfileUpdated') {
      Object.assign(prefs, d(e).preferences ?? {});
      Object.assign(consents, d(e).consents ?? {});
    }
  }
  const purchases = mine.filter((e) => e.type === 'PurchaseRecorded');
  const revenue = purchases.reduce((s, e) => s + d(e).totalMinor, 0);
  const cost = purchases.reduce((s, e) => s + d(e).costMinor, 0);
  const tally = (pairs: Array<[string, number]>) => {
    const m = new Map<string, number>();
    for (const [k, n] of pairs) m.set(k, (m.get(k) ?? 0) + n);
    return [...m.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  };
  const lines = purchases.flatMap((e) => d(e).lines as Array<{ sku: string; category: string; quantity: number }>);
  const channels = tally([
    ...mine.filter((e) => e.type === 'TouchpointRecorded').map((e): [string, number] => [d(e).channel, 1]),
    ...purchases.filter((e) => d(e).channel).map((e): [string, number] => [d(e).channel, 1]),
  ]);
  const modeOf = (values: number[]) => {
    const counts = new Map<number, number>();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0];
  };
  const times = purchases.map((e) => new Date(e.metadata.occurredAt));
  const registration = mine.find((e) => e.type === 'ProspectRegistered');
  const since = Date.parse(registration?.metadata.occurredAt ?? mine[0]!.metadata.occurredAt);
  const feedback = mine.filter((e) => e.type === 'FeedbackReceived');
  const thanks = mine.filter((e) => e.type === 'CustomerThanked');
  const credited = new Map<string, { creditedAt?: string; convertedAt?: string }>();
  for (const e of mine) {
    if (e.type !== 'ReferralCredited' && e.type !== 'ReferralConverted') continue;
    const r = credited.get(d(e).refereeId) ?? {};
    if (e.type === 'ReferralCredited') r.creditedAt ??= e.metadata.occurredAt;
    else r.convertedAt ??= e.metadata.occurredAt;
    credited.set(d(e).refereeId, r);
  }
  const transitions = mine.filter((e) => STAGES[e.type]);
  const lastTransition = transitions[transitions.length - 1];
  const purchaseDates = purchases.map((e) => e.metadata.occurredAt).sort();
  const lastPurchase = purchaseDates[purchaseDates.length - 1];
  const weekday = modeOf(times.map((t) => t.getUTCDay()));
  const hour = modeOf(times.map((t) => t.getUTCHours()));
  let birthdayIn: number | undefined;
  if (!erased && personal.birthday) {
    const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
    for (let k = 0; k <= 366 && birthdayIn === undefined; k += 1) {
      const day = new Date(today + k * DAY);
      const md = personal.birthday.slice(5);
      const leap = new Date(Date.UTC(day.getUTCFullYear(), 1, 29)).getUTCMonth() === 1;
      const target = md === '02-29' && !leap ? '02-28' : md;
      if (day.toISOString().slice(5, 10) === target) birthdayIn = k;
    }
  }
  const registered = registration ? d(registration) : {};
  const strip = <T extends Record<string, unknown>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;
  return strip({
    customerId,
    erased,
    identity: erased ? {} : strip({ name: personal.name, email: personal.email, phone: personal.phone }),
    birthday: erased ? undefined : personal.birthday,
    daysToNextBirthday: birthdayIn,
    preferences: prefs,
    consents,
    preferredChannel: channels[0]?.[0],
    habits: strip({
      topCategories: tally(lines.map((l) => [l.category, l.quantity])).slice(0, 5).map(([category, quantity]) => ({ category, quantity })),
      topProducts: tally(lines.map((l) => [l.sku, l.quantity])).slice(0, 5).map(([sku, quantity]) => ({ sku, quantity })),
      averageBasketMinor: purchases.length ? Math.round(revenue / purchases.length) : undefined,
      ordersPer30Days: Math.round(((purchases.length * 30) / Math.max(1, (now - since) / DAY)) * 100) / 100,
      usualWeekday: weekday === undefined ? undefined : WEEKDAYS[weekday],
      usualHourUtc: hour,
    }),
    firstPurchaseAt: purchaseDates[0],
    lastPurchaseAt: lastPurchase,
    stage: lastTransition ? STAGES[lastTransition.type] : undefined,
    stageSince: lastTransition?.metadata.occurredAt,
    stageHistory: transitions.map((e) => ({ stage: STAGES[e.type]!, at: e.metadata.occurredAt, eventId: e.id, ...(e.metadata.causationId !== undefined ? { causationId: String(e.metadata.causationId) } : {}) })),
    acquisition: strip({ source: registered.source, channel: registered.channel, campaign: registered.campaign, registeredAt: registration?.metadata.occurredAt }),
    referredBy: registered.referredBy,
    referees: [...credited.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, r]) => ({ customerId: id, ...r })),
    feedback: strip({
      count: feedback.length,
      averageScore: feedback.length ? Math.round((feedback.reduce((s, e) => s + d(e).score, 0) / feedback.length) * 100) / 100 : undefined,
      complaints: feedback.filter((e) => d(e).kind === 'complaint').length,
    }),
    thanks: {
      count: thanks.length,
      // the latest ten by business time, the later recorded first among equal times
      recent: thanks
        .map((e, i) => ({ e, i }))
        .sort((x, y) => Date.parse(y.e.metadata.occurredAt) - Date.parse(x.e.metadata.occurredAt) || y.i - x.i)
        .slice(0, 10)
        .map(({ e }) => e)
        .map((e) => strip({ at: e.metadata.occurredAt, gesture: d(e).gesture, reason: d(e).reason, valueMinor: d(e).valueMinor })),
    },
    value: { revenueMinor: revenue, costMinor: cost, marginMinor: revenue - cost },
    rfm: strip({
      recencyDays: lastPurchase ? Math.floor(now / DAY) - Math.floor(Date.parse(lastPurchase) / DAY) : undefined,
      frequency: purchases.length,
      monetaryMinor: revenue,
    }),
  }) as CustomerProfile;
}

describe('ProfilesProjection', () => {
  const log = generateCustomerLog({ seed: 7, customers: 300 });
  const asOf = '2026-01-15T12:00:00.000Z';
  const ids = [...new Set(log.events.map((e) => e.data.customerId).filter((c): c is string => typeof c === 'string'))].sort();

  it('given a generated log, then every profile equals the straightforward fold of that customer’s events', async () => {
    const { store, queries } = await project(log.events, 97);
    expect(ids.length).toBe(300);
    for (const id of ids) {
      expect({ id, profile: await queries.getProfile(id, asOf) }).toEqual({ id, profile: expectedProfile(log.events, id, asOf) });
    }
    await store.close();
  });

  it('given the same events folded twice with different batch sizes, then the digests are equal; one changed event changes it', async () => {
    const a = await project(log.events, 1000);
    const b = await project(log.events, 13);
    const changed = log.events.map((e) =>
      e.type === 'PurchaseRecorded' && e.position === log.events.find((x) => x.type === 'PurchaseRecorded')!.position
        ? { ...e, data: { ...e.data, totalMinor: Number(e.data.totalMinor) + 1 } }
        : e,
    );
    const c = await project(changed);
    const projection = new ProfilesProjection();
    expect(await digest(b.store, projection)).toBe(await digest(a.store, projection));
    expect(await digest(c.store, projection)).not.toBe(await digest(a.store, projection));
    await Promise.all([a.store.close(), b.store.close(), c.store.close()]);
  });

  it('given rebuild instances that keep written profiles across batches (also past their limit), then the digests equal the plain fold', async () => {
    const plain = await project(log.events, 1000);
    const kept = await project(log.events, 17, new ProfilesProjection().forRebuild());
    const overflowing = await project(log.events, 17, new ProfilesProjection({ residentLimit: 3 }).forRebuild());
    const projection = new ProfilesProjection();
    expect(await digest(kept.store, projection)).toBe(await digest(plain.store, projection));
    expect(await digest(overflowing.store, projection)).toBe(await digest(plain.store, projection));
    await Promise.all([plain.store.close(), kept.store.close(), overflowing.store.close()]);
  });

  it('given a projection after profiles that throws mid-batch, then the profiles and checkpoints are as after the previous batch', async () => {
    const store = new SqliteReadModelStore(':memory:');
    const breaker = {
      name: 'breaker',
      version: 1,
      tables: [],
      migrate: async () => undefined,
      apply: async (events: readonly StoredEvent[]) => {
        if (events.some((e) => e.position === 250)) throw new Error('breaker failed');
      },
    };
    const projector = new Projector(await inMemoryStoreOf(log.events), new ReadModels(store), [new ProfilesProjection(), breaker], { batchSize: 100 });
    await projector.start();

    await expect(projector.catchUp()).rejects.toThrow('breaker failed');

    const clean = await project(log.events.slice(0, 200), 100);
    expect(await digest(store, new ProfilesProjection())).toBe(await digest(clean.store, new ProfilesProjection()));
    expect((await projector.status()).map((s) => s.position)).toEqual([200, 200]);
    await Promise.all([store.close(), clean.store.close()]);
  });

  it('answers undefined for an unknown customer and rejects a malformed asOf by name', async () => {
    const { store, queries } = await project(log.events);
    expect(await queries.getProfile('nobody', asOf)).toBeUndefined();
    await expect(queries.getProfile(ids[0]!, 'yesterday')).rejects.toThrow('asOf: expected an ISO-8601 date');
    await store.close();
  });

  it('lists profiles filtered, sorted and paged by cursor without gaps or repeats', async () => {
    const { store, queries } = await project(log.events);
    const all = await Promise.all(ids.map((id) => queries.getProfile(id, asOf)));
    const expected = all
      .filter((p): p is CustomerProfile => p?.stage === 'repeat_buyer')
      .sort((x, y) => y.value.revenueMinor - x.value.revenueMinor || (x.customerId < y.customerId ? 1 : -1))
      .map((p) => p.customerId);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await queries.listProfiles({ stage: 'repeat_buyer', sort: 'revenue', direction: 'desc', limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((i) => i.customerId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(expected.length).toBeGreaterThan(7);
    expect(seen).toEqual(expected);

    const bySource = await queries.listProfiles({ source: 'web', limit: 1000 });
    expect(bySource.items.map((i) => i.customerId)).toEqual(all.filter((p) => p?.acquisition.source === 'web').map((p) => p!.customerId));
    const second = await queries.listProfiles({ limit: 10, offset: 10 });
    expect(second.items.map((i) => i.customerId)).toEqual(ids.slice(10, 20));
    await expect(queries.listProfiles({ limit: 0 })).rejects.toThrow('limit: expected an integer from 1 to 1000, got 0');
    // a cursor taken from a list in one order, given to a list in another, is refused by name rather than answering an empty page
    const byId = await queries.listProfiles({ limit: 5 });
    expect(byId.nextCursor).toBeDefined();
    await expect(queries.listProfiles({ limit: 5, sort: 'revenue', cursor: byId.nextCursor })).rejects.toThrow(
      'cursor: expected the nextCursor of a previous page in the same order (this one came from a list in the order customerId asc, not revenue asc)',
    );
    await expect(queries.listProfiles({ limit: 5, direction: 'desc', cursor: byId.nextCursor })).rejects.toThrow(InvalidQueryError);
    const birthdays = await queries.upcomingBirthdays({ asOf: '2025-12-20', withinDays: 366, limit: 1 });
    await expect(queries.listProfiles({ limit: 5, cursor: birthdays.nextCursor })).rejects.toThrow(InvalidQueryError);
    // and one from a list with other filters: it would skip or repeat customers unnoticed
    const customers = await queries.listProfiles({ stage: 'repeat_buyer', limit: 2 });
    expect(customers.nextCursor).toBeDefined();
    await expect(queries.listProfiles({ stage: 'customer', limit: 2, cursor: customers.nextCursor })).rejects.toThrow(
      'cursor: expected the nextCursor of a previous page with the same filters (this one came from a list with stage=repeat_buyer, not stage=customer)',
    );
    await expect(queries.listProfiles({ limit: 2, cursor: customers.nextCursor })).rejects.toThrow('not no filter)');
    expect((await queries.listProfiles({ stage: 'repeat_buyer', limit: 2, cursor: customers.nextCursor })).items).toHaveLength(2);
    await expect(queries.upcomingBirthdays({ asOf: '2025-12-20', withinDays: 30, limit: 1, cursor: birthdays.nextCursor })).rejects.toThrow(
      'cursor: expected the nextCursor of a previous page with the same filters (this one came from a list with from=2025-12-20, withinDays=366, not from=2025-12-20, withinDays=30)',
    );
    await expect(queries.upcomingBirthdays({ asOf: '2025-12-21', withinDays: 366, limit: 1, cursor: birthdays.nextCursor })).rejects.toThrow(InvalidQueryError);
    await store.close();
  });

  it('refuses a hand-built cursor that decodes but holds nonsense for its order, naming cursor and what was expected, while the cursors pages give walk every order', async () => {
    const { store, queries } = await project(log.events);
    const window = { from: '2025-12-20', withinDays: 30 };
    for (const c of handBuiltCursors(ids[0]!, window)) {
      const asked = c.list === 'birthdays' ? queries.upcomingBirthdays({ asOf: window.from, withinDays: window.withinDays, cursor: c.cursor }) : queries.listProfiles({ ...c.list, cursor: c.cursor });
      const refusal = await asked.then(() => 'answered', (e: unknown) => e);
      expect({ why: c.why, refusal }).toEqual({ why: c.why, refusal: expect.objectContaining({ name: 'InvalidQueryError', field: 'cursor', expected: expect.stringMatching(c.expected) }) });
    }
    // the value is named in the message, not in what is expected
    await expect(queries.listProfiles({ sort: 'revenue', cursor: Buffer.from(JSON.stringify(['revenue asc', 'abc', 'c1', ''])).toString('base64url') })).rejects.toThrow(
      'cursor: expected the nextCursor of a previous page (revenue asc), whose position is a revenue in minor units (a non-negative integer), got "abc"',
    );
    for (const sort of PROFILE_SORTS) {
      for (const direction of ['asc', 'desc'] as const) {
        const whole = (await queries.listProfiles({ sort, direction, limit: 1000 })).items.map((i) => i.customerId);
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await queries.listProfiles({ sort, direction, limit: 13, ...(cursor ? { cursor } : {}) });
          seen.push(...page.items.map((i) => i.customerId));
          cursor = page.nextCursor;
        } while (cursor);
        expect({ sort, direction, seen }).toEqual({ sort, direction, seen: whole });
      }
    }
    await store.close();
  });

  it('lists upcoming birthdays soonest first, across the new year, from the asOf date', async () => {
    const { store, queries } = await project(log.events);
    const at = '2025-12-20';
    const within = 30;
    const expected = ids
      .map((id) => expectedProfile(log.events, id, `${at}T00:00:00.000Z`))
      .filter((p): p is CustomerProfile => p?.daysToNextBirthday !== undefined && p.daysToNextBirthday <= within)
      .sort((x, y) => x.daysToNextBirthday! - y.daysToNextBirthday! || (x.customerId < y.customerId ? -1 : 1));
    const { items: answer, nextCursor } = await queries.upcomingBirthdays({ asOf: at, withinDays: within, limit: 1000 });
    expect(nextCursor).toBeUndefined();
    expect(answer.map((b) => [b.customerId, b.daysUntil])).toEqual(expected.map((p) => [p.customerId, p.daysToNextBirthday]));
    expect(answer.some((b) => b.nextBirthday.startsWith('2026-01'))).toBe(true);
    const top3 = await queries.upcomingBirthdays({ asOf: at, withinDays: within, limit: 3 });
    expect(top3.items).toEqual(answer.slice(0, 3));
    expect(top3.nextCursor).toEqual(expect.any(String));
    await store.close();
  });

  it('pages through upcoming birthdays by cursor without gaps or repeats: across the new year, on crowded days, a leap day and a whole year', async () => {
    // many customers share a few birthdays, so pages end in the middle of a day
    const crowded = new StoredEventLog();
    const birthdays = ['1990-12-30', '1985-12-31', '1970-01-01', '1999-01-02', '1992-02-29', '1980-02-28', '1975-03-01', '2001-06-15', '1960-12-29'];
    for (let i = 0; i < 90; i += 1) {
      const personal = { name: `P${i}`, birthday: birthdays[(i * 7) % birthdays.length]! };
      crowded.append('ProspectRegistered', { customerId: `c${String((i * 37) % 90).padStart(2, '0')}`, source: 'web', personal, implicit: false, occurredAt: '2024-01-01T00:00:00.000Z' });
    }
    const { store, queries } = await project(crowded.events);
    for (const [asOf, within] of [['2025-12-29', 10], ['2027-02-26', 5], ['2028-02-26', 5], ['2025-12-29', 366], ['2026-06-15', 0]] as const) {
      const whole = await queries.upcomingBirthdays({ asOf, withinDays: within, limit: 1000 });
      // the straightforward fold: every customer's next birthday, filtered and sorted here
      const expected = crowded.events
        .map((e) => ({ id: String(e.data['customerId']), next: nextBirthday(String((e.data['personal'] as { birthday: string }).birthday), Date.parse(`${asOf}T00:00:00.000Z`)) }))
        .filter((b) => b.next.daysUntil <= within)
        .sort((a, b) => a.next.daysUntil - b.next.daysUntil || (a.id < b.id ? -1 : 1))
        .map((b) => b.id);
      expect(whole.items.map((b) => b.customerId)).toEqual(expected);
      for (const limit of [1, 4, 7]) {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await queries.upcomingBirthdays({ asOf, withinDays: within, limit, ...(cursor ? { cursor } : {}) });
          expect(page.items.length).toBeLessThanOrEqual(limit);
          seen.push(...page.items.map((b) => b.customerId));
          cursor = page.nextCursor;
          pages += 1;
        } while (cursor && pages < 200);
        expect({ asOf, within, limit, seen }).toEqual({ asOf, within, limit, seen: expected });
      }
    }
    await expect(queries.upcomingBirthdays({ asOf: '2025-12-29', withinDays: 10, cursor: 'not-a-cursor' })).rejects.toThrow(InvalidQueryError);
    await store.close();
  });
});

describe('ProfilesProjection scenarios', () => {
  const at = (day: number, hour = 10) => new Date(Date.UTC(2026, 0, day, hour)).toISOString();

  it('given a registered customer whose personal data is erased, then the profile reads as erased and keeps history', async () => {
    const log = new StoredEventLog();
    log.append('ProspectRegistered', { customerId: 'ann', source: 'web', personal: { name: 'Ann', email: 'ann@example.test', phone: '+1', birthday: '1990-01-20' }, implicit: false, occurredAt: at(1) });
    log.append('PurchaseRecorded', { customerId: 'ann', orderId: 'o1', lines: [{ sku: 's', category: 'c', quantity: 1, unitPriceMinor: 500, unitCostMinor: 200 }], totalMinor: 500, costMinor: 200, occurredAt: at(2) });
    log.append('PersonalDataErased', { customerId: 'ann', occurredAt: at(3) });
    log.append('ProfileUpdated', { customerId: 'ann', personal: { name: 'Ann again' }, occurredAt: at(4) });
    const { store, queries } = await project(log.events);

    const profile = await queries.getProfile('ann', '2026-01-10');
    expect(profile).toMatchObject({ erased: true, identity: {}, value: { revenueMinor: 500, marginMinor: 300 } });
    expect(profile?.birthday).toBeUndefined();
    expect(profile?.daysToNextBirthday).toBeUndefined();
    const row = await store.get<{ birth_md: string | null; state: string }>('SELECT birth_md, state FROM profiles');
    expect(row?.birth_md).toBeNull();
    for (const personal of ['Ann', 'ann@example.test', '1990-01-20']) expect(row?.state).not.toContain(personal);
    expect(await queries.upcomingBirthdays({ asOf: '2026-01-10', withinDays: 30 })).toEqual({ items: [] });
    await store.close();
  });

  it('given transitions written with their cause, then the stage history names each transition event and what caused it', async () => {
    const log = new StoredEventLog();
    // a registration is caused by its command (the engine writes the command id as its causation id)
    const registered = log.append('ProspectRegistered', { customerId: 'bo', source: 'store', personal: {}, implicit: false, occurredAt: at(1) }, { metadata: { commandId: 'reg-bo', causationId: 'reg-bo' } });
    const purchase = log.append('PurchaseRecorded', { customerId: 'bo', orderId: 'o1', lines: [], totalMinor: 100, costMinor: 50, channel: 'store', occurredAt: at(2, 18) });
    const converted = log.append('CustomerConverted', { customerId: 'bo', orderId: 'o1', occurredAt: at(2, 18) }, { metadata: { causationId: purchase.id } });
    // stored without a cause (a log from elsewhere): no causation id rather than the event's own id
    const churned = log.append('CustomerChurned', { customerId: 'bo', reason: 'marked_lost', detail: 'moved away', occurredAt: at(3) });
    const { store, queries } = await project(log.events);

    const profile = await queries.getProfile('bo', at(12));
    expect(profile?.stage).toBe('churned');
    expect(profile?.stageHistory).toEqual([
      { stage: 'prospect', at: at(1), eventId: registered.id, causationId: 'reg-bo' },
      { stage: 'customer', at: at(2, 18), eventId: converted.id, causationId: purchase.id },
      { stage: 'churned', at: at(3), eventId: churned.id },
    ]);
    expect(profile?.rfm).toEqual({ recencyDays: 10, frequency: 1, monetaryMinor: 100 });
    expect(profile?.habits).toMatchObject({ usualWeekday: 'friday', usualHourUtc: 18, averageBasketMinor: 100 });
    await store.close();
  });

  it('keeps only the last ten thanks in full while counting all of them, across batches', async () => {
    const log = new StoredEventLog();
    for (let i = 1; i <= 14; i += 1) log.append('CustomerThanked', { customerId: 'cy', gesture: `g${i}`, reason: 'loyalty', occurredAt: at(i) });
    const { store, queries } = await project(log.events, 3);

    const profile = await queries.getProfile('cy', at(20));
    expect(profile?.thanks.count).toBe(14);
    expect(profile?.thanks.recent.map((t) => t.gesture)).toEqual(['g14', 'g13', 'g12', 'g11', 'g10', 'g9', 'g8', 'g7', 'g6', 'g5']);
    expect(await store.get('SELECT COUNT(*) AS n FROM profile_thanks')).toEqual({ n: 10 });
    await store.close();
  });

  it('keeps the ten latest thanks by business time, when they were recorded newest first', async () => {
    const log = new StoredEventLog();
    for (let i = 11; i >= 1; i -= 1) log.append('CustomerThanked', { customerId: 'cb', gesture: `g${i}`, reason: 'loyalty', occurredAt: at(i) });
    for (const batch of [1, 4, 100]) {
      const { store, queries } = await project(log.events, batch);
      const profile = await queries.getProfile('cb', at(20));
      expect(profile?.thanks.count).toBe(11);
      expect(profile?.thanks.recent.map((t) => t.gesture)).toEqual(['g11', 'g10', 'g9', 'g8', 'g7', 'g6', 'g5', 'g4', 'g3', 'g2']);
      await store.close();
    }
  });

  it('given rebuild instances, also dropping what they keep between batches, then they too keep only the last ten thanks of each customer', async () => {
    const log = new StoredEventLog();
    for (let i = 1; i <= 14; i += 1) {
      log.append('CustomerThanked', { customerId: 'cy', gesture: `g${i}`, reason: 'loyalty', occurredAt: at(i) });
      if (i % 2 === 0) log.append('CustomerThanked', { customerId: 'cz', gesture: `z${i}`, reason: 'loyalty', occurredAt: at(i) });
    }
    const plain = await project(log.events, 3);
    const kept = await project(log.events, 3, new ProfilesProjection().forRebuild());
    // a limit of one profile: every batch ends by writing and dropping what the instance holds
    const dropping = await project(log.events, 3, new ProfilesProjection({ residentLimit: 1 }).forRebuild());

    const counts = 'SELECT customer_id, COUNT(*) AS n, MIN(seq) AS first FROM profile_thanks GROUP BY customer_id ORDER BY customer_id';
    expect(await plain.store.all(counts)).toEqual([{ customer_id: 'cy', n: 10, first: 5 }, { customer_id: 'cz', n: 7, first: 1 }]);
    for (const rebuilt of [kept, dropping]) {
      expect(await rebuilt.store.all(counts)).toEqual(await plain.store.all(counts));
      expect(await digest(rebuilt.store, new ProfilesProjection())).toBe(await digest(plain.store, new ProfilesProjection()));
    }
    await Promise.all([plain.store.close(), kept.store.close(), dropping.store.close()]);
  });

  it('counts a leap-day birthday on Feb 28 in a common year', async () => {
    const log = new StoredEventLog();
    log.append('ProspectRegistered', { customerId: 'leap', source: 'web', personal: { birthday: '1992-02-29' }, implicit: false, occurredAt: at(1) });
    log.append('ProspectRegistered', { customerId: 'mar1', source: 'web', personal: { birthday: '1980-03-01' }, implicit: false, occurredAt: at(1) });
    const { store, queries } = await project(log.events);
    expect((await queries.upcomingBirthdays({ asOf: '2027-02-27', withinDays: 2 })).items).toEqual([
      { customerId: 'leap', birthday: '1992-02-29', nextBirthday: '2027-02-28', daysUntil: 1 },
      { customerId: 'mar1', birthday: '1980-03-01', nextBirthday: '2027-03-01', daysUntil: 2 },
    ]);
    expect((await queries.upcomingBirthdays({ asOf: '2028-02-27', withinDays: 2 })).items[0]).toMatchObject({ nextBirthday: '2028-02-29', daysUntil: 2 });
    await store.close();
  });
});

describe('utcWeekdayAndHour', () => {
  const byDate = (at: string): number => {
    const d = new Date(at);
    return Number.isNaN(d.getTime()) ? -1 : (d.getUTCDay() << 5) | d.getUTCHours();
  };

  it('reads canonical timestamps as Date does, across eras, leap days and month ends', () => {
    const samples = [
      '1970-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '2000-02-29T12:00:00.000Z', '1900-03-01T05:00:00.000Z',
      '2024-02-28T23:00:00.000Z', '0001-01-01T00:00:00.000Z', '0000-03-01T01:00:00.000Z', '9999-12-28T23:59:59.999Z',
      '2026-11-30T13:30:00.000Z',
    ];
    for (let ms = Date.UTC(1899, 0, 1); ms < Date.UTC(2101, 0, 1); ms += 31 * 3_600_000 + 13 * 60_000 + 17_001) samples.push(new Date(ms).toISOString());
    expect(samples.filter((at) => utcWeekdayAndHour(at) !== byDate(at))).toEqual([]);
    expect(samples.length).toBeGreaterThan(50_000);
  });

  it('answers what Date answers for everything else: rolled-over days, other forms, and -1 for what Date cannot read', () => {
    const odd = [
      '2025-02-30T10:00:00.000Z', '2025-04-31T23:00:00.000Z', '2025-01-29T10:00:00.000Z', '2025-01-01T24:00:00.000Z',
      '2025-13-01T10:00:00.000Z', '2025-00-10T10:00:00.000Z', '2025-01-00T10:00:00.000Z', '2025-01-01T23:60:00.000Z',
      '2025-01-01T10:00:00.0a0Z', '2025-1a-01T10:00:00.000Z', '2025-01-01T10:00:00Z', '2025-01-01T10:00:00.000+05:00',
      '2025-01-01', '+002025-01-01T10:00:00.000Z', 'not a date', '',
    ];
    for (const at of odd) expect([at, utcWeekdayAndHour(at)]).toEqual([at, byDate(at)]);
    expect(utcWeekdayAndHour('not a date')).toBe(-1);
    // metadata without a timestamp: no weekday, no hour, no throw
    expect(utcWeekdayAndHour(undefined)).toBe(-1);
    expect(utcWeekdayAndHour(null)).toBe(byDate(null as unknown as string));
  });
});
