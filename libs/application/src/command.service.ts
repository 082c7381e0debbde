import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  EXTERNAL_COMMAND_TYPES,
  validateCommandEnvelope,
  type ExternalCommandType,
  type ValidCommand,
} from '@clientele/contracts';
import { commandTarget, type DomainCommand } from '@clientele/domain';
import { CommandValidationError } from './application.errors';
import { ClienteleMetrics } from './clientele.metrics';
import { CLIENTELE_OPTIONS } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import { describeFailure, type CommandFailure, type CommandMeta, type CommandResult } from './command-result';
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
  | { index: number; ok: true; result: CommandResult }
  | { index: number; ok: false; commandId?: string; failure: CommandFailure };

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
    private readonly metrics: ClienteleMetrics,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
  ) {}

  /** Validates and executes one envelope. Throws CommandValidationError, DomainError or CommandIdReusedError. */
  async execute(envelope: unknown): Promise<CommandResult> {
    const valid = this.validate(envelope);
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
    const byStream = new Map<string, { index: number; command: ValidCommand }[]>();
    envelopes.forEach((envelope, index) => {
      try {
        const command = this.validate(envelope);
        const { streamId } = commandTarget(command as DomainCommand);
        const queue = byStream.get(streamId);
        if (queue) queue.push({ index, command });
        else byStream.set(streamId, [{ index, command }]);
      } catch (error) {
        results[index] = { index, ok: false, ...commandIdOf(envelope), failure: describeFailure(error) };
      }
    });

    const queues = [...byStream.values()];
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let queue = queues[next++]; queue !== undefined; queue = queues[next++]) {
        for (const { index, command } of queue) {
          try {
            results[index] = { index, ok: true, result: await this.executeValid(command) };
          } catch (error) {
            results[index] = { index, ok: false, commandId: command.commandId, failure: describeFailure(error) };
          }
        }
      }
    };
    const workers = Math.max(1, Math.min(this.options.batchConcurrency, queues.length));
    await Promise.all(Array.from({ length: workers }, worker));
    return results;
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
