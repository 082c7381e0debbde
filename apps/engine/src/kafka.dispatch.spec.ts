import { CommandIdReusedError, CommandValidationError, type CommandService } from '@clientele/application';
import { DomainError, DomainErrorCodes } from '@clientele/domain';
import { kafkaDispatch } from './kafka.dispatch';

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
