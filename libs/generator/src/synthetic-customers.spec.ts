import { validateCommandEnvelope } from '@clientele/contracts';

import { generateSyntheticCommands } from './synthetic-customers';

type Data = Record<string, unknown> & { occurredAt: string };
const dataOf = (envelope: { data: unknown }): Data => envelope.data as Data;

describe('synthetic customer workload', () => {
  const options = { customers: 400, seed: 'spec-7' };
  const workload = generateSyntheticCommands(options);

  it('given the same seed, when generated twice, then the output is identical byte for byte; another seed differs', () => {
    const again = generateSyntheticCommands(options);
    expect(JSON.stringify(again)).toBe(JSON.stringify(workload));
    expect(JSON.stringify(generateSyntheticCommands({ ...options, seed: 'spec-8' }))).not.toBe(JSON.stringify(workload));
  });

  it('when validated at the edge, then every envelope passes and command ids are unique', () => {
    const refused = workload.map(validateCommandEnvelope).filter((v) => !v.ok);
    expect(refused).toEqual([]);
    expect(new Set(workload.map((e) => e.commandId)).size).toBe(workload.length);
  });

  it('then it holds every kind of fact the brief of a realistic workload needs', () => {
    const types = new Set(workload.map((e) => e.type));
    for (const type of ['RegisterProspect', 'RecordPurchase', 'RecordFeedback', 'ThankCustomer', 'HireEmployee', 'RecordEmployeeLeft', 'RecordCampaignSpend', 'ChurnIfInactive', 'RecordTouchpoint']) {
      expect(types).toContain(type);
    }
    const registrations = workload.filter((e) => e.type === 'RegisterProspect').map(dataOf);
    expect(registrations).toHaveLength(options.customers);
    expect(registrations.some((d) => d.referredBy !== undefined)).toBe(true);
    expect(workload.some((e) => e.type === 'RecordFeedback' && dataOf(e).kind === 'complaint' && dataOf(e).employeeId !== undefined)).toBe(true);
  });

  it('then business time never goes backwards and stays in the range', () => {
    const times = workload.map((e) => dataOf(e).occurredAt);
    expect([...times].sort()).toEqual(times);
    expect(times[0]! >= '2024-01-01').toBe(true);
    expect(times[times.length - 1]! < '2026-01-01').toBe(true);
  });

  it('then causes come first: registration before a customer\'s other commands, referrer before referee, hire before feedback naming the employee and before leaving', () => {
    const registeredAt = new Map<string, number>();
    const hiredAt = new Map<string, number>();
    const leftAt = new Map<string, number>();
    const violations: string[] = [];
    workload.forEach((envelope, index) => {
      const data = dataOf(envelope);
      const customerId = data.customerId as string | undefined;
      if (envelope.type === 'RegisterProspect') {
        const referrer = data.referredBy as string | undefined;
        if (referrer !== undefined && !registeredAt.has(referrer)) violations.push(`${index}: referrer ${referrer} unknown`);
        registeredAt.set(customerId as string, index);
      } else if (customerId !== undefined && !registeredAt.has(customerId)) {
        violations.push(`${index}: ${envelope.type} before ${customerId} registered`);
      }
      if (envelope.type === 'HireEmployee') hiredAt.set(data.employeeId as string, index);
      if (envelope.type === 'RecordEmployeeLeft') {
        if (!hiredAt.has(data.employeeId as string)) violations.push(`${index}: leaves before hired`);
        leftAt.set(data.employeeId as string, index);
      }
      const employeeId = envelope.type === 'RecordFeedback' ? (data.employeeId as string | undefined) : undefined;
      if (employeeId !== undefined && (!hiredAt.has(employeeId) || leftAt.has(employeeId))) {
        violations.push(`${index}: feedback names ${employeeId} who is not employed`);
      }
    });
    expect(violations).toEqual([]);
  });

  it('then spend is Pareto-shaped: the top 20% of customers hold well over 20% of revenue, and many buy again', () => {
    const revenue = new Map<string, number>();
    const orders = new Map<string, number>();
    for (const envelope of workload.filter((e) => e.type === 'RecordPurchase')) {
      const data = dataOf(envelope) as Data & { customerId: string; lines: { quantity: number; unitPriceMinor: number }[] };
      const total = data.lines.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0);
      revenue.set(data.customerId, (revenue.get(data.customerId) ?? 0) + total);
      orders.set(data.customerId, (orders.get(data.customerId) ?? 0) + 1);
    }
    const sorted = [...revenue.values()].sort((a, b) => b - a);
    const all = sorted.reduce((a, b) => a + b, 0);
    const top = sorted.slice(0, Math.ceil(options.customers * 0.2)).reduce((a, b) => a + b, 0);
    expect(top / all).toBeGreaterThan(0.5);
    const repeaters = [...orders.values()].filter((n) => n >= 2).length;
    expect(repeaters / orders.size).toBeGreaterThan(0.3);
    expect(orders.size).toBeLessThan(options.customers); // some prospects never buy
  });

  it('then inactivity is swept and some churned customers buy again (win-back)', () => {
    const sweptAt = new Map<string, string>();
    let winBacks = 0;
    for (const envelope of workload) {
      const data = dataOf(envelope) as Data & { customerId?: string };
      if (envelope.type === 'ChurnIfInactive') sweptAt.set(data.customerId as string, data.occurredAt);
      if (envelope.type === 'RecordPurchase' && sweptAt.has(data.customerId as string)) {
        winBacks += 1;
        sweptAt.delete(data.customerId as string);
      }
    }
    expect(sweptAt.size).toBeGreaterThan(0);
    expect(winBacks).toBeGreaterThan(0);
  });

  it('given nonsense options, then it names the option', () => {
    expect(() => generateSyntheticCommands({ customers: 0, seed: 'x' })).toThrow(/^customers: expected a positive integer/);
    expect(() => generateSyntheticCommands({ customers: 5, seed: 'x', from: '2024-13-01' })).toThrow(/^from: expected an ISO date/);
  });
});
