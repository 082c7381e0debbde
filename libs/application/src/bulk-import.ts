import { Inject, Injectable } from '@nestjs/common';
import type { ValidCommand } from '@clientele/contracts';
import { DomainError, type DeciderName, type DomainCommand, type LifecyclePolicy } from '@clientele/domain';
import { DuplicateEventIdError, WrongExpectedRevisionError, type AppendResult, type EventStore, type NewEvent, type StoredEvent } from '@clientele/event-store';
import { ClienteleMetrics } from './clientele.metrics';
import { EVENT_STORE, LIFECYCLE_POLICY } from './clientele.tokens';
import { describeFailure, type CommandFailure, type CommandMeta, type CommandResult } from './command-result';
import { commandIdReused } from './command-reuse';
import { CREATES_STREAM, DomainCommandHandler, answer, toNewEvents } from './domain-command.handler';
import { decideOn, viewOf, type Decided, type StreamView } from './stream-state.cache';

/** One validated command of a batch, with its place in the input. */
export interface BatchCommand {
  index: number;
  command: ValidCommand;
  domain: DomainCommand;
  meta: CommandMeta;
}

/** The commands of one stream, in input order. */
export interface StreamCommands {
  streamId: string;
  decider: DeciderName;
  items: BatchCommand[];
}

export type BulkOutcome =
  | { index: number; ok: true; result: CommandResult; stored?: StoredEvent[] }
  | { index: number; ok: false; commandId: string; failure: CommandFailure };

export interface BulkImportResult {
  /** answers for the commands the bulk path settled */
  settled: BulkOutcome[];
  /** per stream, the commands (in order) that must take the usual one-by-one path, after `settled` */
  leftover: BatchCommand[][];
}

const STREAMS_PER_ROUND = 250;
/** rounds whose appends the store may hold at once (see run) */
const ROUNDS_IN_STORE = 2;
/** streams planned between two turns of the event loop (see planRound) */
const STREAMS_PER_TURN = 50;

type Step =
  | { kind: 'applied'; item: BatchCommand; from: number; count: number }
  | { kind: 'no_op'; item: BatchCommand }
  | { kind: 'refused'; item: BatchCommand; error: DomainError }
  | { kind: 'duplicate'; item: BatchCommand; earlier: StoredEvent[] };

interface StreamPlan {
  streamId: string;
  /** what was planned, to plan it again on the stream as read (see run) */
  commands: StreamCommands;
  /** the view decided on; `confirmed` when read from the store now, not from the cache or assumed empty */
  base: StreamView;
  confirmed: boolean;
  steps: Step[];
  /** every event the steps decided, in order: one append for the stream */
  events: NewEvent[];
  /** command ids of the applied steps, in order */
  appliedIds: string[];
  state: unknown;
  leftover: BatchCommand[];
}

/**
 * The bulk path of imports. The one-by-one path answers each command after its own append; with
 * 10,000 commands that is 10,000 appends, promises and group slots. Here each stream's state is
 * looked up once (state cache, one read, or the empty state for a stream its first command opens),
 * every command of the stream is decided in order on it in memory, and all the events the stream's
 * commands decided go to the store as ONE append at the revision they were decided on. The appends
 * of a round of streams are requested in the same tick, so the store's group commit writes each
 * round in one transaction.
 *
 * It answers exactly as `executeBatch` would, because anything it cannot settle with certainty goes
 * the usual way, in order, after its stream's append:
 * - the append is all or nothing: a refused append (another writer moved the stream, or the stream
 *   an opening command assumed new exists) writes nothing, and every command of that stream is
 *   decided again the usual way;
 * - a rule refusal or a no-op decided on a state from the cache or on an assumed-empty stream is
 *   confirmed by the stream's append succeeding at the revision it was decided on; a stream with
 *   nothing to append and such an answer goes the usual way (which checks the stream head);
 * - a command id the cached state says was recorded is answered `duplicate` from the stream, read
 *   once for the plan; one repeated inside the batch cuts the stream there: it and the commands
 *   after it go the usual way, which answers `duplicate`;
 * - a stream planned on a state not read from the store (assumed new, or cached) whose append is
 *   refused as stale, or found already stored whole (the batch sent again), is planned once more
 *   on the stream as read, before anything of it goes the usual way (which reads the whole stream
 *   for each command).
 * Command ids enter the state cache only after the store confirmed the append that holds them.
 */
