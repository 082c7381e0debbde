import type { Projection } from './read-model-store';
import { ProfilesProjection } from './profiles.projection';
import { ReferralsProjection } from './referrals.projection';
import { StatisticsProjection } from './statistics.projection';

/**
 * Every read model Clientele keeps, in the order the projector applies them; replay and audit use
 * the same list. `residentLimit` bounds how many customers each rebuild instance keeps in memory
 * (each projection's default, 500,000, when not given).
 */
export function allProjections(options: { residentLimit?: number } = {}): Projection[] {
  const limit = options.residentLimit !== undefined ? { residentLimit: options.residentLimit } : {};
  return [new ProfilesProjection(limit), new ReferralsProjection(limit), new StatisticsProjection(limit)];
}
