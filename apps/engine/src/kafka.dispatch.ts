import { describeFailure, isTemporary, type CommandFailure, type CommandService } from '@clientele/application';
import type { CommandBatchDispatch, CommandDispatch, DispatchResult } from '@clientele/messaging';

/**
 * How the Kafka ingest hands a command to the application: a command the application refuses
 * (invalid, against a rule, a reused commandId) goes to the dead-letter topic with the reason; a
 * concurrency conflict that outlasted the handler's own retries is tried again; anything else
 * (store down, a bug) throws, so the ingest holds the record and retries it.
 */
export function kafkaDispatch(commands: CommandService): CommandDispatch {
  return async (envelope) => {
    try {
      await commands.execute(envelope);
      return { ok: true };
    } catch (error) {
      const failure = describeFailure(error);
      if (failure.kind === 'internal') throw error;
      return refusal(failure);
    }
  };
}

/**
 * The same answers for a whole fetched batch, through the bulk path (`importBatch`: one look-up and
 * one append per customer). A command that failed for now holds its customer's later commands, so
 * the ingest retries them in their order.
 */
export function kafkaBatchDispatch(commands: CommandService): CommandBatchDispatch {
  return async (envelopes) => {
    const results = await commands.importBatch(envelopes, { holdStreamAfterTemporaryFailure: true });
    return results.map((item) => (item.ok ? { ok: true } : refusal(item.failure)));
  };
}

function refusal(failure: CommandFailure): DispatchResult {
  // an invalid command's message already names each field and what was expected
  const reason = failure.kind === 'invalid' ? failure.message : `${failure.code}: ${failure.message}`;
  return { ok: false, reason, retryable: isTemporary(failure) };
}
