import type { StoredEvent } from '@clientele/event-store';
import { ProfilesProjection } from './profiles.projection';
import { ProfileQueries, type CustomerProfile } from './profiles.queries';
import { SqliteReadModelStore } from './sqlite-read-model.store';

export interface ProfileAsOf {
  /** the instant asked about */
  asOf: string;
  /** `undefined`: no event of the customer had happened by then */
  profile: CustomerProfile | undefined;
  /** events of the stream folded (business time at or before `asOf`) and left out */
  eventsUsed: number;
  eventsLater: number;
}

/**
 * A customer's profile as it stood at a business instant: the customer's own events whose
 * `occurredAt` is at or before `asOf`, in stream order, folded by the profiles projection itself
 * into a throw-away in-memory store, then read with the same query as the live profile. Every
 * profile figure comes from events on the customer's own stream (referrals credited and converted
 * are recorded there too), so the answer is what the live profile would have shown had nothing
 * later happened. `asOf` is an instant (ISO-8601 with a zone); date-relative figures (tenure,
 * recency, next birthday) are measured from it.
 */
export async function profileAsOf(customerId: string, events: Iterable<StoredEvent>, asOf: string): Promise<ProfileAsOf> {
  const cutoff = Date.parse(asOf);
  if (Number.isNaN(cutoff)) throw new Error(`asOf: expected an ISO-8601 date-time, got ${JSON.stringify(asOf)}`);
  const used: StoredEvent[] = [];
  let eventsLater = 0;
  for (const e of events) {
    if (Date.parse(e.metadata.occurredAt) <= cutoff) used.push(e);
    else eventsLater += 1;
  }
  const store = new SqliteReadModelStore(':memory:');
  try {
    const projection = new ProfilesProjection();
    await store.transaction(async (tx) => {
      await projection.migrate(tx);
      if (used.length > 0) await projection.apply(used, tx);
    });
    const profile = await new ProfileQueries(store).getProfile(customerId, asOf);
    return { asOf: new Date(cutoff).toISOString(), profile, eventsUsed: used.length, eventsLater };
  } finally {
    await store.close();
  }
}
