/**
 * The seam between the CLI and the application layer. The CLI only needs to hand over batches of
 * validated envelopes and learn, per item, whether each was stored; `CommandService` satisfies it
 * through a one-function adapter (see `engine-wiring.ts`).
 */
import type { CommandEnvelope, FieldError } from '@clientele/contracts';

export type { CommandEnvelope, FieldError };

export type EnvelopeValidation = { ok: true; command: CommandEnvelope } | { ok: false; errors: FieldError[] };

/** `validateCommandEnvelope` from `@clientele/contracts` fits this shape. */
export type EnvelopeValidator = (input: unknown) => EnvelopeValidation;

/**
 * Per-item answer of a batch: `applied` (events stored now), `duplicate` (this command id was stored
 * before: a re-run), `no_op` (accepted, nothing to record), or refused. A command sent under an id
 * that stored another command (a line changed since the first run) is refused with
 * `command_id_reused`, naming the field that differs.
 */
export type ItemResult =
  | { ok: true; commandId: string; status: 'applied' | 'duplicate' | 'no_op'; eventCount: number }
  | { ok: false; commandId: string; code: string; message: string; field?: string };

export interface CommandSink {
  /** Answers one result per envelope, in the same order. Each envelope is the `command` validateCommandEnvelope answered for its line. */
  executeBatch(envelopes: readonly CommandEnvelope[]): Promise<ItemResult[]>;
}
