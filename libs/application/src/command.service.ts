import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  EXTERNAL_COMMAND_TYPES,
  validateCommandEnvelope,
  type ExternalCommandType,
  type ValidCommand,
} from '@clientele/contracts';
import { commandTarget, type CommandTarget, type DomainCommand } from '@clientele/domain';
import type { StoredEvent } from '@clientele/event-store';
import { BulkImporter, type BatchCommand, type StreamCommands } from './bulk-import';
import { CommandValidationError } from './application.errors';
import { ClienteleMetrics } from './clientele.metrics';
import { CLIENTELE_OPTIONS } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import { describeFailure, isTemporary, type CommandFailure, type CommandMeta, type CommandResult } from './command-result';
import { DomainCommandHandler } from './domain-command.handler';

// Compile-time proof that every validated wire command is a domain command of the same type: a
// mismatch turns `Mismatched` into the offending type's name and the assignment below fails.
type DataOf<U, T> = U extends { type: T; data: infer D } ? D : never;
type Mismatched = {
  [T in ExternalCommandType]: DataOf<ValidCommand, T> extends DataOf<DomainCommand, T> ? never : T;
}[ExternalCommandType];
const wireCommandsAreDomainCommands: [Mismatched] extends [never] ? true : Mismatched = true;
void wireCommandsAreDomainCommands;

export type BatchItemResult =
  /**
   * `stored`: for a duplicate the bulk path answered, the events the command stored the first time,
   * as read (personal data opened), so an importer can tell a re-run from a changed line under the
   * same command id; absent where the one-by-one path answered
   */
  | { index: number; ok: true; result: CommandResult; stored?: readonly StoredEvent[] }
  | { index: number; ok: false; commandId?: string; failure: CommandFailure };

export interface ImportOptions {
  /**
   * A command that fails for now (`isTemporary`: the store, a bug, a lasting conflict) stops its
   * stream: the stream's later commands of the batch are not run and are answered as failed for now
   * too, so a caller that tries those again later (the Kafka ingest) keeps each stream's order, and a
   * purchase is never refused because the registration before it hit a full disk. Without it, as in
   * `executeBatch`, every command is answered on its own.
   */
  holdStreamAfterTemporaryFailure?: boolean;
}

/** The answer of a command not run because an earlier command of its stream failed for now. */
const HELD: CommandFailure = {
  kind: 'internal',
  code: 'internal_error',
  message: 'not run: an earlier command of the same stream failed for now; it may be retried',
};

/**
 * The one entry for commands, whatever brought them (HTTP, Kafka ingest, file import, processes).
 * Validates envelopes, runs domain commands and counts outcomes.
 *
 * The handler is called directly rather than through the CommandBus: on the hot path the bus's
 * per-command dispatch (handler look-up by class metadata, its observable stream) cost more than
 * the decision. The handler stays registered with @nestjs/cqrs, so `CommandBus.execute(new
 * ExecuteDomainCommand(...))` from other modules reaches the very same instance and cache.
 */
@Injectable()
export class CommandService {
  private readonly logger = new Logger(CommandService.name);

  constructor(
    private readonly handler: DomainCommandHandler,
    private readonly importer: BulkImporter,
    private readonly metrics: ClienteleMetrics,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
  ) {}

  /**
   * Validates and executes one envelope. Rejects with CommandValidationError, DomainError or
   * CommandIdReusedError. Not an async function: it hands back executeDomain's own promise instead
   * of wrapping it in another (one promise and two turns of the microtask queue less per command).
   */
  execute(envelope: unknown): Promise<CommandResult> {
    let valid: ValidCommand;
    try {
      valid = this.validate(envelope);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.executeValid(valid);
  }

  executeValid(valid: ValidCommand): Promise<CommandResult> {
    return this.executeDomain(domainCommandOf(valid), metaOf(valid));
  }

  /** For commands the system issues itself (referral reactions, the churn sweep): no envelope to validate. */
  async executeDomain(command: DomainCommand, meta: CommandMeta): Promise<CommandResult> {
    const started = performance.now();
    try {
      const result = await this.handler.run(command, meta);
      this.metrics.countCommand(command.type, result.status);
      return result;
    } catch (error) {
      const failure = describeFailure(error);
      this.metrics.countCommand(command.type, failure.kind);
      if (failure.kind === 'internal') this.logger.error({ err: error, commandId: meta.commandId }, 'command failed');
      throw error;
    } finally {
      this.metrics.observeCommandSeconds(command.type, (performance.now() - started) / 1000);
    }
  }

  /**
   * Answers each item on its own (one bad item never sinks the others). Items run concurrently so
   * the store can commit many in one sync, but items on the same stream run one after another in
   * input order: "register, then buy" must not race.
   */
  async executeBatch(envelopes: readonly unknown[]): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(envelopes.length);
    const streams = this.validateAll(envelopes, results);
    await this.runOneByOne(
      streams.map((s) => s.items),
      results,
    );
    return results;
  }

