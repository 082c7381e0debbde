import {
  decideAndEvolveCustomer,
  decideCampaign,
  decideEmployee,
  evolveCampaign,
  evolveCustomer,
  evolveEmployee,
  initialCampaignState,
  initialCustomerState,
  initialEmployeeState,
  type CampaignCommand,
  type CampaignEvent,
  type CustomerCommand,
  type CustomerEvent,
  type DeciderName,
  type DomainCommand,
  type DomainEvent,
  type EmployeeCommand,
  type EmployeeEvent,
  type LifecyclePolicy,
  type RecordedEvent,
} from '@clientele/domain';

/**
 * One decider seen from the command path: its state is opaque here. The casts below are sound
 * because `commandTarget` names the decider from the command's type, and the state passed back is
 * always one this same decider produced.
 */
interface StreamDecider {
  initialState(): unknown;
  evolve(state: unknown, event: RecordedEvent): unknown;
  /** the decided events and the state after them */
  decide(command: DomainCommand, state: unknown, policy: LifecyclePolicy): Decided;
}

/** What a command decided on a state: its events, and the state they lead to (kept once stored). */
export interface Decided {
  readonly events: DomainEvent[];
  readonly state: unknown;
}

/** For deciders that do not fold while deciding: the state after the events, folded here. */
function folded<S, E>(state: S, events: E[], evolve: (state: S, event: E) => S): Decided {
  let next = state;
  for (const event of events) next = evolve(next, event);
  return { events: events as DomainEvent[], state: next };
}

const DECIDERS: Record<DeciderName, StreamDecider> = {
  customer: {
    initialState: initialCustomerState,
    evolve: (state, event) => evolveCustomer(state as ReturnType<typeof initialCustomerState>, event as CustomerEvent),
    // The customer decider folds while it decides: its state after the events comes with them.
    decide: (command, state, policy) =>
      decideAndEvolveCustomer(command as CustomerCommand, state as ReturnType<typeof initialCustomerState>, policy),
  },
  employee: {
    initialState: initialEmployeeState,
    evolve: (state, event) => evolveEmployee(state as ReturnType<typeof initialEmployeeState>, event as EmployeeEvent),
    decide: (command, state) => {
      const employee = state as ReturnType<typeof initialEmployeeState>;
      return folded(employee, decideEmployee(command as EmployeeCommand, employee), evolveEmployee);
    },
  },
  campaign: {
    initialState: initialCampaignState,
    evolve: (state, event) => evolveCampaign(state as ReturnType<typeof initialCampaignState>, event as CampaignEvent),
    decide: (command, state) => {
      const campaign = state as ReturnType<typeof initialCampaignState>;
      return folded(campaign, decideCampaign(command as CampaignCommand, campaign), evolveCampaign);
    },
  },
};

/** What a command needs to be decided on a stream without reading it: the folded state at a revision. */
export interface StreamView {
  readonly decider: DeciderName;
  readonly state: unknown;
  /** last revision the state includes; -1: no stream */
  readonly revision: number;
  /** every command id recorded on the stream up to `revision` */
  readonly commandIds: ReadonlySet<string>; // only ever grows, see viewAfter
}

/** Folds a whole stream (read from revision 0) into a view. */
export function viewOf(decider: DeciderName, history: readonly (RecordedEvent & { revision: number; metadata: { commandId?: string } })[]): StreamView {
  const d = DECIDERS[decider];
  let state = d.initialState();
  const commandIds = new Set<string>();
  for (const event of history) {
    state = d.evolve(state, event);
    if (event.metadata.commandId !== undefined) commandIds.add(event.metadata.commandId);
  }
  return { decider, state, revision: history[history.length - 1]?.revision ?? -1, commandIds };
}

/** The command decided on the view's state: the events, and the state after them (nothing is kept yet). */
export function decideOn(view: StreamView, command: DomainCommand, policy: LifecyclePolicy): Decided {
  return DECIDERS[view.decider].decide(command, view.state, policy);
}

/**
 * The view after the decision of `commandId` was stored, ending at `revision`. The id set is shared
 * with the view decided on, not copied (copying made every command cost as much as its stream's
 * length): an id is added only once the store confirmed the command, so any view holding the set
 * may see it.
 */
export function viewAfter(view: StreamView, commandId: string, decided: Decided, revision: number): StreamView {
  const commandIds = view.commandIds as Set<string>;
  commandIds.add(commandId);
  return { decider: view.decider, state: decided.state, revision, commandIds };
}

/**
 * Folded stream state kept between commands, so a command on a known stream is decided without
 * reading and parsing its history again. Least recently used streams are forgotten first.
 *
 * Correctness never rests on it: the store still checks the expected revision of every append (a
 * stale entry loses with WrongExpectedRevisionError and is dropped), a command id is only ever
 * added after the store confirmed its events, and the handler checks the stream head before it
 * answers "nothing to do" or a rule refusal from a cached state. Streams with more than
 * `maxCommandIds` commands are not kept (their id sets would grow without bound).
 */
export class StreamStateCache {
  private readonly entries = new Map<string, StreamView>();

  constructor(
    readonly maxStreams: number,
    private readonly maxCommandIds = 1000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(streamId: string): StreamView | undefined {
    const view = this.entries.get(streamId);
    if (view === undefined) return undefined;
    // Re-inserting moves the entry to the end of the Map's order: the most recently used.
    this.entries.delete(streamId);
    this.entries.set(streamId, view);
    return view;
  }

  set(streamId: string, view: StreamView): void {
    if (this.maxStreams === 0 || view.commandIds.size > this.maxCommandIds) {
      this.entries.delete(streamId);
      return;
    }
    this.entries.delete(streamId);
    this.entries.set(streamId, view);
    if (this.entries.size > this.maxStreams) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  /**
   * Records an append made from `decidedOn`; when another command of this process moved the entry
   * meanwhile, the entry is dropped instead (the next command reloads it).
   */
  advance(streamId: string, decidedOn: StreamView, commandId: string, decided: Decided, revision: number): void {
    const current = this.entries.get(streamId);
    if (current !== undefined && current !== decidedOn) {
      this.entries.delete(streamId);
      return;
    }
    const next = viewAfter(decidedOn, commandId, decided, revision);
    // The look-up that found `decidedOn` made it the most recent already: replace it in place.
    if (current !== undefined && next.commandIds.size <= this.maxCommandIds) this.entries.set(streamId, next);
    else this.set(streamId, next);
  }

  /**
   * Records several commands stored in one append made from `decidedOn`, whose events folded into
   * `state` (computed by the caller while deciding them). Same rule as `advance`: when another
   * command moved the entry meanwhile, it is dropped.
   */
  advanceMany(streamId: string, decidedOn: StreamView, commandIds: readonly string[], state: unknown, revision: number): void {
    const current = this.entries.get(streamId);
    if (current !== undefined && current !== decidedOn) {
      this.entries.delete(streamId);
      return;
    }
    // Shared with the view decided on, as in viewAfter: the store has confirmed these commands.
    const ids = decidedOn.commandIds as Set<string>;
    for (const id of commandIds) ids.add(id);
    this.set(streamId, { decider: decidedOn.decider, state, revision, commandIds: ids });
  }

  delete(streamId: string): void {
    this.entries.delete(streamId);
  }

  clear(): void {
    this.entries.clear();
  }
}
