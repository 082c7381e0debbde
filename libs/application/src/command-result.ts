import type { FieldError } from '@clientele/contracts';
import { DomainError, DomainErrorCodes } from '@clientele/domain';
import { CommandIdReusedError, CommandValidationError } from './application.errors';

/** `applied`: events stored now; `duplicate`: this command id was stored before; `no_op`: nothing to record. */
export type CommandStatus = 'applied' | 'duplicate' | 'no_op';

export interface CommandResult {
  commandId: string;
  streamId: string;
  status: CommandStatus;
  events: { id: string; type: string; revision: number; position: number }[];
}

/** Who asked, in which conversation, because of what. Event metadata is built from it. */
export interface CommandMeta {
  commandId: string;
  /** defaults to the command id */
  correlationId?: string;
  /** for commands issued by a process (a referral reaction): the id of the event that caused it */
  causationId?: string;
}

/**
 * A failed command described without any transport, so each edge (HTTP status, Kafka dead letter,
 * import report, batch item) maps the same few kinds its own way.
 */
export type CommandFailure =
  | { kind: 'invalid'; code: 'invalid_command'; message: string; errors: FieldError[] }
  | { kind: 'rule'; code: string; message: string; field?: string }
  | { kind: 'conflict'; code: string; message: string; field?: string }
  | { kind: 'internal'; code: 'internal_error'; message: string };

export function describeFailure(error: unknown): CommandFailure {
  if (error instanceof CommandValidationError) {
    return { kind: 'invalid', code: 'invalid_command', message: error.message, errors: error.errors };
  }
  if (error instanceof CommandIdReusedError) {
    return { kind: 'conflict', code: error.code, message: error.message, ...(error.field !== undefined ? { field: error.field } : {}) };
  }
  if (error instanceof DomainError) {
    if (error.code === DomainErrorCodes.ConcurrencyConflict) {
      return { kind: 'conflict', code: error.code, message: error.message };
    }
    // named as a 400 names it: the path in the envelope (the domain knows only the data)
    return { kind: 'rule', code: error.code, message: error.message, ...(error.field ? { field: `data.${error.field}` } : {}) };
  }
  // Internal details stay in the logs; callers get a stable sentence.
  return { kind: 'internal', code: 'internal_error', message: 'the command could not be processed; it may be retried' };
}

/**
 * A failure that is no verdict on the command: the store failed, a bug, or concurrent changes outlasted
 * the handler's retries. The same command may succeed later, so a source that can wait (the Kafka
 * ingest) tries it again instead of giving up on it; a reused command id is a verdict.
 */
export function isTemporary(failure: CommandFailure): boolean {
  return failure.kind === 'internal' || (failure.kind === 'conflict' && failure.code === DomainErrorCodes.ConcurrencyConflict);
}
