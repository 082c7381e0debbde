import type { ConvertReferral, CreditReferral } from './commands';
import { EventTypes } from './events';
import type { CustomerConverted, ProspectRegistered } from './events';

/**
 * The referral process manager, pure: a referee's stored events become commands on the referrer's
 * stream. The app layer runs it from the durable subscription (so a crash replays, never loses a
 * reaction) and sends each command with `referralCommandId(eventId)`, so a replayed reaction is the
 * same command and the referrer's stream records it once.
 */

/** The event types this process reacts to; the subscription can filter on them. */
export const ReferralReactionTypes: ReadonlySet<string> = new Set([
  EventTypes.ProspectRegistered,
  EventTypes.CustomerConverted,
]);

/**
 * Who referred `customerId`, if anyone. A conversion event does not name the referrer; the app
 * answers from the referee's own stream (fold it with `foldCustomer` and read `referredBy`, or keep
 * a referee → referrer index from ProspectRegistered events).
 */
export type ReferredByLookup = (customerId: string) => string | undefined;

export interface ReactionSource {
  type: string;
  data: unknown;
  streamId?: string;
}

export type ReferralCommand = CreditReferral | ConvertReferral;

/** The commands a stored event asks for. Events of other types ask for nothing. */
export function referralReactions(event: ReactionSource, referredByOf: ReferredByLookup = () => undefined): ReferralCommand[] {
  switch (event.type) {
    case EventTypes.ProspectRegistered: {
      const { customerId, referredBy, occurredAt } = (event as ProspectRegistered).data;
      if (referredBy === undefined || referredBy === customerId) return [];
      return [{ type: 'CreditReferral', data: { customerId: referredBy, refereeId: customerId, occurredAt } }];
    }
    case EventTypes.CustomerConverted: {
      const { customerId, orderId, occurredAt } = (event as CustomerConverted).data;
      const referrer = referredByOf(customerId);
      if (referrer === undefined || referrer === customerId) return [];
      return [{ type: 'ConvertReferral', data: { customerId: referrer, refereeId: customerId, orderId, occurredAt } }];
    }
    default:
      return [];
  }
}

/** True when `referralReactions` needs `referredByOf` for this event, so the app reads the referee's stream only then. */
export function needsReferrerLookup(event: ReactionSource): boolean {
  return event.type === EventTypes.CustomerConverted;
}

/** Each causing event yields at most one reaction, so its id makes the reaction's idempotency key. */
export function referralCommandId(causingEventId: string): string {
  return `referral:${causingEventId}`;
}