  /**
   * The same answers as `executeBatch`, item for item, for large batches (imports, backfills):
   * each stream's commands are decided together on one look-up of its state and stored in one
   * append, and all streams' appends go to the store at once (see BulkImporter). Commands the bulk
   * path cannot settle with certainty take the `executeBatch` path after it.
   */
  async importBatch(envelopes: readonly unknown[], options: ImportOptions = {}): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(envelopes.length);
    await this.importGrouped(this.validateAll(envelopes, results), results, options);
    return results;
  }

  /** `importBatch` for commands already validated by `validateCommandEnvelope` (the CLI import validates each line as it reads it). */
  async importValid(commands: readonly ValidCommand[], options: ImportOptions = {}): Promise<BatchItemResult[]> {
    const results: BatchItemResult[] = new Array(commands.length);
    const streams = new Map<string, StreamCommands>();
    commands.forEach((command, index) => this.addTo(streams, index, command, results));
    await this.importGrouped([...streams.values()], results, options);
    return results;
  }

  private async importGrouped(streams: StreamCommands[], results: BatchItemResult[], options: ImportOptions): Promise<void> {
    const { settled, leftover } = await this.importer.run(streams);
    for (const outcome of settled) {
      const { index } = outcome;
      results[index] = outcome.ok
        ? { index, ok: true, result: outcome.result, ...(outcome.stored ? { stored: outcome.stored } : {}) }
        : { index, ok: false, commandId: outcome.commandId, failure: outcome.failure };
    }
    await this.runOneByOne(leftover, results, options.holdStreamAfterTemporaryFailure ?? false);
  }

  private validateAll(envelopes: readonly unknown[], results: BatchItemResult[]): StreamCommands[] {
    const streams = new Map<string, StreamCommands>();
    envelopes.forEach((envelope, index) => {
      let command: ValidCommand;
      try {
        command = this.validate(envelope);
      } catch (error) {
        results[index] = { index, ok: false, ...commandIdOf(envelope), failure: describeFailure(error) };
        return;
      }
      this.addTo(streams, index, command, results);
    });
    return [...streams.values()];
  }

  private addTo(streams: Map<string, StreamCommands>, index: number, command: ValidCommand, results: BatchItemResult[]): void {
    const domain = domainCommandOf(command);
    let target: CommandTarget;
    try {
      target = commandTarget(domain);
    } catch (error) {
      results[index] = { index, ok: false, commandId: command.commandId, failure: describeFailure(error) };
      return;
    }
    const item: BatchCommand = { index, command, domain, meta: metaOf(command) };
    const stream = streams.get(target.streamId);
    if (stream) stream.items.push(item);
    else streams.set(target.streamId, { streamId: target.streamId, decider: target.decider, items: [item] });
  }

  /**
   * Each queue's commands one after another; up to `batchConcurrency` queues at a time. With `hold`,
   * a temporary failure answers the rest of its queue (the same stream) as not run.
   */
  private async runOneByOne(queues: readonly BatchCommand[][], results: BatchItemResult[], hold = false): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let queue = queues[next++]; queue !== undefined; queue = queues[next++]) {
        for (let i = 0; i < queue.length; i++) {
          const { index, domain, meta } = queue[i]!;
          try {
            results[index] = { index, ok: true, result: await this.executeDomain(domain, meta) };
          } catch (error) {
            const failure = describeFailure(error);
            results[index] = { index, ok: false, commandId: meta.commandId, failure };
            if (hold && isTemporary(failure)) {
              for (const held of queue.slice(i + 1)) results[held.index] = { index: held.index, ok: false, commandId: held.meta.commandId, failure: HELD };
              break;
            }
          }
        }
      }
    };
    const workers = Math.max(1, Math.min(this.options.batchConcurrency, queues.length));
    await Promise.all(Array.from({ length: workers }, worker));
  }

  private validate(envelope: unknown): ValidCommand {
    const validation = validateCommandEnvelope(envelope);
    if (!validation.ok) {
      this.metrics.countCommand(typeOf(envelope), 'invalid');
      throw new CommandValidationError(validation.errors);
    }
    return validation.command;
  }
}

/** The domain command a validated wire command is. */
export function domainCommandOf(valid: ValidCommand): DomainCommand {
  // Sound by wireCommandsAreDomainCommands above; TypeScript cannot correlate the two unions itself.
  return { type: valid.type, data: valid.data } as DomainCommand;
}

export function metaOf(valid: ValidCommand): CommandMeta {
  return valid.correlationId !== undefined
    ? { commandId: valid.commandId, correlationId: valid.correlationId }
    : { commandId: valid.commandId };
}

// Label values must stay few: an unknown type is counted as 'unknown', not by what the caller sent.
function typeOf(envelope: unknown): string {
  const type = (envelope as { type?: unknown } | null)?.type;
  return typeof type === 'string' && (EXTERNAL_COMMAND_TYPES as readonly string[]).includes(type) ? type : 'unknown';
}

function commandIdOf(envelope: unknown): { commandId?: string } {
  const commandId = (envelope as { commandId?: unknown } | null)?.commandId;
  return typeof commandId === 'string' ? { commandId } : {};
}
