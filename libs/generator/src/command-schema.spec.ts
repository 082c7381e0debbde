import { CommandEnvelopeSchema, EXTERNAL_COMMAND_TYPES, formatIssues, validateAgainstSchema, validateCommandEnvelope } from '@clientele/contracts';
import { generateSyntheticCommands } from './synthetic-customers';

describe('the synthetic workload against the published command schema', () => {
  it('passes command.v1 wherever the engine accepts a command, for every command type', () => {
    const workload = generateSyntheticCommands({ customers: 300, seed: 'schemas' });
    // the generator erases nobody: one erasure, as an integrator would send it, stands in for it
    const erasure = { type: 'EraseCustomerPersonalData', commandId: 'erase-1', data: { customerId: 'syn-c000001', requestedBy: 'dpo', occurredAt: '2026-01-31T10:00:00Z' } };
    const accepted = [...workload, erasure].filter((command) => validateCommandEnvelope(command).ok);
    // nearly all of it is valid: a workload the engine refused would check the schema against nothing
    expect(accepted.length).toBeGreaterThan(workload.length * 0.99);
    expect([...new Set(accepted.map((c) => c.type))].sort()).toEqual([...EXTERNAL_COMMAND_TYPES].sort());
    const refusedBySchema = accepted
      .map((command) => ({ commandId: command.commandId, issues: formatIssues(validateAgainstSchema(CommandEnvelopeSchema, command)) }))
      .filter((r) => r.issues !== '');
    expect(refusedBySchema).toEqual([]);
  });
});
