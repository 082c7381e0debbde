import type { CommandEnvelope } from '@clientele/contracts';
import { DomainError, DomainErrorCodes } from '@clientele/domain';
import { CommandIdReusedError, CommandValidationError } from './application.errors';
import { describeFailure } from './command-result';
import type { BatchItemResult, CommandService, ImportOptions } from './command.service';
import { ingestBatchDispatch } from './ingest-dispatch';

describe('the Kafka ingest batch dispatch over the bulk path', () => {
  it('answers each command in order: accepted, dead-lettered with the reason, or retried when it failed for now, holding its stream', async () => {
    const outcomes: unknown[] = [
      { status: 'applied' },
      new CommandValidationError([{ field: 'data.orderId', expected: 'a non-empty string' }]),
      new DomainError(DomainErrorCodes.SelfReferral, 'a customer cannot refer themselves', 'refereeId'),
      new CommandIdReusedError('cmd-4'),
      new DomainError(DomainErrorCodes.ConcurrencyConflict, 'stream moved on'),
      new Error('disk I/O error'),
    ];
    const asked: ImportOptions[] = [];
    const service = {
      importBatch: async (envelopes: readonly unknown[], options: ImportOptions = {}): Promise<BatchItemResult[]> => {
        asked.push(options);
        return envelopes.map((_, index): BatchItemResult => {
          const outcome = outcomes[index];
          return outcome instanceof Error ? { index, ok: false, failure: describeFailure(outcome) } : { index, ok: true, result: outcome as never };
        });
      },
    } as unknown as Pick<CommandService, 'importBatch'>;
    const envelopes = outcomes.map((_, i): CommandEnvelope => ({ type: 'RecordPurchase', commandId: `cmd-${i + 1}`, data: {} }));

    const results = await ingestBatchDispatch(service)(envelopes);

    // each refusal carries its code, and the fields at fault where the application names them, for the dead letter
    expect(results).toEqual([
      { ok: true },
      {
        ok: false,
        retryable: false,
        reason: 'invalid command: data.orderId must be a non-empty string',
        code: 'invalid_command',
        errors: [{ field: 'data.orderId', expected: 'a non-empty string' }],
      },
      { ok: false, retryable: false, reason: 'self_referral: a customer cannot refer themselves', code: 'self_referral', field: 'data.refereeId' },
      expect.objectContaining({ ok: false, retryable: false, code: 'command_id_reused' }),
      expect.objectContaining({ ok: false, retryable: true }),
      expect.objectContaining({ ok: false, retryable: true }),
    ]);
    expect(asked).toEqual([{ holdStreamAfterTemporaryFailure: true }]);
  });
});
