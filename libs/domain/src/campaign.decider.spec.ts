import { deciderSpec } from '@clientele/testing';
import type { CampaignCommand } from './commands';
import { campaignDecider, foldCampaign, type CampaignState } from './campaign.decider';
import type { CampaignEvent } from './events';

const spec = deciderSpec<CampaignState, CampaignCommand, CampaignEvent>(campaignDecider);
const T0 = '2026-03-01T00:00:00Z';

const spend = (spendId: string, amountMinor: number): CampaignCommand => ({
  type: 'RecordCampaignSpend',
  data: { campaignId: 'spring', spendId, channel: 'email', amountMinor, occurredAt: T0 },
});
const spent = (spendId: string, amountMinor: number): CampaignEvent => ({
  type: 'CampaignSpendRecorded',
  data: { campaignId: 'spring', spendId, channel: 'email', amountMinor, occurredAt: T0 },
});

describe('campaign decider', () => {
  it('records spend once per spend id', () => {
    spec.given([]).when(spend('s-1', 150_000)).then([spent('s-1', 150_000)]);
    spec.given([spent('s-1', 150_000)]).when(spend('s-2', 0)).then([spent('s-2', 0)]);
    spec.given([spent('s-1', 150_000)]).when(spend('s-1', 150_000)).thenNothing();
  });
  it.each([-1, 0.5, Number.NaN])('refuses amount %p', (amount) => {
    spec.given([]).when(spend('s-1', amount)).thenThrows('invalid_amount', 'amountMinor');
  });
  it('sums spend exactly', () => {
    expect(foldCampaign([spent('s-1', 10), spent('s-2', 20), spent('s-1', 10)]).spentMinor).toBe(30);
  });
});
