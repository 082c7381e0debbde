import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import {
  DomainError,
  DomainErrorCodes,
  LifecycleTransitionTypes,
  commandTarget,
  type DeciderName,
  type DomainCommand,
  type DomainEvent,
  type LifecyclePolicy,
} from '@clientele/domain';
import {
  DuplicateEventIdError,
  WrongExpectedRevisionError,
  type AppendResult,
  type EventStore,
  type JsonObject,
  type NewEvent,
  type StoredEvent,
} from '@clientele/event-store';
import { CommandIdReusedError } from './application.errors';
import { commandIdReused } from './command-reuse';
import { ClienteleMetrics } from './clientele.metrics';
import { CLIENTELE_OPTIONS, EVENT_STORE, LIFECYCLE_POLICY } from './clientele.tokens';
import type { ResolvedClienteleOptions } from './clientele.options';
import type { CommandMeta, CommandResult } from './command-result';
import { eventIdFor } from './event-ids';
import { StreamStateCache, decideOn, viewOf, type Decided, type StreamView } from './stream-state.cache';

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
 * Commands that open a stream: sent for a stream that does not exist yet, except when repeated. Other
 * commands may register a customer implicitly, but are just as often the first command on an
 * existing stream this process has not seen (after a restart), so they always read first.
 */
export const CREATES_STREAM: ReadonlySet<DomainCommand['type']> = new Set(['RegisterProspect', 'HireEmployee']);

/**
 * Load → decide (pure) → append at the revision that was decided on. Holds no business rule: the
 * decider does. A conflict means someone wrote the stream meanwhile; deciding again on the fresh
 * stream is always correct, so we retry a few times before answering 409.
 *
 * "Load" is usually a look-up: the folded state of recently used streams is kept in a
 * StreamStateCache, because reading and parsing the stream was the biggest cost of a command. A
 * state from the cache is trusted only as far as the store confirms it: appends carry its revision,
 * and an answer that writes nothing (no-op, rule refusal) is given only after the stream head is
 * seen at that revision.
 */
