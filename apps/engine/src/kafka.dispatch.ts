import { describeFailure, type CommandService } from '@clientele/application';
import type { CommandDispatch } from '@clientele/messaging';

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
      // an invalid command's message already names each field and what was expected
      const reason = failure.kind === 'invalid' ? failure.message : `${failure.code}: ${failure.message}`;
      return { ok: false, reason, retryable: failure.kind === 'conflict' && failure.code !== 'command_id_reused' };
    }
  };
}
