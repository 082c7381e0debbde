import type { DomainCommand } from './commands';
import { commandTarget, decideFor } from './command-routing';
import { defaultPolicy } from './policy';

const at = '2026-01-10T09:00:00Z';

describe('command routing', () => {
  it.each<[DomainCommand, string, string]>([
    [{ type: 'RecordPurchase', data: { customerId: 'c-1', orderId: 'o', lines: [], occurredAt: at } }, 'customer-c-1', 'customer'],
    [{ type: 'ConvertReferral', data: { customerId: 'c-2', refereeId: 'r', orderId: 'o', occurredAt: at } }, 'customer-c-2', 'customer'],
    [{ type: 'HireEmployee', data: { employeeId: 'e-1', name: 'Grace', occurredAt: at } }, 'employee-e-1', 'employee'],
    [{ type: 'RecordEmployeeLeft', data: { employeeId: 'e-1', occurredAt: at } }, 'employee-e-1', 'employee'],
    [{ type: 'RecordCampaignSpend', data: { campaignId: 'k', spendId: 's', channel: 'tv', amountMinor: 1, occurredAt: at } }, 'campaign-k', 'campaign'],
  ])('routes %j to %s', (command, streamId, decider) => {
    expect(commandTarget(command)).toEqual({ streamId, decider });
  });

  it('given stored events, folds them with the matching evolve and decides', () => {
    const stored = [
      { type: 'ProspectRegistered', data: { customerId: 'c-1', source: 'web', personal: {}, implicit: false, occurredAt: at } },
      { type: 'PurchaseRecorded', data: { customerId: 'c-1', orderId: 'o-1', lines: [], totalMinor: 0, costMinor: 0, occurredAt: at } },
      { type: 'CustomerConverted', data: { customerId: 'c-1', orderId: 'o-1', occurredAt: at } },
    ];
    const line = { sku: 's', category: 'c', quantity: 1, unitPriceMinor: 5, unitCostMinor: 2 };
    const command: DomainCommand = { type: 'RecordPurchase', data: { customerId: 'c-1', orderId: 'o-2', lines: [line], occurredAt: at } };
    expect(decideFor(command, stored, defaultPolicy).map((e) => e.type)).toEqual(['PurchaseRecorded', 'RepeatBuyerQualified']);
    expect(decideFor(command, stored, { ...defaultPolicy, repeatPurchaseThreshold: 3 }).map((e) => e.type)).toEqual(['PurchaseRecorded']);
    expect(decideFor({ ...command, data: { ...command.data, orderId: 'o-1' } }, stored)).toEqual([]);
    expect(decideFor({ type: 'RecordEmployeeLeft', data: { employeeId: 'e-1', occurredAt: at } }, [
      { type: 'EmployeeHired', data: { employeeId: 'e-1', name: 'Grace', occurredAt: at } },
    ])).toEqual([{ type: 'EmployeeLeft', data: { employeeId: 'e-1', occurredAt: at } }]);
  });
});

describe('command routing of a command that skipped validation', () => {
  it('given an unknown command type, then a clear error instead of no decision', () => {
    const bogus = { type: 'DeleteEverything', data: { customerId: 'c-1', occurredAt: at } } as unknown as DomainCommand;
    expect(() => decideFor(bogus, [])).toThrow('unknown command type "DeleteEverything"');
  });
});
