import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import {
  DomainError,
  DomainErrorCodes,
  LifecycleTransitionTypes,
  commandTarget,
  decideFor,
  type DomainCommand,
  type DomainEvent,
  type LifecyclePolicy,
} from '@clientele/domain';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type EventStore,
  type JsonObject,
  type NewEvent,
  type StoredEvent,
} from '@clientele/event-store';
import { CommandIdReusedError } from './application.errors';
import { ClienteleMetrics } from './clientele.metrics';
import { CLIENTELE_OPTIONS, EVENT_STORE, LIFECYCLE_POLICY } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import type { CommandMeta, CommandResult } from './command-result';
import { eventIdFor } from './event-ids';

/** Decide one domain command on its stream and store what it decides. */
export class ExecuteDomainCommand extends Command<CommandResult> {
  constructor(
    readonly command: DomainCommand,
    readonly meta: CommandMeta,
  ) {
    super();
  }
}

/**
 * Load → decide (pure) → append at the revision that was decided on. Holds no business rule: the
 * decider does. A conflict means someone wrote the stream meanwhile; deciding again on the fresh
 * stream is always correct, so we retry a few times before answering 409.
 */
@CommandHandler(ExecuteDomainCommand)
export class DomainCommandHandler implements ICommandHandler<ExecuteDomainCommand> {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LIFECYCLE_POLICY) private readonly policy: LifecyclePolicy,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
    private readonly metrics: ClienteleMetrics,
  ) {}

  async execute({ command, meta }: ExecuteDomainCommand): Promise<CommandResult> {
    const { streamId } = commandTarget(command);
    for (let attempt = 1; ; attempt++) {
      const history = await this.store.readStream(streamId);
      const earlier = history.filter((e) => e.metadata.commandId === meta.commandId);
      if (earlier.length > 0) return answer(meta.commandId, streamId, 'duplicate', earlier);

      const decided = decideFor(command, history, this.policy);
      if (decided.length === 0) return answer(meta.commandId, streamId, 'no_op', []);

      const last = history[history.length - 1];
      try {
        const appended = await this.store.appendToStream(streamId, toNewEvents(decided, meta), {
          expectedRevision: last === undefined ? 'no_stream' : last.revision,
        });
        this.metrics.appendSize.observe(decided.length);
        return answer(meta.commandId, streamId, appended.duplicate ? 'duplicate' : 'applied', appended.events);
      } catch (error) {
        if (error instanceof DuplicateEventIdError) throw new CommandIdReusedError(meta.commandId);
        if (!(error instanceof WrongExpectedRevisionError)) throw error;
        this.metrics.conflicts.inc();
        if (attempt >= this.options.maxAttempts) {
          throw new DomainError(
            DomainErrorCodes.ConcurrencyConflict,
            `stream ${streamId} kept changing while command ${meta.commandId} was decided (${attempt} attempts); send it again`,
          );
        }
      }
    }
  }
}

function answer(commandId: string, streamId: string, status: CommandResult['status'], events: StoredEvent[]): CommandResult {
  return {
    commandId,
    streamId,
    status,
    events: events.map(({ id, type, revision, position }) => ({ id, type, revision, position })),
  };
}

/**
 * Ids come from the command id, so a repeated append is recognised by the store. Facts are caused
 * by the command (or by the event that issued it); a lifecycle transition is caused by the fact
 * just before it in the same decision (the purchase that converted, the feedback that promoted).
 */
export function toNewEvents(decided: DomainEvent[], meta: CommandMeta): NewEvent[] {
  const correlationId = meta.correlationId ?? meta.commandId;
  const commandCause = meta.causationId ?? meta.commandId;
  let lastFactId: string | undefined;
  return decided.map((event, index) => {
    const id = eventIdFor(meta.commandId, index);
    const isTransition = LifecycleTransitionTypes.has(event.type) && event.type !== 'ProspectRegistered';
    const causationId = isTransition ? (lastFactId ?? commandCause) : commandCause;
    if (!LifecycleTransitionTypes.has(event.type)) lastFactId = id;
    return {
      id,
      type: event.type,
      // Domain payloads are plain JSON by construction (strings, numbers, booleans, arrays, objects).
      data: event.data as unknown as JsonObject,
      metadata: {
        occurredAt: event.data.occurredAt,
        schemaVersion: 1,
        commandId: meta.commandId,
        correlationId,
        causationId,
      },
    };
  });
}
