import { isTemporary, type CommandFailure } from './command-result';
import type { CommandService } from './command.service';

/** One command's answer to the Kafka ingest (the shape of `DispatchResult` in @clientele/messaging). */
export type IngestAnswer =
  | { ok: true }
  | { ok: false; reason: string; retryable: boolean; code: string; errors?: { field: string; expected: string }[]; field?: string };

/**
 * How the Kafka ingest hands a fetched batch to the application: through the bulk path
 * (`importBatch`: one look-up and one append per customer). A command the application refuses
 * (invalid, against a rule, a reused commandId) is answered with the reason and goes to the
 * dead-letter topic; one that failed for now (the store, a lasting conflict) is answered retryable
 * and holds its customer's later commands, so the ingest retries them in their order.
 */
export function ingestBatchDispatch(commands: Pick<CommandService, 'importBatch'>): (envelopes: readonly unknown[]) => Promise<IngestAnswer[]> {
  return async (envelopes) => {
    const results = await commands.importBatch(envelopes, { holdStreamAfterTemporaryFailure: true });
    return results.map((item) => (item.ok ? { ok: true } : refusal(item.failure)));
  };
}

function refusal(failure: CommandFailure): IngestAnswer {
  // an invalid command's message already names each field and what was expected
  const reason = failure.kind === 'invalid' ? failure.message : `${failure.code}: ${failure.message}`;
  return {
    ok: false,
    reason,
    retryable: isTemporary(failure),
    code: failure.code,
    ...(failure.kind === 'invalid' ? { errors: failure.errors.map(({ field, expected }) => ({ field, expected })) } : {}),
    ...((failure.kind === 'rule' || failure.kind === 'conflict') && failure.field !== undefined ? { field: failure.field } : {}),
  };
}
