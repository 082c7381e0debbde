import type { Projection } from './read-model-store';
import { ProfilesProjection } from './profiles.projection';
import { ReferralsProjection } from './referrals.projection';
import { StatisticsProjection } from './statistics.projection';

/** Every read model Clientele keeps, in the order the projector applies them; replay and audit use the same list. */
export function allProjections(): Projection[] {
  return [new ProfilesProjection(), new ReferralsProjection(), new StatisticsProjection()];
}