@CommandHandler(ExecuteDomainCommand)
export class DomainCommandHandler implements ICommandHandler<ExecuteDomainCommand> {
  readonly cache: StreamStateCache;

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LIFECYCLE_POLICY) private readonly policy: LifecyclePolicy,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
    private readonly metrics: ClienteleMetrics,
  ) {
    this.cache = new StreamStateCache(options.stateCacheStreams);
  }

  execute({ command, meta }: ExecuteDomainCommand): Promise<CommandResult> {
    return this.run(command, meta);
  }

  /** `execute` without the CommandBus's message object, for callers holding the handler itself. */
  async run(command: DomainCommand, meta: CommandMeta): Promise<CommandResult> {
    const { streamId, decider } = commandTarget(command);
    // One look-up serves the first attempt (each look-up also moves the entry in the LRU order).
    let view = this.cache.get(streamId);
    if (view === undefined && CREATES_STREAM.has(command.type)) {
      const created = await this.tryAsNewStream(streamId, decider, command, meta);
      if (created !== undefined) return created;
      view = this.cache.get(streamId);
    }
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) view = this.cache.get(streamId);
      const cached = view !== undefined;
      if (view === undefined) {
        const history = await this.store.readStream(streamId);
        const earlier = history.filter((e) => e.metadata.commandId === meta.commandId);
        if (earlier.length > 0) return duplicateOf(command, meta, streamId, earlier);
        view = viewOf(decider, history);
        this.cache.set(streamId, view);
      } else if (view.commandIds.has(meta.commandId)) {
        const earlier = (await this.store.readStream(streamId)).filter((e) => e.metadata.commandId === meta.commandId);
        if (earlier.length > 0) return duplicateOf(command, meta, streamId, earlier);
        // The stream no longer holds what the cache says it recorded: forget it and look again.
        this.cache.delete(streamId);
        continue;
      }

      let decision: Decided;
      try {
        decision = decideOn(view, command, this.policy);
      } catch (error) {
        if (cached && error instanceof DomainError && !(await this.isHead(streamId, view))) continue;
        throw error;
      }
      const decided = decision.events;
      if (decided.length === 0) {
        if (cached && !(await this.isHead(streamId, view))) continue;
        return answer(meta.commandId, streamId, 'no_op', []);
      }

      try {
        const appended = await this.store.appendToStream(streamId, toNewEvents(streamId, decided, meta), {
          expectedRevision: view.revision < 0 ? 'no_stream' : view.revision,
        });
        this.metrics.appendSize.observe(decided.length);
        if (appended.duplicate) {
          this.cache.delete(streamId);
          return duplicateOf(command, meta, streamId, appended.events);
        }
        this.cache.advance(streamId, view, meta.commandId, decision, appended.nextExpectedRevision);
        return answer(meta.commandId, streamId, 'applied', appended.events);
      } catch (error) {
        this.cache.delete(streamId);
        if (error instanceof DuplicateEventIdError) {
          // Decided on a state held in memory, which another process may have moved on from: this
          // very command, stored there, then differs from what was decided here (a purchase that
          // converted there repeats a customer here). Read the stream and look again: the command
          // answers `duplicate`. Decided on a fresh read, the ids really name other events.
          if (cached && attempt < this.options.maxAttempts) continue;
          throw new CommandIdReusedError(meta.commandId);
        }
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

  /**
   * A stream-opening command on a stream this process does not hold is most often for a new stream:
   * deciding on the empty state and appending with 'no_stream' saves reading it. When the stream
   * exists after all the store refuses the append (wrong revision, or this command's ids already
   * stored) and the command goes the usual way: read, decide, append. Only decisions that write are
   * tried: a refusal or a no-op from an assumed empty stream would need the read to be confirmed.
   * Returns undefined when the usual way must answer.
   */
  private async tryAsNewStream(
    streamId: string,
    decider: DeciderName,
    command: DomainCommand,
    meta: CommandMeta,
  ): Promise<CommandResult | undefined> {
    const empty = viewOf(decider, []);
    let decision: Decided;
    try {
      decision = decideOn(empty, command, this.policy);
    } catch {
      return undefined;
    }
    const decided = decision.events;
    if (decided.length === 0) return undefined;
    let appended: AppendResult;
    try {
      appended = await this.store.appendToStream(streamId, toNewEvents(streamId, decided, meta), { expectedRevision: 'no_stream' });
    } catch (error) {
      if (error instanceof WrongExpectedRevisionError || error instanceof DuplicateEventIdError) return undefined;
      throw error;
    }
    this.metrics.appendSize.observe(decided.length);
    if (appended.duplicate) {
      this.cache.delete(streamId);
      return duplicateOf(command, meta, streamId, appended.events);
    }
    this.cache.advance(streamId, empty, meta.commandId, decision, appended.nextExpectedRevision);
    return answer(meta.commandId, streamId, 'applied', appended.events);
  }

  /** True when the stream still ends at the view's revision; otherwise the view is dropped. */
  private async isHead(streamId: string, view: StreamView): Promise<boolean> {
    const [last] = await this.store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
    if ((last?.revision ?? -1) === view.revision) return true;
    this.cache.delete(streamId);
    return false;
  }
}

/**
 * The answer to a command whose id already stored `earlier` on this stream: `duplicate` when it is
 * that same command, refused (CommandIdReusedError) when another command was sent under its id.
 */
function duplicateOf(command: DomainCommand, meta: CommandMeta, streamId: string, earlier: StoredEvent[]): CommandResult {
  const reused = commandIdReused(command, meta.commandId, earlier);
  if (reused !== undefined) throw reused;
  return answer(meta.commandId, streamId, 'duplicate', earlier);
}

/** A command's answer: its status and where its events are (not their content). */
export function answer(commandId: string, streamId: string, status: CommandResult['status'], events: StoredEvent[]): CommandResult {
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
export function toNewEvents(streamId: string, decided: DomainEvent[], meta: CommandMeta): NewEvent[] {
  const correlationId = meta.correlationId ?? meta.commandId;
  const commandCause = meta.causationId ?? meta.commandId;
  let lastFactId: string | undefined;
  return decided.map((event, index) => {
    const id = eventIdFor(streamId, meta.commandId, index);
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