@Injectable()
export class BulkImporter {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(LIFECYCLE_POLICY) private readonly policy: LifecyclePolicy,
    private readonly handler: DomainCommandHandler,
    private readonly metrics: ClienteleMetrics,
  ) {}

  async run(streams: readonly StreamCommands[]): Promise<BulkImportResult> {
    const result: BulkImportResult = { settled: [], leftover: [] };
    // A few hundred streams at a time: holding every decision of a 10,000-command batch at once
    // cost more in garbage collection than the extra transactions cost in commits. No stream is in
    // two rounds, so the next round is decided while the store writes this one, and rounds are
    // settled in order.
    let settling: Promise<void> = Promise.resolve();
    // the appends of the rounds requested last, answered: a round's appends are requested only once
    // the round ROUNDS_IN_STORE before it is written, so the store never holds more than that, and an
    // append another caller makes meanwhile (an HTTP command beside a Kafka batch) waits for those
    // rounds, not for every round decided since. Two keep the writer busy while the next is decided
    // (one alone cost a fifth of the import's throughput).
    const written: Array<Promise<unknown>> = [];
    // streams whose append was refused after they were planned on a state not read from the store
    // (assumed new, or cached): planned once more on the stream as read, in a round of their own,
    // before anything goes the one-by-one way (which reads the whole stream for each command: a
    // batch sent again, on streams too long to cache, took half a minute for 5,000 commands)
    const again: StreamCommands[] = [];
    try {
      for (let i = 0; i < streams.length; i += STREAMS_PER_ROUND) {
        const plans = await this.planRound(streams.slice(i, i + STREAMS_PER_ROUND));
        if (written.length >= ROUNDS_IN_STORE) await written.shift();
        const appends = this.requestAppends(plans);
        written.push(Promise.all(appends));
        settling = settling.then(() => this.settleRound(plans, appends, result, again));
        // handled here too, so a failure surfaces at the await below, not as an unhandled rejection
        settling.catch(() => undefined);
        // one turn of the event loop: the store sends this round to be written before the next is decided
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await settling;
      for (let i = 0; i < again.length; i += STREAMS_PER_ROUND) {
        const plans = await this.planRound(again.slice(i, i + STREAMS_PER_ROUND), true);
        await this.settleRound(plans, this.requestAppends(plans), result);
      }
    } finally {
      // also when deciding a later round failed: the rounds already sent are answered and cached
      await settling;
    }
    return result;
  }

  /**
   * The round's streams planned a few at a time, with a turn of the event loop between: planning
   * on cached states is all microtasks, and a whole round of it held up everything else the
   * process does (an HTTP command beside a Kafka batch, the writer's answers) for tens of ms.
   */
  private async planRound(streams: readonly StreamCommands[], read = false): Promise<StreamPlan[]> {
    const plans: StreamPlan[] = [];
    for (let i = 0; i < streams.length; i += STREAMS_PER_TURN) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      plans.push(...(await Promise.all(streams.slice(i, i + STREAMS_PER_TURN).map((s) => this.plan(s, read)))));
    }
    return plans;
  }

  /**
   * Every append of the round is requested before any is awaited: the store groups them into few
   * transactions. An append that fails answers undefined (nothing of its stream was written).
   */
  private requestAppends(plans: readonly StreamPlan[]): Array<Promise<AppendResult | 'stale' | undefined> | undefined> {
    return plans.map((p) =>
      p.events.length === 0
        ? undefined
        : this.store
            .appendToStream(p.streamId, p.events, { expectedRevision: p.base.revision < 0 ? 'no_stream' : p.base.revision })
            // 'stale': the stream is not where the plan thought (another writer, or a stream assumed new),
            // or its commands' event ids are stored with content other than decided here (a batch sent
            // again, decided on a stream assumed new: the read stream answers them duplicate, as the
            // usual path finds after its own read); any other failure goes the usual way, which answers it
            .catch((error: unknown) =>
              error instanceof WrongExpectedRevisionError || error instanceof DuplicateEventIdError ? ('stale' as const) : undefined,
            ),
    );
  }

  private async settleRound(
    plans: readonly StreamPlan[],
    appends: ReadonlyArray<Promise<AppendResult | 'stale' | undefined> | undefined>,
    { settled, leftover }: BulkImportResult,
    again?: StreamCommands[],
  ): Promise<void> {
    const counts = new OutcomeCounts();
    for (let i = 0; i < plans.length; i++) {
      const plan = plans[i]!;
      const pending = appends[i];
      let appended: AppendResult | undefined;
      if (pending !== undefined) {
        // undefined: nothing of the stream was written; the usual path decides each command again
        // and answers each failure (conflict, reused id, storage) as it always does
        const reply = await pending;
        if (reply === 'stale' || reply === undefined || reply.duplicate) {
          this.handler.cache.delete(plan.streamId);
          // stale, or the whole append already stored (a batch sent again): planned once more on the read stream
          if ((reply === 'stale' || reply?.duplicate === true) && again !== undefined && !plan.confirmed) again.push(plan.commands);
          else leftover.push(plan.steps.map((s) => s.item).concat(plan.leftover));
          continue;
        }
        appended = reply;
        this.handler.cache.advanceMany(plan.streamId, plan.base, plan.appliedIds, plan.state, appended.nextExpectedRevision);
      }
      for (const step of plan.steps) settled.push(this.outcome(plan.streamId, step, appended, counts));
      if (plan.leftover.length > 0) leftover.push(plan.leftover);
    }
    counts.addTo(this.metrics);
  }

  private async plan(commands: StreamCommands, read = false): Promise<StreamPlan> {
    const { streamId, decider, items } = commands;
    const cache = this.handler.cache;
    let base = read ? undefined : cache.get(streamId);
    let confirmed = false;
    let history: StoredEvent[] | undefined;
    if (base === undefined) {
      if (!read && CREATES_STREAM.has(items[0]!.domain.type)) {
        base = viewOf(decider, []);
      } else {
        history = await this.store.readStream(streamId);
        base = viewOf(decider, history);
        confirmed = true;
        cache.set(streamId, base);
      }
    }
    const plan: StreamPlan = { streamId, commands, base, confirmed, steps: [], events: [], appliedIds: [], state: base.state, leftover: [] };
    // the events of each command id in the history read, indexed once: a batch sent again is all
    // duplicates, and filtering the whole history for each of them made it quadratic (5,000 of
    // them on five long streams took half a minute, and a Kafka ingest lost its group meanwhile)
    let byCommand: Map<string, StoredEvent[]> | undefined;
    const earlierOf = (commandId: string): StoredEvent[] => {
      if (history === undefined) return [];
      if (byCommand === undefined) {
        byCommand = new Map();
        for (const e of history) {
          const id = e.metadata.commandId;
          if (id === undefined) continue;
          const list = byCommand.get(id);
          if (list) list.push(e);
          else byCommand.set(id, [e]);
        }
      }
      return byCommand.get(commandId) ?? [];
    };
    const seen = new Set<string>();
    let view: StreamView = base;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const commandId = item.meta.commandId;
      if (seen.has(commandId)) {
        plan.leftover = items.slice(i);
        break;
      }
      seen.add(commandId);
      if (base.commandIds.has(commandId)) {
        // a cached stream: its history read once for the whole plan, not once per duplicate by the usual path
        if (history === undefined) {
          history = await this.store.readStream(streamId);
          // the read shows whether the cached state is the stream's as it stands (then it is confirmed)
          if ((history[history.length - 1]?.revision ?? -1) === base.revision) confirmed = plan.confirmed = true;
        }
        const earlier = earlierOf(commandId);
        if (earlier.length === 0) {
          plan.leftover = items.slice(i);
          break;
        }
        plan.steps.push({ kind: 'duplicate', item, earlier });
        continue;
      }
      let decision: Decided;
      try {
        decision = decideOn(view, item.domain, this.policy);
      } catch (error) {
        if (!(error instanceof DomainError)) {
          // Not a rule: the usual path answers it (and logs it) as it would any failure.
          plan.leftover = items.slice(i);
          break;
        }
        plan.steps.push({ kind: 'refused', item, error });
        continue;
      }
      const decided = decision.events;
      if (decided.length === 0) {
        plan.steps.push({ kind: 'no_op', item });
        continue;
      }
      const events = toNewEvents(streamId, decided, item.meta);
      plan.steps.push({ kind: 'applied', item, from: plan.events.length, count: events.length });
      for (const e of events) plan.events.push(e);
      plan.appliedIds.push(commandId);
      plan.state = decision.state;
      view = { decider, state: plan.state, revision: view.revision + decided.length, commandIds: base.commandIds };
    }
    if (plan.events.length === 0 && !confirmed && plan.steps.length > 0) {
      // Nothing to append would confirm the state these answers were decided on.
      plan.leftover = plan.steps.map((s) => s.item).concat(plan.leftover);
      plan.steps = [];
    }
    return plan;
  }

  private outcome(streamId: string, step: Step, appended: AppendResult | undefined, counts: OutcomeCounts): BulkOutcome {
    const { index, domain, meta } = step.item;
    switch (step.kind) {
      case 'applied': {
        const stored = appended!.events.slice(step.from, step.from + step.count);
        this.metrics.appendSize.observe(step.count);
        counts.count(domain.type, 'applied');
        return { index, ok: true, result: answer(meta.commandId, streamId, 'applied', stored) };
      }
      case 'no_op':
        counts.count(domain.type, 'no_op');
        return { index, ok: true, result: answer(meta.commandId, streamId, 'no_op', []) };
      case 'duplicate': {
        const reused = commandIdReused(domain, meta.commandId, step.earlier);
        if (reused !== undefined) {
          const failure = describeFailure(reused);
          counts.count(domain.type, failure.kind);
          return { index, ok: false, commandId: meta.commandId, failure };
        }
        counts.count(domain.type, 'duplicate');
        return { index, ok: true, result: answer(meta.commandId, streamId, 'duplicate', step.earlier), stored: step.earlier };
      }
      case 'refused': {
        const failure = describeFailure(step.error);
        counts.count(domain.type, failure.kind);
        return { index, ok: false, commandId: meta.commandId, failure };
      }
    }
  }
}

/** Outcomes of a bulk run by command type, added to the metrics once per type and outcome. */
class OutcomeCounts {
  private readonly counts = new Map<string, { type: string; status: string; n: number }>();

  count(type: string, status: string): void {
    const key = `${type}\u0000${status}`;
    const entry = this.counts.get(key);
    if (entry) entry.n += 1;
    else this.counts.set(key, { type, status, n: 1 });
  }

  addTo(metrics: ClienteleMetrics): void {
    for (const { type, status, n } of this.counts.values()) metrics.countCommand(type, status, n);
  }
}
