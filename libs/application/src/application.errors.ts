import type { FieldError } from '@clientele/contracts';

/**
 * Errors the application layer adds to the domain's own (`DomainError`). Like those, they carry
 * no transport: the HTTP filter, the Kafka dead-letter writer and the importer each map them.
 */

/** The command did not pass validation at the edge; nothing was decided or stored. */
export class CommandValidationError extends Error {
  constructor(readonly errors: FieldError[]) {
    super(`invalid command: ${errors.map((e) => `${e.field || '(body)'} must be ${e.expected}`).join('; ')}`);
    this.name = 'CommandValidationError';
  }
}

/**
 * A command id already names other events (another stream or another content): the caller reused an
 * idempotency key for a different command.
 */
export class CommandIdReusedError extends Error {
  readonly code = 'command_id_reused';
  /**
   * `how`: what differs from the command the id stored, when that is known; `field`: the envelope's
   * path to it (`data.lines`), or `type` when the id stored a command of another type
   */
  constructor(
    readonly commandId: string,
    how?: string,
    readonly field?: string,
  ) {
    super(`command id ${commandId} was already used for a different command${how ? `: ${how}` : ''}; send a new command under a new id`);
    this.name = 'CommandIdReusedError';
  }
}
