import { CommandIdReusedError, CommandValidationError, describeFailure, type BatchItemResult, type CommandService, type ImportOptions } from '@clientele/application';
import type { CommandEnvelope } from '@clientele/contracts';
import { DomainError, DomainErrorCodes } from '@clientele/domain';
import { kafkaBatchDispatch, kafkaDispatch } from './kafka.dispatch';

/** a CommandService whose execute answers with `outcome` (thrown when it is an error) */
const serviceAnswering = (outcome: unknown): CommandService =>
  ({
    execute: async () => {
      if (outcome instanceof Error) throw outcome;
      return outcome;
    },
  }) as unknown as CommandService;

const envelope = { type: 'RecordPurchase', commandId: 'cmd-1', data: {} };

describe('the Kafka ingest dispatch over the CommandService', () => {
  it('accepts an executed command', async () => {
    await expect(kafkaDispatch(serviceAnswering({ status: 'accepted' }))(envelope)).resolves.toEqual({ ok: true });
  });

  it('dead-letters refused commands with the reason, naming the field when it is invalid', async () => {
    const invalid = new CommandValidationError([{ field: 'data.orderId', expected: 'a non-empty string' }]);
    await expect(kafkaDispatch(serviceAnswering(invalid))(envelope)).resolves.toEqual({
      ok: false, retryable: false, reason: 'invalid command: data.orderId must be a non-empty string',
    });
    const rule = new DomainError(DomainErrorCodes.SelfReferral, 'a customer cannot refer themselves', 'refereeId');
    await expect(kafkaDispatch(serviceAnswering(rule))(envelope)).resolves.toEqual({
      ok: false, retryable: false, reason: 'self_referral: a customer cannot refer themselves',
    });
    await expect(kafkaDispatch(serviceAnswering(new CommandIdReusedError('cmd-1')))(envelope)).resolves.toMatchObject({ ok: false, retryable: false });
  });

  it('retries a lasting concurrency conflict, and lets an internal failure throw so the ingest holds the record', async () => {
    const conflict = new DomainError(DomainErrorCodes.ConcurrencyConflict, 'stream moved on');
    await expect(kafkaDispatch(serviceAnswering(conflict))(envelope)).resolves.toMatchObject({ ok: false, retryable: true });
    await expect(kafkaDispatch(serviceAnswering(new Error('disk I/O error')))(envelope)).rejects.toThrow('disk I/O error');
  });
});

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
    } as unknown as CommandService;
    const envelopes = outcomes.map((_, i): CommandEnvelope => ({ type: 'RecordPurchase', commandId: `cmd-${i + 1}`, data: {} }));

    const results = await kafkaBatchDispatch(service)(envelopes);

    expect(results).toEqual([
      { ok: true },
      { ok: false, retryable: false, reason: 'invalid command: data.orderId must be a non-empty string' },
      { ok: false, retryable: false, reason: 'self_referral: a customer cannot refer themselves' },
      expect.objectContaining({ ok: false, retryable: false }),
      expect.objectContaining({ ok: false, retryable: true }),
      expect.objectContaining({ ok: false, retryable: true }),
    ]);
    expect(asked).toEqual([{ holdStreamAfterTemporaryFailure: true }]);
  });
});
