import type { CustomerCommand } from './commands';
import { decideAndEvolveCustomer, decideCustomer, evolveCustomer, foldCustomer, initialCustomerState, type CustomerState } from './customer.decider';
import { DomainError } from './errors';
import type { CustomerEvent, CustomerStage } from './events';
import { defaultPolicy } from './policy';

// A seeded generator keeps every run identical: the property is checked over the same 200 histories each time.
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

const rank: Record<Exclude<CustomerStage, 'churned'>, number> = { prospect: 0, customer: 1, repeat_buyer: 2, advocate: 3 };

function randomCommands(random: () => number, count: number): CustomerCommand[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const customerId = 'c-1';
  let day = 0;
  const commands: CustomerCommand[] = [];
  for (let i = 0; i < count; i++) {
    day += Math.floor(random() * 60);
    const occurredAt = new Date(Date.UTC(2025, 0, 1) + day * 86_400_000).toISOString();
    const ref = pick(['r-1', 'r-2', 'r-3']);
    commands.push(
      pick<CustomerCommand>([
        { type: 'RegisterProspect', data: { customerId, source: pick(['web', 'store']), occurredAt } },
        {
          type: 'RecordPurchase',
          data: {
            customerId,
            orderId: pick(['o-1', 'o-2', 'o-3', 'o-4', 'o-5']),
            lines: [{ sku: 's', category: 'c', quantity: 1 + Math.floor(random() * 3), unitPriceMinor: 999, unitCostMinor: 500 }],
            occurredAt,
          },
        },
        { type: 'RecordFeedback', data: { customerId, feedbackId: pick(['f-1', 'f-2']), score: Math.floor(random() * 11), kind: 'praise', occurredAt } },
        { type: 'CreditReferral', data: { customerId, refereeId: ref, occurredAt } },
        { type: 'ConvertReferral', data: { customerId, refereeId: ref, orderId: `o-${ref}`, occurredAt } },
        { type: 'MarkCustomerLost', data: { customerId, reason: 'gone', occurredAt } },
        { type: 'ChurnIfInactive', data: { customerId, occurredAt } },
        { type: 'EraseCustomerPersonalData', data: { customerId, occurredAt } },
        { type: 'RecordTouchpoint', data: { customerId, channel: 'web', direction: 'inbound', kind: 'visit', occurredAt } },
      ]),
    );
  }
  return commands;
}

function run(commands: CustomerCommand[]): { events: CustomerEvent[]; state: CustomerState } {
  const events: CustomerEvent[] = [];
  let state = initialCustomerState();
  for (const command of commands) {
    try {
      for (const event of decideCustomer(command, state, defaultPolicy)) {
        events.push(event);
        state = evolveCustomer(state, event);
      }
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
    }
  }
  return { events, state };
}

describe('customer decider over generated histories', () => {
  const histories = Array.from({ length: 200 }, (_, seed) => randomCommands(prng(seed + 1), 40));

  it('given the generator, then its histories reach every stage (so the properties below mean something)', () => {
    const reached = new Set(histories.flatMap((commands) => run(commands).events.flatMap(stageEntered)));
    expect([...reached].sort()).toEqual(['advocate', 'churned', 'customer', 'prospect', 'repeat_buyer']);
    const reactivations = histories.filter((c) => run(c).events.some((e) => e.type === 'CustomerReactivated'));
    expect(reactivations.length).toBeGreaterThan(10);
  });

  it('given the events decide produced, when folded again, then the state is deep-equal', () => {
    for (const commands of histories) {
      const { events, state } = run(commands);
      expect(foldCustomer(events)).toEqual(state);
      expect(foldCustomer(structuredClone(events))).toEqual(foldCustomer(events));
    }
  });

  it('given any state of any history, when a command is decided with its state, then the events are those decide gives and the state is theirs folded', () => {
    let compared = 0;
    for (const commands of histories) {
      let state = initialCustomerState();
      for (const command of commands) {
        // the generated command, and one each of the kinds the generator does not send
        const customerId = 'c-1';
        const { occurredAt } = command.data;
        const tried: CustomerCommand[] = [
          command,
          { type: 'ThankCustomer', data: { customerId, gesture: 'coupon', reason: 'loyalty', occurredAt } },
          { type: 'UpdateProfile', data: { customerId, preferences: { channel: 'sms' }, occurredAt } },
          { type: 'RegisterProspect', data: { customerId, source: 'web', referredBy: 'r-9', occurredAt } },
        ];
        for (const each of tried) {
          let expected: CustomerEvent[] | DomainError;
          try {
            expected = decideCustomer(each, state, defaultPolicy);
          } catch (error) {
            expected = error as DomainError;
          }
          if (expected instanceof DomainError) {
            expect(() => decideAndEvolveCustomer(each, state, defaultPolicy)).toThrow(expected.message);
            continue;
          }
          const decision = decideAndEvolveCustomer(each, state, defaultPolicy);
          expect(decision.events).toEqual(expected);
          expect(decision.state).toEqual(foldCustomer(expected, state));
          compared += 1;
        }
        try {
          state = decideAndEvolveCustomer(command, state, defaultPolicy).state;
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
        }
      }
    }
    expect(compared).toBeGreaterThan(10_000);
  });

  it('given any history, stages move forward only, except through churn and win-back', () => {
    for (const commands of histories) {
      const { events } = run(commands);
      let previous: CustomerStage | undefined;
      for (const stage of events.flatMap(stageEntered)) {
        if (previous !== undefined && previous !== 'churned' && stage !== 'churned') {
          expect(rank[stage as keyof typeof rank]).toBeGreaterThan(rank[previous as keyof typeof rank]);
        }
        if (previous === 'churned') expect(stage).toBe('customer');
        previous = stage;
      }
    }
  });

  it('given replayed order ids, then each order is recorded once', () => {
    for (const commands of histories) {
      const orderIds = run(commands).events.flatMap((e) => (e.type === 'PurchaseRecorded' ? [e.data.orderId] : []));
      expect(new Set(orderIds).size).toBe(orderIds.length);
    }
  });

  it('given a history decided once, when every command is sent again, then nothing new happens', () => {
    for (const commands of histories.slice(0, 50)) {
      const first = run(commands);
      const idempotent = commands.filter((c) => ['RecordPurchase', 'RecordFeedback', 'CreditReferral', 'ConvertReferral', 'EraseCustomerPersonalData'].includes(c.type));
      const again = idempotent.flatMap((command) => {
        try {
          return decideCustomer(command, first.state, defaultPolicy);
        } catch {
          return [];
        }
      });
      expect(again).toEqual([]);
    }
  });
});

function stageEntered(event: CustomerEvent): CustomerStage[] {
  switch (event.type) {
    case 'ProspectRegistered':
      return ['prospect'];
    case 'CustomerConverted':
    case 'CustomerReactivated':
      return ['customer'];
    case 'RepeatBuyerQualified':
      return ['repeat_buyer'];
    case 'AdvocateRecognized':
      return ['advocate'];
    case 'CustomerChurned':
      return ['churned'];
    default:
      return [];
  }
}
