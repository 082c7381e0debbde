import type { CampaignCommand } from './commands';
import type { CampaignEvent } from './events';
import { assertMinorUnits, businessTime, withoutUndefined } from './guards';

/** Promotion spend over the stream `campaign-{id}`; each spend id is recorded once. */

export interface CampaignState {
  spendIds: ReadonlySet<string>;
  spentMinor: number;
}

export const initialCampaignState = (): CampaignState => ({ spendIds: new Set(), spentMinor: 0 });

export function evolveCampaign(state: CampaignState, event: CampaignEvent): CampaignState {
  switch (event.type) {
    case 'CampaignSpendRecorded':
      if (state.spendIds.has(event.data.spendId)) return state;
      return {
        spendIds: new Set([...state.spendIds, event.data.spendId]),
        spentMinor: state.spentMinor + event.data.amountMinor,
      };
    default:
      return state;
  }
}

export function foldCampaign(events: Iterable<CampaignEvent>, state: CampaignState = initialCampaignState()): CampaignState {
  let current = state;
  for (const event of events) current = evolveCampaign(current, event);
  return current;
}

export function decideCampaign(command: CampaignCommand, state: CampaignState): CampaignEvent[] {
  businessTime(command.data.occurredAt);
  assertMinorUnits(command.data.amountMinor, 'amountMinor');
  if (state.spendIds.has(command.data.spendId)) return [];
  return [{ type: 'CampaignSpendRecorded', data: withoutUndefined(command.data) }];
}

export const campaignDecider = {
  initialState: initialCampaignState,
  evolve: evolveCampaign,
  decide: decideCampaign,
} as const;
